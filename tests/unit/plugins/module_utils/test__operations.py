# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cancel_offer_operation against a real CloudPartnerClient over a scripted session, row by row of the contract."""

from __future__ import annotations

import pytest
import requests

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _http
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _operations as ops
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._errors import (
    ApiError,
    CloudPartnerError,
    ResponseFormatError,
    ValidationError,
    WaitTimeoutError,
)

PUB, OFFER = "contoso", "contoso-vm"
OP = "5a63deb5-925b-4ee0-938b-7c86fbf287c5"
OTHER = "0d4f7a00-1111-4222-8333-444455556666"
BASE = f"/api/publishers/{PUB}/offers/{OFFER}"
LIST = ("GET", f"{BASE}/submissions/")
GET_OP = ("GET", f"{BASE}/operations/{OP}")
POST = ("POST", f"{BASE}/cancel")
API = "https://cloudpartner.azure.com"
LOCATION = f"{BASE}/operations/{OP}?api-version=2017-10-31"


def submission(op_id=OP, state="running", **extra):
    return dict({"id": op_id, "offerId": OFFER, "publisherId": PUB, "submissionType": "publish", "submissionState": state}, **extra)


def operation(status="running", crs="canCancel", op_id=OP):
    return {"id": op_id, "status": status, "cancellationRequestState": crs, "submissionType": "publish", "steps": []}


def request(**params):
    values = {"publisher_id": PUB, "offer_id": OFFER, "wait": False, "wait_timeout": 900, "wait_sleep": 10}
    values.update(params)
    return ops.CancelRequest.from_params(values)


class Warnings(list):
    def __call__(self, message):
        self.append(message)


@pytest.fixture
def run(fakes, make_client):
    """run(script, check_mode=False, **params) -> (result, session, warnings)."""

    def runner(*script, check_mode=False, **params):
        session = fakes.Session(*script)
        warnings = Warnings()
        result = ops.cancel_offer_operation(make_client(session), request(**params), check_mode, warnings)
        return result, session, warnings

    return runner


def running_list(fakes, *extra):
    return fakes.response(200, [submission(), *extra])


def backoff(attempt):
    """The client's backoff for ``attempt`` with the fixed jitter of ``make_client``."""
    return _http.backoff_delay(attempt, lambda: 0.5)


def at(clock, times, item):
    """A script item that notes the fake time at which its request was made."""

    def answer(_call):
        times.append(clock.now)
        return item

    return answer


def slow(clock, seconds, item):
    """A server that answers after ``seconds``: a request given less time than that times out, as requests would."""

    def answer(call):
        if call.timeout <= seconds:
            clock.advance(call.timeout)
            raise requests.exceptions.ReadTimeout("Read timed out.")
        clock.advance(seconds)
        return item

    return answer


def only_api_origin(session):
    hosts = {call.connect_host for call in session.calls}
    assert hosts <= {"cloudpartner.azure.com"}, hosts
    return True


# ---------------------------------------------------------------- CancelRequest


def test_cancel_request_body_joins_emails():
    assert request().body is None
    assert request(notification_emails=[]).body is None
    assert request(notification_emails=["a@x.com", "b@y.org"]).body == {"metadata": {"notification-emails": "a@x.com,b@y.org"}}


def test_cancel_request_normalises_operation_id():
    assert request(operation_id=OP.upper()).operation_id == OP


@pytest.mark.parametrize(
    "params, option",
    [
        ({"publisher_id": "a/b"}, "publisher_id"),
        ({"offer_id": ".."}, "offer_id"),
        ({"operation_id": "latest"}, "operation_id"),
        ({"notification_emails": ["ok@x.com", "a,b@x.com"]}, "notification_emails"),
        ({"wait_timeout": 0}, "wait_timeout"),
        ({"wait_sleep": -1}, "wait_sleep"),
    ],
)
def test_cancel_request_rejects(params, option):
    with pytest.raises(ValidationError, match=option):
        request(**params)


# ---------------------------------------------------------------- nothing to cancel


def test_nothing_running(fakes, run):
    result, session, warnings = run(fakes.response(200, []))
    assert result["changed"] is False
    assert "nothing to cancel" in result["msg"] or "No operation is in progress" in result["msg"]
    assert "status_code" not in result
    assert "operation_id" not in result
    assert session.sent == [LIST]
    assert session.calls[0].query == {"api-version": "2017-10-31", "status": "running"}
    assert not warnings


def test_status_filter_is_also_applied_client_side(fakes, run):
    # the service ignored the filter and listed finished submissions
    result, session, _warnings = run(fakes.response(200, [submission(state="completed"), submission(OTHER, state="canceled")]))
    assert result["changed"] is False
    assert session.sent == [LIST]


def test_operation_id_not_the_running_one(fakes, run):
    result, session, _warnings = run(running_list(fakes), operation_id=OTHER)
    assert result["changed"] is False
    assert OTHER in result["msg"] and OP in result["msg"]
    assert result["operation"]["id"] == OP
    # the operation in progress the task looked at, not the one asked for
    assert result["operation_id"] == OP
    assert "status_code" not in result
    assert session.sent == [LIST]


def test_operation_id_given_but_nothing_runs(fakes, run):
    result, session, _warnings = run(fakes.response(200, []), operation_id=OP)
    assert result["changed"] is False
    assert session.sent == [LIST]


def test_operation_id_matches_in_any_case(fakes, run):
    result, session, _warnings = run(
        fakes.response(200, [submission(OP.upper())]), fakes.response(200, operation(op_id=OP.upper())), fakes.response(200), operation_id=OP
    )
    assert result["changed"] is True
    assert result["operation_id"] == OP.upper()  # as the service spells it
    assert session.methods == ["GET", "GET", "POST"]


@pytest.mark.parametrize("state", ["cancelRequested", "CancelRequested", "cancelling", "canceling", "cancellationInProgress", "Cancel_In_Progress"])
def test_already_cancelling_sends_nothing(fakes, run, state):
    result, session, _warnings = run(running_list(fakes), fakes.response(200, operation(crs=state)))
    assert result["changed"] is False
    assert "already" in result["msg"]
    assert state in result["msg"]
    assert result["operation"]["cancellationRequestState"] == state
    assert result["operation_id"] == OP
    assert "status_code" not in result
    assert session.sent == [LIST, GET_OP]


def test_already_cancelling_with_wait_waits_for_the_end(fakes, run, fake_clock):
    result, session, warnings = run(
        running_list(fakes),
        fakes.response(200, operation(crs="cancelRequested")),
        fakes.response(200, operation(crs="cancelRequested")),
        fakes.response(200, operation(status="canceled", crs="cancelRequested")),
        wait=True,
        wait_sleep=5,
    )
    assert result["changed"] is False
    assert "POST" not in session.methods
    assert session.sent == [LIST, GET_OP, GET_OP, GET_OP]
    assert result["operation"]["status"] == "canceled"
    assert "cancelled" in result["msg"]
    assert result["elapsed"] == 5
    assert fake_clock.sleeps == [5]
    assert not warnings


