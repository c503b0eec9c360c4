# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
import requests

from ansible_collections.azure_marketplace.cloudpartner.plugins.modules import cloudpartner_operation_wait as module

PUB = "contoso"
OPS = {"offer-a": "aaaaaaaa-1111-4222-8333-444455556666", "offer-b": "bbbbbbbb-1111-4222-8333-444455556666"}
A, B = sorted(OPS)
TOKEN = "tok-WAIT-5e4d3c2b1a"


def args(*targets, **extra):
    values = {"publisher_id": PUB, "operations": list(targets), "access_token": TOKEN}
    values.update(extra)
    return values


def target(offer, **extra):
    return dict({"offer_id": offer, "operation_id": OPS[offer]}, **extra)


def path(offer):
    return ("GET", f"/api/publishers/{PUB}/offers/{offer}/operations/{OPS[offer]}")


def answer(fakes, offer, status="canceled"):
    return fakes.response(200, {"id": OPS[offer], "status": status, "cancellationRequestState": "cancelRequested"})


def assert_rounds_then_ended(run):
    assert run.rc == 0
    assert run.result["changed"] is False
    assert run.result["msg"] == "All 2 operations ended: 2 cancelled."
    assert run.session.sent == [path(A), path(B), path(B)]
    assert run.session.methods == ["GET"] * 3
    assert [(item["offer_id"], item["operation_id"], item["ended"], item["status"]) for item in run.result["operations"]] == [
        (A, OPS[A], True, "canceled"),
        (B, OPS[B], True, "canceled"),
    ]
    assert run.result["elapsed"] == 4
    assert run.clock.sleeps == [4]
    assert not run.warnings
    assert TOKEN not in run.output


