# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Offer operations: read them, and cancel the one in progress.

FOR INTERNAL COLLECTION USE ONLY: names and signatures may change in any release.

Requests per cancel (besides the token request): 1 when nothing is running or the given
operation_id is not the running one; 2 when a cancellation is already under way or in
check mode; 3 for a cancel answered 200 or 202 (+1 confirming read with wait after a 200),
then one per poll while waiting.
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
    UnsafeLocationError,
    ValidationError,
    WaitTimeoutError,
)
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._http import CloudPartnerClient
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
        operation_id = submission.get("id")
        if not isinstance(operation_id, str) or not operation_id:
            raise ResponseFormatError(f"The running submission of offer {self.offer} has no id.")
        if self.request.operation_id and not _same_id(operation_id, self.request.operation_id):
            return {
                "changed": False,
                "operation_id": operation_id,
                "msg": f"Operation {self.request.operation_id} is not the operation in progress on offer {self.offer} "
                f"(that is {operation_id}): nothing was sent.",
                "operation": submission,
            }
        operation = get_operation(self.client, self.offer, check.path_segment("operation id", operation_id))
        self.sent["operation_id"] = operation_id
        state = operation.get("cancellationRequestState")
        if isinstance(state, str) and state.lower() != "cancancel":
            return self._already_cancelling(operation_id, operation, state)
        if self.check_mode:
            return {
                "changed": True,
                "msg": f"Would cancel operation {operation_id} on offer {self.offer}.",
                "operation": operation,
                "operation_id": operation_id,
            }
        return self._cancel(operation_id, operation)

    def _already_cancelling(self, operation_id: str, operation: dict, state: str) -> dict:
        result: dict[str, t.Any] = {
            "changed": False,
            "msg": f"A cancellation of operation {operation_id} on offer {self.offer} is already under way or refused "
            f"(cancellationRequestState {state}): nothing was sent.",
            "operation": operation,
            "operation_id": operation_id,
        }
        if self.request.wait.enabled and not self.check_mode:
            url = self.client.url(f"{self.offer.path}/operations/{operation_id}")
            outcome = self._wait_on_location(operation_id, url, result)
            result.update(operation=outcome.value, elapsed=outcome.elapsed)
            result["msg"] += " " + self._ending(operation_id, outcome.value.get("status"))
        return result

    def _cancel(self, operation_id: str, operation: dict) -> dict:
        try:
            response = self.client.request("POST", self.client.url(f"{self.offer.path}/cancel"), json_body=self.request.body, expected=(200, 202))
        except ApiError as error:
            error.result.setdefault("status_code", error.status)
            raise
        result: dict[str, t.Any] = {"changed": True, "status_code": response.status, "operation": operation, "operation_id": operation_id}
        self.sent.update(changed=True, status_code=response.status)
        if response.status == 200:
            result["msg"] = f"Cancelled operation {operation_id} on offer {self.offer}."
            if self.request.wait.enabled:
                result["operation"] = get_operation(self.client, self.offer, operation_id)
            return result
        try:
            location = waiting.operation_location(response.headers, self.client.options.api_url, self.client.options.api_version)
            unsafe = None
        except UnsafeLocationError as error:
            # Not returned as operation_location: nothing should poll it with the token.
            location, unsafe = None, error
            self.warn(error.message)
        if location:
            result["operation_location"] = location
        if result.get("operation_location"):
            self.sent["operation_location"] = result["operation_location"]
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
        def fetch() -> waiting.Polled:
            response = self.client.request("GET", location, retries=0)
            return waiting.Polled(waiting.single_operation(response.json(), f"The operation location of {operation_id}"), response.retry_after)

        return waiting.poll_until(
            fetch,
            lambda operation: waiting.classify(operation.get("status")) != waiting.RUNNING,
            self.request.wait.timeout,
            self.request.wait.sleep,
            self._timeout_error(operation_id, partial, "status"),
        )

    def _wait_on_submissions(self, operation_id: str, partial: dict) -> waiting.WaitOutcome:
        def fetch() -> waiting.Polled:
            response = self.client.request("GET", self.client.url(f"{self.offer.path}/submissions/"), retries=0)
            submissions = submissions_from(response.json(), self.offer)
            match = next((item for item in submissions if isinstance(item, dict) and _same_id(item.get("id"), operation_id)), None)
            return waiting.Polled(match, response.retry_after)

        return waiting.poll_until(
            fetch,
            lambda submission: submission is None or not waiting.is_running_submission(submission),
            self.request.wait.timeout,
            self.request.wait.sleep,
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
            # The id comes from the service (cancel's operation_id): the same path-segment rule as there.
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

    def poll_round(self) -> waiting.Polled:
        retry_after: t.Optional[float] = None
        for state, url in zip(self.states, self.urls):
            if state["ended"]:
                continue
            try:
                response = self.client.request("GET", url, retries=0)
                operation = waiting.single_operation(response.json(), f"Operation {state['operation_id']} of offer {state['offer_id']}")
            except CloudPartnerError as error:
                if waiting.is_transient(error):
                    state["last_error"] = error.message
                    error_retry_after = getattr(error, "retry_after", None)
                    if error_retry_after is not None:
                        retry_after = max(retry_after or 0.0, error_retry_after)
                    continue
                # A permanent error (403, 404, ...) ends the wait for this operation, not for the others.
                state.update(ended=True, failed=True, msg=error.message)
                continue
            state.pop("last_error", None)
            state["operation"] = operation
            state["status"] = operation.get("status")
            state["ended"] = waiting.classify(operation.get("status")) != waiting.RUNNING
            if response.retry_after is not None:
                retry_after = max(retry_after or 0.0, response.retry_after)
        return waiting.Polled(self.states, retry_after)

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
    outcome = waiting.poll_until(
        waiter.poll_round,
        lambda states: all(state["ended"] for state in states),
        request.wait.timeout,
        request.wait.sleep,
        waiter.describe_timeout,
    )
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