@pytest.mark.parametrize("state", ["cannotCancel", "notCancellable", "CannotCancel", "somethingNew", False])
@pytest.mark.parametrize("wait", [False, True])
def test_refused_cancellation_state_fails_without_post_or_wait(fakes, run, fake_clock, state, wait):
    # Review 1.5: a state that is neither canCancel nor a known "under way" word was reported ok ("under way or refused")
    # and, with wait, the task waited for the publish to end.
    with pytest.raises(CloudPartnerError) as info:
        run(running_list(fakes), fakes.response(200, operation(crs=state)), wait=wait)
    error = info.value
    assert type(error) is CloudPartnerError  # pylint: disable=unidiomatic-typecheck
    assert "does not allow cancelling" in error.message and "now" in error.message
    assert repr(state) in error.message and OP in error.message
    assert error.result["changed"] is False
    assert error.result["operation_id"] == OP
    assert error.result["operation"]["cancellationRequestState"] == state
    assert "status_code" not in error.result
    assert not fake_clock.sleeps


def test_refused_cancellation_state_sends_no_post(fakes, make_client):
    session = fakes.Session(running_list(fakes), fakes.response(200, operation(crs="cannotCancel")), fakes.response(202))
    with pytest.raises(CloudPartnerError):
        ops.cancel_offer_operation(make_client(session), request(wait=True), False, Warnings())
    assert session.sent == [LIST, GET_OP]


def test_refused_cancellation_state_fails_in_check_mode_too(fakes, run):
    # check mode reports what a real run would do: it would fail
    with pytest.raises(CloudPartnerError, match="does not allow cancelling"):
        run(running_list(fakes), fakes.response(200, operation(crs="cannotCancel")), check_mode=True)


@pytest.mark.parametrize("absent", [{}, {"cancellationRequestState": None}, {"cancellationRequestState": ""}])
def test_absent_cancellation_state_counts_as_can_cancel(fakes, run, absent):
    body = {key: value for key, value in operation().items() if key != "cancellationRequestState"}
    body.update(absent)
    result, session, _warnings = run(running_list(fakes), fakes.response(200, body), fakes.response(200))
    assert result["changed"] is True and result["status_code"] == 200
    assert session.sent == [LIST, GET_OP, POST]


def test_already_cancelling_in_check_mode_does_not_wait(fakes, run):
    result, session, _warnings = run(running_list(fakes), fakes.response(200, operation(crs="cancelRequested")), check_mode=True, wait=True)
    assert result["changed"] is False
    assert session.sent == [LIST, GET_OP]


@pytest.mark.parametrize("state", ["notStarted", "waitingForPublisherReview", "someNewState"])
def test_not_terminal_submission_counts_as_in_progress(fakes, run, state):
    # Review 1.4: one policy with the wait loops; only running/inProgress used to count, so these were "nothing to cancel".
    result, session, _warnings = run(fakes.response(200, [submission(state=state)]), fakes.response(200, operation()), fakes.response(202))
    assert result["changed"] is True
    assert result["operation_id"] == OP
    assert session.sent == [LIST, GET_OP, POST]


@pytest.mark.parametrize("state", ["", None, "completed", "Canceled", "failed"])
def test_empty_or_terminal_submission_is_not_in_progress(fakes, run, state):
    result, session, _warnings = run(fakes.response(200, [submission(state=state)]))
    assert result["changed"] is False
    assert session.sent == [LIST]


# ---------------------------------------------------------------- check mode


def test_check_mode_sends_no_post(fakes, run):
    result, session, _warnings = run(running_list(fakes), fakes.response(200, operation()), check_mode=True, wait=True, notification_emails=["a@x.com"])
    assert result["changed"] is True
    assert OP in result["msg"]
    assert result["operation"]["id"] == OP
    assert result["operation_id"] == OP
    assert "status_code" not in result
    assert "POST" not in session.methods
    assert session.sent == [LIST, GET_OP]


# ---------------------------------------------------------------- the cancel request


def test_cancel_200(fakes, run):
    result, session, warnings = run(running_list(fakes), fakes.response(200, operation()), fakes.response(200))
    assert result["changed"] is True
    assert result["status_code"] == 200
    assert result["operation_id"] == OP
    assert "Cancelled" in result["msg"]
    assert "operation_location" not in result
    assert session.sent == [LIST, GET_OP, POST]
    post = session.calls[2]
    assert post.query == {"api-version": "2017-10-31"}
    assert post.data is None
    assert post.headers["Authorization"] == f"Bearer {fakes.TOKEN}"
    assert not warnings


def test_cancel_200_with_wait_reads_the_operation_again(fakes, run):
    result, session, _warnings = run(
        running_list(fakes), fakes.response(200, operation()), fakes.response(200), fakes.response(200, operation(status="canceled")), wait=True
    )
    assert result["status_code"] == 200
    assert result["operation"]["status"] == "canceled"
    assert session.sent == [LIST, GET_OP, POST, GET_OP]


def test_cancel_body_with_emails(fakes, run):
    _result, session, _warnings = run(running_list(fakes), fakes.response(200, operation()), fakes.response(200), notification_emails=["a@x.com", "b@y.org"])
    post = session.calls[2]
    assert post.json == {"metadata": {"notification-emails": "a@x.com,b@y.org"}}
    assert post.headers["Content-Type"] == "application/json"


def test_cancel_202_relative_location(fakes, run):
    result, session, warnings = run(running_list(fakes), fakes.response(200, operation()), fakes.response(202, headers={"Location": LOCATION}))
    assert result["changed"] is True
    assert result["status_code"] == 202
    assert result["operation_id"] == OP
    assert result["operation_location"] == f"{API}{LOCATION}"
    assert "202" in result["msg"]
    assert session.sent == [LIST, GET_OP, POST]
    assert not warnings


def test_cancel_202_operation_location_without_api_version(fakes, run):
    result, _session, _warnings = run(
        running_list(fakes), fakes.response(200, operation()), fakes.response(202, headers={"operation-location": f"{API}{BASE}/operations/{OP}"})
    )
    assert result["operation_location"] == f"{API}{BASE}/operations/{OP}?api-version=2017-10-31"


def test_cancel_202_wait_polls_location_until_cancelled(fakes, run, fake_clock):
    result, session, warnings = run(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.response(202, headers={"Location": "/api/operations/contoso$contoso-vm$2$preview"}),
        fakes.response(200, operation(crs="cancelRequested")),
        fakes.response(200, [operation(crs="cancelRequested")]),
        fakes.response(200, operation(status="Canceled", crs="cancelRequested")),
        wait=True,
        wait_sleep=3,
    )
    assert result["changed"] is True
    assert result["status_code"] == 202
    assert result["operation"]["status"] == "Canceled"
    assert "cancelled" in result["msg"]
    assert result["elapsed"] == 6
    assert fake_clock.sleeps == [3, 3]
    polls = session.calls[3:]
    assert [call.url for call in polls] == [f"{API}/api/operations/contoso$contoso-vm$2$preview?api-version=2017-10-31"] * 3
    assert all(call.headers["Authorization"] == f"Bearer {fakes.TOKEN}" for call in polls)
    assert not warnings
    assert only_api_origin(session)


