# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Offer operations: read them, and cancel the one in progress.

FOR INTERNAL COLLECTION USE ONLY: names and signatures may change in any release.

Requests per cancel (besides the token request): 1 when nothing is running or the given
operation_id is not the running one; 2 when a cancellation is already under way or refused, or in
check mode; 3 for a cancel answered 200 or 202 (+1 confirming read with wait after a 200),
then one per poll while waiting. A cancel whose answer is lost costs one read of the operation
before each repeat, and at most ``retries`` repeats.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _validation as check
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _wait as waiting
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._errors import (
    ApiError,
    CloudPartnerError,
    ResponseFormatError,
    TransportError,
    UnsafeLocationError,
    ValidationError,
    WaitTimeoutError,
)
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._http import (
    MAX_RETRY_AFTER,
    ApiResponse,
    CloudPartnerClient,
)
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._options import OfferRef, WaitOptions

Warn = t.Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class CancelRequest:
    offer: OfferRef
    operation_id: t.Optional[str]
    notification_emails: t.List[str]
    wait: WaitOptions

    @classmethod
    def from_params(cls, params: t.Mapping[str, t.Any]) -> "CancelRequest":
        operation_id = params.get("operation_id")
        return cls(
            offer=OfferRef.from_params(params),
            operation_id=check.guid("operation_id", operation_id) if operation_id else None,
            notification_emails=check.email_list("notification_emails", params.get("notification_emails")),
            wait=WaitOptions.from_params(params),
        )

    @property
    def body(self) -> t.Optional[dict]:
        if not self.notification_emails:
            return None
        return {"metadata": {"notification-emails": ",".join(self.notification_emails)}}


def submissions_from(body: t.Any, offer: OfferRef) -> list:
    if not isinstance(body, list):
        raise ResponseFormatError(f"The submissions list of offer {offer} is not a JSON array.")
    return body


def list_submissions(client: CloudPartnerClient, offer: OfferRef, status: t.Optional[str] = None) -> list:
    return submissions_from(client.get_json(f"{offer.path}/submissions/", status=status), offer)


def running_submission(client: CloudPartnerClient, offer: OfferRef) -> t.Optional[dict]:
    """The submission in progress, if any. The status filter is only a hint to the service: filter here too."""
    return next((item for item in list_submissions(client, offer, status="running") if waiting.is_running_submission(item)), None)


def get_operation(client: CloudPartnerClient, offer: OfferRef, operation_id: str) -> dict:
    body = client.get_json(f"{offer.path}/operations/{operation_id}")
    return waiting.single_operation(body, f"Operation {operation_id} of offer {offer}")


def _same_id(left: t.Any, right: t.Any) -> bool:
    return isinstance(left, str) and isinstance(right, str) and left.lower() == right.lower()


def _operation_id_of(submission: dict, offer: OfferRef) -> str:
    """The id of the running submission, checked before it becomes part of a request path."""
    operation_id = submission.get("id")
    if not isinstance(operation_id, str) or not operation_id:
        raise ResponseFormatError(f"The running submission of offer {offer} has no id.")
    try:
        return check.path_segment("operation id", operation_id)
    except ValidationError:
        # The id comes from the service, not from the user: an unusable one is a malformed answer.
        raise ResponseFormatError(
            f"The running submission of offer {offer} has an id that cannot be used in a request path: {ascii(operation_id)}."
        ) from None


def _poll(
    client: CloudPartnerClient,
    wait: WaitOptions,
    fetch: waiting.Fetch,
    done: t.Callable[[t.Any], bool],
    describe: t.Callable[[t.Any, t.Optional[Exception], float], WaitTimeoutError],
) -> waiting.WaitOutcome:
    # The client's clock and sleep: the wait's deadline and every request's deadline run on one time source.
    return waiting.poll_until(fetch, done, wait.timeout, wait.sleep, describe, clock=client.clock, sleep=client.sleep)


def _pause(client: CloudPartnerClient, attempt: int, error: CloudPartnerError) -> None:
    """Back off as the client does between its own retries, honouring a sensible Retry-After."""
    delay = getattr(error, "retry_after", None)
    if delay is None or delay > MAX_RETRY_AFTER:
        delay = client.backoff(attempt)
    client.sleep(delay)


def _loss(error: CloudPartnerError) -> str:
    return f"HTTP {error.status}" if isinstance(error, ApiError) else error.message.rstrip(".")


