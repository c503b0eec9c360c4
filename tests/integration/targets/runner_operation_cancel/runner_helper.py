# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helper of runme.sh: emulator control, AWX-style private data dirs, and the checks of a finished job.

The client secret is read from the integration config inside this process and written only into the
private data dir's env/envvars (as AWX injects a credential) or a project vars file; it never goes through
argv or stdout, and nothing here prints it.

usage: runner_helper.py --config FILE COMMAND [...]
  reset                                 POST /_emulator/reset
  offers PREFIX                         create the offers of one job (PREFIX-200, PREFIX-202, PREFIX-idle)
  pdd DIR --job env|vars --collections PATH --python PY --cache DIR --offers PREFIX [--verbosity N]
                                        write an AWX-style private data dir
  check DIR --ident ID --job env|vars --offers PREFIX [--log FILE ...]
                                        status/rc, per-offer results in the job events, one module run per
                                        offer plus ONE phase 2 run, offer states, and no secret / issued
                                        token anywhere in DIR/artifacts (and FILEs)
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import ssl
import sys
import urllib.parse
import urllib.request

import yaml

# What each job's offers do, and what operation_cancel_results must say about them.
SCENARIOS = {
    "200": {"state": "running", "cancel": {"status": 200}},
    "202": {"state": "running", "cancel": {"status": 202, "location": "relative", "duration": 2}},
    "idle": {"state": "idle"},
}
EXPECTED = {
    "200": {"changed": True, "failed": False, "status_code": 200, "waited": True, "final": "canceled"},
    "202": {"changed": True, "failed": False, "status_code": 202, "waited": True, "final": "canceled"},
    "idle": {"changed": False, "failed": False, "status_code": None, "waited": False, "final": None},
}
# The role's module tasks, by a word of their names.
PHASE1 = "phase 1"
PHASE2 = "phase 2"
WAIT_ACTION = "azure_marketplace.cloudpartner.cloudpartner_operation_wait"
# The env variables an AWX "Microsoft Azure Resource Manager" credential injects (plus the API and authority URLs,
# which a custom credential type would inject for a test server or another cloud).
SECRET_ENV = "AZURE_SECRET"


def fail(message: str, code: int = 1) -> None:
    print(f"runner_helper: FAIL: {message}", file=sys.stderr)
    sys.exit(code)


def load_config(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    emulator = (data or {}).get("cloudpartner_emulator")
    if not isinstance(emulator, dict) or "control_url" not in emulator:
        fail(f"{path} has no cloudpartner_emulator dict with control_url")
    return emulator


class Control:
    def __init__(self, emulator: dict) -> None:
        self.base = emulator["control_url"].rstrip("/")
        context = ssl.create_default_context(cafile=emulator["ca_path"])
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))

    def call(self, method: str, path: str, body: object = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with self.opener.open(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw.strip() else None


def offer_ids(prefix: str) -> dict:
    return {kind: f"{prefix}-{kind}" for kind in SCENARIOS}


def cmd_offers(emulator: dict, control: Control, args: argparse.Namespace) -> None:
    for kind, offer_id in offer_ids(args.prefix).items():
        control.call("PUT", f"/offers/{emulator['publisher_id']}/{offer_id}", SCENARIOS[kind])


def write(path: str, text: str, mode: int = 0o600) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def cmd_pdd(emulator: dict, args: argparse.Namespace) -> None:
    pdd = args.dir
    offers = offer_ids(args.offers)
    # a plain offer id for two of them, a dict for the third: both shapes of operation_cancel_offers
    role_offers = [offers["200"], {"offer_id": offers["202"]}, offers["idle"]]
    play = {
        "name": "Cancel the operations in progress on the offers (AWX job template)",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Cancel every offer's operation, then wait for them all",
                "ansible.builtin.include_role": {"name": "azure_marketplace.cloudpartner.operation_cancel"},
                "vars": {
                    "operation_cancel_publisher_id": "{{ publisher_id }}",
                    "operation_cancel_offers": "{{ offers }}",
                    "operation_cancel_ca_path": "{{ ca_path }}",
                    "operation_cancel_wait_sleep": 1,
                },
            },
            {"name": "Report the results", "ansible.builtin.debug": {"var": "operation_cancel_results"}},
        ],
    }
    envvars = {"ANSIBLE_COLLECTIONS_PATH": args.collections, "XDG_CACHE_HOME": args.cache}
    if args.job == "env":
        # what AWX's Azure credential injects, plus the URLs of the test servers
        envvars.update(
            {
                "CLOUDPARTNER_API_URL": emulator["api_url"],
                "CLOUDPARTNER_AUTHORITY_HOST": emulator["authority_host"],
                "AZURE_TENANT": emulator["tenant_id"],
                "AZURE_CLIENT_ID": emulator["client_id"],
                SECRET_ENV: emulator["client_secret"],
            }
        )
    else:
        # credentials as role variables from a vars file of the project (as Ansible Vault would deliver them)
        play["vars_files"] = ["credentials.yml"]
        credentials = {
            "operation_cancel_api_url": emulator["api_url"],
            "operation_cancel_authority_host": emulator["authority_host"],
            "operation_cancel_tenant_id": emulator["tenant_id"],
            "operation_cancel_client_id": emulator["client_id"],
            "operation_cancel_client_secret": emulator["client_secret"],
        }
        write(os.path.join(pdd, "project", "credentials.yml"), "---\n" + yaml.safe_dump(credentials, default_flow_style=False))
    write(os.path.join(pdd, "project", "site.yml"), "---\n" + yaml.safe_dump([play], default_flow_style=False, sort_keys=False), 0o644)
    write(
        os.path.join(pdd, "inventory", "hosts"),
        f"localhost ansible_connection=local ansible_python_interpreter={args.python}\n",
        0o644,
    )
    write(os.path.join(pdd, "env", "envvars"), yaml.safe_dump(envvars, default_flow_style=False))
    extravars = {"publisher_id": emulator["publisher_id"], "offers": role_offers, "ca_path": emulator["ca_path"]}
    write(os.path.join(pdd, "env", "extravars"), yaml.safe_dump(extravars, default_flow_style=False), 0o644)
    write(os.path.join(pdd, "env", "settings"), yaml.safe_dump({"job_timeout": 600}), 0o644)
    if args.verbosity:
        # what an AWX job template's verbosity setting adds to the command line
        write(os.path.join(pdd, "env", "cmdline"), "-" + "v" * args.verbosity, 0o644)