def test_cancel_202_poll_tolerates_a_transient_failure(fakes, run, fake_clock):
    result, session, _warnings = run(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.response(202, headers={"Location": LOCATION}),
        fakes.api_error(503),
        requests.exceptions.ConnectionError("reset"),
        fakes.response(200, text="<html>"),
        fakes.response(200, operation(status="canceled")),
        wait=True,
    )
    assert "cancelled" in result["msg"]
    # polls are not retried by the client (retries=0): each failure is one poll
    assert len(session.calls) == 3 + 4
    assert fake_clock.sleeps == [10, 10, 10]


@pytest.mark.parametrize("final", ["completed", "failed", "Succeeded"])
def test_cancel_202_other_terminal_state_warns(fakes, run, final):
    result, _session, warnings = run(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.response(202, headers={"Location": LOCATION}),
        fakes.response(200, operation(status=final)),
        wait=True,
    )
    assert result["changed"] is True
    assert "failed" not in result or result["failed"] is False
    assert final in result["msg"]
    assert "instead of being cancelled" in result["msg"]
    assert len(warnings) == 1 and final in warnings[0]


def test_cancel_202_without_location_polls_the_submissions_list_then_reads_the_end(fakes, run, fake_clock):
    final = operation(status="canceled", crs="cancelRequested")
    result, session, warnings = run(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.response(202),
        fakes.response(200, [submission()]),
        fakes.response(200, [submission(state="canceled"), submission(OTHER, state="completed")]),
        fakes.response(200, final),
        wait=True,
    )
    assert result["changed"] is True
    assert result["status_code"] == 202
    assert result["operation_id"] == OP
    assert "operation_location" not in result
    # the list only says the submission stopped running: ONE final read of the operation says how it ended
    assert session.sent == [LIST, GET_OP, POST, LIST, LIST, GET_OP]
    assert session.calls[-1].query == {"api-version": "2017-10-31"}
    assert result["operation"] == final
    assert "cancelled" in result["msg"]
    # the wait reads the whole list, not only running submissions
    assert "status" not in session.calls[3].query
    assert len(warnings) == 1 and "submissions list" in warnings[0]
    assert fake_clock.sleeps == [10]
    assert result["elapsed"] == 10


def test_cancel_202_without_location_no_wait(fakes, run):
    result, session, warnings = run(running_list(fakes), fakes.response(200, operation()), fakes.response(202))
    assert result["status_code"] == 202
    assert result["operation_id"] == OP
    assert "operation_location" not in result
    assert session.sent == [LIST, GET_OP, POST]
    assert not warnings


def test_cancel_202_submission_gone_from_list_ends_the_wait(fakes, run):
    final = operation(status="canceled", crs="cancelRequested")
    result, session, _warnings = run(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.response(202),
        fakes.response(200, [submission(OTHER, state="completed")]),
        fakes.response(200, [final]),
        wait=True,
    )
    assert result["changed"] is True
    assert session.sent == [LIST, GET_OP, POST, LIST, GET_OP]
    assert result["operation"] == final
    assert "is cancelled" in result["msg"]
    assert "None" not in result["msg"]


def test_cancel_202_final_read_decides_how_it_ended(fakes, run):
    # the list says canceled, the operation itself says failed: the operation wins
    result, session, warnings = run(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.response(202),
        fakes.response(200, [submission(state="canceled")]),
        fakes.response(200, operation(status="failed", crs="cancelRequested")),
        wait=True,
    )
    assert session.sent == [LIST, GET_OP, POST, LIST, GET_OP]
    assert result["operation"]["status"] == "failed"
    assert "'failed' instead of being cancelled" in result["msg"]
    assert any("'failed'" in warning for warning in warnings)


def test_cancel_202_final_read_failure_falls_back_to_the_list_entry(fakes, run):
    entry = submission(state="canceled")
    result, session, warnings = run(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.response(202),
        fakes.response(200, [entry]),
        fakes.api_error(404, "NotFound", "No such operation."),
        wait=True,
    )
    assert result["changed"] is True
    assert result["status_code"] == 202
    assert session.sent == [LIST, GET_OP, POST, LIST, GET_OP]
    assert result["operation"] == entry
    assert "is cancelled" in result["msg"]
    assert any("Could not read the final state" in warning and OP in warning and "HTTP 404" in warning for warning in warnings)


def test_cancel_202_gone_from_list_and_unreadable_is_not_reported_as_status_none(fakes, run):
    # Regression: once "ended with status None instead of being cancelled" (and a warning saying so).
    result, session, warnings = run(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.response(202),
        fakes.response(200, [submission(OTHER, state="completed")]),
        fakes.response(200, text="<html>oops</html>"),
        wait=True,
    )
    assert session.sent == [LIST, GET_OP, POST, LIST, GET_OP]
    assert result["changed"] is True
    assert "final status is unknown" in result["msg"]
    assert "None" not in result["msg"]
    assert not [warning for warning in warnings if "None" in warning]
    assert any("Could not read the final state" in warning for warning in warnings)


@pytest.mark.parametrize(
    "headers",
    [
        {"Location": f"https://evil.example{BASE}/operations/{OP}"},
        {"Operation-Location": f"https://cloudpartner.azure.com:8443{BASE}/operations/{OP}"},
        {"Location": f"http://cloudpartner.azure.com{BASE}/operations/{OP}"},
        # urlsplit sees cloudpartner.azure.com, requests would connect to evil.example
        {"Location": f"https://evil.example\\@cloudpartner.azure.com{BASE}/operations/{OP}"},
        {"Location": f"https://cloudpartner.azure.com:abc{BASE}/operations/{OP}"},
    ],
    ids=["other-host", "other-port", "http", "backslash", "bad-port"],
)
def test_cancel_202_unsafe_location_is_not_polled(fakes, run, headers):
    final = operation(status="canceled", crs="cancelRequested")
    result, session, warnings = run(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.response(202, headers=headers),
        fakes.response(200, [submission(state="canceled")]),
        fakes.response(200, final),
        wait=True,
    )
    assert result["changed"] is True
    assert result["status_code"] == 202
    assert result["operation_id"] == OP
    # A refused location is not handed back: nothing should poll it with the token.
    assert "operation_location" not in result
    assert result["operation"] == final
    assert len(warnings) == 1 and "operation location" in warnings[0]
    assert session.sent == [LIST, GET_OP, POST, LIST, GET_OP]
    assert only_api_origin(session)


def test_cancel_202_foreign_location_without_wait(fakes, run):
    result, session, warnings = run(
        running_list(fakes), fakes.response(200, operation()), fakes.response(202, headers={"Location": f"https://evil.example{BASE}/operations/{OP}"})
    )
    assert result["changed"] is True
    assert len(warnings) == 1
    assert session.sent == [LIST, GET_OP, POST]


@pytest.mark.parametrize("value", [f"https://cloudpartner.azure.com:abc{BASE}/x", f"https://cloudpartner.azure.com:99999{BASE}/x", "https://[cloudpartner/x"])
def test_cancel_202_malformed_location_still_reports_the_cancel(fakes, run, value):
    # Regression: a bare ValueError once escaped after the POST (traceback, `changed` lost).
    result, session, warnings = run(running_list(fakes), fakes.response(200, operation()), fakes.response(202, headers={"Location": value}))
    assert session.sent == [LIST, GET_OP, POST]
    assert result["changed"] is True
    assert result["status_code"] == 202
    assert "operation_location" not in result
    assert len(warnings) == 1 and "operation location" in warnings[0]


