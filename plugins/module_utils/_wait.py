# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Waiting for an operation to end: where to poll, how to read the state, when to stop.

FOR INTERNAL COLLECTION USE ONLY: names and signatures may change in any release.
"""

from __future__ import annotations

import dataclasses
import typing as t
from urllib.parse import parse_qsl, urljoin, urlsplit

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._errors import (
    ApiError,
    ResponseFormatError,
    TransportError,
    UnsafeLocationError,
    WaitTimeoutError,
)
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._http import RETRYABLE_STATUSES, same_origin

RUNNING = "running"
SUCCEEDED = "succeeded"
CANCELLED = "cancelled"
FAILED = "failed"

_STATES = {
    "completed": SUCCEEDED,
    "complete": SUCCEEDED,
    "succeeded": SUCCEEDED,
    "canceled": CANCELLED,
    "cancelled": CANCELLED,
    "failed": FAILED,
}


def normalise_state(value: t.Any) -> str:
    """A state as the service spells it, lower case without spaces, '-' and '_' ("" for non-strings)."""
    return "".join(char for char in value.lower() if char not in " -_") if isinstance(value, str) else ""


def classify(status: t.Any) -> str:
    """Map a status as the service spells it to RUNNING, SUCCEEDED, CANCELLED or FAILED.

    Case, spaces, '-' and '_' are ignored. Anything unknown counts as still running:
    waiting longer is safer than declaring an end that did not happen.
    """
    return _STATES.get(normalise_state(status), RUNNING)


def is_in_progress(state: t.Any) -> bool:
    """True when a submission or operation state says it has not ended: non-empty and not terminal.

    The same policy as ``classify`` in the wait loops (an unknown word such as ``notStarted`` or
    ``waitingForPublisherReview`` counts as still running), so that the cancel module never reports
    "nothing to cancel" for something a wait would go on waiting for. An empty or missing state is
    not taken as a sign of work in progress.
    """
    return bool(normalise_state(state)) and classify(state) == RUNNING


def is_running_submission(submission: t.Any) -> bool:
    return isinstance(submission, dict) and is_in_progress(submission.get("submissionState"))


MAY_CANCEL = "may cancel"
CANCEL_UNDER_WAY = "cancel under way"
CANCEL_REFUSED = "cancel refused"

_CANCEL_UNDER_WAY_STATES = frozenset({"cancelrequested", "cancelling", "canceling", "cancellationrequested", "cancelinprogress", "cancellationinprogress"})


def cancellation_verdict(state: t.Any) -> str:
    """What an operation's ``cancellationRequestState`` allows: MAY_CANCEL, CANCEL_UNDER_WAY or CANCEL_REFUSED.

    Absent (or blank) counts as ``canCancel``. Only the known "under way" words mean that a cancel
    was already asked for; any other value (``cannotCancel``, a word the API adds later, a number)
    means the service does not allow a cancel now, so asking would be wrong and waiting pointless.
    """
    if state is None or (isinstance(state, str) and not state.strip()):
        return MAY_CANCEL
    key = normalise_state(state)
    if key == "cancancel":
        return MAY_CANCEL
    return CANCEL_UNDER_WAY if key in _CANCEL_UNDER_WAY_STATES else CANCEL_REFUSED


def single_operation(body: t.Any, where: str) -> dict:
    """The service documents one object but its example is a one-element list: accept both."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, dict):
        raise ResponseFormatError(f"{where} did not return an operation object.")
    return body


def operation_location(headers: t.Mapping[str, str], api_url: str, api_version: str) -> t.Optional[str]:
    """The absolute URL to poll after a 202, or None when the service sent none.

    ``Location`` is what the service sends since the Partner Center migration,
    ``Operation-Location`` what it sent before. A relative value is resolved against
    api_url; api-version is added when missing; the path is kept as sent (``$`` included).
    Raises UnsafeLocationError when the URL is on another origin than api_url.
    """
    candidates = (headers.get("Location"), headers.get("Operation-Location"))
    value = next((candidate.strip() for candidate in candidates if candidate and candidate.strip()), None)
    if value is None:
        return None
    try:
        url = urljoin(f"{api_url}/", value)
        parts = urlsplit(url)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise UnsafeLocationError(f"The service returned an operation location that is not a valid http(s) URL: {value!r}.")
    if not same_origin(url, api_url):
        raise UnsafeLocationError(
            f"The service returned an operation location on another origin ({parts.scheme}://{parts.netloc}); "
            "it is not polled because the bearer token is only sent to api_url."
        )
    if not any(pair[0].lower() == "api-version" for pair in parse_qsl(parts.query, keep_blank_values=True)):
        url = url.split("#", 1)[0]
        url += ("&" if parts.query else "?") + f"api-version={api_version}"
    return url


@dataclasses.dataclass
class Polled:
    """What one poll read, with the Retry-After the service sent along (a plain value means none)."""

    value: t.Any
    retry_after: t.Optional[float] = None


@dataclasses.dataclass
class WaitOutcome:
    value: t.Any
    elapsed: float


def is_transient(error: Exception) -> bool:
    if isinstance(error, TransportError):
        return error.retryable
    if isinstance(error, ApiError):
        return error.status in RETRYABLE_STATUSES
    return isinstance(error, ResponseFormatError)


Fetch = t.Callable[[float], t.Any]


# The last poll of a wait starts this long before its deadline (each request is clipped to the time left).
FINAL_POLL_SECONDS = 5.0


def poll_until(
    fetch: Fetch,
    done: t.Callable[[t.Any], bool],
    timeout: float,
    interval: float,
    describe_timeout: t.Callable[[t.Any, t.Optional[Exception], float], WaitTimeoutError],
    *,
    clock: t.Callable[[], float],
    sleep: t.Callable[[float], None],
) -> WaitOutcome:
    """Call ``fetch(deadline)`` until ``done(value)``, or until the poll made close to the monotonic deadline.

    ``deadline`` is the ``clock()`` time at which the wait ends: ``fetch`` hands it to every request
    so that no poll runs past it. ``clock`` and ``sleep`` are the client's, so tests drive a whole
    wait with a fake clock. ``fetch`` returns the value, or a Polled carrying the response's
    Retry-After. Transient errors (connection problems, 429, 5xx, unreadable bodies) are remembered
    and polling goes on; anything else is raised at once. A Retry-After larger than ``interval``
    wins, whether it came with an answer or with an error. The last poll starts FINAL_POLL_SECONDS
    (at most half the timeout) before the deadline, so that it still has time to be answered.
    """
    start = clock()
    deadline = start + timeout
    final_window = min(FINAL_POLL_SECONDS, timeout / 2)
    value: t.Any = None
    last_error: t.Optional[Exception] = None
    while True:
        retry_after: t.Optional[float] = None
        try:
            value = fetch(deadline)
            if isinstance(value, Polled):
                value, retry_after = value.value, value.retry_after
            last_error = None
        except Exception as error:  # pylint: disable=broad-exception-caught
            if not is_transient(error):
                raise
            last_error = error
            retry_after = getattr(error, "retry_after", None)
        else:
            if done(value):
                return WaitOutcome(value=value, elapsed=round(clock() - start, 3))
        remaining = deadline - clock()
        if remaining <= final_window:
            raise describe_timeout(value, last_error, round(clock() - start, 3))
        sleep(min(max(float(interval), retry_after or 0.0), remaining - final_window))