def _note_attempts(error: CloudPartnerError, sent: int) -> None:
    # Say what was tried: the last error alone does not tell that earlier requests went out.
    error.message += f" {sent} cancel request{'s were' if sent > 1 else ' was'} sent; the operation read afterwards did not show a cancellation."


@dataclasses.dataclass(frozen=True)
class _LostAnswer:
    """The cancel's answer was lost, and the operation read afterwards shows that the cancel arrived."""

    operation: dict
    error: CloudPartnerError


class _Canceller:
    """One cancel task: holds what is known so that failures can report it."""

    def __init__(self, client: CloudPartnerClient, request: CancelRequest, check_mode: bool, warn: Warn) -> None:
        self.client = client
        self.request = request
        self.check_mode = check_mode
        self.warn = warn
        self.offer = request.offer
        self.sent: dict[str, t.Any] = {}

    def run(self) -> dict:
        submission = running_submission(self.client, self.offer)
        if submission is None:
            return {"changed": False, "msg": f"No operation is in progress on offer {self.offer}: nothing to cancel."}
        operation_id = _operation_id_of(submission, self.offer)
        if self.request.operation_id and not _same_id(operation_id, self.request.operation_id):
            return {
                "changed": False,
                "operation_id": operation_id,
                "msg": f"Operation {self.request.operation_id} is not the operation in progress on offer {self.offer} "
                f"(that is {operation_id}): nothing was sent.",
                "operation": submission,
            }
        operation = get_operation(self.client, self.offer, operation_id)
        self.sent["operation_id"] = operation_id
        state = operation.get("cancellationRequestState")
        verdict = waiting.cancellation_verdict(state)
        if verdict == waiting.CANCEL_REFUSED:
            raise CloudPartnerError(
                f"The service does not allow cancelling operation {operation_id} on offer {self.offer} now "
                f"(cancellationRequestState {state!r}): nothing was sent.",
                changed=False,
                operation=operation,
                operation_id=operation_id,
            )
        if verdict == waiting.CANCEL_UNDER_WAY:
            return self._already_cancelling(operation_id, operation, state)
        if self.check_mode:
            return {
                "changed": True,
                "msg": f"Would cancel operation {operation_id} on offer {self.offer}.",
                "operation": operation,
                "operation_id": operation_id,
            }
        return self._cancel(operation_id, operation)

    def _already_cancelling(self, operation_id: str, operation: dict, state: t.Any) -> dict:
        result: dict[str, t.Any] = {
            "changed": False,
            "msg": f"A cancellation of operation {operation_id} on offer {self.offer} is already under way "
            f"(cancellationRequestState {state!r}): nothing was sent.",
            "operation": operation,
            "operation_id": operation_id,
        }
        if self.request.wait.enabled and not self.check_mode:
            self._wait_for_end(operation_id, result)
        return result

    def _wait_for_end(self, operation_id: str, result: dict) -> None:
        """Poll the operation itself until it ends; used when no cancel answer told where to poll."""
        url = self.client.url(f"{self.offer.path}/operations/{operation_id}")
        outcome = self._wait_on_location(operation_id, url, result)
        result.update(operation=outcome.value, elapsed=outcome.elapsed)
        result["msg"] += " " + self._ending(operation_id, outcome.value.get("status"))

    def _cancel(self, operation_id: str, operation: dict) -> dict:
        try:
            sent = self._send_cancel(operation_id)
        except ApiError as error:
            error.result.setdefault("status_code", error.status)
            raise
        if isinstance(sent, _LostAnswer):
            return self._received(operation_id, sent)
        response = sent
        result: dict[str, t.Any] = {"changed": True, "status_code": response.status, "operation": operation, "operation_id": operation_id}
        self.sent.update(changed=True, status_code=response.status)
        if response.status == 200:
            result["msg"] = f"Cancelled operation {operation_id} on offer {self.offer}."
            if self.request.wait.enabled:
                result["operation"] = get_operation(self.client, self.offer, operation_id)
            return result
        return self._accepted(operation_id, response, result)

    def _send_cancel(self, operation_id: str) -> t.Union[ApiResponse, _LostAnswer]:
        """POST the cancel, and after a lost answer look at the operation before asking again.

        The client's automatic retry is off: repeating blindly a cancel that already arrived can
        meet an error ("nothing to cancel") and fail a task whose cancel worked. A 4xx to a
        repeated request gets one more look for the same reason; a 4xx to the first one fails.
        """
        url = self.client.url(f"{self.offer.path}/cancel")
        attempt = 0
        while True:
            try:
                return self.client.request("POST", url, json_body=self.request.body, expected=(200, 202), retries=0)
            except (TransportError, ApiError) as error:
                # Transient means the request may have reached the service although no usable answer came back.
                lost = waiting.is_transient(error)
                if not lost and attempt == 0:
                    raise
                if lost:
                    _pause(self.client, attempt, error)
                operation = self._cancellation_shown(operation_id)
                if operation is not None:
                    return _LostAnswer(operation, error)
                if not lost or attempt >= self.client.options.retries:
                    _note_attempts(error, attempt + 1)
                    raise
            attempt += 1

    def _cancellation_shown(self, operation_id: str) -> t.Optional[dict]:
        """The operation when it shows that a cancel arrived (under way, or ended), else None."""
        try:
            operation = get_operation(self.client, self.offer, operation_id)
        except CloudPartnerError:
            # Not knowing is not "received": the caller repeats the cancel, or reports its error.
            return None
        ended = waiting.classify(operation.get("status")) != waiting.RUNNING
        under_way = waiting.cancellation_verdict(operation.get("cancellationRequestState")) == waiting.CANCEL_UNDER_WAY
        return operation if ended or under_way else None

    def _received(self, operation_id: str, lost: _LostAnswer) -> dict:
        self.sent["changed"] = True
        operation = lost.operation
        result: dict[str, t.Any] = {
            "changed": True,
            "msg": f"The cancel request for operation {operation_id} on offer {self.offer} was received although its answer "
            f"was lost ({_loss(lost.error)}): the operation shows the cancellation, so the request was not sent again.",
            "operation": operation,
            "operation_id": operation_id,
        }
        status = operation.get("status")
        if waiting.classify(status) != waiting.RUNNING:
            result["msg"] += " " + self._ending(operation_id, status)
        elif self.request.wait.enabled:
            self._wait_for_end(operation_id, result)
        return result

    def _accepted(self, operation_id: str, response: ApiResponse, result: dict) -> dict:
        try:
            location = waiting.operation_location(response.headers, self.client.options.api_url, self.client.options.api_version)
            unsafe = None
        except UnsafeLocationError as error:
            # Not returned as operation_location: nothing should poll it with the token.
            location, unsafe = None, error
            self.warn(error.message)
        if location:
            result["operation_location"] = location
            self.sent["operation_location"] = location
        result["msg"] = f"Cancellation of operation {operation_id} on offer {self.offer} was accepted (HTTP 202)."
        if not self.request.wait.enabled:
            return result
        if location:
            outcome = self._wait_on_location(operation_id, location, result)
            status = outcome.value.get("status")
        else:
            if unsafe is None:
                self.warn("The service accepted the cancellation without an operation location: waiting on the submissions list instead.")
            outcome = self._wait_on_submissions(operation_id, result)
            # The list only says the submission stopped running (or left the list): read how it ended.
            final = self._final_operation(operation_id, outcome.value)
            outcome.value = final
            status = final.get("status") or final.get("submissionState") if final else None
        if outcome.value:
            result["operation"] = outcome.value
        result["elapsed"] = outcome.elapsed
        result["msg"] += " " + self._ending(operation_id, status)
        return result

    def _final_operation(self, operation_id: str, submission: t.Optional[dict]) -> t.Optional[dict]:
        try:
            return get_operation(self.client, self.offer, operation_id)
        except CloudPartnerError as error:
            self.warn(f"Could not read the final state of operation {operation_id}: {error.message}")
            return submission

    def _ending(self, operation_id: str, status: t.Any) -> str:
        if status is None:
            return f"Operation {operation_id} is no longer in progress; its final status is unknown."
        state = waiting.classify(status)
        if state == waiting.CANCELLED:
            return f"Operation {operation_id} is cancelled."
        message = f"Operation {operation_id} ended with status {status!r} instead of being cancelled; nothing is in progress any more."
        self.warn(message)
        return message

    def _wait_on_location(self, operation_id: str, location: str, partial: dict) -> waiting.WaitOutcome:
        def fetch(deadline: float) -> waiting.Polled:
            response = self.client.request("GET", location, retries=0, deadline=deadline)
            return waiting.Polled(waiting.single_operation(response.json(), f"The operation location of {operation_id}"), response.retry_after)

        return _poll(
            self.client,
            self.request.wait,
            fetch,
            lambda operation: waiting.classify(operation.get("status")) != waiting.RUNNING,
            self._timeout_error(operation_id, partial, "status"),
        )

    def _wait_on_submissions(self, operation_id: str, partial: dict) -> waiting.WaitOutcome:
        def fetch(deadline: float) -> waiting.Polled:
            response = self.client.request("GET", self.client.url(f"{self.offer.path}/submissions/"), retries=0, deadline=deadline)
            submissions = submissions_from(response.json(), self.offer)
            match = next((item for item in submissions if isinstance(item, dict) and _same_id(item.get("id"), operation_id)), None)
            return waiting.Polled(match, response.retry_after)

        return _poll(
            self.client,
            self.request.wait,
            fetch,
            lambda submission: submission is None or not waiting.is_running_submission(submission),
            self._timeout_error(operation_id, partial, "submissionState"),
        )

    def _timeout_error(self, operation_id: str, partial: dict, status_key: str) -> t.Callable[[t.Any, t.Optional[Exception], float], WaitTimeoutError]:
        def describe(last: t.Any, last_error: t.Optional[Exception], elapsed: float) -> WaitTimeoutError:
            status = last.get(status_key) if isinstance(last, dict) else None
            message = (
                f"Timed out after {self.request.wait.timeout} seconds waiting for operation {operation_id} on offer {self.offer} "
                f"to end; last status: {status or 'unknown'}."
            )
            if last_error is not None:
                message += f" Last poll failed: {last_error}"
            result = dict(partial, elapsed=elapsed)
            result.pop("msg", None)
            if isinstance(last, dict):
                result["operation"] = last
            return WaitTimeoutError(message, **result)

        return describe