# ---------------------------------------------------------------- waiting runs out


def test_wait_timeout_reports_what_is_known(fakes, run, fake_clock):
    running = operation(crs="cancelRequested")
    with pytest.raises(WaitTimeoutError) as info:
        run(
            running_list(fakes),
            fakes.response(200, operation()),
            fakes.response(202, headers={"Location": LOCATION}),
            *[fakes.response(200, running) for _attempt in range(4)],
            wait=True,
            wait_timeout=30,
            wait_sleep=10,
        )
    error = info.value
    assert error.result["changed"] is True
    assert error.result["status_code"] == 202
    assert error.result["operation_location"] == f"{API}{LOCATION}"
    assert error.result["operation"] == running
    assert error.result["operation_id"] == OP
    # polls at 0, 10, 20 and 25, the last one with 5 s left: the wait ends there, not at the deadline
    assert error.result["elapsed"] == 25
    assert "msg" not in error.result
    assert "30 seconds" in error.message
    assert "running" in error.message
    assert OP in error.message
    assert fake_clock.elapsed == 25


def test_wait_timeout_after_failed_polls_names_the_last_error(fakes, run):
    with pytest.raises(WaitTimeoutError) as info:
        run(
            running_list(fakes),
            fakes.response(200, operation()),
            fakes.response(202, headers={"Location": LOCATION}),
            fakes.response(200, operation(crs="cancelRequested")),
            fakes.api_error(503, "Unavailable", "Try later."),
            wait=True,
            wait_timeout=15,
            wait_sleep=10,
        )
    assert "HTTP 503" in info.value.message
    assert info.value.result["changed"] is True
    assert info.value.result["operation"]["cancellationRequestState"] == "cancelRequested"


def test_wait_timeout_on_submissions_list(fakes, make_client, fake_clock):
    session = fakes.Session(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.response(202),
        fakes.response(200, [submission()]),
        fakes.response(200, [submission()]),
        fakes.response(200, [submission()]),
    )
    with pytest.raises(WaitTimeoutError) as info:
        ops.cancel_offer_operation(make_client(session), request(wait=True, wait_timeout=10, wait_sleep=10), False, Warnings())
    assert info.value.result["changed"] is True
    assert info.value.result["status_code"] == 202
    assert info.value.result["operation"]["submissionState"] == "running"
    assert "running" in info.value.message
    # wait_timeout 10: polls at 0 and 5 (the final window is half the timeout); none at the deadline,
    # and no final read of the operation after the last poll
    assert session.sent == [LIST, GET_OP, POST, LIST, LIST]
    assert [call.timeout for call in session.calls[3:]] == [10, 5]
    assert fake_clock.elapsed == 5


def test_wait_timeout_when_already_cancelling_is_not_changed(fakes, run):
    with pytest.raises(WaitTimeoutError) as info:
        run(
            running_list(fakes),
            fakes.response(200, operation(crs="cancelRequested")),
            fakes.response(200, operation(crs="cancelRequested")),
            fakes.response(200, operation(crs="cancelRequested")),
            wait=True,
            wait_timeout=10,
            wait_sleep=10,
        )
    assert info.value.result["changed"] is False
    assert "status_code" not in info.value.result


def test_single_wait_request_timeouts_follow_the_deadline(fakes, make_client, fake_clock):
    # Review 1.6 / security L9: each poll gets min(timeout, time left), so the wait cannot overrun wait_timeout.
    session = fakes.Session(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.response(202, headers={"Location": LOCATION}),
        *[fakes.response(200, operation(crs="cancelRequested")) for _poll in range(3)],
    )
    with pytest.raises(WaitTimeoutError):
        ops.cancel_offer_operation(make_client(session, timeout=30), request(wait=True, wait_timeout=25, wait_sleep=10), False, Warnings())
    polls = session.calls[3:]
    # polls at 0, 10 and 20: the last one starts when 5 s are left and its request gets those 5 s
    assert [call.timeout for call in polls] == [25, 15, 5]
    assert fake_clock.elapsed == 20


@pytest.mark.parametrize("location", [{"Location": LOCATION}, {}], ids=["location", "submissions-list"])
def test_single_wait_slow_service_cannot_overrun_the_deadline(fakes, make_client, fake_clock, location):
    # A poll that takes longer than the time left is cut at the deadline (the old code gave it the whole timeout).
    session = fakes.Session(running_list(fakes), fakes.response(200, operation()), fakes.response(202, headers=location))
    session.add(*[slow(fake_clock, 100, fakes.response(200, [submission()])) for _poll in range(5)])
    with pytest.raises(WaitTimeoutError) as info:
        ops.cancel_offer_operation(make_client(session, timeout=30), request(wait=True, wait_timeout=20, wait_sleep=10), False, Warnings())
    assert fake_clock.elapsed == 20
    assert len(session.calls) == 4
    assert session.calls[3].timeout == 20
    assert "Timed out after 20 seconds" in info.value.message
    assert info.value.result["changed"] is True


def test_retry_after_on_polls_beats_wait_sleep(fakes, run, fake_clock):
    # Contract: "wait_sleep: seconds between polls when the service sends no Retry-After; a larger Retry-After wins",
    # also for Retry-After sent with a successful poll answer (not only with errors).
    run(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.response(202, headers={"Location": LOCATION}),
        fakes.response(200, operation(crs="cancelRequested"), headers={"Retry-After": "30"}),
        fakes.response(200, operation(crs="cancelRequested"), headers={"Retry-After": "30"}),
        fakes.response(200, operation(status="canceled")),
        wait=True,
        wait_sleep=10,
    )
    assert fake_clock.sleeps == [30, 30]


def test_retry_after_on_submission_list_polls(fakes, run, fake_clock):
    run(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.response(202),
        fakes.response(200, [submission()], headers={"retry-after": "25"}),
        fakes.response(200, [submission(state="canceled")]),
        fakes.response(200, operation(status="canceled")),
        wait=True,
        wait_sleep=10,
    )
    assert fake_clock.sleeps == [25]


# ---------------------------------------------------------------- the cancel's answer was lost (review 1.3)

LOST_ANSWERS = {
    "reset": lambda fakes: requests.exceptions.ConnectionError("Connection reset by peer"),
    "timeout": lambda fakes: requests.exceptions.ReadTimeout("Read timed out."),
    "429": lambda fakes: fakes.api_error(429, "TooManyRequests", "Slow down."),
    "500": lambda fakes: fakes.api_error(500, "InternalError", "Oops."),
    "502": lambda fakes: fakes.api_error(502, "BadGateway", "Upstream went away."),
    "503": lambda fakes: fakes.api_error(503, "Unavailable", "Try later."),
    "504": lambda fakes: fakes.api_error(504, "GatewayTimeout", "Upstream too slow."),
}


