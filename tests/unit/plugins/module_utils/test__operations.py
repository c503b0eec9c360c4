# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cancel_offer_operation against a real CloudPartnerClient over a scripted session, row by row of the contract."""

from __future__ import annotations

import pytest
import requests

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
    assert session.methods == ["GET", "GET", "POST"]


@pytest.mark.parametrize("state", ["cancelRequested", "CancelRequested", "cannotCancel", "cancelling"])
def test_already_cancelling_sends_nothing(fakes, run, state):
    result, session, _warnings = run(running_list(fakes), fakes.response(200, operation(crs=state)))
    assert result["changed"] is False
    assert "already" in result["msg"]
    assert state in result["msg"]
    assert result["operation"]["cancellationRequestState"] == state
    assert "status_code" not in result
    assert session.sent == [LIST, GET_OP]


def test_already_cancelling_with_wait_waits_for_the_end(fakes, run, fast_wait):
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
    assert fast_wait.sleeps == [5]
    assert not warnings


def test_already_cancelling_in_check_mode_does_not_wait(fakes, run):
    result, session, _warnings = run(running_list(fakes), fakes.response(200, operation(crs="cancelRequested")), check_mode=True, wait=True)
    assert result["changed"] is False
    assert session.sent == [LIST, GET_OP]


# ---------------------------------------------------------------- check mode


def test_check_mode_sends_no_post(fakes, run):
    result, session, _warnings = run(running_list(fakes), fakes.response(200, operation()), check_mode=True, wait=True, notification_emails=["a@x.com"])
    assert result["changed"] is True
    assert OP in result["msg"]
    assert result["operation"]["id"] == OP
    assert "status_code" not in result
    assert "POST" not in session.methods
    assert session.sent == [LIST, GET_OP]


# ---------------------------------------------------------------- the cancel request


def test_cancel_200(fakes, run):
    result, session, warnings = run(running_list(fakes), fakes.response(200, operation()), fakes.response(200))
    assert result["changed"] is True
    assert result["status_code"] == 200
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
    assert result["operation_location"] == f"{API}{LOCATION}"
    assert "202" in result["msg"]
    assert session.sent == [LIST, GET_OP, POST]
    assert not warnings


def test_cancel_202_operation_location_without_api_version(fakes, run):
    result, _session, _warnings = run(
        running_list(fakes), fakes.response(200, operation()), fakes.response(202, headers={"operation-location": f"{API}{BASE}/operations/{OP}"})
    )
    assert result["operation_location"] == f"{API}{BASE}/operations/{OP}?api-version=2017-10-31"


def test_cancel_202_wait_polls_location_until_cancelled(fakes, run, fast_wait):
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
    assert fast_wait.sleeps == [3, 3]
    polls = session.calls[3:]
    assert [call.url for call in polls] == [f"{API}/api/operations/contoso$contoso-vm$2$preview?api-version=2017-10-31"] * 3
    assert all(call.headers["Authorization"] == f"Bearer {fakes.TOKEN}" for call in polls)
    assert not warnings
    assert only_api_origin(session)


def test_cancel_202_poll_tolerates_a_transient_failure(fakes, run, fast_wait):
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
    assert fast_wait.sleeps == [10, 10, 10]


@pytest.mark.parametrize("final", ["completed", "failed", "Succeeded"])
def test_cancel_202_other_terminal_state_warns(fakes, run, fast_wait, final):  # pylint: disable=unused-argument
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


def test_cancel_202_without_location_polls_the_submissions_list(fakes, run, fast_wait):
    result, session, warnings = run(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.response(202),
        fakes.response(200, [submission()]),
        fakes.response(200, [submission(state="canceled"), submission(OTHER, state="completed")]),
        wait=True,
    )
    assert result["changed"] is True
    assert result["status_code"] == 202
    assert "operation_location" not in result
    assert result["operation"]["submissionState"] == "canceled"
    assert "cancelled" in result["msg"]
    assert session.sent == [LIST, GET_OP, POST, LIST, LIST]
    # the wait reads the whole list, not only running submissions
    assert "status" not in session.calls[3].query
    assert len(warnings) == 1 and "submissions list" in warnings[0]
    assert fast_wait.sleeps == [10]