@pytest.mark.parametrize("check_mode", [False, True])
def test_waits_for_every_operation(fakes, run_module, check_mode):
    run = run_module(
        module.main,
        args(target(A), target(B), wait_sleep=4, _ansible_check_mode=check_mode),
        answer(fakes, A),
        answer(fakes, B, "running"),
        answer(fakes, B),
    )
    # check mode reads exactly the same: the module never changes anything
    assert_rounds_then_ended(run)
    assert all(call.headers["Authorization"] == f"Bearer {TOKEN}" for call in run.session.calls)
    assert run.result["invocation"]["module_args"]["access_token"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def test_no_operation_sends_nothing(fakes, run_module):
    run = run_module(module.main, args(), fakes.response(200, {}))
    assert run.rc == 0
    assert run.result["changed"] is False
    assert run.result["operations"] == []
    assert not run.session.calls


def test_location_is_polled(fakes, run_module):
    location = "/api/operations/contoso$offer-a$2$preview"
    run = run_module(module.main, args(target(A, location=location)), answer(fakes, A))
    assert run.rc == 0
    assert [call.url for call in run.session.calls] == [f"https://cloudpartner.azure.com{location}?api-version=2017-10-31"]


BAD_INPUT = [
    ({"publisher_id": "a/b"}, "publisher_id"),
    ({"operations": [target(A), {"offer_id": B, "operation_id": "a/b"}]}, "operations[1].operation_id"),
    ({"operations": [{"offer_id": "vm offer", "operation_id": OPS[A]}]}, "operations[0].offer_id"),
    ({"operations": [{"offer_id": A}]}, "operation_id"),
    ({"operations": [target(A, extra=1)]}, "extra"),
    ({"operations": [target(A), target(B, location="https://evil.example/api/operations/x")]}, "origin"),
    ({"operations": [target(A, location="https://evil.example\\@cloudpartner.azure.com/api/operations/x")]}, "origin"),
    ({"wait_timeout": 0}, "wait_timeout"),
    ({"wait_sleep": 0}, "wait_sleep"),
    ({"api_url": "http://cloudpartner.example.com"}, "api_url"),
]


def test_bad_input_fails_with_no_request(fakes, run_module):
    problems = []
    for extra, word in BAD_INPUT:
        run = run_module(module.main, dict(args(target(A), target(B)), **extra), answer(fakes, A), answer(fakes, B))
        if run.rc != 1 or run.result.get("failed") is not True:
            problems.append((extra, "did not fail", run.result))
        elif word not in run.result["msg"]:
            problems.append((extra, f"msg does not name {word}", run.result["msg"]))
        elif run.session.calls:
            problems.append((extra, "sent requests", run.session.sent))
        elif run.result.get("changed", False) is not False:
            problems.append((extra, "changed", run.result))
        assert TOKEN not in run.output
    assert not problems


def test_one_operation_not_found_fails_the_task_after_the_others(fakes, run_module):
    run = run_module(
        module.main,
        args(target(A), target(B)),
        fakes.api_error(404, "NotFound", "No such operation."),
        answer(fakes, B, "running"),
        answer(fakes, B),
    )
    assert run.rc == 1
    assert run.result["failed"] is True
    assert run.result["changed"] is False
    assert run.result["msg"].startswith(f"Could not read 1 of 2 operations ({A}): ")
    assert "HTTP 404" in run.result["msg"]
    assert run.session.sent == [path(A), path(B), path(B)]
    first, second = run.result["operations"]
    assert first["failed"] is True and "NotFound" in first["msg"]
    assert second["status"] == "canceled"


def test_timeout_fails_with_what_is_known(fakes, run_module):
    run = run_module(
        module.main,
        args(target(A), target(B), wait_timeout=15, wait_sleep=10),
        answer(fakes, A),
        answer(fakes, B, "running"),
        fakes.api_error(503),
    )
    assert run.rc == 1
    assert run.result["changed"] is False
    assert run.result["msg"] == f"Timed out after 15 seconds waiting for 1 operation to end; last status: {B} (running)."
    # rounds at 0 and 10, the last one when 5 s are left (its request gets those 5 s)
    assert run.session.sent == [path(A), path(B), path(B)]
    assert [call.timeout for call in run.session.calls] == [15, 15, 5]
    assert run.result["elapsed"] == 10
    assert run.clock.elapsed == 10
    first, second = run.result["operations"]
    assert first["ended"] is True
    assert second["ended"] is False and second["status"] == "running" and "HTTP 503" in second["last_error"]


def test_end_other_than_cancelled_warns_but_succeeds(fakes, run_module):
    run = run_module(module.main, args(target(A), target(B)), answer(fakes, A, "completed"), answer(fakes, B))
    assert run.rc == 0
    assert "failed" not in run.result
    assert run.result["msg"] == "All 2 operations ended: 1 cancelled, 1 succeeded."
    assert len(run.warnings) == 1
    assert OPS[A] in run.warnings[0] and "'completed'" in run.warnings[0] and "not cancelled" in run.warnings[0]


def slow(clock, seconds, item):
    """A server that answers after ``seconds``: a request given less time than that times out, as requests would."""

    def respond(call):
        if call.timeout <= seconds:
            clock.advance(call.timeout)
            raise requests.exceptions.ReadTimeout("Read timed out.")
        clock.advance(seconds)
        return item

    return respond


def test_wait_timeout_is_a_hard_limit_with_a_slow_service(fakes, run_module, fake_clock):
    # Security section 6 / L9: N operations x timeout used to be added to wait_timeout in one round.
    operations = [{"offer_id": f"offer-{index}", "operation_id": f"{index:08d}-1111-4222-8333-444455556666"} for index in range(6)]
    script = [slow(fake_clock, 25, fakes.response(200, {"status": "running"})) for _request in range(20)]
    run = run_module(module.main, dict(args(), operations=operations, wait_timeout=60, wait_sleep=10, timeout=30), *script)
    assert run.rc == 1
    assert "Timed out after 60 seconds" in run.result["msg"]
    assert run.clock.elapsed == 60
    assert run.result["elapsed"] == 60
    # the first round reaches only three operations: 25 + 25 + the 10 seconds left
    assert [call.timeout for call in run.session.calls] == [30, 30, 10]