@pytest.mark.parametrize("lost", sorted(LOST_ANSWERS))
def test_lost_answer_then_cancellation_under_way_is_success_and_not_repeated(fakes, run, fake_clock, lost):
    times = []
    result, session, warnings = run(
        running_list(fakes),
        fakes.response(200, operation()),
        LOST_ANSWERS[lost](fakes),
        at(fake_clock, times, fakes.response(200, operation(crs="cancelRequested"))),
        fakes.response(200),
    )
    assert result["changed"] is True
    assert "failed" not in result
    assert "received although its answer was lost" in result["msg"]
    assert "not sent again" in result["msg"]
    # no answer arrived, so there is no status code to report
    assert "status_code" not in result
    assert "operation_location" not in result
    assert result["operation"]["cancellationRequestState"] == "cancelRequested"
    assert result["operation_id"] == OP
    # one POST (no automatic retry by the client), then one read after a backoff
    assert session.sent == [LIST, GET_OP, POST, GET_OP]
    assert fake_clock.sleeps == [backoff(0)]
    assert times == [fake_clock.start + backoff(0)]
    assert not warnings


@pytest.mark.parametrize("lost", ["reset", "503"])
def test_lost_answer_then_operation_ended_is_success(fakes, run, lost):
    result, session, warnings = run(
        running_list(fakes),
        fakes.response(200, operation()),
        LOST_ANSWERS[lost](fakes),
        fakes.response(200, operation(status="canceled", crs="canCancel")),
        wait=True,
    )
    assert result["changed"] is True
    assert "status_code" not in result
    assert "received although its answer was lost" in result["msg"]
    assert f"Operation {OP} is cancelled." in result["msg"]
    # it has ended already: nothing to wait for
    assert session.sent == [LIST, GET_OP, POST, GET_OP]
    assert "elapsed" not in result
    assert not warnings


def test_lost_answer_then_operation_ended_otherwise_warns(fakes, run):
    result, session, warnings = run(
        running_list(fakes), fakes.response(200, operation()), fakes.api_error(503), fakes.response(200, operation(status="completed"))
    )
    assert result["changed"] is True
    assert "'completed' instead of being cancelled" in result["msg"]
    assert len(warnings) == 1
    assert session.methods.count("POST") == 1


def test_lost_answer_with_wait_polls_the_operation_until_it_ends(fakes, run, fake_clock):
    result, session, warnings = run(
        running_list(fakes),
        fakes.response(200, operation()),
        requests.exceptions.ConnectionError("Connection reset by peer"),
        fakes.response(200, operation(crs="cancelRequested")),
        fakes.response(200, operation(crs="cancelRequested")),
        fakes.response(200, operation(status="canceled", crs="cancelRequested")),
        wait=True,
        wait_sleep=5,
    )
    assert result["changed"] is True
    assert "status_code" not in result and "operation_location" not in result
    assert session.sent == [LIST, GET_OP, POST, GET_OP, GET_OP, GET_OP]
    assert session.calls[-1].query == {"api-version": "2017-10-31"}
    assert result["operation"]["status"] == "canceled"
    assert "received although its answer was lost" in result["msg"] and "is cancelled" in result["msg"]
    assert result["elapsed"] == 5
    assert fake_clock.sleeps == [backoff(0), 5]
    assert not warnings


def test_lost_answer_then_wait_timeout_still_reports_the_change(fakes, run):
    with pytest.raises(WaitTimeoutError) as info:
        run(
            running_list(fakes),
            fakes.response(200, operation()),
            fakes.api_error(502),
            fakes.response(200, operation(crs="cancelRequested")),
            # the wait: polls at 0 and 5, the final window of a 10 s wait
            fakes.response(200, operation(crs="cancelRequested")),
            fakes.response(200, operation(crs="cancelRequested")),
            wait=True,
            wait_timeout=10,
            wait_sleep=10,
        )
    assert info.value.result["changed"] is True
    assert info.value.result["operation_id"] == OP
    assert "status_code" not in info.value.result


@pytest.mark.parametrize("answer, extra", [(200, {}), (202, {"Location": LOCATION})])
def test_lost_answer_not_shown_repeats_the_post(fakes, make_client, fake_clock, answer, extra):
    session = fakes.Session(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.api_error(503),
        fakes.response(200, operation()),
        fakes.response(answer, headers=extra),
    )
    result = ops.cancel_offer_operation(make_client(session, retries=5), request(), False, Warnings())
    assert session.sent == [LIST, GET_OP, POST, GET_OP, POST]
    assert result["changed"] is True
    # this time an answer arrived
    assert result["status_code"] == answer
    assert "lost" not in result["msg"]
    assert fake_clock.sleeps == [backoff(0)]


@pytest.mark.parametrize("retries", [0, 2])
def test_lost_answers_repeat_the_post_at_most_retries_times(fakes, make_client, fake_clock, retries):
    script = [running_list(fakes), fakes.response(200, operation())]
    for attempt in range(retries + 1):
        script += [requests.exceptions.ConnectionError("reset") if attempt % 2 else fakes.api_error(503), fakes.response(200, operation())]
    session = fakes.Session(*script, fakes.response(200))
    with pytest.raises(ApiError) as info:
        ops.cancel_offer_operation(make_client(session, retries=retries), request(), False, Warnings())
    assert session.sent == [LIST, GET_OP] + [POST, GET_OP] * (retries + 1)
    assert fake_clock.sleeps == [backoff(attempt) for attempt in range(retries + 1)]
    assert info.value.status == 503
    assert info.value.result.get("changed") is not True
    assert info.value.result["operation_id"] == OP
    sent = f"{retries + 1} cancel requests were sent" if retries else "1 cancel request was sent"
    assert f"{sent}; the operation read afterwards did not show a cancellation." in info.value.message


def test_lost_answer_honours_retry_after(fakes, run, fake_clock):
    result, _session, _warnings = run(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.api_error(429, headers={"Retry-After": "7"}),
        fakes.response(200, operation(crs="cancelRequested")),
    )
    assert result["changed"] is True
    assert fake_clock.sleeps == [7]


@pytest.mark.parametrize("status", [400, 404, 409])
def test_4xx_to_a_repeated_post_rereads_and_succeeds_when_the_cancel_shows(fakes, run, fake_clock, status):
    # The first POST arrived but its answer was lost; the repeat meets "nothing to cancel". The task must not fail.
    result, session, warnings = run(
        running_list(fakes),
        fakes.response(200, operation()),
        requests.exceptions.ConnectionError("reset"),
        fakes.response(200, operation()),
        fakes.api_error(status, "NoOperationToCancel", "Nothing to cancel."),
        fakes.response(200, operation(crs="cancelRequested")),
    )
    assert result["changed"] is True
    assert "status_code" not in result
    assert "received although its answer was lost" in result["msg"]
    assert session.sent == [LIST, GET_OP, POST, GET_OP, POST, GET_OP]
    # no backoff before the last read: the service answered
    assert fake_clock.sleeps == [backoff(0)]
    assert not warnings


def test_4xx_to_a_repeated_post_fails_when_the_cancel_does_not_show(fakes, run):
    with pytest.raises(ApiError) as info:
        run(
            running_list(fakes),
            fakes.response(200, operation()),
            fakes.api_error(500),
            fakes.response(200, operation()),
            fakes.api_error(409, "Conflict", "Not now."),
            fakes.response(200, operation()),
            fakes.response(200),
        )
    assert info.value.status == 409
    assert info.value.result["status_code"] == 409
    assert info.value.result.get("changed") is not True
    assert "2 cancel requests were sent" in info.value.message


