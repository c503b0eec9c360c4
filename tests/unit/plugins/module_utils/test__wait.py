# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _wait as w
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._errors import (
    ApiError,
    CloudPartnerError,
    ResponseFormatError,
    TransportError,
    UnsafeLocationError,
    ValidationError,
    WaitTimeoutError,
)

API = "https://cloudpartner.azure.com"
V = "2017-10-31"
OP_PATH = "/api/publishers/contoso/offers/vm/operations/56615b67-2185-49fe-80d2-c4ddf77bb2e8"

# ---------------------------------------------------------------- classify


CLASSIFY = [
    ("completed", w.SUCCEEDED),
    ("Completed", w.SUCCEEDED),
    ("complete", w.SUCCEEDED),
    ("COMPLETE", w.SUCCEEDED),
    ("succeeded", w.SUCCEEDED),
    ("Succeeded", w.SUCCEEDED),
    ("canceled", w.CANCELLED),
    ("Canceled", w.CANCELLED),
    ("cancelled", w.CANCELLED),
    ("CANCELLED", w.CANCELLED),
    ("failed", w.FAILED),
    ("Failed", w.FAILED),
    ("running", w.RUNNING),
    ("Running", w.RUNNING),
    ("notStarted", w.RUNNING),
    ("not started", w.RUNNING),
    ("inProgress", w.RUNNING),
    ("in_progress", w.RUNNING),
    ("WaitingForPublisherReview", w.RUNNING),
    ("cancelRequested", w.RUNNING),
    ("canceling", w.RUNNING),
    ("cancelling", w.RUNNING),
    ("", w.RUNNING),
    ("something new", w.RUNNING),
    (None, w.RUNNING),
    (3, w.RUNNING),
    ({"status": "canceled"}, w.RUNNING),
]


def test_classify():
    assert [(status, w.classify(status), state) for status, state in CLASSIFY if w.classify(status) != state] == []


@given(st.text(max_size=30))
def test_classify_is_total(status):
    assert w.classify(status) in (w.RUNNING, w.SUCCEEDED, w.CANCELLED, w.FAILED)
    assert w.classify(status) == w.classify(status.upper()) == w.classify(status.lower())


SUBMISSIONS = [
    ({"submissionState": "running"}, True),
    ({"submissionState": "Running"}, True),
    ({"submissionState": "inProgress"}, True),
    ({"submissionState": "in_progress"}, True),
    # not terminal, so in progress: the same policy as the wait loops (review 1.4)
    ({"submissionState": "notStarted"}, True),
    ({"submissionState": "waitingForPublisherReview"}, True),
    ({"submissionState": "some new word"}, True),
    ({"submissionState": "canceled"}, False),
    ({"submissionState": "Cancelled"}, False),
    ({"submissionState": "completed"}, False),
    ({"submissionState": "succeeded"}, False),
    ({"submissionState": "failed"}, False),
    ({"submissionState": ""}, False),
    ({"submissionState": " - "}, False),
    ({"submissionState": None}, False),
    ({"submissionState": 3}, False),
    ({}, False),
    ("running", False),
    (None, False),
]


def test_is_running_submission():
    assert [(item, running) for item, running in SUBMISSIONS if w.is_running_submission(item) is not running] == []


def test_in_progress_policy_is_the_wait_loops_policy_for_not_started_submissions():
    # Review 1.4: "notStarted" was "nothing to cancel" for the cancel module but "still running" for every wait loop.
    for state in ("notStarted", "waitingForPublisherReview", "pendingReview"):
        assert w.classify(state) == w.RUNNING
        assert w.is_in_progress(state)
        assert w.is_running_submission({"submissionState": state})


@given(st.text(max_size=30))
def test_in_progress_is_non_empty_and_not_terminal(state):
    expected = bool(w.normalise_state(state)) and w.classify(state) == w.RUNNING
    assert w.is_in_progress(state) is expected
    assert w.is_running_submission({"submissionState": state}) is expected


