# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stdlib helper for runme.sh of cloudpartner_operation_cancel_faults: what the emulator saw, case by case.

The generic commands (show, secret, reset, offer, mark, check-leaks) are the ones of
../cloudpartner_operation_cancel_env/emu_ctl.py; this helper adds what the fault cases need.
It never prints a secret or a token, except `token`, whose output runme.sh captures with xtrace off.

usage: faults_ctl.py --config FILE COMMAND [...]
  settings JSON                       PUT /_emulator/settings (login settings, e.g. token_lifetime)
  token EXPIRES_IN [--max-uses N]     issue a token with that lifetime (and number of uses) and print it
  token-requests                      the emulator's token_requests counter
  delete-offer OFFER                  DELETE an offer (and the login faults its scenario still holds)
  ca FILE                             write the certificate of a new, unrelated CA (trustme) to FILE
  check-fragments FILE...             fail if any 20-character piece of $FRAGMENT_SECRET appears in a FILE
                                      (a token that was refused must not show, not even in part)
  check CASE --since SEQ --tokens-before N [--started T] [--result FILE]
                                      assert what the emulator saw for CASE (request log since SEQ, token
                                      requests since N, offer states); prints a one-line summary
"""

from __future__ import annotations

import argparse
import json
import os
import re
import ssl
import sys
import typing as t
import urllib.request

import yaml


def load_config(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    emu = (data or {}).get("cloudpartner_emulator")
    if not isinstance(emu, dict) or "control_url" not in emu:
        sys.exit(f"{path} has no cloudpartner_emulator.control_url")
    return emu


class Control:
    def __init__(self, emu: dict) -> None:
        self.base = emu["control_url"].rstrip("/")
        context = ssl.create_default_context(cafile=emu["ca_path"])
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))

    def call(self, method: str, path: str, body: t.Any = None) -> t.Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with self.opener.open(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw.strip() else None


# ----------------------------------------------------------------------------------------------------
# The request log of one case


class Case:
    """The log entries of one case (seq > since), and helpers to select and compare them."""

    def __init__(self, emu: dict, ctl: Control, since: int, tokens_before: int, result: t.Any) -> None:
        self.emu = emu
        self.ctl = ctl
        self.publisher = emu["publisher_id"]
        self.log = [entry for entry in ctl.call("GET", f"/requests?since={since}") or [] if entry["seq"] > since]
        self.token_requests = int(ctl.call("GET", "/tokens")["token_requests"]) - tokens_before
        self.result = result
        self.problems: list[str] = []
        self.notes: list[str] = []

    def expect(self, condition: bool, message: str) -> bool:
        if not condition:
            self.problems.append(message)
        return condition

    def note(self, message: str) -> None:
        self.notes.append(message)

    def key(self, offer: str) -> str:
        return f"{self.publisher}/{offer}"

    def api(self, offer: t.Optional[str] = None) -> list[dict]:
        entries = [entry for entry in self.log if entry["listener"] in ("api", "api_http")]
        return entries if offer is None else [entry for entry in entries if entry["offer"] == self.key(offer)]

    def posts(self, offer: str) -> list[dict]:
        return [entry for entry in self.api(offer) if entry["method"] == "POST" and re.search(r"/cancel/?$", entry["path"])]

    def lists(self, offer: str) -> list[dict]:
        return [entry for entry in self.api(offer) if entry["method"] == "GET" and "/submissions" in entry["path"]]

    def operation_gets(self, offer: str) -> list[dict]:
        return [entry for entry in self.api(offer) if entry["method"] == "GET" and "/operations/" in entry["path"]]

    def after_post(self, entries: list[dict], offer: str) -> list[dict]:
        """Entries that came after the last answered (200/202) cancel POST of the offer: the polls."""
        answered = [entry["seq"] for entry in self.posts(offer) if entry["status"] in (200, 202)]
        return [entry for entry in entries if answered and entry["seq"] > answered[-1]]

    def login_posts(self) -> list[dict]:
        return [entry for entry in self.log if entry["listener"] == "login" and entry["method"] == "POST"]

    def foreign(self) -> list[dict]:
        return self.listener("foreign")

    def listener(self, name: str) -> list[dict]:
        return [entry for entry in self.log if entry["listener"] == name]

    def discovery_gets(self) -> list[dict]:
        return [entry for entry in self.log if entry["listener"] == "login" and entry["method"] == "GET"]

    def tls_failures(self) -> list[dict]:
        return [entry for entry in self.log if entry.get("fault") == "tls-handshake"]

    def secret_elsewhere(self) -> list[dict]:
        """Requests that carried the client secret to anything but the login listener."""
        return [entry for entry in self.log if entry.get("secret_received") and entry["listener"] != "login"]

    def after(self, entries: list[dict], entry: dict) -> list[dict]:
        return [other for other in entries if other["seq"] > entry["seq"]]

    def state(self, offer: str) -> dict:
        return self.ctl.call("GET", f"/offers/{self.publisher}/{offer}")

    @staticmethod
    def gaps(entries: list[dict]) -> list[float]:
        return [round(later["time"] - earlier["time"], 3) for earlier, later in zip(entries, entries[1:])]

    @staticmethod
    def statuses(entries: list[dict]) -> list[t.Any]:
        return [entry["status"] for entry in entries]

    def summary(self) -> list[dict]:
        keys = ("seq", "time", "listener", "method", "host", "path", "status", "auth", "offer", "fault", "secret_received")
        return [{key: entry.get(key) for key in keys} for entry in self.log]


CHECKS: dict[str, t.Callable[[Case], None]] = {}


def check(name: str) -> t.Callable[[t.Callable[[Case], None]], t.Callable[[Case], None]]:
    def register(function: t.Callable[[Case], None]) -> t.Callable[[Case], None]:
        CHECKS[name] = function
        return function

    return register


def common(case: Case, allow_expired: bool = False) -> None:
    """Every case: the token only ever went to the api listeners, valid (or just expired); nothing on the foreign one."""
    allowed = {"valid", "expired"} if allow_expired else {"valid"}
    bad_auth = [entry["seq"] for entry in case.api() if entry["auth"] not in allowed]
    case.expect(not bad_auth, f"API requests with auth outside {sorted(allowed)}: seq {bad_auth}")
    case.expect(not case.foreign(), f"the foreign listener got {len(case.foreign())} request(s)")
    case.expect(not case.listener("proxy"), f"the proxy listener got {len(case.listener('proxy'))} request(s)")
    case.expect(not case.secret_elsewhere(), f"the client secret went to {[entry['listener'] for entry in case.secret_elsewhere()]}")
    for entry in case.login_posts():
        body = entry.get("body") or {}
        case.expect(body.get("grant_type") == "client_credentials", f"token request {entry['seq']} is not client_credentials: {body}")
        case.expect(body.get("client_id") == case.emu["client_id"], f"token request {entry['seq']} has another client_id")
    case.expect(case.token_requests == len(case.login_posts()), f"token_requests {case.token_requests} != login POSTs {len(case.login_posts())}")


def one_retried_post(case: Case, offer: str, first_status: t.Any, min_gap: float) -> None:
    """Two POSTs, the first one faulted, and the operation read in between (the answer was lost: look before repeating).

    Only a lower bound on the gap (a Retry-After or the backoff was honoured): a busy machine makes gaps longer, never
    shorter, so an upper bound would only measure the machine.
    """
    posts = case.posts(offer)
    if case.expect(len(posts) == 2, f"{offer}: expected 2 cancel POSTs, got {case.statuses(posts)}"):
        case.expect(case.statuses(posts) == [first_status, 200], f"{offer}: POST statuses {case.statuses(posts)}, expected [{first_status}, 200]")
        between = [entry for entry in case.api(offer) if posts[0]["seq"] < entry["seq"] < posts[1]["seq"]]
        reads = [(entry["method"], "/operations/" in entry["path"]) for entry in between]
        seen = [(entry["method"], entry["path"]) for entry in between]
        case.expect(reads == [("GET", True)], f"{offer}: between the POSTs came {seen}, expected one read of the operation")
        gap = case.gaps(posts)[0]
        case.expect(min_gap <= gap, f"{offer}: {gap} s between the POSTs, expected at least {min_gap}")
        case.note(f"{offer}: POSTs {case.statuses(posts)} {gap}s apart, the operation read in between")


def tolerated_poll_fault(case: Case, offer: str, fault: str, status: t.Any) -> None:
    """One faulted poll, then polling went on (after wait_sleep) until the operation was canceled."""
    posts = case.posts(offer)
    case.expect(case.statuses(posts) == [202], f"{offer}: cancel POSTs {case.statuses(posts)}, expected [202]")
    polls = case.after_post(case.operation_gets(offer), offer)
    if not case.expect(len(polls) >= 2, f"{offer}: expected at least 2 polls, got {case.statuses(polls)}"):
        return
    case.expect(
        polls[0]["fault"] == fault and polls[0]["status"] == status, f"{offer}: first poll {polls[0]['status']}/{polls[0]['fault']}, expected {status}/{fault}"
    )
    case.expect(polls[-1]["status"] == 200 and polls[-1]["fault"] is None, f"{offer}: last poll {polls[-1]['status']}/{polls[-1]['fault']}")
    gap = case.gaps(polls)[0]
    # wait_sleep is 1: a failed poll is not retried at once (polls use retries=0)
    case.expect(gap >= 0.95, f"{offer}: next poll {gap} s after the faulted one, expected >= wait_sleep (1 s)")
    case.expect(case.state(offer)["status"] == "canceled", f"{offer}: emulator state {case.state(offer)['status']}")
    case.note(f"{offer}: polls {case.statuses(polls)}")


# ----------------------------------------------------------------------------------------------------
# The cases (names as in runme.sh)


@check("retry_429_post")
def _retry_429_post(case: Case) -> None:
    common(case)
    # Retry-After: 2 honoured
    one_retried_post(case, "flt-429", 429, 1.95)
    case.expect(case.posts("flt-429")[0]["fault"] == "status", "the first POST was not the injected 429")
    case.expect(case.token_requests == 1, f"{case.token_requests} token requests, expected 1")


@check("retry_5xx_post")
def _retry_5xx_post(case: Case) -> None:
    common(case)
    for status in (500, 502, 503, 504):
        # backoff: at least half of 0.5 s
        one_retried_post(case, f"flt-post-{status}", status, 0.2)
    case.expect(case.token_requests == 1, f"{case.token_requests} token requests, expected 1 (token cache)")


@check("retry_5xx_poll")
def _retry_5xx_poll(case: Case) -> None:
    common(case)
    for status in (500, 502, 503, 504):
        tolerated_poll_fault(case, f"flt-poll-{status}", "status", status)


@check("connection_reset")
def _connection_reset(case: Case) -> None:
    common(case)
    one_retried_post(case, "flt-reset-post", None, 0.2)
    case.expect(case.posts("flt-reset-post")[0]["fault"] == "reset", "the first POST was not the injected reset")
    tolerated_poll_fault(case, "flt-reset-poll", "reset", None)


@check("timeout_list_retried")
def _timeout_list_retried(case: Case) -> None:
    common(case)
    lists = case.lists("flt-slow-list")
    if case.expect(len(lists) == 2, f"expected 2 list requests (1 timed out, 1 retry), got {case.statuses(lists)}"):
        case.expect(lists[0]["fault"] == "delay" and lists[1]["fault"] is None, f"list faults {[entry['fault'] for entry in lists]}")
        gap = case.gaps(lists)[0]
        # a second request at all proves the client gave up on the first (its answer would have been a 200);
        # not before the timeout (1 s)
        case.expect(1.0 <= gap, f"{gap} s between the list requests, expected at least the timeout (1 s)")
        case.note(f"list retried {gap}s after the slow one")
    case.expect(case.statuses(case.posts("flt-slow-list")) == [200], f"POSTs {case.statuses(case.posts('flt-slow-list'))}, expected [200]")


@check("timeout_list_persistent")
def _timeout_list_persistent(case: Case) -> None:
    common(case)
    lists = case.lists("flt-slow-list-always")
    case.expect(len(lists) == 2, f"retries 1: expected 2 list requests, got {len(lists)}")
    case.expect(all(entry["fault"] == "delay" for entry in lists), "every list request should have hit the delay")
    case.expect(not case.posts("flt-slow-list-always"), "a cancel POST was sent although the list never answered in time")
    case.expect(len(case.api("flt-slow-list-always")) == 2, f"API requests {[entry['path'] for entry in case.api('flt-slow-list-always')]}")


@check("malformed_json")
def _malformed_json(case: Case) -> None:
    common(case)
    api = case.api("flt-malformed-list")
    case.expect(
        len(api) == 1 and api[0]["fault"] == "malformed", f"malformed list: API requests {[(e['path'], e['fault']) for e in api]}, expected the one list"
    )
    case.expect(not case.posts("flt-malformed-list"), "malformed list: a cancel POST was sent")
    tolerated_poll_fault(case, "flt-malformed-poll", "malformed", 200)


@check("no_location")
def _no_location(case: Case) -> None:
    common(case)
    offer = "flt-noloc"
    case.expect(case.statuses(case.posts(offer)) == [202], f"POSTs {case.statuses(case.posts(offer))}")
    after = case.after_post(case.api(offer), offer)
    list_polls = [entry for entry in after if "/submissions" in entry["path"]]
    case.expect(len(list_polls) >= 2, f"expected the submissions list to be polled at least twice, got {len(list_polls)}")
    # the list is polled until the submission stops running; only then one read of the final operation
    operation_reads = [entry for entry in after if "/operations/" in entry["path"]]
    case.expect(len(operation_reads) <= 1, f"{len(operation_reads)} operation reads after the POST, expected at most the final one")
    if operation_reads and list_polls:
        case.expect(operation_reads[0]["seq"] > list_polls[-1]["seq"], "the operation was read before the list said the submission ended")
    case.expect(case.state(offer)["status"] == "canceled", f"emulator state {case.state(offer)['status']}")
    case.note(f"{len(list_polls)} list polls, {len(operation_reads)} final operation read")


@check("foreign_location")
def _foreign_location(case: Case) -> None:
    common(case)  # includes: the foreign listener received nothing at all
    offer = "flt-foreign"
    case.expect(case.statuses(case.posts(offer)) == [202], f"POSTs {case.statuses(case.posts(offer))}")
    after = case.after_post(case.api(offer), offer)
    list_polls = [entry for entry in after if "/submissions" in entry["path"]]
    case.expect(len(list_polls) >= 1, "no fallback to the submissions list after the refused location")
    case.expect(all(entry["listener"] == "api" for entry in case.api(offer)), "a request left the api listener")
    case.expect(case.state(offer)["status"] == "canceled", f"emulator state {case.state(offer)['status']}")
    with_auth = [entry for entry in case.foreign() if entry["auth"] != "none"]
    case.note(f"foreign listener: {len(case.foreign())} request(s), {len(with_auth)} with Authorization; {len(list_polls)} list polls")


def _refreshed_401s(case: Case) -> list[dict]:
    """Each 401 must be followed by exactly one token request and then the same request, accepted."""
    rejected = [entry for entry in case.api() if entry["status"] == 401]
    for entry in rejected:
        case.expect(entry["auth"] == "expired", f"seq {entry['seq']}: 401 with auth {entry['auth']}, expected an expired token")
        later = [other for other in case.log if other["seq"] > entry["seq"]]
        logins = []
        retry = None
        for other in later:
            if other["listener"] == "login" and other["method"] == "POST":
                logins.append(other)
            elif other["listener"] in ("api", "api_http"):
                retry = other
                break
        case.expect(len(logins) == 1, f"seq {entry['seq']}: {len(logins)} token requests between the 401 and the next API request, expected 1")
        if case.expect(retry is not None, f"seq {entry['seq']}: nothing was sent after the 401"):
            case.expect(
                retry["path"] == entry["path"] and retry["method"] == entry["method"] and retry["auth"] == "valid",
                f"seq {entry['seq']}: after the refresh came {retry['method']} {retry['path']} auth={retry['auth']}, "
                "expected the same request with a valid token",
            )
    return rejected


@check("token_expiry_refresh")
def _token_expiry_refresh(case: Case) -> None:
    common(case, allow_expired=True)
    offer = "flt-expiry"
    case.expect(case.statuses(case.posts(offer)) in ([202], [401, 202]), f"POSTs {case.statuses(case.posts(offer))}")
    rejected = _refreshed_401s(case)
    case.expect(len(rejected) >= 1, "no request was rejected with an expired token: the case did not test the refresh")
    case.expect(case.token_requests == 1 + len(rejected), f"{case.token_requests} token requests for {len(rejected)} 401(s), expected {1 + len(rejected)}")
    polls = case.after_post(case.operation_gets(offer), offer)
    case.expect(bool(polls) and polls[-1]["status"] == 200, "the wait did not end with an accepted poll")
    case.expect(case.state(offer)["status"] == "canceled", f"emulator state {case.state(offer)['status']}")
    case.note(f"{len(rejected)} poll(s) got 401 (expired), {case.token_requests} token requests in all, {len(polls)} polls")


@check("token_expiry_given")
def _token_expiry_given(case: Case) -> None:
    common(case, allow_expired=True)
    offer = "flt-expiry-given"
    case.expect(case.token_requests == 0, f"{case.token_requests} token requests with a given access_token, expected 0")
    api = case.api(offer)
    rejected = [entry for entry in api if entry["status"] == 401]
    if case.expect(len(rejected) == 1, f"expected exactly one 401 (then a clean failure), got {len(rejected)}"):
        case.expect(rejected[0]["auth"] == "expired", f"the 401 had auth {rejected[0]['auth']}")
        case.expect(rejected[0]["seq"] == api[-1]["seq"], "requests were sent after the 401 with a token that cannot be renewed")
    posts = case.posts(offer)
    case.expect(case.statuses(posts) == [202], f"POSTs {case.statuses(posts)}: the token expired before the cancel was sent (slow start?)")
    polls = case.after_post(case.operation_gets(offer), offer)
    case.note(f"{len(polls)} polls, the last one {polls[-1]['status'] if polls else None}; 0 token requests")


@check("terminal_other")
def _terminal_other(case: Case) -> None:
    common(case)
    for final in ("completed", "failed"):
        offer = f"flt-end-{final}"
        case.expect(case.statuses(case.posts(offer)) == [202], f"{offer}: POSTs {case.statuses(case.posts(offer))}")
        case.expect(case.state(offer)["status"] == final, f"{offer}: emulator state {case.state(offer)['status']}")


@check("wait_timeout")
def _wait_timeout(case: Case) -> None:
    common(case)
    offer = "flt-wait-timeout"
    posts = case.posts(offer)
    case.expect(case.statuses(posts) == [202], f"POSTs {case.statuses(posts)}")
    polls = case.after_post(case.operation_gets(offer), offer)
    # counts only: at least one poll, and no more than a 2 s wait with wait_sleep 1 allows (a busy machine polls less)
    case.expect(1 <= len(polls) <= 3, f"{len(polls)} polls in a 2 s wait with wait_sleep 1, expected 1..3")
    case.expect(not case.after(case.posts(offer), polls[-1]) if polls else True, "a cancel POST was sent while waiting")
    case.note(f"{len(polls)} polls")
    case.expect(case.state(offer)["status"] == "running", f"emulator state {case.state(offer)['status']}")


@check("forks")
def _forks(case: Case) -> None:
    common(case)
    offer = "flt-forks"
    posts = case.posts(offer)
    case.expect(1 <= len(posts) <= 5, f"{len(posts)} cancel POSTs from 5 forks")
    state = case.state(offer)
    case.expect(state["status"] == "canceled", f"emulator state {state['status']}")
    case.expect(case.token_requests == 1, f"5 forks with one shared token cache requested {case.token_requests} tokens, expected 1")
    results = case.result or {}
    changed = sorted(host for host, result in results.items() if result.get("changed"))
    case.expect(len(results) == 5, f"results of {len(results)} hosts, expected 5")
    case.expect(not [host for host, result in results.items() if result.get("failed")], "a fork failed")
    case.note(f"{case.token_requests} token request(s); {len(posts)} cancel POST(s) {case.statuses(posts)}; changed on {len(changed)} of 5 hosts")


def _token_reuse(case: Case, expected: int) -> None:
    common(case)
    offers = [f"flt-reuse-{index}" for index in range(10)]
    tasks = [offer for offer in offers if case.api(offer)]
    case.expect(len(tasks) == 10, f"only {len(tasks)} of the 10 offers were asked")
    case.expect(case.token_requests == expected, f"10 tasks requested {case.token_requests} tokens, expected {expected}")
    case.note(f"{case.token_requests} token request(s) for 10 tasks")


@check("token_reuse_cache")
def _token_reuse_cache(case: Case) -> None:
    _token_reuse(case, 1)


@check("token_reuse_nocache")
def _token_reuse_nocache(case: Case) -> None:
    _token_reuse(case, 10)


@check("bad_input")
def _bad_input(case: Case) -> None:
    case.expect(not case.log, f"bad input reached the network: {len(case.log)} request(s) in the emulator log")
    case.expect(case.token_requests == 0, f"{case.token_requests} token requests")


# ----------------------------------------------------------------------------------------------------
# Issue 7 ("Trust"): one case per review finding that crosses a process or the network. Counts, order and
# log entries only, never seconds.


def _all_on(case: Case, offer: str, listener: str) -> list[dict]:
    api = case.api(offer)
    listeners = sorted({entry["listener"] for entry in api})
    case.expect(bool(api), f"{offer}: no API request reached the emulator")
    case.expect(listeners in ([], [listener]), f"{offer}: API requests on {listeners}, expected only {listener}")
    return api


@check("proxy_loopback_token")
def _proxy_loopback_token(case: Case) -> None:
    # M1: HTTP_PROXY / http_proxy / ALL_PROXY point at the proxy listener, api_url is plain http on 127.0.0.1
    common(case)  # includes: the proxy listener received nothing
    offer = "flt-proxy-token"
    _all_on(case, offer, "api_http")
    case.expect(case.statuses(case.posts(offer)) == [200], f"POSTs {case.statuses(case.posts(offer))}, expected [200]")
    case.expect(case.token_requests == 0, f"{case.token_requests} token requests with a given access_token")
    case.note(f"{len(case.api(offer))} API requests on api_http, none through the proxy")


@check("proxy_loopback")
def _proxy_loopback(case: Case) -> None:
    # M1 with client credentials: api_url http://localhost:P (not in NO_PROXY); the authority (127.0.0.1) is in NO_PROXY
    common(case)
    offer = "flt-proxy"
    api = _all_on(case, offer, "api_http")
    hosts = sorted({(entry["host"] or "").rsplit(":", 1)[0] for entry in api})
    case.expect(hosts == ["localhost"], f"API requests addressed {hosts}, expected localhost")
    case.expect(case.statuses(case.posts(offer)) == [200], f"POSTs {case.statuses(case.posts(offer))}, expected [200]")
    case.expect(case.token_requests == 1, f"{case.token_requests} token requests, expected 1")


def _redirect_refused(case: Case, target: str, discovery: bool) -> None:
    # L1: a redirect from the authority is never followed: nothing reaches the target, the secret least of all
    common(case)  # includes: the foreign listener got nothing, the secret went nowhere but to login
    case.expect(not case.listener(target), f"the redirect target ({target}) got {len(case.listener(target))} request(s)")
    case.expect(not case.api(), f"{len(case.api())} API request(s) without a token")
    redirected = case.discovery_gets() if discovery else case.login_posts()
    what = "discovery GETs" if discovery else "token POSTs"
    if case.expect(len(redirected) == 1, f"{len(redirected)} {what}, expected exactly 1 (a redirect is not retried)"):
        case.expect(redirected[0]["fault"] == "redirect", f"the login request was answered {redirected[0]['status']}/{redirected[0]['fault']}")
    if discovery:
        case.expect(case.token_requests == 0, f"{case.token_requests} token requests after a redirected discovery")


@check("redirect_token_foreign")
def _redirect_token_foreign(case: Case) -> None:
    _redirect_refused(case, "foreign", discovery=False)


@check("redirect_token_http")
def _redirect_token_http(case: Case) -> None:
    _redirect_refused(case, "api_http", discovery=False)


@check("redirect_discovery")
def _redirect_discovery(case: Case) -> None:
    _redirect_refused(case, "foreign", discovery=True)


@check("discovery_503_once")
def _discovery_503_once(case: Case) -> None:
    # maintainer 1.2: OpenID discovery is inside the retry loop
    common(case)
    gets = case.discovery_gets()
    seen = [(entry["status"], entry["fault"]) for entry in gets]
    case.expect(seen == [(503, "status"), (200, None)], f"discovery GETs {seen}, expected [(503, 'status'), (200, None)]")
    case.expect(case.statuses(case.login_posts()) == [200], f"token POSTs {case.statuses(case.login_posts())}, expected [200]")
    if gets and case.login_posts():
        case.expect(case.login_posts()[0]["seq"] > gets[-1]["seq"], "the token was requested before discovery succeeded")
    case.expect(case.statuses(case.posts("flt-discovery")) == [200], f"POSTs {case.statuses(case.posts('flt-discovery'))}")


@check("tls_wrong_ca")
def _tls_wrong_ca(case: Case) -> None:
    # a TLS error is not transient: one attempt, then a clear failure
    failures = case.tls_failures()
    case.expect(len(failures) == 1, f"{len(failures)} aborted TLS handshakes, expected exactly 1 (not retried)")
    case.expect([entry["listener"] for entry in failures] == ["login"], f"TLS failures on {[entry['listener'] for entry in failures]}")
    case.expect(len(case.log) == len(failures), f"{len(case.log) - len(failures)} other request(s) reached the emulator")
    case.expect(case.token_requests == 0, f"{case.token_requests} token requests")


def _lost_answer(case: Case, offer: str, fault: str, ended: bool) -> None:
    # maintainer 1.3, contract lost-answer row: the POST is not repeated once the operation shows the cancel
    posts = case.posts(offer)
    if not case.expect(len(posts) == 1, f"{offer}: {len(posts)} cancel POSTs {case.statuses(posts)}, expected exactly 1"):
        return
    case.expect(posts[0]["fault"] == fault, f"{offer}: the POST got fault {posts[0]['fault']}, expected {fault}")
    later = case.after(case.api(offer), posts[0])
    if case.expect(bool(later), f"{offer}: nothing was read after the lost answer"):
        first = later[0]
        case.expect(first["method"] == "GET" and "/operations/" in first["path"], f"{offer}: after the POST came {first['method']} {first['path']}")
    state = case.state(offer)
    if ended:
        case.expect(state["status"] == "canceled", f"{offer}: emulator state {state['status']}, expected canceled")
    else:
        case.expect(state["cancellationRequestState"] == "cancelRequested", f"{offer}: emulator state {state['cancellationRequestState']}")
    case.note(f"{offer}: 1 POST ({fault}), then {len(later)} read(s)")


@check("lost_answer")
def _lost_answer_case(case: Case) -> None:
    common(case)
    _lost_answer(case, "flt-lost-reset", "applied-reset", ended=False)
    _lost_answer(case, "flt-lost-502", "applied-status", ended=False)
    _lost_answer(case, "flt-lost-timeout", "delay", ended=False)
    _lost_answer(case, "flt-lost-wait", "applied-reset", ended=True)


@check("trickle_list")
def _trickle_list(case: Case) -> None:
    # L9: a body trickled one byte every 0.5 s does not stretch timeout: 2
    common(case)
    faults = [entry["fault"] for entry in case.lists("flt-trickle-list")]
    case.expect(faults == ["trickle"], f"list requests {faults}, expected one trickled (retries 0)")
    case.expect(not case.posts("flt-trickle-list"), "a cancel POST was sent although the list never arrived")


@check("trickle_token")
def _trickle_token(case: Case) -> None:
    common(case)
    faults = [entry["fault"] for entry in case.login_posts()]
    case.expect(faults == ["trickle"], f"token POSTs {faults}, expected one trickled (retries 0)")
    case.expect(not case.api(), f"{len(case.api())} API request(s) without a token")


@check("huge_list")
def _huge_list(case: Case) -> None:
    # L9: bodies are capped (8 MiB); a 20 MiB answer is a clear, non-retried failure
    common(case)
    faults = [entry["fault"] for entry in case.lists("flt-huge-list")]
    case.expect(faults == ["huge"], f"list requests {faults}, expected exactly one (not retried)")
    case.expect(not case.posts("flt-huge-list"), "a cancel POST was sent after an unreadable list")


@check("storm_401")
def _storm_401(case: Case) -> None:
    # I9: every API request answers 401 whatever the token: at most one fresh token per task
    common(case)
    api = case.api("flt-storm")
    case.expect(bool(api) and set(case.statuses(api)) == {401}, f"API statuses {case.statuses(api)}, expected only 401")
    case.expect(case.token_requests <= 2, f"{case.token_requests} token requests for one task, expected at most 2")
    case.expect(not case.posts("flt-storm"), "a cancel POST got through the storm")
    case.note(f"{len(api)} API request(s), all 401; {case.token_requests} token request(s)")


@check("storm_401_alternate")
def _storm_401_alternate(case: Case) -> None:
    # I9: every other request answers 401; the old client got a new token for each, one per poll
    common(case)
    api = case.api("flt-storm-alt")
    rejected = [entry for entry in api if entry["status"] == 401]
    case.expect(len(rejected) >= 2, f"only {len(rejected)} request(s) rejected: the case did not repeat the 401")
    case.expect(case.token_requests <= 2, f"{case.token_requests} token requests for one task, expected at most 2")
    for entry in rejected[1:]:
        later_tokens = case.after(case.login_posts(), entry)
        case.expect(not later_tokens, f"seq {entry['seq']}: {len(later_tokens)} token request(s) after a repeated 401")
    case.note(f"{len(rejected)} of {len(api)} API requests rejected; {case.token_requests} token request(s)")


@check("refused_state")
def _refused_state(case: Case) -> None:
    # maintainer 1.5: a refused cancellation state fails at once, without waiting; an under-way one is waited for
    common(case)
    case.expect(not case.posts("flt-refused"), f"{len(case.posts('flt-refused'))} cancel POSTs to a refusing operation")
    reads = case.operation_gets("flt-refused")
    case.expect(len(reads) <= 1, f"{len(reads)} operation reads: it polled (waited) although the state refuses the cancel")
    case.expect(len(case.api("flt-refused")) <= 2, f"{len(case.api('flt-refused'))} API requests, expected the list and one read")
    case.expect(case.state("flt-refused")["status"] == "running", "the refusing operation changed")
    case.expect(not case.posts("flt-underway"), f"{len(case.posts('flt-underway'))} cancel POSTs while a cancellation was under way")
    case.expect(len(case.operation_gets("flt-underway")) >= 2, "the under-way operation was not waited for")
    case.expect(case.state("flt-underway")["status"] == "canceled", f"under-way: emulator state {case.state('flt-underway')['status']}")


@check("access_token_newline")
def _access_token_newline(case: Case) -> None:
    # L3: surrounding whitespace is stripped; the token works
    common(case)
    case.expect(case.token_requests == 0, f"{case.token_requests} token requests with a given access_token")
    case.expect(case.statuses(case.posts("flt-token-nl")) == [200], f"POSTs {case.statuses(case.posts('flt-token-nl'))}, expected [200]")


@check("access_token_space")
def _access_token_space(case: Case) -> None:
    # L3: whitespace inside the token: refused before any request
    case.expect(not case.log, f"{len(case.log)} request(s) reached the emulator with an unusable access_token")
    case.expect(case.token_requests == 0, f"{case.token_requests} token requests")


def _one_token(case: Case) -> None:
    """The cache cases: the task worked with one token request (the file system is checked by runme.sh)."""
    common(case)
    case.expect(case.token_requests == 1, f"{case.token_requests} token requests, expected 1")
    case.expect(case.statuses(case.posts("flt-cache")) == [200], f"POSTs {case.statuses(case.posts('flt-cache'))}, expected [200]")


for _name in ("cache_sticky", "cache_symlink", "cache_fifo", "cache_no_home", "cache_passwd_home", "cache_novalidate"):
    check(_name)(_one_token)


# ----------------------------------------------------------------------------------------------------


def run_check(emu: dict, ctl: Control, args: argparse.Namespace) -> int:
    result = None
    if args.result:
        with open(args.result, encoding="utf-8") as handle:
            result = json.load(handle)
    case = Case(emu, ctl, args.since, args.tokens_before, result)
    CHECKS[args.case](case)
    if case.problems:
        print(f"case {args.case}: EMULATOR EXPECTATIONS FAILED:\n  " + "\n  ".join(case.problems), file=sys.stderr)
        print(json.dumps(case.summary(), indent=1), file=sys.stderr)
        return 1
    api = case.api()
    first = f", the first {case.log[0]['time'] - args.started:.1f} s after the start" if case.log and args.started else ""
    print(f"case {args.case}: emulator saw {len(api)} API request(s), {case.token_requests} token request(s), {len(case.foreign())} foreign{first}")
    for line in case.notes:
        print(f"  {line}")
    return 0


def check_fragments(secret: str, files: list[str], width: int = 20) -> int:
    """Fail when any `width`-character piece of `secret` appears in a file; never print the secret."""
    pieces = {secret[index : index + width] for index in range(0, max(0, len(secret) - width) + 1)}
    pieces = {piece for piece in pieces if len(piece) == width and not piece.isspace()}
    if not pieces:
        print("check-fragments: FRAGMENT_SECRET is empty or too short", file=sys.stderr)
        return 2
    failures = 0
    for name in files:
        with open(name, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        found = sorted(text.index(piece) for piece in pieces if piece in text)
        if found:
            failures += 1
            print(f"LEAK: {len(found)} piece(s) of the secret appear in {name}, the first at line {text.count(chr(10), 0, found[0]) + 1}", file=sys.stderr)
    if failures:
        return 1
    print(f"no fragment: {len(pieces)} pieces of {width} characters checked in {len(files)} file(s)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    sub = parser.add_subparsers(dest="command", required=True)
    p_settings = sub.add_parser("settings")
    p_settings.add_argument("settings")
    p_token = sub.add_parser("token")
    p_token.add_argument("expires_in", type=int)
    p_token.add_argument("--max-uses", type=int, default=0)
    sub.add_parser("token-requests")
    p_delete = sub.add_parser("delete-offer")
    p_delete.add_argument("offer")
    p_ca = sub.add_parser("ca")
    p_ca.add_argument("file")
    p_fragments = sub.add_parser("check-fragments")
    p_fragments.add_argument("files", nargs="+")
    p_check = sub.add_parser("check")
    p_check.add_argument("case", choices=sorted(CHECKS))
    p_check.add_argument("--since", type=int, required=True)
    p_check.add_argument("--tokens-before", type=int, required=True)
    p_check.add_argument("--result")
    p_check.add_argument("--started", type=float, help="time.monotonic() when ansible-playbook was started")
    args = parser.parse_args()

    emu = load_config(args.config)
    ctl = Control(emu)
    if args.command == "settings":
        print(json.dumps(ctl.call("PUT", "/settings", json.loads(args.settings))))
        return 0
    if args.command == "token":
        print(ctl.call("POST", "/tokens", {"expires_in": args.expires_in, "max_uses": args.max_uses})["access_token"])
        return 0
    if args.command == "token-requests":
        print(int(ctl.call("GET", "/tokens")["token_requests"]))
        return 0
    if args.command == "delete-offer":
        print(json.dumps(ctl.call("DELETE", f"/offers/{emu['publisher_id']}/{args.offer}")))
        return 0
    if args.command == "ca":
        import trustme  # a test requirement, like the emulator's

        trustme.CA().cert_pem.write_to_path(args.file)
        return 0
    if args.command == "check-fragments":
        return check_fragments(os.environ.get("FRAGMENT_SECRET", ""), args.files)
    return run_check(emu, ctl, args)


if __name__ == "__main__":
    sys.exit(main())