def test_4xx_to_a_repeated_post_rereads_only_once(fakes, make_client):
    session = fakes.Session(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.api_error(503),
        fakes.response(200, operation()),
        fakes.api_error(400),
        fakes.response(200, operation()),
        fakes.response(200),
    )
    with pytest.raises(ApiError):
        ops.cancel_offer_operation(make_client(session, retries=5), request(), False, Warnings())
    assert session.sent == [LIST, GET_OP, POST, GET_OP, POST, GET_OP]


@pytest.mark.parametrize("status", [400, 403, 404, 409])
def test_4xx_to_the_first_post_fails_without_reread(fakes, make_client, fake_clock, status):
    session = fakes.Session(
        running_list(fakes), fakes.response(200, operation()), fakes.api_error(status), fakes.response(200, operation(crs="cancelRequested"))
    )
    with pytest.raises(ApiError) as info:
        ops.cancel_offer_operation(make_client(session, retries=5), request(), False, Warnings())
    assert session.sent == [LIST, GET_OP, POST]
    assert info.value.result["status_code"] == status
    assert not fake_clock.sleeps


def test_tls_error_on_the_post_is_not_a_lost_answer(fakes, make_client, fake_clock):
    session = fakes.Session(
        running_list(fakes), fakes.response(200, operation()), requests.exceptions.SSLError("certificate verify failed"), fakes.response(200, operation())
    )
    with pytest.raises(CloudPartnerError, match="TLS"):
        ops.cancel_offer_operation(make_client(session, retries=5), request(), False, Warnings())
    assert session.sent == [LIST, GET_OP, POST]
    assert not fake_clock.sleeps


def test_unreadable_operation_after_a_lost_answer_counts_as_not_received(fakes, make_client):
    session = fakes.Session(
        running_list(fakes), fakes.response(200, operation()), fakes.api_error(503, "Unavailable", "Try later."), fakes.api_error(404, "NotFound", "Gone.")
    )
    with pytest.raises(ApiError) as info:
        ops.cancel_offer_operation(make_client(session, retries=0), request(), False, Warnings())
    # the POST's own error is reported, not the read's
    assert info.value.status == 503
    assert "NotFound" not in info.value.message
    assert session.sent == [LIST, GET_OP, POST, GET_OP]


# ---------------------------------------------------------------- failures


def test_post_error_reports_status_code(fakes, run):
    with pytest.raises(ApiError) as info:
        run(running_list(fakes), fakes.response(200, operation()), fakes.api_error(403, "Forbidden", "Not allowed."))
    assert info.value.result.get("status_code") == 403
    assert info.value.result["operation_id"] == OP
    assert "changed" not in info.value.result
    assert "service principal" in info.value.message
    assert "Forbidden" in info.value.message


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_read_error_fails_before_any_post(fakes, make_client, status):
    session = fakes.Session(fakes.api_error(status, "Code", "Message."))
    with pytest.raises(ApiError) as info:
        ops.cancel_offer_operation(make_client(session, tokens=fakes.Tokens(can_refresh=False)), request(), False, Warnings())
    assert session.sent == [LIST]
    assert f"HTTP {status}" in info.value.message
    assert "status_code" not in info.value.result
    assert "changed" not in info.value.result
    assert "operation_id" not in info.value.result


def test_post_is_not_retried_on_400(fakes, make_client):
    session = fakes.Session(running_list(fakes), fakes.response(200, operation()), fakes.api_error(400), fakes.response(200))
    with pytest.raises(ApiError):
        ops.cancel_offer_operation(make_client(session, retries=5), request(), False, Warnings())
    assert session.sent == [LIST, GET_OP, POST]


def test_poll_error_after_cancel_keeps_the_cancel_status(fakes, run):
    with pytest.raises(ApiError) as info:
        run(
            running_list(fakes),
            fakes.response(200, operation()),
            fakes.response(202, headers={"Location": LOCATION}),
            fakes.api_error(404, "NotFound", "No such operation."),
            wait=True,
        )
    assert info.value.result["changed"] is True
    assert info.value.result["status_code"] == 202
    assert info.value.result["operation_location"] == f"{API}{LOCATION}"
    assert "HTTP 404" in info.value.message


@pytest.mark.parametrize(
    "body",
    [{"not": "a list"}, None, "text"],
)
def test_submissions_not_a_list(fakes, run, body):
    with pytest.raises(ResponseFormatError, match="not a JSON array"):
        run(fakes.response(200, body))


def test_running_submission_without_id(fakes, run):
    with pytest.raises(ResponseFormatError, match="no id"):
        run(fakes.response(200, [{"submissionState": "running"}]))


@pytest.mark.parametrize("bad_id", ["../../../other", "x/y", "a b", "x?y=1", ".."])
def test_running_submission_with_unsafe_id_is_not_used_in_a_path(fakes, run, bad_id):
    # Review 1.7: the id comes from the service, so it is a malformed answer, not a user input error.
    with pytest.raises(ResponseFormatError) as info:
        run(fakes.response(200, [submission(bad_id)]))
    assert not isinstance(info.value, ValidationError)
    assert "cannot be used in a request path" in info.value.message
    assert "operation id" not in info.value.message  # the validator's wording is about options
    assert len(info.value.result) == 0


def test_operation_not_an_object(fakes, run):
    with pytest.raises(ResponseFormatError):
        run(running_list(fakes), fakes.response(200, []))


def test_operation_as_one_element_list(fakes, run):
    result, _session, _warnings = run(running_list(fakes), fakes.response(200, [operation()]), fakes.response(200))
    assert result["changed"] is True


# ---------------------------------------------------------------- read_operations (cloudpartner_operation_info)


def info_request(**params):
    return ops.InfoRequest.from_params(dict({"publisher_id": PUB, "offer_id": OFFER}, **params))


def test_read_operations_list_with_status_filter(fakes, make_client):
    session = fakes.Session(fakes.response(200, [submission(), submission(OTHER, state="completed"), "junk"]))
    result = ops.read_operations(make_client(session), info_request(status="Running"), False, Warnings())
    assert result == {"changed": False, "operations": [submission()]}
    assert session.calls[0].query == {"api-version": "2017-10-31", "status": "Running"}


def test_read_operations_without_filter(fakes, make_client):
    items = [submission(), submission(OTHER, state="completed")]
    session = fakes.Session(fakes.response(200, items))
    result = ops.read_operations(make_client(session), info_request(), True, Warnings())
    assert result == {"changed": False, "operations": items}
    assert "status" not in session.calls[0].query


def test_read_operations_one(fakes, make_client):
    session = fakes.Session(fakes.response(200, [operation()]))
    result = ops.read_operations(make_client(session), info_request(operation_id=OP.upper(), status="running"), False, Warnings())
    assert result == {"changed": False, "operations": [operation()]}
    assert session.sent == [GET_OP]


@pytest.mark.parametrize("status", ["run&ning", "running;", "1", "x" * 41, "running\n"])
def test_info_request_rejects_status(status):
    with pytest.raises(ValidationError, match="status"):
        info_request(status=status)


# ---------------------------------------------------------------- wait_for_operations (cloudpartner_operation_wait)

OP_IDS = {f"offer-{letter}": f"{letter * 8}-1111-4222-8333-444455556666" for letter in "abc"}
A, B, C = sorted(OP_IDS)