def variants(value: str) -> set:
    """The value as it could appear in a file: raw, JSON-escaped, URL-encoded, base64."""
    found = {value, json.dumps(value)[1:-1], urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
    found.add(base64.b64encode(value.encode()).decode().rstrip("="))
    return {item for item in found if len(item) >= 8}


def leaks_in(text: str, needles: dict) -> list:
    return sorted({name for name, values in needles.items() for value in values if value in text})


def read_events(artifacts: str) -> list:
    events_dir = os.path.join(artifacts, "job_events")
    events = []
    for name in sorted(os.listdir(events_dir)):
        if name.endswith(".json"):
            with open(os.path.join(events_dir, name), encoding="utf-8") as handle:
                events.append(json.load(handle))
    return sorted(events, key=lambda event: event.get("counter", 0))


def cmd_check(emulator: dict, control: Control, args: argparse.Namespace) -> None:
    artifacts_root = os.path.join(args.dir, "artifacts")
    artifacts = os.path.join(artifacts_root, args.ident)
    with open(os.path.join(artifacts, "status"), encoding="utf-8") as handle:
        status = handle.read().strip()
    with open(os.path.join(artifacts, "rc"), encoding="utf-8") as handle:
        rc = handle.read().strip()

    # 1. no secret and no token anywhere: every file of the artifacts directory, and the runner's own output
    tokens = control.call("GET", "/tokens")
    issued = [token for token in tokens["issued"] if isinstance(token, str)]
    if tokens["token_requests"] < 1 or not issued:
        fail("the job requested no token: the leak check for tokens would prove nothing")
    needles = {"client secret": variants(emulator["client_secret"])}
    for number, token in enumerate(issued):
        needles[f"issued token #{number}"] = variants(token)
    problems = []
    files = [os.path.join(root, name) for root, _dirs, names in os.walk(artifacts_root) for name in names] + list(args.log)
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        if os.path.basename(path) == "command" and os.path.dirname(os.path.dirname(path)) == artifacts_root:
            # ansible-runner writes the job's whole process environment into artifacts/<ident>/command, by design:
            # with an AWX-style injection the credential is there, as the value of the injected variable and
            # nowhere else (AWX deletes the private data dir after the job). Check everything else in it.
            command = json.loads(text)
            if args.job == "env" and command.get("env", {}).get(SECRET_ENV) != emulator["client_secret"]:
                fail(f"{SECRET_ENV} was not injected into the job's environment")
            command.get("env", {}).pop(SECRET_ENV, None)
            text = json.dumps(command)
        for leak in leaks_in(text, needles):
            problems.append(f"{leak} in {os.path.relpath(path, args.dir) if path.startswith(args.dir) else path}")
    if problems:
        fail("secrets in the job's output (values not shown): " + "; ".join(problems), code=3)
    checked = len(files)

    # 2. status and rc
    if status != "successful" or rc != "0":
        fail(f"job {args.ident}: status {status!r}, rc {rc!r} (expected successful, 0)")

    # 3. the per-offer results in the job events
    events = read_events(artifacts)
    report = [
        event
        for event in events
        if event.get("event") == "runner_on_ok" and event.get("event_data", {}).get("task") == "Report the results"
    ]
    if len(report) != 1:
        fail(f"expected one runner_on_ok event of the task 'Report the results', found {len(report)}")
    results = report[0]["event_data"]["res"].get("operation_cancel_results")
    offers = offer_ids(args.offers)
    if not isinstance(results, list) or [entry.get("offer_id") for entry in results] != list(offers.values()):
        fail(f"operation_cancel_results in the job events: {json.dumps(results)[:2000]}")
    for kind, entry in zip(offers, results):
        want = EXPECTED[kind]
        got_status = (entry.get("operation") or {}).get("status")
        if (
            entry.get("changed") is not want["changed"]
            or entry.get("failed") is not want["failed"]
            or entry.get("status_code") != want["status_code"]
            or entry.get("waited") is not want["waited"]
            or (want["final"] and (str(got_status).lower() != want["final"] or str(entry.get("status")).lower() != want["final"]))
        ):
            fail(f"result of offer {entry.get('offer_id')}: {json.dumps(entry)[:2000]}")
    # the role's own tasks show up as events too (the set_fact of the results, per-offer loop items labelled by id)
    labels = {
        (event["event_data"].get("res") or {}).get("_ansible_item_label")
        for event in events
        if event.get("event") in ("runner_item_on_ok", "runner_item_on_failed")
        and "phase 1" in event.get("event_data", {}).get("task", "")
    }
    if labels != set(offers.values()):
        fail(f"the phase 1 loop items are not labelled with the offer ids: {sorted(map(str, labels))}")

    # exactly one module run for phase 2, for the offers cancelled in phase 1, and no other module run of the role
    # (N + 1 module runs in all: one per offer in phase 1, one for all the waits)
    def task_of(event: dict) -> str:
        return event.get("event_data", {}).get("task") or ""

    def action_of(event: dict) -> str:
        data = event.get("event_data", {})
        return data.get("resolved_action") or data.get("task_action") or ""

    phase2_starts = [event for event in events if event.get("event") == "playbook_on_task_start" and PHASE2 in task_of(event)]
    phase2_results = [event for event in events if event.get("event") in ("runner_on_ok", "runner_on_failed") and PHASE2 in task_of(event)]
    phase2_items = [event for event in events if event.get("event", "").startswith("runner_item_on_") and PHASE2 in task_of(event)]
    if len(phase2_starts) != 1 or len(phase2_results) != 1 or phase2_items:
        fail(
            f"expected one run of the phase 2 task: {len(phase2_starts)} task starts, {len(phase2_results)} results, "
            f"{len(phase2_items)} loop items"
        )
    if not action_of(phase2_results[0]).endswith("cloudpartner_operation_wait"):
        fail(f"the phase 2 task ran {action_of(phase2_results[0])!r}, not {WAIT_ACTION}")
    waited = [item.get("offer_id") for item in (phase2_results[0]["event_data"].get("res") or {}).get("operations") or []]
    if waited != [offers["200"], offers["202"]]:
        fail(f"phase 2 waited for {waited}, expected the two cancelled offers")
    module_runs = [
        event
        for event in events
        if event.get("event") in ("runner_item_on_ok", "runner_item_on_failed", "runner_on_ok", "runner_on_failed")
        and ".cloudpartner_operation_" in action_of(event)
        and "results" not in (event.get("event_data", {}).get("res") or {})
    ]
    if len(module_runs) != len(offers) + 1:
        fail(f"expected {len(offers) + 1} module runs of the role (phase 1 per offer, then one wait), found {len(module_runs)}: "
             f"{[(task_of(event), action_of(event)) for event in module_runs]}")

    # 4. what the emulator says
    for kind, offer_id in offers.items():
        final = EXPECTED[kind]["final"]
        if final:
            state = control.call("GET", f"/offers/{emulator['publisher_id']}/{offer_id}")
            if str(state.get("status")).lower() != final or state.get("cancel_posts") != 1:
                fail(f"emulator state of {offer_id}: {state}")
    verbose = any("ESTABLISH LOCAL CONNECTION" in (event.get("stdout") or "") for event in events)
    print(
        f"job {args.ident}: {status}, rc {rc}; {len(results)} per-offer results in the job events; "
        f"{len(module_runs)} module runs (one phase 2 run); "
        f"no secret and none of {len(issued)} issued tokens in {checked} files"
        f"{' (verbose output)' if verbose else ''}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("reset")
    offers = sub.add_parser("offers")
    offers.add_argument("prefix")
    pdd = sub.add_parser("pdd")
    pdd.add_argument("dir")
    pdd.add_argument("--job", choices=["env", "vars"], required=True)
    pdd.add_argument("--collections", required=True)
    pdd.add_argument("--python", required=True)
    pdd.add_argument("--cache", required=True)
    pdd.add_argument("--offers", required=True)
    pdd.add_argument("--verbosity", type=int, default=0)
    check = sub.add_parser("check")
    check.add_argument("dir")
    check.add_argument("--ident", required=True)
    check.add_argument("--job", choices=["env", "vars"], required=True)
    check.add_argument("--offers", required=True)
    check.add_argument("--log", action="append", default=[])
    args = parser.parse_args()

    emulator = load_config(args.config)
    control = Control(emulator)
    if args.command == "reset":
        control.call("POST", "/reset")
    elif args.command == "offers":
        cmd_offers(emulator, control, args)
    elif args.command == "pdd":
        cmd_pdd(emulator, args)
    else:
        cmd_check(emulator, control, args)


if __name__ == "__main__":
    main()