def test_cancel_202_without_location_no_wait(fakes, run):
    result, session, warnings = run(running_list(fakes), fakes.response(200, operation()), fakes.response(202))
    assert result["status_code"] == 202
    assert "operation_location" not in result
    assert session.sent == [LIST, GET_OP, POST]
    assert not warnings


def test_cancel_202_submission_gone_from_list_ends_the_wait(fakes, run, fast_wait):  # pylint: disable=unused-argument
    result, session, _warnings = run(
        running_list(fakes), fakes.response(200, operation()), fakes.response(202), fakes.response(200, [submission(OTHER, state="completed")]), wait=True
    )
    assert result["changed"] is True
    assert session.sent == [LIST, GET_OP, POST, LIST]


def test_cancel_202_submission_gone_from_list_is_not_reported_as_status_none(fakes, run, fast_wait):  # pylint: disable=unused-argument
    # BUG (plugins/module_utils/_operations.py _cancel, `status = outcome.value.get("submissionState") if outcome.value else None`
    # then `_ending(operation_id, None)`): when the cancelled submission is no longer listed, the result says
    # "ended with status None instead of being cancelled" and warns, although no terminal state was seen at all
    # (and `operation` still shows the pre-cancel 'running' state). Expected: a message that says the submission is
    # no longer listed / no longer running, without a made-up status.
    result, _session, warnings = run(
        running_list(fakes), fakes.response(200, operation()), fakes.response(202), fakes.response(200, [submission(OTHER, state="completed")]), wait=True
    )
    assert "status None" not in result["msg"]
    assert not [warning for warning in warnings if "status None" in warning]


@pytest.mark.parametrize(
    "headers",
    [
        {"Location": f"https://evil.example{BASE}/operations/{OP}"},
        {"Operation-Location": f"https://cloudpartner.azure.com:8443{BASE}/operations/{OP}"},
        {"Location": f"http://cloudpartner.azure.com{BASE}/operations/{OP}"},
    ],
)
def test_cancel_202_foreign_location_is_not_polled(fakes, run, fast_wait, headers):  # pylint: disable=unused-argument
    result, session, warnings = run(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.response(202, headers=headers),
        fakes.response(200, [submission(state="canceled")]),
        wait=True,
    )
    assert result["changed"] is True
    assert result["status_code"] == 202
    assert result["operation_location"] == next(iter(headers.values()))
    assert any("origin" in warning for warning in warnings)
    assert session.sent == [LIST, GET_OP, POST, LIST]
    assert only_api_origin(session)


def test_cancel_202_foreign_location_without_wait(fakes, run):
    result, session, warnings = run(
        running_list(fakes), fakes.response(200, operation()), fakes.response(202, headers={"Location": f"https://evil.example{BASE}/operations/{OP}"})
    )
    assert result["changed"] is True
    assert len(warnings) == 1
    assert session.sent == [LIST, GET_OP, POST]


def test_cancel_202_backslash_location_is_not_polled(fakes, run, fast_wait):  # pylint: disable=unused-argument
    # BUG (see test__wait.test_operation_location_backslash_authority): this Location is polled, and requests sends
    # the poll (with the bearer token) to evil.example.
    _result, session, _warnings = run(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.response(202, headers={"Location": f"https://evil.example\\@cloudpartner.azure.com{BASE}/operations/{OP}"}),
        fakes.response(200, operation(status="canceled")),
        fakes.response(200, [submission(state="canceled")]),
        wait=True,
    )
    assert only_api_origin(session)