def op_get(offer):
    return ("GET", f"/api/publishers/{PUB}/offers/{offer}/operations/{OP_IDS[offer]}")


def target(offer, **extra):
    return dict({"offer_id": offer, "operation_id": OP_IDS[offer]}, **extra)


def wait_request(*targets, **params):
    values = {"publisher_id": PUB, "operations": list(targets), "wait_timeout": 900, "wait_sleep": 10}
    values.update(params)
    return ops.WaitRequest.from_params(values)


def op_body(offer, status="canceled"):
    return {"id": OP_IDS[offer], "status": status, "cancellationRequestState": "cancelRequested"}


@pytest.fixture
def wait_for(fakes, make_client):
    """wait_for(session, targets, check_mode=False, **params) -> (result, warnings); polls run on the fake clock."""

    def runner(session, targets, check_mode=False, **params):
        warnings = Warnings()
        result = ops.wait_for_operations(make_client(session), wait_request(*targets, **params), check_mode, warnings)
        return result, warnings

    return runner


def op_response(fakes, offer, status="canceled", retry_after=None):
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return fakes.response(200, op_body(offer, status), headers=headers)


def test_wait_request_from_params():
    request_ = wait_request(target(A, operation_id=OP_IDS[A].upper()), target(B, location="/api/operations/x"), target(C, location=""), wait_sleep=3)
    assert [(item.offer.path, item.operation_id, item.location) for item in request_.targets] == [
        # Ids are kept as the service spelled them (cancel's operation_id), not normalised.
        (f"/api/publishers/{PUB}/offers/{A}", OP_IDS[A].upper(), None),
        (f"/api/publishers/{PUB}/offers/{B}", OP_IDS[B], "/api/operations/x"),
        (f"/api/publishers/{PUB}/offers/{C}", OP_IDS[C], None),
    ]
    assert (request_.wait.enabled, request_.wait.timeout, request_.wait.sleep) == (True, 900, 3)


@pytest.mark.parametrize(
    "targets, params, option",
    [
        ([target(A), target(B, operation_id="../latest")], {}, "operations[1].operation_id"),
        ([target(A, operation_id=None)], {}, "operations[0].operation_id"),
        ([target(A), target(B, offer_id="../other")], {}, "operations[1].offer_id"),
        ([target(A)], {"publisher_id": "a/b"}, "publisher_id"),
        ([target(A)], {"wait_timeout": 0}, "wait_timeout"),
        ([target(A)], {"wait_sleep": 0}, "wait_sleep"),
    ],
)
def test_wait_request_rejects(targets, params, option):
    with pytest.raises(ValidationError) as info:
        wait_request(*targets, **params)
    assert option in info.value.message


@pytest.mark.parametrize("check_mode", [False, True])
def test_wait_all_ended_in_one_round(fakes, wait_for, check_mode):
    session = fakes.Session(op_response(fakes, A), fakes.response(200, [op_body(B)]), op_response(fakes, C, "Cancelled"))
    result, warnings = wait_for(session, [target(A), target(B), target(C)], check_mode=check_mode)
    # check mode changes nothing: the module is read-only either way
    assert session.sent == [op_get(A), op_get(B), op_get(C)]
    assert all(call.query == {"api-version": "2017-10-31"} and call.headers["Authorization"] == f"Bearer {fakes.TOKEN}" for call in session.calls)
    assert result["changed"] is False
    assert result["msg"] == "All 3 operations ended: 3 cancelled."
    assert [(state["offer_id"], state["operation_id"], state["ended"], state["status"]) for state in result["operations"]] == [
        (A, OP_IDS[A], True, "canceled"),
        (B, OP_IDS[B], True, "canceled"),
        (C, OP_IDS[C], True, "Cancelled"),
    ]
    assert result["operations"][1]["operation"] == op_body(B)
    assert result["elapsed"] == 0
    assert not warnings


def test_wait_several_rounds_polls_only_pending_operations(fakes, wait_for, fake_clock):
    session = fakes.Session(
        op_response(fakes, A),
        op_response(fakes, B, "running"),
        op_response(fakes, C, "running"),
        op_response(fakes, B),
        op_response(fakes, C, "running"),
        op_response(fakes, C),
    )
    result, _warnings = wait_for(session, [target(A), target(B), target(C)], wait_sleep=7)
    # one GET per pending operation per round, ended ones are not polled again
    assert session.sent == [op_get(A), op_get(B), op_get(C), op_get(B), op_get(C), op_get(C)]
    assert fake_clock.sleeps == [7, 7]
    assert result["elapsed"] == 14
    # the order given is kept, whatever the order of the ends
    assert [state["offer_id"] for state in result["operations"]] == [A, B, C]
    assert all(state["ended"] and state["status"] == "canceled" for state in result["operations"])


def test_wait_sleeps_the_largest_retry_after_of_the_round(fakes, wait_for, fake_clock):
    session = fakes.Session(
        op_response(fakes, A, "running", retry_after="30"),
        fakes.api_error(503, headers={"Retry-After": "45"}),
        op_response(fakes, C, "running", retry_after="5"),
        op_response(fakes, A, "running", retry_after="2"),
        op_response(fakes, B),
        op_response(fakes, C),
        op_response(fakes, A),
    )
    wait_for(session, [target(A), target(B), target(C)], wait_sleep=10)
    # 45 from an error and 30 / 5 from answers: the largest wins; then 2 < wait_sleep
    assert fake_clock.sleeps == [45, 10]
    assert len(session.calls) == 7


def test_wait_tolerates_transient_errors_per_operation(fakes, wait_for, fake_clock):
    session = fakes.Session(
        fakes.api_error(503, "Unavailable", "Try later."),
        op_response(fakes, B),
        requests.exceptions.ConnectionError("reset"),
        fakes.response(200, text="<html>"),
        fakes.response(200, []),
        fakes.api_error(429),
        op_response(fakes, A),
    )
    result, _warnings = wait_for(session, [target(A), target(B)])
    # the client does not retry polls (retries=0): each failure costs one round for that operation only
    assert session.sent == [op_get(A), op_get(B)] + [op_get(A)] * 5
    assert fake_clock.sleeps == [10] * 5
    first, second = result["operations"]
    assert (first["status"], second["status"]) == ("canceled", "canceled")
    assert "last_error" not in first  # forgotten once a poll succeeds


def test_wait_permanent_error_ends_only_that_operation_then_fails(fakes, make_client, fake_clock):
    session = fakes.Session(
        fakes.api_error(404, "NotFound", "No such operation."),
        op_response(fakes, B, "running"),
        op_response(fakes, C),
        op_response(fakes, B),
    )
    with pytest.raises(CloudPartnerError) as info:
        ops.wait_for_operations(make_client(session), wait_request(target(A), target(B), target(C)), False, Warnings())
    # the other operations are still waited for; the failed one is not polled again
    assert session.sent == [op_get(A), op_get(B), op_get(C), op_get(B)]
    error = info.value
    assert not isinstance(error, WaitTimeoutError)
    assert error.message.startswith(f"Could not read 1 of 3 operations ({A}): ")
    assert "HTTP 404" in error.message and "NotFound" in error.message
    assert error.result["changed"] is False
    assert error.result["elapsed"] == fake_clock.elapsed == 10
    failed, waited, done_ = error.result["operations"]
    assert failed["failed"] is True and failed["ended"] is True and "HTTP 404" in failed["msg"]
    assert "status" not in failed
    assert (waited["status"], done_["status"]) == ("canceled", "canceled")
    assert "failed" not in waited and "failed" not in done_