@dataclasses.dataclass(frozen=True)
class InfoRequest:
    offer: OfferRef
    operation_id: t.Optional[str]
    status: t.Optional[str]

    @classmethod
    def from_params(cls, params: t.Mapping[str, t.Any]) -> "InfoRequest":
        operation_id = params.get("operation_id")
        status = params.get("status")
        return cls(
            offer=OfferRef.from_params(params),
            operation_id=check.guid("operation_id", operation_id) if operation_id else None,
            status=check.status_filter("status", status) if status else None,
        )


def read_operations(client: CloudPartnerClient, request: InfoRequest, check_mode: bool, warn: Warn) -> dict:
    """The operations of an offer: one by id, or the submissions list, optionally filtered by state."""
    if request.operation_id:
        return {"changed": False, "operations": [get_operation(client, request.offer, request.operation_id)]}
    submissions = list_submissions(client, request.offer, status=request.status)
    if request.status:
        # The filter is only a hint to the service (its name differs between clients): apply it here too.
        wanted = waiting.normalise_state(request.status)
        submissions = [item for item in submissions if isinstance(item, dict) and waiting.normalise_state(item.get("submissionState")) == wanted]
    return {"changed": False, "operations": submissions}


def cancel_offer_operation(client: CloudPartnerClient, request: CancelRequest, check_mode: bool, warn: Warn) -> dict:
    """Cancel the operation in progress on an offer; see the module documentation for every outcome."""
    canceller = _Canceller(client, request, check_mode, warn)
    try:
        return canceller.run()
    except CloudPartnerError as error:
        # Once the cancel was sent, a later failure (while waiting) must still report it.
        for key, value in canceller.sent.items():
            error.result.setdefault(key, value)
        raise