def test_cancel_202_malformed_location_still_reports_the_cancel(fakes, run):
    # BUG (plugins/module_utils/_operations.py _cancel -> _wait.operation_location): a Location with a bad port raises
    # a bare ValueError after the POST was sent; the module crashes with a traceback and `changed` is lost.
    # Expected: handled like a foreign location (warning, changed=True, status_code=202) or a CloudPartnerError whose
    # result says changed=True and status_code=202.
    try:
        result, session, _warnings = run(
            running_list(fakes), fakes.response(200, operation()), fakes.response(202, headers={"Location": f"https://cloudpartner.azure.com:abc{BASE}/x"})
        )
    except CloudPartnerError as error:
        result = error.result
    except ValueError as error:
        pytest.fail(f"bare ValueError escaped after the cancel was sent: {error}")
    else:
        assert session.sent == [LIST, GET_OP, POST]
    assert result["changed"] is True
    assert result["status_code"] == 202


# ---------------------------------------------------------------- waiting runs out


def test_wait_timeout_reports_what_is_known(fakes, run, fast_wait):
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
    assert error.result["elapsed"] == 30
    assert "msg" not in error.result
    assert "30 seconds" in error.message
    assert "running" in error.message
    assert OP in error.message
    assert fast_wait.elapsed == 30


def test_wait_timeout_after_failed_polls_names_the_last_error(fakes, run, fast_wait):  # pylint: disable=unused-argument
    with pytest.raises(WaitTimeoutError) as info:
        run(
            running_list(fakes),
            fakes.response(200, operation()),
            fakes.response(202, headers={"Location": LOCATION}),
            fakes.response(200, operation(crs="cancelRequested")),
            fakes.api_error(503, "Unavailable", "Try later."),
            wait=True,
            wait_timeout=10,
            wait_sleep=10,
        )
    assert "HTTP 503" in info.value.message
    assert info.value.result["changed"] is True
    assert info.value.result["operation"]["cancellationRequestState"] == "cancelRequested"


def test_wait_timeout_on_submissions_list(fakes, run, fast_wait):  # pylint: disable=unused-argument
    with pytest.raises(WaitTimeoutError) as info:
        run(
            running_list(fakes),
            fakes.response(200, operation()),
            fakes.response(202),
            fakes.response(200, [submission()]),
            fakes.response(200, [submission()]),
            wait=True,
            wait_timeout=10,
            wait_sleep=10,
        )
    assert info.value.result["changed"] is True
    assert info.value.result["status_code"] == 202
    assert info.value.result["operation"]["submissionState"] == "running"
    assert "running" in info.value.message


def test_wait_timeout_when_already_cancelling_is_not_changed(fakes, run, fast_wait):  # pylint: disable=unused-argument
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


def test_retry_after_on_polls_beats_wait_sleep(fakes, run, fast_wait):
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
    assert fast_wait.sleeps == [30, 30]


def test_retry_after_on_submission_list_polls(fakes, run, fast_wait):
    run(
        running_list(fakes),
        fakes.response(200, operation()),
        fakes.response(202),
        fakes.response(200, [submission()], headers={"retry-after": "25"}),
        fakes.response(200, [submission(state="canceled")]),
        wait=True,
        wait_sleep=10,
    )
    assert fast_wait.sleeps == [25]


# ---------------------------------------------------------------- failures


def test_post_error_reports_status_code(fakes, run):
    with pytest.raises(ApiError) as info:
        run(running_list(fakes), fakes.response(200, operation()), fakes.api_error(403, "Forbidden", "Not allowed."))
    assert info.value.result.get("status_code") == 403
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


def test_post_is_not_retried_on_400(fakes, make_client):
    session = fakes.Session(running_list(fakes), fakes.response(200, operation()), fakes.api_error(400), fakes.response(200))
    with pytest.raises(ApiError):
        ops.cancel_offer_operation(make_client(session, retries=5), request(), False, Warnings())
    assert session.sent == [LIST, GET_OP, POST]


def test_poll_error_after_cancel_keeps_the_cancel_status(fakes, run, fast_wait):  # pylint: disable=unused-argument
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


@pytest.mark.parametrize("bad_id", ["../../../other", "x/y", "a b", "x?y=1"])
def test_running_submission_with_unsafe_id_is_not_used_in_a_path(fakes, run, bad_id):
    with pytest.raises(ValidationError):
        run(fakes.response(200, [submission(bad_id)]))


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