def test_wait_timeout_reports_partial_states(fakes, make_client, fake_clock):
    session = fakes.Session(
        op_response(fakes, A),
        op_response(fakes, B, "running"),
        fakes.api_error(503),
        op_response(fakes, B, "running"),
        fakes.api_error(503),
        op_response(fakes, B, "cancelRequested"),
        fakes.api_error(503, "Unavailable", "Still down."),
    )
    with pytest.raises(WaitTimeoutError) as info:
        ops.wait_for_operations(make_client(session), wait_request(target(A), target(B), target(C), wait_timeout=20, wait_sleep=10), False, Warnings())
    error = info.value
    # rounds at 0, 10 and 15, the last one when 5 s are left (its requests get those 5 s); none at the deadline
    assert session.sent == [op_get(A), op_get(B), op_get(C)] + [op_get(B), op_get(C)] * 2
    assert [call.timeout for call in session.calls[-2:]] == [5, 5]
    assert fake_clock.elapsed == 15
    # what the last round read is reported
    assert error.message == f"Timed out after 20 seconds waiting for 2 operations to end; last status: {B} (cancelRequested), {C} (unknown)."
    assert error.result["changed"] is False
    assert error.result["elapsed"] == 15
    first, second, third = error.result["operations"]
    assert (first["ended"], first["status"]) == (True, "canceled")
    assert (second["ended"], second["status"]) == (False, "cancelRequested")
    assert third["ended"] is False and "status" not in third and "Still down." in third["last_error"]


def test_wait_round_requests_are_clipped_to_the_time_left(fakes, make_client, fake_clock):
    # Security L9 / review 1.6: a round of N sequential GETs used to give each one the whole timeout.
    session = fakes.Session(
        slow(fake_clock, 12, op_response(fakes, A, "running")),
        slow(fake_clock, 12, op_response(fakes, B, "running")),
        slow(fake_clock, 12, op_response(fakes, C, "running")),
    )
    with pytest.raises(WaitTimeoutError) as info:
        ops.wait_for_operations(make_client(session, timeout=30), wait_request(target(A), target(B), target(C), wait_timeout=30), False, Warnings())
    assert [call.timeout for call in session.calls] == [30, 18, 6]
    assert fake_clock.elapsed == 30
    assert info.value.result["elapsed"] == 30
    first, second, third = info.value.result["operations"]
    assert (first["status"], second["status"]) == ("running", "running")
    assert "status" not in third and "last_error" in third


def test_wait_round_stops_when_the_deadline_passes(fakes, make_client, fake_clock):
    # The first GET uses up the time: the others are not polled at all, and keep their last status.
    session = fakes.Session(slow(fake_clock, 1000, op_response(fakes, A)), op_response(fakes, B), op_response(fakes, C))
    with pytest.raises(WaitTimeoutError) as info:
        ops.wait_for_operations(make_client(session, timeout=30), wait_request(target(A), target(B), target(C), wait_timeout=20), False, Warnings())
    assert session.sent == [op_get(A)]
    assert fake_clock.elapsed == 20
    assert info.value.message.startswith("Timed out after 20 seconds waiting for 3 operations to end")
    assert [state["ended"] for state in info.value.result["operations"]] == [False, False, False]


def test_wait_later_round_stops_when_the_deadline_passes(fakes, make_client, fake_clock):
    session = fakes.Session(
        op_response(fakes, A, "running"),
        op_response(fakes, B, "running"),
        op_response(fakes, C, "running"),
        slow(fake_clock, 1000, op_response(fakes, A, "running")),
    )
    with pytest.raises(WaitTimeoutError) as info:
        ops.wait_for_operations(
            make_client(session, timeout=30), wait_request(target(A), target(B), target(C), wait_timeout=25, wait_sleep=10), False, Warnings()
        )
    # round 2 starts at 10 with 15 seconds left: A's GET takes them all, B and C keep their status from round 1
    assert session.sent == [op_get(A), op_get(B), op_get(C), op_get(A)]
    assert session.calls[-1].timeout == 15
    assert fake_clock.elapsed == 25
    assert [state.get("status") for state in info.value.result["operations"]] == ["running", "running", "running"]
    assert B in info.value.message and C in info.value.message


def test_wait_polls_the_given_locations(fakes, wait_for):
    relative = "/api/operations/contoso$offer-a$2$preview"
    absolute = "https://CloudPartner.Azure.com/api/operations/contoso$offer-b$7$preview?api-version=2016-08-01-preview"
    session = fakes.Session(op_response(fakes, A), op_response(fakes, B), op_response(fakes, C))
    wait_for(session, [target(A, location=relative), target(B, location=absolute), target(C)])
    assert [call.url for call in session.calls] == [
        f"{API}{relative}?api-version=2017-10-31",
        absolute,
        f"{API}/api/publishers/{PUB}/offers/{C}/operations/{OP_IDS[C]}?api-version=2017-10-31",
    ]
    assert only_api_origin(session)


@pytest.mark.parametrize(
    "location",
    [
        f"https://evil.example{BASE}/operations/{OP}",
        f"https://evil.example\\@cloudpartner.azure.com{BASE}/operations/{OP}",
        f"http://cloudpartner.azure.com{BASE}/operations/{OP}",
        f"https://cloudpartner.azure.com:abc{BASE}/operations/{OP}",
    ],
    ids=["other-host", "backslash", "http", "bad-port"],
)
def test_wait_refuses_a_foreign_location_before_any_request(fakes, make_client, location):
    session = fakes.Session(op_response(fakes, A), op_response(fakes, B))
    with pytest.raises(ValidationError, match=r"operations\[1\]\.location is refused"):
        ops.wait_for_operations(make_client(session), wait_request(target(A), target(B, location=location)), False, Warnings())
    assert not session.calls


def test_wait_whitespace_only_location_counts_as_not_given(fakes, wait_for):
    session = fakes.Session(op_response(fakes, A))
    result, _warnings = wait_for(session, [target(A, location="   ")])
    assert session.sent == [op_get(A)]
    assert result["operations"][0]["status"] == "canceled"


def test_wait_for_no_operation_sends_nothing(fakes, wait_for):
    session = fakes.Session()
    result, warnings = wait_for(session, [])
    assert result == {"changed": False, "msg": "No operation to wait for.", "operations": [], "elapsed": 0.0}
    assert not session.calls and not warnings


def test_wait_end_other_than_cancelled_warns(fakes, wait_for):
    session = fakes.Session(op_response(fakes, A, "completed"), op_response(fakes, B, "Failed"), op_response(fakes, C))
    result, warnings = wait_for(session, [target(A), target(B), target(C)])
    assert result["changed"] is False
    assert result["msg"] == "All 3 operations ended: 1 cancelled, 1 failed, 1 succeeded."
    assert len(warnings) == 2
    assert OP_IDS[A] in warnings[0] and A in warnings[0] and "'completed'" in warnings[0]
    assert OP_IDS[B] in warnings[1] and "'Failed'" in warnings[1]