CANCELLATION_STATES = [
    (None, w.MAY_CANCEL),
    ("", w.MAY_CANCEL),
    ("  ", w.MAY_CANCEL),
    ("canCancel", w.MAY_CANCEL),
    ("CanCancel", w.MAY_CANCEL),
    ("can_cancel", w.MAY_CANCEL),
    ("can cancel", w.MAY_CANCEL),
    ("cancelRequested", w.CANCEL_UNDER_WAY),
    ("CancelRequested", w.CANCEL_UNDER_WAY),
    ("cancel-requested", w.CANCEL_UNDER_WAY),
    ("cancelling", w.CANCEL_UNDER_WAY),
    ("canceling", w.CANCEL_UNDER_WAY),
    ("Cancellation Requested", w.CANCEL_UNDER_WAY),
    ("cancelInProgress", w.CANCEL_UNDER_WAY),
    ("cancellation_in_progress", w.CANCEL_UNDER_WAY),
    # anything else: the service does not allow a cancel now (review 1.5)
    ("cannotCancel", w.CANCEL_REFUSED),
    ("notCancellable", w.CANCEL_REFUSED),
    ("canceled", w.CANCEL_REFUSED),
    ("something new", w.CANCEL_REFUSED),
    ("-", w.CANCEL_REFUSED),
    (False, w.CANCEL_REFUSED),
    (0, w.CANCEL_REFUSED),
    ({"state": "canCancel"}, w.CANCEL_REFUSED),
]


def test_cancellation_verdict():
    assert [(state, w.cancellation_verdict(state), verdict) for state, verdict in CANCELLATION_STATES if w.cancellation_verdict(state) != verdict] == []


def test_single_operation():
    assert w.single_operation({"id": "a"}, "x") == {"id": "a"}
    assert w.single_operation([{"id": "a"}], "x") == {"id": "a"}
    for body in ([], [{"id": "a"}, {"id": "b"}], "text", None, 3, ["a"]):
        with pytest.raises(ResponseFormatError, match="Operation X"):
            w.single_operation(body, "Operation X")


# ---------------------------------------------------------------- operation_location


def location(headers, api_url=API, version=V):
    return w.operation_location(CaseInsensitiveDict(headers), api_url, version)


LOCATIONS = [
    ({}, None),
    ({"Location": ""}, None),
    ({"Location": "   "}, None),
    ({"Location": f"{OP_PATH}?api-version={V}"}, f"{API}{OP_PATH}?api-version={V}"),
    ({"Location": OP_PATH}, f"{API}{OP_PATH}?api-version={V}"),
    ({"location": OP_PATH}, f"{API}{OP_PATH}?api-version={V}"),
    ({"LOCATION": f" {OP_PATH} "}, f"{API}{OP_PATH}?api-version={V}"),
    ({"Operation-Location": f"{API}{OP_PATH}"}, f"{API}{OP_PATH}?api-version={V}"),
    ({"operation-location": f"{API}{OP_PATH}"}, f"{API}{OP_PATH}?api-version={V}"),
    ({"Location": OP_PATH, "Operation-Location": f"{API}/api/other"}, f"{API}{OP_PATH}?api-version={V}"),
    ({"Location": "", "Operation-Location": f"{API}{OP_PATH}"}, f"{API}{OP_PATH}?api-version={V}"),
    # a whitespace-only Location counts as absent too
    ({"Location": " \t ", "Operation-Location": f" {API}{OP_PATH} "}, f"{API}{OP_PATH}?api-version={V}"),
    ({"Location": "  ", "Operation-Location": "  "}, None),
    ({"Location": f"{OP_PATH}?API-Version=2016-08-01-preview"}, f"{API}{OP_PATH}?API-Version=2016-08-01-preview"),
    ({"Location": f"{OP_PATH}?Api-Version="}, f"{API}{OP_PATH}?Api-Version="),
    ({"Location": f"{OP_PATH}?x=1"}, f"{API}{OP_PATH}?x=1&api-version={V}"),
    ({"Location": f"{OP_PATH}?api-versions=1"}, f"{API}{OP_PATH}?api-versions=1&api-version={V}"),
    (
        {"Location": f"/api/operations/contoso$vm$2$preview?api-version={V}"},
        f"{API}/api/operations/contoso$vm$2$preview?api-version={V}",
    ),
    ({"Location": "/api/operations/contoso$vm$2$preview"}, f"{API}/api/operations/contoso$vm$2$preview?api-version={V}"),
    ({"Location": f"https://cloudpartner.azure.com:443{OP_PATH}"}, f"https://cloudpartner.azure.com:443{OP_PATH}?api-version={V}"),
    ({"Location": "operations/x"}, f"{API}/operations/x?api-version={V}"),
]