@dataclasses.dataclass(frozen=True)
class WaitTarget:
    offer: OfferRef
    operation_id: str
    location: t.Optional[str]


@dataclasses.dataclass(frozen=True)
class WaitRequest:
    targets: t.List[WaitTarget]
    wait: WaitOptions

    @classmethod
    def from_params(cls, params: t.Mapping[str, t.Any]) -> "WaitRequest":
        publisher_id = check.path_segment("publisher_id", params.get("publisher_id"))
        targets = []
        for index, item in enumerate(params.get("operations") or []):
            where = f"operations[{index}]"
            offer = OfferRef(publisher_id=publisher_id, offer_id=check.path_segment(f"{where}.offer_id", item.get("offer_id")))
            location = (item.get("location") or "").strip() or None
            # The id as the service gave it (cancel's operation_id, not always a GUID): it only has to be a safe path segment.
            targets.append(WaitTarget(offer, check.path_segment(f"{where}.operation_id", item.get("operation_id")), location))
        return cls(targets=targets, wait=WaitOptions.from_params(dict(params, wait=True)))


class _OperationsWaiter:
    """Polls several operations in rounds until every one has ended, under one deadline."""

    def __init__(self, client: CloudPartnerClient, request: WaitRequest) -> None:
        self.client = client
        self.request = request
        self.urls = [self._url(index, target) for index, target in enumerate(request.targets)]
        self.states: t.List[dict] = [{"offer_id": target.offer.offer_id, "operation_id": target.operation_id, "ended": False} for target in request.targets]

    def _url(self, index: int, target: WaitTarget) -> str:
        if target.location:
            # A location from an earlier task came from the network too: the same origin rule applies.
            try:
                url = waiting.operation_location({"Location": target.location}, self.client.options.api_url, self.client.options.api_version)
            except UnsafeLocationError as error:
                raise ValidationError(f"operations[{index}].location is refused: {error.message}") from None
            if url:
                return url
        return self.client.url(f"{target.offer.path}/operations/{target.operation_id}")

    def poll_round(self, deadline: float) -> waiting.Polled:
        """One GET per operation that has not ended, each clipped to the time left before ``deadline``."""
        retry_after: t.Optional[float] = None
        for state, url in zip(self.states, self.urls):
            if state["ended"]:
                continue
            if self.client.clock() >= deadline:
                # Out of time: the operations not reached keep their last status for the timeout report.
                break
            polled = self._poll_one(state, url, deadline)
            if polled is not None:
                retry_after = max(retry_after or 0.0, polled)
        return waiting.Polled(self.states, retry_after)

    def _poll_one(self, state: dict, url: str, deadline: float) -> t.Optional[float]:
        """Update one operation's state; returns the Retry-After its answer (or error) carried."""
        try:
            response = self.client.request("GET", url, retries=0, deadline=deadline)
            operation = waiting.single_operation(response.json(), f"Operation {state['operation_id']} of offer {state['offer_id']}")
        except CloudPartnerError as error:
            if waiting.is_transient(error):
                state["last_error"] = error.message
                return getattr(error, "retry_after", None)
            # A permanent error (403, 404, ...) ends the wait for this operation, not for the others.
            state.update(ended=True, failed=True, msg=error.message)
            return None
        state.pop("last_error", None)
        state["operation"] = operation
        state["status"] = operation.get("status")
        state["ended"] = waiting.classify(operation.get("status")) != waiting.RUNNING
        return response.retry_after

    def describe_timeout(self, states: t.Any, last_error: t.Optional[Exception], elapsed: float) -> WaitTimeoutError:
        pending = [f"{state['offer_id']} ({state.get('status') or 'unknown'})" for state in self.states if not state["ended"]]
        failed = [state["offer_id"] for state in self.states if state.get("failed")]
        noun = "operation" if len(pending) == 1 else "operations"
        message = f"Timed out after {self.request.wait.timeout} seconds waiting for {len(pending)} {noun} to end; last status: {', '.join(pending)}."
        if failed:
            message += f" Could not be read: {', '.join(failed)}."
        return WaitTimeoutError(message, changed=False, operations=self.states, elapsed=elapsed)


