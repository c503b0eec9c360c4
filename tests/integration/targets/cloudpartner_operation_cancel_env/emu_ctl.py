# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Small stdlib helper for runme.sh: talk to the emulator's control API and look for leaked secrets.

Secrets never go through argv (xtrace would print them) and are never printed by this helper,
except by the `secret` and `token` commands, whose output runme.sh captures with xtrace off.

usage: emu_ctl.py --config FILE COMMAND [...]
  show                      shell assignments of the non-secret emulator details (EMU_*)
  secret                    the client secret
  reset                     POST /_emulator/reset
  offer OFFER_ID JSON       PUT a scenario
  token                     issue a token (POST /_emulator/tokens) and print it
  mark                      the highest seq in the request log (0 when empty)
  expect --since N --offer O [--cancel-posts N] [--token-posts N | --min-token-posts N] [--listener L]
  check-leaks FILE...       fail if the client secret, any token the emulator ever issued (remembered in
                            --store) or any value listed in $LEAK_EXTRA_SECRETS (space separated) appears
                            in FILE (raw, URL-encoded or base64-encoded)
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shlex
import ssl
import sys
import urllib.parse
import urllib.request


def load_config(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    data = None
    try:
        import yaml

        data = yaml.safe_load(text)
    except ImportError:
        try:
            data = json.loads(text)
        except ValueError:
            match = re.search(r"^\s+state_dir:\s*['\"]?([^'\"\n]+)['\"]?\s*$", text, re.M)
            if not match:
                sys.exit(f"cannot read {path}: no PyYAML and no state_dir line")
            data = {"cloudpartner_emulator": {"state_dir": match.group(1)}}
    emu = (data or {}).get("cloudpartner_emulator")
    if not isinstance(emu, dict):
        sys.exit(f"{path} has no cloudpartner_emulator key")
    # every field of emulator.json is in the config; fill the gaps from the state dir when needed
    if "control_url" not in emu and emu.get("state_dir"):
        with open(os.path.join(emu["state_dir"], "emulator.json"), encoding="utf-8") as handle:
            merged = json.load(handle)
        merged.update(emu)
        emu = merged
    return emu


class Control:
    def __init__(self, emu: dict) -> None:
        self.base = emu["control_url"].rstrip("/")
        self.ctx = ssl.create_default_context(cafile=emu["ca_path"])
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self.ctx))

    def call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with self.opener.open(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.strip() else None


def variants(secret: str) -> set[str]:
    out = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
    out.add(base64.b64encode(secret.encode()).decode().rstrip("="))
    return {v for v in out if len(v) >= 6}


def cmd_check_leaks(emu: dict, ctl: Control, args) -> int:
    store = args.store
    known: list[str] = []
    if store and os.path.exists(store):
        with open(store, encoding="utf-8") as handle:
            known = json.load(handle)
    issued = ctl.call("GET", "/tokens") or {}
    tokens = sorted(set(known) | set(issued.get("issued") or []))
    if store:
        with open(store, "w", encoding="utf-8") as handle:
            json.dump(tokens, handle)
    secrets = {"client secret": [emu["client_secret"]]}
    secrets["issued tokens"] = tokens
    secrets["extra secrets"] = [s for s in os.environ.get("LEAK_EXTRA_SECRETS", "").split() if s]
    failures = 0
    for name in args.files:
        with open(name, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        for kind, values in secrets.items():
            for index, value in enumerate(values):
                for form in variants(value):
                    if form in text:
                        failures += 1
                        line = text.count("\n", 0, text.index(form)) + 1
                        print(f"LEAK: {kind} #{index} appears in {name} at line {line}", file=sys.stderr)
                        break
    counted = sum(len(v) for v in secrets.values())
    if failures:
        return 1
    print(f"no leak: {counted} secret values (secret, {len(tokens)} tokens, extras) checked in {len(args.files)} file(s)")
    return 0


def cmd_expect(ctl: Control, args) -> int:
    log = [e for e in ctl.call("GET", "/requests") or [] if e["seq"] > args.since]
    offer = [e for e in log if e.get("offer") == args.offer]
    posts = [e for e in offer if e["method"] == "POST" and re.search(r"/cancel/?$", e["path"])]
    token_posts = [e for e in log if e["listener"] == "login" and e["method"] == "POST"]
    problems = []
    if args.cancel_posts is not None and len(posts) != args.cancel_posts:
        problems.append(f"expected {args.cancel_posts} cancel POST(s) for {args.offer}, got {len(posts)}")
    if args.token_posts is not None and len(token_posts) != args.token_posts:
        problems.append(f"expected {args.token_posts} token request(s), got {len(token_posts)}")
    if args.min_token_posts is not None and len(token_posts) < args.min_token_posts:
        problems.append(f"expected at least {args.min_token_posts} token request(s), got {len(token_posts)}")
    if args.listener and any(e["listener"] != args.listener for e in offer):
        problems.append(f"expected every request for {args.offer} on listener {args.listener}")
    if args.auth and any(e["auth"] != args.auth for e in offer):
        problems.append(f"expected auth={args.auth} on every request for {args.offer}")
    summary = [{k: e.get(k) for k in ("seq", "listener", "method", "path", "status", "auth", "offer")} for e in log]
    if problems:
        print("EXPECTATION FAILED: " + "; ".join(problems), file=sys.stderr)
        print(json.dumps(summary, indent=1), file=sys.stderr)
        return 1
    print(f"log ok for {args.offer}: {len(offer)} API request(s), {len(posts)} cancel POST(s), {len(token_posts)} token request(s)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("show")
    sub.add_parser("secret")
    sub.add_parser("reset")
    p_offer = sub.add_parser("offer")
    p_offer.add_argument("offer_id")
    p_offer.add_argument("scenario")
    sub.add_parser("token")
    sub.add_parser("mark")
    p_expect = sub.add_parser("expect")
    p_expect.add_argument("--since", type=int, required=True)
    p_expect.add_argument("--offer", required=True)
    p_expect.add_argument("--cancel-posts", type=int)
    p_expect.add_argument("--token-posts", type=int)
    p_expect.add_argument("--min-token-posts", type=int)
    p_expect.add_argument("--listener")
    p_expect.add_argument("--auth")
    p_leaks = sub.add_parser("check-leaks")
    p_leaks.add_argument("--store")
    p_leaks.add_argument("files", nargs="+")
    args = parser.parse_args()

    emu = load_config(args.config)
    ctl = Control(emu)
    if args.command == "show":
        names = ["api_url", "api_url_http", "authority_host", "foreign_url", "proxy_url", "control_url", "ca_path",
                 "tenant_id", "client_id", "publisher_id", "state_dir"]
        for name in names:
            print(f"EMU_{name.upper()}={shlex.quote(str(emu.get(name, '')))}")
        return 0
    if args.command == "secret":
        print(emu["client_secret"])
        return 0
    if args.command == "reset":
        ctl.call("POST", "/reset")
        return 0
    if args.command == "offer":
        pub = emu["publisher_id"]
        ctl.call("PUT", f"/offers/{pub}/{args.offer_id}", json.loads(args.scenario))
        return 0
    if args.command == "token":
        print(ctl.call("POST", "/tokens", {"expires_in": 3600})["access_token"])
        return 0
    if args.command == "mark":
        log = ctl.call("GET", "/requests") or []
        print(max([e["seq"] for e in log] or [0]))
        return 0
    if args.command == "expect":
        return cmd_expect(ctl, args)
    if args.command == "check-leaks":
        return cmd_check_leaks(emu, ctl, args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