def test_operation_location():
    wrong = []
    for headers, expected in LOCATIONS:
        got = location(headers)
        if got != expected:
            wrong.append((headers, got, expected))
    assert not wrong


def test_operation_location_same_origin_in_other_case():
    result = location({"Location": f"HTTPS://CloudPartner.Azure.com{OP_PATH}"})
    assert result.lower() == f"{API}{OP_PATH}?api-version={V}".lower()


def test_operation_location_keeps_dollar_literal():
    result = location({"Location": "/api/operations/contoso$vm$2$preview"})
    assert "$vm$2$preview" in result
    assert "%24" not in result


def test_operation_location_on_explicit_default_port_api_url():
    assert location({"Location": OP_PATH}, api_url="https://cloudpartner.azure.com:443") == f"https://cloudpartner.azure.com:443{OP_PATH}?api-version={V}"
    assert location({"Location": f"{API}{OP_PATH}"}, api_url="https://cloudpartner.azure.com:443") == f"{API}{OP_PATH}?api-version={V}"


def test_operation_location_loopback_emulator():
    assert location({"Location": OP_PATH}, api_url="http://127.0.0.1:41002") == f"http://127.0.0.1:41002{OP_PATH}?api-version={V}"
    with pytest.raises(UnsafeLocationError):
        location({"Location": f"https://127.0.0.1:41004{OP_PATH}"}, api_url="http://127.0.0.1:41002")


FOREIGN = [
    f"https://evil.example{OP_PATH}",
    f"https://cloudpartner.azure.com.evil.example{OP_PATH}",
    f"https://cloudpartner.azure.com:8443{OP_PATH}",
    f"http://cloudpartner.azure.com{OP_PATH}",
    f"http://cloudpartner.azure.com:443{OP_PATH}",
    f"//evil.example{OP_PATH}",
    f"https://cloudpartner.azure.com@evil.example{OP_PATH}",
    "ftp://cloudpartner.azure.com/x",
    "javascript:alert(1)",
    "data:text/plain,hi",
]


def test_operation_location_refuses_other_origins():
    wrong = []
    for value in FOREIGN:
        try:
            wrong.append((value, location({"Location": value})))
        except UnsafeLocationError as error:
            if "token" not in error.message and "http(s)" not in error.message:
                wrong.append((value, error.message))
    assert not wrong


def test_operation_location_refuses_other_origin_even_if_operation_location_is_safe():
    with pytest.raises(UnsafeLocationError):
        location({"Location": f"https://evil.example{OP_PATH}", "Operation-Location": f"{API}{OP_PATH}"})


def test_operation_location_backslash_authority():
    # for urlsplit the host of this URL is cloudpartner.azure.com, for requests/urllib3 it is evil.example
    with pytest.raises(UnsafeLocationError):
        location({"Location": f"https://evil.example\\@cloudpartner.azure.com{OP_PATH}"})


def test_operation_location_malformed_is_unsafe():
    # urlsplit/urljoin/.port raise a bare ValueError for these; it once escaped after the cancel POST was sent
    accepted = []
    for value in [f"https://cloudpartner.azure.com:abc{OP_PATH}", f"https://cloudpartner.azure.com:99999{OP_PATH}", "https://[cloudpartner/x", "http://[::1"]:
        try:
            accepted.append((value, location({"Location": value})))
        except UnsafeLocationError as error:
            assert value[:40] in error.message or "origin" in error.message
    assert not accepted


# ---------------------------------------------------------------- poll_until


def never_called(*args):
    raise AssertionError(f"describe_timeout called with {args}")


class Script:
    """fetch(): returns or raises the next item; an int item advances the clock (a slow answer) first."""

    def __init__(self, clock, *items):
        self.clock = clock
        self.items = list(items)
        self.calls = 0
        self.times = []
        self.deadlines = []

    def __call__(self, deadline):
        self.calls += 1
        self.times.append(self.clock.now)
        self.deadlines.append(deadline)
        item = self.items.pop(0) if len(self.items) > 1 else self.items[0]
        if isinstance(item, tuple) and item[0] == "slow":
            self.clock.advance(item[1])
            item = item[2]
        if isinstance(item, BaseException):
            raise item
        return item