def wait_for_operations(client: CloudPartnerClient, request: WaitRequest, check_mode: bool, warn: Warn) -> dict:
    """Wait until every given operation has ended; one task waits for many cancellations at once."""
    waiter = _OperationsWaiter(client, request)
    if not waiter.states:
        return {"changed": False, "msg": "No operation to wait for.", "operations": [], "elapsed": 0.0}
    outcome = _poll(client, request.wait, waiter.poll_round, lambda states: all(state["ended"] for state in states), waiter.describe_timeout)
    failed = [state for state in waiter.states if state.get("failed")]
    if failed:
        names = ", ".join(state["offer_id"] for state in failed)
        raise CloudPartnerError(
            f"Could not read {len(failed)} of {len(waiter.states)} operations ({names}): {failed[0]['msg']}",
            changed=False,
            operations=waiter.states,
            elapsed=outcome.elapsed,
        )
    counts: dict[str, int] = {}
    for state in waiter.states:
        label = waiting.classify(state.get("status"))
        counts[label] = counts.get(label, 0) + 1
    summary = ", ".join(f"{count} {label}" for label, count in sorted(counts.items()))
    for state in waiter.states:
        if waiting.classify(state.get("status")) != waiting.CANCELLED:
            warn(f"Operation {state['operation_id']} on offer {state['offer_id']} ended with status {state.get('status')!r}, not cancelled.")
    return {"changed": False, "msg": f"All {len(waiter.states)} operations ended: {summary}.", "operations": waiter.states, "elapsed": outcome.elapsed}