def done(value):
    return value == "done"


def poll(clock, fetch, timeout=100, interval=10, describe=never_called):
    return w.poll_until(fetch, done, timeout, interval, describe, clock=clock, sleep=clock.sleep)


def test_poll_stops_when_done_at_once(fake_clock):
    fetch = Script(fake_clock, "done")
    outcome = poll(fake_clock, fetch)
    assert (outcome.value, fetch.calls, outcome.elapsed) == ("done", 1, 0)
    assert not fake_clock.sleeps


def test_poll_passes_the_wait_deadline_to_every_fetch(fake_clock):
    # Review 1.6 / security L9: each poll request is clipped to the time left, so fetch must know the deadline.
    fetch = Script(fake_clock, "running", TransportError("reset"), "running", "done")
    poll(fake_clock, fetch, timeout=100, interval=10)
    assert fetch.deadlines == [fake_clock.start + 100] * 4


def test_poll_sleeps_interval_between_polls(fake_clock):
    fetch = Script(fake_clock, "running", "running", "done")
    outcome = poll(fake_clock, fetch, interval=7)
    assert fetch.calls == 3
    assert fake_clock.sleeps == [7, 7]
    assert outcome.elapsed == 14


def test_poll_tolerates_transient_errors(fake_clock):
    fetch = Script(
        fake_clock,
        TransportError("reset"),
        ApiError("GET", "/x", 503),
        ApiError("GET", "/x", 429),
        ApiError("GET", "/x", 500),
        ResponseFormatError("not json"),
        "done",
    )
    outcome = poll(fake_clock, fetch)
    assert outcome.value == "done"
    assert fetch.calls == 6


TRANSIENT = [
    (TransportError("reset"), True),
    (TransportError("tls", retryable=False), False),
    (ApiError("GET", "/x", 429), True),
    (ApiError("GET", "/x", 500), True),
    (ApiError("GET", "/x", 502), True),
    (ApiError("GET", "/x", 503), True),
    (ApiError("GET", "/x", 504), True),
    (ApiError("GET", "/x", 400), False),
    (ApiError("GET", "/x", 401), False),
    (ApiError("GET", "/x", 403), False),
    (ApiError("GET", "/x", 404), False),
    (ApiError("GET", "/x", 501), False),
    (ResponseFormatError("not json"), True),
    (UnsafeLocationError("elsewhere"), False),
    (ValidationError("bad"), False),
    (CloudPartnerError("other"), False),
    (KeyError("boom"), False),
]


def test_is_transient():
    assert [(error, transient) for error, transient in TRANSIENT if w.is_transient(error) is not transient] == []


@pytest.mark.parametrize(
    "error",
    [
        ApiError("GET", "/x", 404),
        ApiError("GET", "/x", 403),
        ApiError("GET", "/x", 401),
        ApiError("GET", "/x", 400),
        TransportError("tls", retryable=False),
        UnsafeLocationError("elsewhere"),
        ValidationError("bad"),
        KeyError("boom"),
    ],
)
def test_poll_raises_non_transient_errors_at_once(fake_clock, error):
    fetch = Script(fake_clock, "running", error)
    with pytest.raises(type(error)) as info:
        poll(fake_clock, fetch)
    assert info.value is error
    assert fetch.calls == 2
    assert fake_clock.sleeps == [10]


@pytest.mark.parametrize("retry_after, expected", [(30.0, 30.0), (5.0, 10.0), (10.0, 10.0), (None, 10.0), (0.0, 10.0)])
def test_poll_larger_retry_after_wins(fake_clock, retry_after, expected):
    fetch = Script(fake_clock, ApiError("GET", "/x", 429, retry_after=retry_after), "done")
    poll(fake_clock, fetch, interval=10)
    assert fake_clock.sleeps == [expected]


@pytest.mark.parametrize("retry_after, expected", [(30.0, [30.0]), (2.0, [10.0]), (None, [10.0])])
def test_poll_retry_after_sent_with_an_answer(fake_clock, retry_after, expected):
    assert w.Polled("x").retry_after is None
    fetch = Script(fake_clock, w.Polled("running", retry_after), w.Polled("done", 99.0))
    outcome = poll(fake_clock, fetch, interval=10)
    assert outcome.value == "done"
    assert fake_clock.sleeps == expected


def test_poll_passes_polled_value_to_done_and_timeout(fake_clock):
    seen = []
    fetch = Script(fake_clock, w.Polled({"status": "running"}, 5.0))
    # timeout 10: the final window is 5 s (half the timeout), so the second poll is the last one
    with pytest.raises(WaitTimeoutError):
        w.poll_until(
            fetch,
            lambda value: seen.append(value) and False,
            10,
            10,
            lambda *args: seen.append(args) or WaitTimeoutError("t"),
            clock=fake_clock,
            sleep=fake_clock.sleep,
        )
    assert seen[0] == {"status": "running"}
    assert seen[-1] == ({"status": "running"}, None, 5)
    assert fetch.times == [fake_clock.start, fake_clock.start + 5]


@pytest.mark.parametrize(
    "timeout, sleeps, times",
    [
        (25, [10, 10], [0, 10, 20]),
        # the sleep before the last poll is cut so that it starts when the final window begins
        (27, [10, 10, 2], [0, 10, 20, 22]),
    ],
)
def test_poll_never_sleeps_past_deadline(fake_clock, timeout, sleeps, times):
    fetch = Script(fake_clock, "running")
    with pytest.raises(WaitTimeoutError):
        poll(fake_clock, fetch, timeout=timeout, interval=10, describe=lambda *args: WaitTimeoutError("t"))
    assert fake_clock.sleeps == sleeps
    # the last poll starts FINAL_POLL_SECONDS before the deadline, so that its request still has time to be answered;
    # the wait times out right after it: one more poll would have less than that
    assert fetch.times == [fake_clock.start + offset for offset in times]
    assert fake_clock.elapsed == timeout - w.FINAL_POLL_SECONDS


def test_poll_retry_after_is_capped_by_deadline(fake_clock):
    fetch = Script(fake_clock, ApiError("GET", "/x", 429, retry_after=1000.0))
    with pytest.raises(WaitTimeoutError):
        poll(fake_clock, fetch, timeout=60, interval=10, describe=lambda *args: WaitTimeoutError("t"))
    # the Retry-After sleep ends when the final window begins, and the last poll is made there
    assert fake_clock.sleeps == [55]
    assert fetch.times == [fake_clock.start, fake_clock.start + 55]


def test_poll_timeout_error_is_built_from_last_value_error_and_elapsed(fake_clock):
    seen = []
    error = ApiError("GET", "/x", 503)

    def describe(value, last_error, elapsed):
        seen.append((value, last_error, elapsed))
        return WaitTimeoutError("timed out", extra=1)

    fetch = Script(fake_clock, {"status": "running", "n": 1}, {"status": "running", "n": 2}, error)
    with pytest.raises(WaitTimeoutError) as info:
        w.poll_until(fetch, lambda value: False, 25, 10, describe, clock=fake_clock, sleep=fake_clock.sleep)
    assert info.value.result == {"extra": 1}
    # polls at 0, 10 and 20 (the last one, with 5 s left): the error came from that last poll
    assert fetch.calls == 3
    assert seen == [({"status": "running", "n": 2}, error, 20)]


def test_poll_timeout_after_success_has_no_error(fake_clock):
    seen = []
    fetch = Script(fake_clock, TransportError("x"), "running")
    with pytest.raises(WaitTimeoutError):
        poll(fake_clock, fetch, timeout=15, interval=10, describe=lambda *args: seen.append(args) or WaitTimeoutError("t"))
    # polls at 0 (error) and 10 (answer, the last one: 5 s left)
    assert fetch.calls == 2
    assert seen == [("running", None, 10)]


def test_poll_slow_fetch_counts_against_the_deadline(fake_clock):
    fetch = Script(fake_clock, ("slow", 40, "running"))
    with pytest.raises(WaitTimeoutError):
        poll(fake_clock, fetch, timeout=30, describe=lambda *args: WaitTimeoutError("t"))
    assert fetch.calls == 1
    assert not fake_clock.sleeps


def test_poll_done_on_last_poll_before_deadline_is_success(fake_clock):
    fetch = Script(fake_clock, "running", "running", "done")
    outcome = poll(fake_clock, fetch, timeout=30, interval=10)
    assert outcome.value == "done"
    assert outcome.elapsed == 20


def test_poll_starts_no_poll_once_the_final_window_has_begun(fake_clock):
    fetch = Script(fake_clock, "running")
    with pytest.raises(WaitTimeoutError):
        poll(fake_clock, fetch, timeout=30, interval=10, describe=lambda *args: WaitTimeoutError("t"))
    # the last poll starts when the final window begins (25); none after it, none at the deadline
    assert fetch.times == [fake_clock.start, fake_clock.start + 10, fake_clock.start + 20, fake_clock.start + 25]
    assert fake_clock.sleeps == [10, 10, 5]
    assert fake_clock.elapsed == 25


def test_poll_sees_an_operation_that_ended_during_the_last_interval(fake_clock):
    # Review finding: the wait slept until the deadline and timed out without looking again, so an operation
    # that ended during the last interval was reported as timed out. The final poll now sees it.
    fetch = Script(fake_clock, "running", "running", "running", "done")
    outcome = poll(fake_clock, fetch, timeout=30, interval=10)
    assert outcome.value == "done"
    assert fetch.times == [fake_clock.start, fake_clock.start + 10, fake_clock.start + 20, fake_clock.start + 25]
    assert outcome.elapsed == 25
    assert fake_clock.sleeps == [10, 10, 5]


@pytest.mark.parametrize(
    "timeout, interval, final_window, times",
    [
        (25, 10, 5, [0, 10, 20]),
        (60, 100, 5, [0, 55]),
        # a short wait keeps half of its time for the last poll
        (4, 10, 2, [0, 2]),
        (1, 10, 0.5, [0, 0.5]),
    ],
)
def test_poll_final_request_gets_the_final_window(fake_clock, timeout, interval, final_window, times):
    fetch = Script(fake_clock, "running")
    with pytest.raises(WaitTimeoutError):
        poll(fake_clock, fetch, timeout=timeout, interval=interval, describe=lambda *args: WaitTimeoutError("t"))
    deadline = fake_clock.start + timeout
    assert final_window == min(w.FINAL_POLL_SECONDS, timeout / 2)
    assert fetch.times == [fake_clock.start + offset for offset in times]
    # every request, the last one included, is clipped to the same deadline: the last one has final_window left
    assert fetch.deadlines == [deadline] * len(times)
    assert deadline - fetch.times[-1] == final_window
    assert fake_clock.now == deadline - final_window


@given(
    timeout=st.integers(min_value=1, max_value=600),
    interval=st.integers(min_value=1, max_value=600),
    retry_afters=st.lists(st.one_of(st.none(), st.floats(min_value=0, max_value=10000)), min_size=1, max_size=8),
)
def test_poll_uses_the_timeout_up_to_the_final_poll_and_never_more(timeout, interval, retry_afters):
    clock = type("Clock", (), {})()
    clock.now, clock.sleeps, clock.polls = 0.0, [], []
    items = [ApiError("GET", "/x", 429, retry_after=value) if value is not None else "running" for value in retry_afters]
    final_window = min(w.FINAL_POLL_SECONDS, timeout / 2)

    def fetch(deadline):
        # every poll, the last one included, has at least the final window left before the deadline
        assert deadline == timeout and deadline - clock.now >= final_window
        clock.polls.append(clock.now)
        item = items[len(clock.sleeps) % len(items)]
        if isinstance(item, Exception):
            raise item
        return item

    def sleep(seconds):
        assert seconds > 0
        clock.sleeps.append(seconds)
        clock.now += seconds

    with pytest.raises(WaitTimeoutError):
        w.poll_until(fetch, done, timeout, interval, lambda *args: WaitTimeoutError("t"), clock=lambda: clock.now, sleep=sleep)
    # the sleeps end exactly when the final window begins, where the last poll is made; the wait then times out
    assert sum(clock.sleeps) == pytest.approx(timeout - final_window)
    assert clock.polls[-1] == pytest.approx(timeout - final_window)
    assert len(clock.polls) == len(clock.sleeps) + 1
    assert clock.now == clock.polls[-1]
    assert all(seconds <= max(interval, max((value or 0) for value in retry_afters)) for seconds in clock.sleeps)
