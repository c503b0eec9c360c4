"""Emulator of the Azure Cloud Partner Portal API and of the Entra ID (Azure AD) v2.0 token endpoint.

This is a test double. It serves, on loopback, the small part of both services that the collection uses,
so that the tests and the demo need no Azure account and no network. The modules know nothing about it:
they reach it only through ``api_url``, ``authority_host`` and ``ca_path``.

Listeners: ``api`` (HTTPS; also the control API under ``/_emulator``), ``api_http`` (the same on plain HTTP),
``login`` (HTTPS, OpenID discovery and the client-credentials token endpoint), ``foreign`` (HTTPS, an
unrelated origin that records whether a token or the client secret was sent to it) and ``proxy`` (plain HTTP,
a forward proxy that forwards nothing: it records what reached it and answers 502). The TLS certificates come
from a CA that is generated at every start and written to ``<state-dir>/ca.pem``.

Behaviour, control API and scenario format: see README.md next to this file.
Usage: ``python cloudpartner_emulator.py {serve,start,stop} --state-dir DIR [--preset demo]``.
Python 3.11+ standard library, plus ``trustme``.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import http
import http.server
import ipaddress
import json
import os
import re
import secrets
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

API_VERSION = "2017-10-31"
RESOURCE = "https://cloudpartner.azure.com"
SCOPE = f"{RESOURCE}/.default"
CONTROL_PREFIX = "/_emulator"
STATE_FILE = "emulator.json"
LOG_FILE = "emulator.log"
CA_FILE = "ca.pem"
DEFAULT_PUBLISHER = "contoso"
JSON_TYPE = "application/json; charset=utf-8"
MALFORMED_BODY = b"<html><body><h1>502 Bad Gateway</h1>upstream sent an invalid response</body></html>"
HANDSHAKE_TIMEOUT = 10
SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
HOST_HEADER = re.compile(r"[A-Za-z0-9.\-]+(:\d+)?|\[[0-9A-Fa-f:.]+\](:\d+)?")

DEFAULT_SETTINGS: dict[str, Any] = {
    "token_lifetime": 3599,
    "token_error": None,
    "token_redirect": None,
    "discovery_redirect": None,
    "reject_tokens": 0,
    "token_max_uses": 0,
}
REDIRECT_DEFAULTS: dict[str, Any] = {"status": 307, "to": "foreign"}
REDIRECT_TARGETS = ("foreign", "api_http")

SCENARIO_DEFAULTS: dict[str, Any] = {
    "state": "running",
    "operation_id": None,
    "submission_type": "publish",
    "cancellation_request_state": "canCancel",
    "operation_as_list": False,
    "cancel": None,
    "error": None,
    "faults": None,
    "history": None,
}
CANCEL_DEFAULTS: dict[str, Any] = {
    "status": 202,
    "location": "relative",
    "duration": 0,
    "final_status": "canceled",
    "poll_retry_after": None,
    "end_after_reads": None,
}
ERROR_DEFAULTS: dict[str, Any] = {"on": "any", "status": 403, "code": None, "message": None, "raw": None}
FAULT_DEFAULTS: dict[str, Any] = {
    "on": "any",
    "status": None,
    "retry_after": None,
    "times": 1,
    "malformed": False,
    "delay": 0,
    "reset": False,
    "code": None,
    "message": None,
    "apply": False,
    "trickle_bytes": 0,
    "trickle_interval": 0.5,
    "huge_bytes": 0,
}
TOKEN_ERROR_KEYS = {"status", "error", "error_description", "error_codes", "retry_after"}

STATES = ("running", "idle", "missing")
LOCATIONS = ("relative", "absolute", "both", "none", "foreign", "dollar", "noversion")
FINAL_STATUSES = ("canceled", "completed", "failed")
ERROR_KINDS = ("cancel", "list", "operation", "any")
FAULT_KINDS = ("cancel", "list", "operation", "poll", "token", "discovery", "any")
LOGIN_FAULT_KINDS = ("token", "discovery")
# cancellationRequestState values that mean "someone already asked" (compared without case and non-letters),
# as the contract lists them; the emulator ends such an operation like one it was asked to cancel itself.
UNDER_WAY_STATES = frozenset(
    ("cancelrequested", "cancelling", "canceling", "cancellationrequested", "cancelinprogress", "cancellationinprogress")
)
HUGE_CHUNK = 64 * 1024
# Every request log entry has these keys (README.md, "Log entry").
LOG_DEFAULTS: dict[str, Any] = {
    "time": None,
    "listener": None,
    "method": None,
    "host": None,
    "path": None,
    "query": None,
    "status": None,
    "auth": "none",
    "body": None,
    "offer": None,
    "fault": None,
    "secret_received": False,
}

ERROR_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    412: "PreconditionFailed",
    422: "UnprocessableEntity",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}
ERROR_MESSAGES = {
    429: "The request was throttled. Retry after the number of seconds in the Retry-After header.",
    500: "We cannot complete the request now, please try again later.",
}

STEPS = (
    ("displaydummycertify", "Validate Pre-Requisites", "< 15 min"),
    ("displaycertify", "Certification", "~2-5 days"),
    ("displayprovision", "Provisioning", "~1-2 days"),
    ("displaypackage", "Packaging and Lead Generation Registration", "< 1 day"),
    ("publisher-signoff", "Publisher signoff", None),
    ("live", "Live", "< 1 day"),
)
CURRENT_STEP = 2
STEP_STATUS_AT_CURRENT = {"running": "inProgress", "canceled": "canceled", "failed": "failed", "completed": "complete"}
OPERATION_MESSAGES = {
    "running": ("information", "Publishing is in progress."),
    "canceled": ("information", "The operation was canceled."),
    "failed": ("error", "The operation failed."),
    "completed": ("information", "The operation completed."),
}

PRESETS: dict[str, dict[tuple[str, str], dict[str, Any]]] = {
    "demo": {
        (DEFAULT_PUBLISHER, "running-202"): {"cancel": {"status": 202, "location": "relative", "duration": 3}},
        (DEFAULT_PUBLISHER, "running-200"): {"cancel": {"status": 200}},
        (DEFAULT_PUBLISHER, "idle"): {"state": "idle"},
        (DEFAULT_PUBLISHER, "slow-cancel"): {"cancel": {"status": 202, "location": "relative", "duration": 10}},
    },
}


# --------------------------------------------------------------------------------------------------
# Small helpers


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def utc_at(monotonic: float) -> datetime.datetime:
    """The wall-clock time of a time.monotonic() value."""
    return utc_now() - datetime.timedelta(seconds=time.monotonic() - monotonic)


def iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def header_seconds(value: Any) -> str:
    """Format a number of seconds for Retry-After."""
    if isinstance(value, (int, float)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def url_host(host: str) -> str:
    """The host part of a URL for a bind address (wildcards become loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_state(value: str | None) -> str:
    """A cancellationRequestState without case and non-letters ("Cancel_In-Progress" -> "cancelinprogress")."""
    return re.sub(r"[^a-z]", "", (value or "").lower())


def log_line(text: str) -> None:
    """One line of the emulator log (stderr; `start` sends it to <state-dir>/emulator.log). Never a secret."""
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Scenario and settings validation


class ScenarioError(ValueError):
    """A scenario or a settings document that the emulator cannot use (answered with 400)."""


def with_defaults(name: str, value: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ScenarioError(f"{name} must be an object")
    unknown = sorted(set(value) - set(defaults))
    if unknown:
        raise ScenarioError(f"unknown key(s) in {name}: {', '.join(unknown)}")
    return {**defaults, **value}


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    if value not in choices:
        raise ScenarioError(f"{name} must be one of {', '.join(str(choice) for choice in choices)}, not {value!r}")


def check_number(name: str, value: Any, minimum: float = 0, integer: bool = False, optional: bool = False) -> None:
    if value is None and optional:
        return
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
        raise ScenarioError(f"{name} must be {'an integer' if integer else 'a number'} >= {minimum}, not {value!r}")


def check_status(name: str, value: Any, optional: bool = False) -> None:
    check_number(name, value, minimum=100, integer=True, optional=optional)
    if value is not None and value > 599:
        raise ScenarioError(f"{name} must be an HTTP status (100-599), not {value!r}")


def check_type(name: str, value: Any, kind: type | tuple[type, ...], optional: bool = False) -> None:
    if (value is None and optional) or isinstance(value, kind):
        return
    raise ScenarioError(f"{name} has the wrong type: {value!r}")


def normalize_cancel(value: Any) -> dict[str, Any]:
    cancel = with_defaults("cancel", value, CANCEL_DEFAULTS)
    check_choice("cancel.status", cancel["status"], (200, 202))
    check_choice("cancel.location", cancel["location"], LOCATIONS)
    check_number("cancel.duration", cancel["duration"])
    check_choice("cancel.final_status", cancel["final_status"], FINAL_STATUSES)
    check_number("cancel.poll_retry_after", cancel["poll_retry_after"], optional=True)
    check_number("cancel.end_after_reads", cancel["end_after_reads"], minimum=1, integer=True, optional=True)
    return cancel


def normalize_error(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    error = with_defaults("error", value, ERROR_DEFAULTS)
    check_choice("error.on", error["on"], ERROR_KINDS)
    check_status("error.status", error["status"])
    for key in ("code", "message", "raw"):
        check_type(f"error.{key}", error[key], str, optional=True)
    return error


def normalize_fault(index: int, value: Any) -> dict[str, Any]:
    name = f"faults[{index}]"
    fault = with_defaults(name, value, FAULT_DEFAULTS)
    check_choice(f"{name}.on", fault["on"], FAULT_KINDS)
    check_status(f"{name}.status", fault["status"], optional=True)
    check_number(f"{name}.retry_after", fault["retry_after"], optional=True)
    check_number(f"{name}.times", fault["times"], minimum=1, integer=True)
    check_number(f"{name}.delay", fault["delay"])
    check_number(f"{name}.trickle_bytes", fault["trickle_bytes"], integer=True)
    check_number(f"{name}.trickle_interval", fault["trickle_interval"], minimum=0.001)
    check_number(f"{name}.huge_bytes", fault["huge_bytes"], integer=True)
    for key in ("malformed", "reset", "apply"):
        check_type(f"{name}.{key}", fault[key], bool)
    for key in ("code", "message"):
        check_type(f"{name}.{key}", fault[key], str, optional=True)
    return fault


def normalize_history(index: int, value: Any, created: datetime.datetime) -> dict[str, Any]:
    check_type(f"history[{index}]", value, dict)
    defaults = {
        "id": str(uuid.uuid4()),
        "submissionType": "publish",
        "submissionState": "completed",
        "changedTime": iso(created - datetime.timedelta(days=index + 1)),
    }
    return {**defaults, **value}


def normalize_scenario(value: Any) -> dict[str, Any]:
    """Validate a scenario document and fill in every default (see README.md, "Scenario JSON")."""
    scenario = with_defaults("scenario", value, SCENARIO_DEFAULTS)
    check_choice("state", scenario["state"], STATES)
    scenario["operation_id"] = scenario["operation_id"] or str(uuid.uuid4())
    if not isinstance(scenario["operation_id"], str) or not SEGMENT.fullmatch(scenario["operation_id"]):
        raise ScenarioError(f"operation_id must be a GUID-like path segment, not {scenario['operation_id']!r}")
    check_type("submission_type", scenario["submission_type"], str)
    check_type("cancellation_request_state", scenario["cancellation_request_state"], str, optional=True)
    check_type("operation_as_list", scenario["operation_as_list"], bool)
    scenario["cancel"] = normalize_cancel(scenario["cancel"])
    scenario["error"] = normalize_error(scenario["error"])
    check_type("faults", scenario["faults"], list, optional=True)
    scenario["faults"] = [normalize_fault(index, fault) for index, fault in enumerate(scenario["faults"] or [])]
    check_type("history", scenario["history"], list, optional=True)
    created = utc_now()
    scenario["history"] = [normalize_history(index, entry, created) for index, entry in enumerate(scenario["history"] or [])]
    return scenario


def normalize_settings(current: dict[str, Any], value: Any) -> dict[str, Any]:
    """Merge a settings update into the current settings."""
    settings = with_defaults("settings", value, current)
    check_number("token_lifetime", settings["token_lifetime"], integer=True)
    token_error = settings["token_error"]
    if token_error is not None:
        check_type("token_error", token_error, dict)
        unknown = sorted(set(token_error) - TOKEN_ERROR_KEYS)
        if unknown:
            raise ScenarioError(f"unknown key(s) in token_error: {', '.join(unknown)}")
        check_status("token_error.status", token_error.get("status"))
    for key in ("token_redirect", "discovery_redirect"):
        if settings[key] is not None:
            redirect = with_defaults(key, settings[key], REDIRECT_DEFAULTS)
            check_status(f"{key}.status", redirect["status"])
            if not 300 <= redirect["status"] <= 399:
                raise ScenarioError(f"{key}.status must be a redirect status (300-399), not {redirect['status']!r}")
            check_choice(f"{key}.to", redirect["to"], REDIRECT_TARGETS)
            settings[key] = redirect
    check_number("reject_tokens", settings["reject_tokens"], integer=True)
    check_number("token_max_uses", settings["token_max_uses"], integer=True)
    return settings


# --------------------------------------------------------------------------------------------------
# HTTP exchange values


@dataclass
class Request:
    """One HTTP request, as the applications see it."""

    listener: str
    method: str
    raw_path: str  # as received, without the query (not percent-decoded)
    path: str  # percent-decoded
    query: dict[str, str]
    headers: Any  # http.client.HTTPMessage
    body: bytes
    base_url: str  # scheme://host[:port] the client addressed
    received: float  # time.monotonic()
    target: str = ""  # the request target exactly as received (a proxy gets absolute URLs or host:port)
    query_string: str = ""

    def json_body(self) -> tuple[bool, Any]:
        """(True, parsed body) - an empty body is None - or (False, None) when it is not JSON."""
        if not self.body.strip():
            return True, None
        try:
            return True, json.loads(self.body)
        except ValueError:
            return False, None


@dataclass
class Reply:
    """An answer; `reset` closes the connection instead, `delay` waits before answering.

    `trickle_bytes` spaces go out one every `trickle_interval` seconds before the body (leading
    whitespace keeps a JSON body valid); `pad_to` pads the body with trailing spaces to that many bytes.
    """

    status: int | None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None
    delay: float = 0.0
    reset: bool = False
    trickle_bytes: int = 0
    trickle_interval: float = 0.0
    pad_to: int = 0
    close: bool = False


ErrorBuilder = Callable[[int, dict[str, Any]], Reply]  # (status, fault) -> the listener's error answer


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(payload).encode("utf-8"), {"Content-Type": JSON_TYPE, **(headers or {})})


def api_error(status: int, code: str | None = None, message: str | None = None, headers: dict[str, str] | None = None) -> Reply:
    """An error in the Cloud Partner Portal format."""
    code = code or ERROR_CODES.get(status) or http.HTTPStatus(status).phrase.replace(" ", "")
    message = message or ERROR_MESSAGES.get(status) or http.HTTPStatus(status).description or code
    return json_reply(status, {"error": {"code": code, "message": message}}, headers)


def entra_error(status: int, error: str, number: int, description: str, base_url: str, headers: dict[str, str] | None = None) -> Reply:
    """An error in the Entra ID token endpoint format."""
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    timestamp = utc_now().strftime("%Y-%m-%d %H:%M:%SZ")
    payload = {
        "error": error,
        "error_description": f"AADSTS{number}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
        "error_codes": [number],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"{base_url}/error?code={number}",
    }
    return json_reply(status, payload, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache", **(headers or {})})


def replaces_answer(fault: dict[str, Any]) -> bool:
    """False for a fault that only shapes the normal answer (delay, trickle, huge body)."""
    if fault["reset"] or fault["malformed"] or fault["status"] is not None:
        return True
    return not (fault["delay"] or fault["trickle_bytes"] or fault["huge_bytes"])


def fault_reply(fault: dict[str, Any], error_reply: ErrorBuilder) -> Reply:
    """The answer that replaces the normal one.

    `error_reply(status, fault)` builds the error body of the listener (API or Entra ID format).
    """
    if fault["reset"]:
        return Reply(None, fault="reset", reset=True)
    if fault["malformed"]:
        return Reply(200, MALFORMED_BODY, {"Content-Type": JSON_TYPE}, fault="malformed")
    reply = error_reply(fault["status"] or 503, fault)
    if fault["retry_after"] is not None:
        reply.headers["Retry-After"] = header_seconds(fault["retry_after"])
    reply.fault = "status"
    return reply


def shaping_name(fault: dict[str, Any]) -> str:
    if fault["huge_bytes"]:
        return "huge"
    return "trickle" if fault["trickle_bytes"] else "delay"


def apply_fault(fault: dict[str, Any] | None, error_reply: ErrorBuilder, normal: Callable[[], Reply]) -> Reply:
    """Answer with `normal()` unless the fault replaces it; delay, trickle and padding apply either way.

    A replacing fault with `apply` lets the request take effect first (normal() runs, its answer is
    dropped): the service acted, and the client never hears about it.
    """
    if fault is None:
        return normal()
    if replaces_answer(fault):
        if fault["apply"]:
            normal()
        reply = fault_reply(fault, error_reply)
        if fault["apply"]:
            reply.fault = f"applied-{reply.fault}"
    else:
        reply = normal()
        reply.fault = shaping_name(fault)
    reply.delay = fault["delay"]
    if not reply.reset:
        reply.trickle_bytes, reply.trickle_interval = fault["trickle_bytes"], fault["trickle_interval"]
        reply.pad_to = fault["huge_bytes"]
    return reply


# --------------------------------------------------------------------------------------------------
# Offers


def operation_steps(status: str) -> list[dict[str, Any]]:
    steps = []
    for index, (step_id, name, estimate) in enumerate(STEPS):
        if index < CURRENT_STEP:
            step_status, progress = "complete", 100
        elif index == CURRENT_STEP:
            step_status = STEP_STATUS_AT_CURRENT.get(status, status)
            progress = 100 if status == "completed" else 40
        else:
            step_status = "complete" if status == "completed" else "notStarted"
            progress = 100 if status == "completed" else 0
        step = {"id": step_id, "stepName": name, "description": name, "status": step_status, "messages": [], "progressPercentage": progress}
        if estimate:
            step["estimatedTimeFrame"] = estimate
        steps.append(step)
    return steps


class Offer:
    """One offer and the submission/operation that runs (or ran) on it."""

    def __init__(self, publisher_id: str, offer_id: str, scenario: dict[str, Any]) -> None:
        self.publisher_id = publisher_id
        self.offer_id = offer_id
        self.scenario = scenario
        self.cancel = scenario["cancel"]
        self.operation_id: str = scenario["operation_id"]
        self.created = time.monotonic()
        self.faults = [dict(fault) for fault in scenario["faults"]]
        self.cancel_posts = 0
        self.polling = False  # a cancel POST was answered 200/202: operation GETs are now polls
        self.cancel_requested_at: float | None = None
        self.requested_by_post = False  # a cancel POST of a client (not the scenario) started the cancellation
        self.cancel_duration: float = self.cancel["duration"]
        self.ended: tuple[float, str] | None = None  # (when, status): ended by a 200, by reads or by the control API
        self.reads_while_cancelling = 0
        if scenario["state"] == "running" and normalize_state(scenario["cancellation_request_state"]) in UNDER_WAY_STATES:
            self.cancel_requested_at = self.created  # someone else asked: it ends `cancel.duration` after creation

    @property
    def key(self) -> str:
        return f"{self.publisher_id}/{self.offer_id}"

    def end_time(self) -> float | None:
        if self.ended is not None:
            return self.ended[0]
        if self.scenario["state"] != "running" or self.cancel_requested_at is None or self.cancel["end_after_reads"] is not None:
            return None
        return self.cancel_requested_at + self.cancel_duration

    def status(self, now: float) -> str:
        if self.scenario["state"] == "idle":
            return "completed"
        if self.ended is not None:
            return self.ended[1]
        end = self.end_time()
        if end is not None and now >= end:
            return self.cancel["final_status"]
        return "running"

    def end_now(self, now: float, status: str) -> None:
        self.ended = (now, status)

    def count_read(self, now: float) -> None:
        """A list or operation read while a cancellation is under way; `cancel.end_after_reads` ends it on the Nth."""
        wanted = self.cancel["end_after_reads"]
        if wanted is None or self.cancel_requested_at is None or self.status(now) != "running":
            return
        self.reads_while_cancelling += 1
        if self.reads_while_cancelling >= wanted:
            self.end_now(now, self.cancel["final_status"])

    def cancellation_request_state(self) -> str | None:
        return "cancelRequested" if self.requested_by_post else self.scenario["cancellation_request_state"]

    def can_cancel(self) -> bool:
        """An absent cancellationRequestState counts as canCancel (the contract's rule)."""
        state = self.cancellation_request_state()
        return state is None or normalize_state(state) == "cancancel"

    def take_fault(self, kind: str) -> dict[str, Any] | None:
        """Consume one use of the first remaining fault that matches this kind of request."""
        for fault in self.faults:
            if fault["times"] > 0 and self.fault_matches(fault["on"], kind):
                fault["times"] -= 1
                return fault
        return None

    @staticmethod
    def fault_matches(on: str, kind: str) -> bool:
        if kind in LOGIN_FAULT_KINDS:
            return on == kind
        return on in (kind, "any") or (on == "operation" and kind == "poll")

    def post_cancel(self, now: float) -> int:
        """Apply a cancel POST that reached the offer; returns the status code to answer."""
        self.polling = True
        if self.status(now) == "running" and self.can_cancel():
            self.cancel_requested_at = now
            self.requested_by_post = True
            if self.cancel["status"] == 200:
                self.end_now(now, self.cancel["final_status"])
            return self.cancel["status"]
        return 202

    def last_change(self, now: float) -> datetime.datetime:
        end = self.end_time()
        if end is not None and now >= end:
            return utc_at(end)
        return utc_at(self.cancel_requested_at if self.cancel_requested_at is not None else self.created)

    def submission(self, now: float) -> dict[str, Any]:
        return {
            "id": self.operation_id,
            "offerId": self.offer_id,
            "offerVersion": 1,
            "offerTypeId": "microsoft-azure-virtualmachines",
            "publisherId": self.publisher_id,
            "submissionType": self.scenario["submission_type"],
            "submissionState": self.status(now),
            "publishingVersion": 2,
            "slot": "staging",
            "version": int(self.created * 1000),
            "definition": {"metadata": {}},
            "changedTime": iso(self.last_change(now)),
        }

    def submissions(self, now: float, wanted_states: list[str]) -> list[dict[str, Any]]:
        history = [{"offerId": self.offer_id, "publisherId": self.publisher_id, **entry} for entry in self.scenario["history"]]
        items = [self.submission(now), *history]
        for wanted in wanted_states:
            items = [item for item in items if str(item.get("submissionState", "")).lower() == wanted.lower()]
        return items

    def operation(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        level, text = OPERATION_MESSAGES.get(status, ("information", f"The operation is {status}."))
        operation = {
            "id": self.operation_id,
            "submissionType": self.scenario["submission_type"],
            "status": status,
            "cancellationRequestState": self.cancellation_request_state(),
            "createdDateTime": iso(utc_at(self.created)),
            "lastActionDateTime": iso(self.last_change(now)),
            "offerVersion": 1,
            "publishingVersion": 2,
            "steps": operation_steps(status),
            "messages": [{"messageHtml": text, "level": level, "timestamp": iso(self.last_change(now))}],
            "previewLinks": [],
            "liveLinks": [],
        }
        if operation["cancellationRequestState"] is None:
            del operation["cancellationRequestState"]  # the scenario said null: the field is absent
        if status == "failed":
            operation["error"] = {"code": "OperationFailed", "message": text}
        return operation

    def find_operation(self, operation_id: str, now: float) -> dict[str, Any] | None:
        if operation_id.lower() == self.operation_id.lower():
            return self.operation(now)
        for entry in self.scenario["history"]:
            if str(entry.get("id", "")).lower() == operation_id.lower():
                status = entry.get("submissionState", "completed")
                return {"id": entry["id"], "submissionType": entry.get("submissionType"), "status": status, "steps": operation_steps(status), "messages": []}
        return None

    def operation_path(self) -> str:
        return f"/api/publishers/{self.publisher_id}/offers/{self.offer_id}/operations/{self.operation_id}"

    def location_headers(self, base_url: str, foreign_url: str) -> dict[str, str]:
        """The headers of a cancel 202, by `cancel.location`."""
        version = f"?api-version={API_VERSION}"
        path = self.operation_path()
        kind = self.cancel["location"]
        return {
            "relative": {"Location": path + version},
            "absolute": {"Operation-Location": base_url + path + version},
            "both": {"Location": path + version, "Operation-Location": base_url + path + version},
            "none": {},
            "foreign": {"Location": foreign_url + path + version},
            "dollar": {"Location": f"/api/operations/{self.publisher_id}${self.offer_id}$2$preview{version}"},
            "noversion": {"Operation-Location": base_url + path},
        }[kind]

    def control_state(self, now: float) -> dict[str, Any]:
        return {
            "publisher_id": self.publisher_id,
            "offer_id": self.offer_id,
            "state": self.scenario["state"],
            "operation_id": self.operation_id,
            "status": self.status(now),
            "submissionState": self.status(now),
            "cancellationRequestState": self.cancellation_request_state(),
            "cancel_posts": self.cancel_posts,
            "polling": self.polling,
            "faults_left": sum(fault["times"] for fault in self.faults),
        }


# --------------------------------------------------------------------------------------------------
# The emulator: state and the four applications


@dataclass
class Token:
    expires_at: float  # time.monotonic()
    expires_utc: datetime.datetime
    max_uses: int = 0  # > 0: the token expires after that many accepted API requests (counts, not seconds)
    uses: int = 0

    def expired(self, now: float) -> bool:
        return now >= self.expires_at or 0 < self.max_uses <= self.uses


@dataclass
class Identity:
    tenant_id: str
    client_id: str
    client_secret: str

    @classmethod
    def generate(cls) -> Identity:
        return cls(str(uuid.uuid4()), str(uuid.uuid4()), secrets.token_urlsafe(30))


@dataclass
class Route:
    kind: str  # list | operation | cancel
    method: str
    pattern: re.Pattern[str]


API_ROUTES = (
    Route("list", "GET", re.compile(r"/api/publishers/(?P<p>[^/]+)/offers/(?P<o>[^/]+)/submissions/?")),
    Route("operation", "GET", re.compile(r"/api/publishers/(?P<p>[^/]+)/offers/(?P<o>[^/]+)/operations/(?P<op>[^/]+)/?")),
    Route("operation", "GET", re.compile(r"/api/operations/(?P<p>[^/$]+)\$(?P<o>[^/$]+)\$(?P<version>[^/$]+)\$(?P<slot>[^/$]+)/?")),
    Route("cancel", "POST", re.compile(r"/api/publishers/(?P<p>[^/]+)/offers/(?P<o>[^/]+)/cancel/?")),
)
DISCOVERY_PATH = re.compile(r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration")
TOKEN_PATH = re.compile(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token")


def proxy_target(request: Request) -> tuple[str, str, dict[str, str]]:
    """(host, path, query) a proxy client asked for: absolute-form URL, CONNECT authority, or origin-form."""
    if request.method == "CONNECT":
        return request.target, "", {}
    if "://" in request.target:
        parts = urllib.parse.urlsplit(request.target)
        return parts.netloc, parts.path or "/", dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    return request.headers.get("Host", ""), request.raw_path, request.query


def match_api_route(path: str) -> tuple[Route, re.Match[str]] | None:
    for route in API_ROUTES:
        match = route.pattern.fullmatch(path)
        if match:
            return route, match
    return None


def make_access_token(identity: Identity, lifetime: int) -> str:
    """A JWT-shaped token. It is only looked up, never verified: the random signature makes it unguessable."""
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "kid": "emulator"}
    claims = {
        "aud": RESOURCE,
        "iss": f"https://sts.windows.net/{identity.tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "appid": identity.client_id,
        "tid": identity.tenant_id,
        "ver": "1.0",
        "uti": secrets.token_urlsafe(16),
    }
    parts = (json.dumps(header).encode(), json.dumps(claims).encode(), secrets.token_bytes(32))
    return ".".join(b64url(part) for part in parts)


class Emulator:
    """All state, behind one lock; `handle` answers one request of any listener."""

    def __init__(self, identity: Identity, preset: str | None) -> None:
        self.lock = threading.RLock()
        self.identity = identity
        self.preset = preset
        self.urls: dict[str, str] = {}
        self.seq = 0  # never reused, not even after a reset
        self.offers: dict[tuple[str, str], Offer] = {}
        self.log: list[dict[str, Any]] = []
        self.tokens: dict[str, Token] = {}
        self.token_requests = 0
        self.settings: dict[str, Any] = dict(DEFAULT_SETTINGS)
        self.api_requests_seen = 0  # API requests since the settings last changed (for reject_tokens)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.offers = {}
            self.log = []
            self.tokens = {}
            self.token_requests = 0
            self.settings = dict(DEFAULT_SETTINGS)
            self.api_requests_seen = 0
            for (publisher_id, offer_id), scenario in PRESETS.get(self.preset or "", {}).items():
                self.put_offer(publisher_id, offer_id, scenario)

    def put_offer(self, publisher_id: str, offer_id: str, scenario: Any) -> Offer:
        offer = Offer(publisher_id, offer_id, normalize_scenario(scenario))
        with self.lock:
            self.offers[(publisher_id, offer_id)] = offer
        return offer

    # ---- tokens

    def issue_token(self, lifetime: int, max_uses: int = 0) -> str:
        token = make_access_token(self.identity, lifetime)
        self.tokens[token] = Token(time.monotonic() + lifetime, utc_now() + datetime.timedelta(seconds=lifetime), max_uses)
        return token

    def classify_auth(self, header: str | None) -> tuple[str, Token | None]:
        """valid | expired | invalid | none, and the token when it is known."""
        if not header:
            return "none", None
        scheme, separator, value = header.strip().partition(" ")
        token = self.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            return "invalid", None
        if token.expired(time.monotonic()):
            return "expired", token
        return "valid", token

    def unauthorized(self, auth: str, token: Token | None) -> Reply:
        if auth == "none":
            code, message = "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
        elif auth == "expired" and token is not None:
            stamp = "%m/%d/%Y %H:%M:%S"
            code = "ExpiredAuthenticationToken"
            expiry = min(token.expires_utc, utc_now())  # a token used up (max_uses) expired now
            message = f"The access token expiry UTC time '{expiry.strftime(stamp)}' is earlier than current UTC time '{utc_now().strftime(stamp)}'."
        else:
            code, message = "InvalidAuthenticationToken", "The access token is invalid."
        challenge = f'Bearer authorization_uri="{self.urls.get("login", "")}/{self.identity.tenant_id}", error="invalid_token", error_description="{message}"'
        return api_error(401, code, message, {"WWW-Authenticate": challenge})

    # ---- request dispatch

    def handle(self, request: Request) -> Reply:
        is_control = request.path == CONTROL_PREFIX or request.path.startswith(CONTROL_PREFIX + "/")
        with self.lock:
            if request.listener in ("api", "api_http") and is_control:
                reply = self.handle_control(request)
                log_line(f"control {request.method} {request.raw_path} {reply.status}")
                return reply
            secret_received = self.carries_secret(request)
            host, path, query = request.headers.get("Host", ""), request.raw_path, request.query
            if request.listener == "login":
                auth, offer_key, logged_body = "none", None, self.login_log_body(request)
                reply = self.handle_login(request)
            else:
                auth, token = self.classify_auth(request.headers.get("Authorization"))
                logged_body = request.json_body()[1]
                if request.listener == "foreign":
                    offer_key, reply = None, self.handle_foreign(request)
                elif request.listener == "proxy":
                    host, path, query = proxy_target(request)
                    offer_key, reply = self.handle_proxy(path)
                else:
                    offer_key, reply = self.handle_api(request, auth, token)
            if secret_received and request.listener != "login":
                logged_body = None  # whatever carried the secret is not kept
            self.record(
                request,
                reply,
                {
                    "host": host,
                    "path": self.redact(path),
                    "query": {name: self.redact(value) for name, value in query.items()},
                    "auth": auth,
                    "body": logged_body,
                    "offer": offer_key,
                    "secret_received": secret_received,
                },
            )
        return reply

    def record(self, request: Request, reply: Reply, details: dict[str, Any]) -> None:
        self.append_entry(
            {"time": request.received, "listener": request.listener, "method": request.method, "status": reply.status, "fault": reply.fault, **details}
        )

    def append_entry(self, fields: dict[str, Any]) -> None:
        """One log entry: every key of LOG_DEFAULTS, in that order."""
        self.seq += 1
        entry = {"seq": self.seq, **LOG_DEFAULTS, "query": {}, **fields}
        self.log.append(entry)
        log_line(
            f"#{self.seq} {entry['listener']} {entry['method']} {entry['path']} {entry['status']} auth={entry['auth']} "
            f"fault={entry['fault']}{' secret_received' if entry['secret_received'] else ''}"
        )

    def record_tls_failure(self, listener: str) -> None:
        """A TLS handshake that failed (e.g. the client does not trust the CA): an entry without a request."""
        with self.lock:
            self.append_entry({"time": time.monotonic(), "listener": listener, "fault": "tls-handshake"})

    def carries_secret(self, request: Request) -> bool:
        """Whether the client secret came with the request: in the target, the body or any header (Basic decoded)."""
        secret = self.identity.client_secret
        forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
        texts = [request.target, request.body.decode("utf-8", "replace")]
        for value in request.headers.values():
            texts.append(value)
            scheme, _separator, credentials = value.strip().partition(" ")
            if scheme.lower() == "basic":
                try:
                    texts.append(base64.b64decode(credentials.strip()).decode("utf-8", "replace"))
                except ValueError:
                    pass
        return any(form in text for form in forms for text in texts)

    def redact(self, text: str) -> str:
        return text.replace(self.identity.client_secret, "<client secret>")

    # ---- proxy listener

    @staticmethod
    def handle_proxy(path: str) -> tuple[str | None, Reply]:
        """Forward nothing: a client that honours a proxy variable is seen here, answered 502."""
        matched = match_api_route(urllib.parse.unquote(path))
        offer_key = f"{matched[1]['p']}/{matched[1]['o']}" if matched else None
        body = b"The emulator's proxy forwards nothing.\n"
        return offer_key, Reply(502, body, {"Content-Type": "text/plain; charset=utf-8", "Connection": "close"}, close=True)

    # ---- api listener (and api_http)

    def rejects_token(self) -> bool:
        """The `reject_tokens` setting N: the 1st, (N+1)th, (2N+1)th... API request gets a 401 whatever its token."""
        every = self.settings["reject_tokens"]
        if not every:
            return False
        self.api_requests_seen += 1
        return (self.api_requests_seen - 1) % every == 0

    def handle_api(self, request: Request, auth: str, token: Token | None) -> tuple[str | None, Reply]:
        matched = match_api_route(request.path)
        offer_key = f"{matched[1]['p']}/{matched[1]['o']}" if matched else None
        if self.rejects_token():
            reply = self.unauthorized("invalid", None)
            reply.fault = "reject_tokens"
            return offer_key, reply
        if auth != "valid":
            return offer_key, self.unauthorized(auth, token)
        if token is not None:
            token.uses += 1
        if request.query.get("api-version") != API_VERSION:
            return offer_key, api_error(400, "InvalidAPIVersion", f"Invalid api version. Allowed values are [{API_VERSION}]")
        if matched is None:
            return offer_key, api_error(404, "NotFound", f"No resource at {request.path}.")
        route, match = matched
        if request.method != route.method:
            return offer_key, api_error(405, "MethodNotAllowed", f"{request.method} is not allowed on {request.path}.", {"Allow": route.method})
        offer = self.offers.get((match["p"], match["o"]))
        if offer is None:
            return offer_key, api_error(404, "NotFound", f"Offer '{match['o']}' of publisher '{match['p']}' was not found.")
        kind = "poll" if route.kind == "operation" and offer.polling else route.kind
        if kind == "cancel":
            offer.cancel_posts += 1
        fault = offer.take_fault(kind)
        reply = apply_fault(
            fault, lambda status, details: api_error(status, details["code"], details["message"]), lambda: self.offer_reply(offer, kind, request, match)
        )
        return offer_key, reply

    def offer_reply(self, offer: Offer, kind: str, request: Request, match: re.Match[str]) -> Reply:
        error = offer.scenario["error"]
        base_kind = "operation" if kind == "poll" else kind
        if error and error["on"] in (base_kind, "any"):
            reply = self.scenario_error(error)
        elif offer.scenario["state"] == "missing":
            reply = api_error(404, "NotFound", f"Offer '{offer.offer_id}' of publisher '{offer.publisher_id}' was not found.")
        elif kind == "list":
            offer.count_read(time.monotonic())
            wanted = [request.query[name] for name in ("status", "submissionState") if request.query.get(name)]
            reply = json_reply(200, offer.submissions(time.monotonic(), wanted))
        elif kind == "cancel":
            reply = self.cancel_reply(offer, request)
        else:
            offer.count_read(time.monotonic())
            reply = self.operation_reply(offer, match.groupdict().get("op"), kind == "poll")
        return reply

    @staticmethod
    def scenario_error(error: dict[str, Any]) -> Reply:
        if error["raw"] is not None:
            reply = Reply(error["status"], error["raw"].encode("utf-8"), {"Content-Type": "text/plain; charset=utf-8"})
        else:
            reply = api_error(error["status"], error["code"], error["message"])
        reply.fault = "error"
        return reply

    def operation_reply(self, offer: Offer, operation_id: str | None, poll: bool) -> Reply:
        now = time.monotonic()
        operation = offer.operation(now) if operation_id is None else offer.find_operation(operation_id, now)
        if operation is None:
            return api_error(404, "NotFound", f"Operation '{operation_id}' was not found for offer '{offer.offer_id}'.")
        headers = {}
        if poll and offer.cancel["poll_retry_after"] is not None:
            headers["Retry-After"] = header_seconds(offer.cancel["poll_retry_after"])
        return json_reply(200, [operation] if offer.scenario["operation_as_list"] else operation, headers)

    def cancel_reply(self, offer: Offer, request: Request) -> Reply:
        if not request.json_body()[0]:
            return api_error(400, "BadRequest", "The request body is not valid JSON.")
        status = offer.post_cancel(time.monotonic())
        if status == 200:
            return Reply(200)
        headers = offer.location_headers(request.base_url, self.urls.get("foreign", ""))
        if offer.cancel["poll_retry_after"] is not None:
            headers["Retry-After"] = header_seconds(offer.cancel["poll_retry_after"])
        return Reply(202, headers=headers)

    # ---- foreign listener

    @staticmethod
    def handle_foreign(request: Request) -> Reply:
        if request.method != "GET":
            return api_error(405, "MethodNotAllowed", f"{request.method} is not allowed here.", {"Allow": "GET"})
        return json_reply(200, {"status": "canceled"})

    # ---- login listener

    @staticmethod
    def login_log_body(request: Request) -> dict[str, str] | None:
        """The token request's form without any secret."""
        if request.method != "POST":
            return None
        form = dict(urllib.parse.parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        return {name: form[name] for name in ("grant_type", "client_id", "scope") if name in form}

    def handle_login(self, request: Request) -> Reply:
        discovery = DISCOVERY_PATH.fullmatch(request.path)
        token = TOKEN_PATH.fullmatch(request.path)

        def login_error(status: int, details: dict[str, Any]) -> Reply:
            return self.transient_login_error(status, details, request.base_url)

        if discovery and request.method == "GET":
            fault = self.take_login_fault("discovery")
            return apply_fault(
                fault, login_error, lambda: self.redirect_reply("discovery_redirect", request) or self.discovery_reply(discovery["tenant"], request.base_url)
            )
        if token and request.method == "POST":
            self.token_requests += 1
            fault = self.take_login_fault("token")
            return apply_fault(fault, login_error, lambda: self.redirect_reply("token_redirect", request) or self.token_reply(token["tenant"], request))
        if discovery or token:
            return json_reply(
                405, {"error": "invalid_request", "error_description": f"{request.method} is not supported here."}, {"Allow": "GET" if discovery else "POST"}
            )
        return json_reply(404, {"error": "not_found", "error_description": f"No endpoint at {request.path}."})

    def take_login_fault(self, kind: str) -> dict[str, Any] | None:
        """Faults of the login listener (`on: token` / `on: discovery`) may sit in any offer's scenario."""
        for offer in self.offers.values():
            fault = offer.take_fault(kind)
            if fault:
                return fault
        return None

    def redirect_reply(self, setting: str, request: Request) -> Reply | None:
        """The `token_redirect` / `discovery_redirect` setting: the same path and query on another origin."""
        redirect = self.settings[setting]
        if redirect is None:
            return None
        location = self.urls.get(redirect["to"], "") + request.raw_path + (f"?{request.query_string}" if request.query_string else "")
        return Reply(redirect["status"], b"", {"Location": location}, fault="redirect")

    def tenant_not_found(self, status: int, error: str, tenant: str, base_url: str) -> Reply:
        description = (
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. "
            "Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        )
        return entra_error(status, error, 90002, description, base_url)

    @staticmethod
    def transient_login_error(status: int, details: dict[str, Any], base_url: str) -> Reply:
        error = details.get("error") or ("temporarily_unavailable" if status == 429 or status >= 500 else "invalid_request")
        number = (details.get("error_codes") or [90033])[0]
        description = details.get("error_description") or details.get("message") or "A transient error has occurred. Please try again."
        headers = {"Retry-After": header_seconds(details["retry_after"])} if details.get("retry_after") is not None else None
        return entra_error(status, error, number, description, base_url, headers)

    def discovery_reply(self, tenant: str, base_url: str) -> Reply:
        if tenant != self.identity.tenant_id:
            return self.tenant_not_found(400, "invalid_tenant", tenant, base_url)
        prefix = f"{base_url}/{tenant}"
        document = {
            "token_endpoint": f"{prefix}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base_url}/{tenant}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{prefix}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{prefix}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{prefix}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{prefix}/oauth2/v2.0/logout",
            "tenant_region_scope": None,
            "cloud_instance_name": "microsoftonline.com",
        }
        return json_reply(200, document)

    def token_reply(self, tenant: str, request: Request) -> Reply:
        base_url = request.base_url
        token_error = self.settings["token_error"]
        if token_error:
            return self.transient_login_error(token_error["status"], token_error, base_url)
        if tenant != self.identity.tenant_id:
            return self.tenant_not_found(400, "invalid_request", tenant, base_url)
        form = dict(urllib.parse.parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        client_id, client_secret = self.client_credentials(form, request.headers.get("Authorization"))
        grant_type = form.get("grant_type")
        if grant_type != "client_credentials":
            return entra_error(400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'.", base_url)
        if client_id != self.identity.client_id:
            description = (
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not "
                "been installed by the administrator of the tenant or consented to by any user in the tenant. "
                "You may have sent your authentication request to the wrong tenant."
            )
            return entra_error(400, "unauthorized_client", 700016, description, base_url)
        if not client_secret:
            return entra_error(
                401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.", base_url
            )
        if not secrets.compare_digest(client_secret.encode(), self.identity.client_secret.encode()):
            description = (
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "
                f"not the client secret ID, for a secret added to app '{client_id}'."
            )
            return entra_error(401, "invalid_client", 7000215, description, base_url)
        scope = form.get("scope", "")
        if not scope:
            return entra_error(400, "invalid_request", 90014, "The required field 'scope' is missing from the credential.", base_url)
        if scope.split() != [SCOPE]:
            description = f"The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            return entra_error(400, "invalid_scope", 70011, description, base_url)
        lifetime = self.settings["token_lifetime"]
        access_token = self.issue_token(lifetime, self.settings["token_max_uses"])
        payload = {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access_token}
        return json_reply(200, payload, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    @staticmethod
    def client_credentials(form: dict[str, str], authorization: str | None) -> tuple[str | None, str | None]:
        """client_secret_post, or client_secret_basic (RFC 6749 2.3.1)."""
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode("utf-8")
            except ValueError:
                return None, None
            client_id, separator, client_secret = decoded.partition(":")
            return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(client_secret)
        return form.get("client_id"), form.get("client_secret")

    # ---- control API (api and api_http listeners, no auth, not logged)

    def handle_control(self, request: Request) -> Reply:
        path = request.path[len(CONTROL_PREFIX) :].rstrip("/")
        routes = (
            ("POST", "/reset", self.control_reset),
            ("GET", "/health", lambda req, match: json_reply(200, {"ok": True})),
            ("GET", "/offers", self.control_list_offers),
            ("GET", "/offers/(?P<p>[^/]+)/(?P<o>[^/]+)", self.control_get_offer),
            ("PUT", "/offers/(?P<p>[^/]+)/(?P<o>[^/]+)", self.control_put_offer),
            ("DELETE", "/offers/(?P<p>[^/]+)/(?P<o>[^/]+)", self.control_delete_offer),
            ("POST", "/offers/(?P<p>[^/]+)/(?P<o>[^/]+)/end", self.control_end_offer),
            ("GET", "/requests", self.control_requests),
            ("GET", "/tokens", self.control_get_tokens),
            ("POST", "/tokens", self.control_issue_token),
            ("GET", "/settings", lambda req, match: json_reply(200, self.settings)),
            ("PUT", "/settings", self.control_put_settings),
        )
        allowed = []
        for method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match and method == request.method:
                try:
                    return handler(request, match)
                except ScenarioError as exc:
                    return api_error(400, "BadRequest", str(exc))
            if match:
                allowed.append(method)
        if allowed:
            return api_error(405, "MethodNotAllowed", f"{request.method} is not allowed on {request.path}.", {"Allow": ", ".join(allowed)})
        return api_error(404, "NotFound", f"No control endpoint at {request.path}.")

    @staticmethod
    def control_body(request: Request) -> Any:
        is_json, body = request.json_body()
        if not is_json:
            raise ScenarioError("the request body is not valid JSON")
        return body

    def control_reset(self, request: Request, match: re.Match[str]) -> Reply:
        self.reset()
        return json_reply(200, {"reset": True, "offers": [offer.key for offer in self.offers.values()]})

    def control_list_offers(self, request: Request, match: re.Match[str]) -> Reply:
        now = time.monotonic()
        return json_reply(200, [offer.control_state(now) for offer in self.offers.values()])

    def control_get_offer(self, request: Request, match: re.Match[str]) -> Reply:
        offer = self.offers.get((match["p"], match["o"]))
        if offer is None:
            return api_error(404, "NotFound", f"The emulator has no offer {match['p']}/{match['o']}.")
        return json_reply(200, offer.control_state(time.monotonic()))

    def control_put_offer(self, request: Request, match: re.Match[str]) -> Reply:
        if not (SEGMENT.fullmatch(match["p"]) and SEGMENT.fullmatch(match["o"])):
            raise ScenarioError("publisher and offer ids may only contain letters, digits, '-', '_' and '.'")
        offer = self.put_offer(match["p"], match["o"], self.control_body(request))
        return json_reply(200, offer.control_state(time.monotonic()))

    def control_end_offer(self, request: Request, match: re.Match[str]) -> Reply:
        """End the running operation now, with a final status (default canceled): no test waits for a timer."""
        offer = self.offers.get((match["p"], match["o"]))
        if offer is None:
            return api_error(404, "NotFound", f"The emulator has no offer {match['p']}/{match['o']}.")
        body = with_defaults("body", self.control_body(request), {"status": "canceled"})
        check_choice("status", body["status"], FINAL_STATUSES)
        now = time.monotonic()
        if offer.status(now) != "running":
            return api_error(409, "Conflict", f"The operation of {offer.key} is not running (it is {offer.status(now)}).")
        offer.end_now(now, body["status"])
        return json_reply(200, offer.control_state(now))

    def control_delete_offer(self, request: Request, match: re.Match[str]) -> Reply:
        offer = self.offers.pop((match["p"], match["o"]), None)
        return json_reply(200, {"deleted": offer is not None})

    def control_requests(self, request: Request, match: re.Match[str]) -> Reply:
        try:
            since = int(request.query.get("since", "0") or 0)
        except ValueError as exc:
            raise ScenarioError("since must be an integer") from exc
        return json_reply(200, [entry for entry in self.log if entry["seq"] > since])

    def control_get_tokens(self, request: Request, match: re.Match[str]) -> Reply:
        return json_reply(200, {"issued": list(self.tokens), "token_requests": self.token_requests})

    def control_issue_token(self, request: Request, match: re.Match[str]) -> Reply:
        body = self.control_body(request) or {}
        check_type("body", body, dict)
        lifetime = body.get("expires_in", self.settings["token_lifetime"])
        if isinstance(lifetime, str) and lifetime.isdigit():
            lifetime = int(lifetime)
        check_number("expires_in", lifetime, integer=True)
        max_uses = body.get("max_uses", 0)
        check_number("max_uses", max_uses, integer=True)
        return json_reply(200, {"access_token": self.issue_token(lifetime, max_uses), "token_type": "Bearer", "expires_in": lifetime})

    def control_put_settings(self, request: Request, match: re.Match[str]) -> Reply:
        self.settings = normalize_settings(self.settings, self.control_body(request))
        self.api_requests_seen = 0  # reject_tokens counts from here
        return json_reply(200, self.settings)


# --------------------------------------------------------------------------------------------------
# HTTP plumbing


class EmulatorHandler(http.server.BaseHTTPRequestHandler):
    """Turns HTTP/1.1 exchanges into Request/Reply values for the Emulator."""

    protocol_version = "HTTP/1.1"
    server_version = "CloudPartnerEmulator/1.0"
    sys_version = ""
    timeout = 60
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall
    server: EmulatorServer

    def do_GET(self) -> None:
        self.dispatch()

    def do_POST(self) -> None:
        self.dispatch()

    def do_PUT(self) -> None:
        self.dispatch()

    def do_DELETE(self) -> None:
        self.dispatch()

    def do_PATCH(self) -> None:
        self.dispatch()

    def do_HEAD(self) -> None:
        self.dispatch()

    def do_OPTIONS(self) -> None:
        self.dispatch()

    def do_CONNECT(self) -> None:  # what a client sends to a proxy for an https URL
        self.dispatch()

    def dispatch(self) -> None:
        received = time.monotonic()
        body = self.read_body()
        raw_path, separator, query_string = self.path.partition("?")
        request = Request(
            listener=self.server.listener,
            method=self.command,
            raw_path=raw_path,
            path=urllib.parse.unquote(raw_path),
            query=dict(urllib.parse.parse_qsl(query_string, keep_blank_values=True)),
            headers=self.headers,
            body=body,
            base_url=self.base_url(),
            received=received,
            target=self.path,
            query_string=query_string,
        )
        reply = self.server.emulator.handle(request)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.reset:
            self.reset_connection()
        else:
            self.send_reply(reply)
        if reply.close:
            self.close_connection = True

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self.read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def base_url(self) -> str:
        """scheme://host[:port] as the client addressed this listener (absolute locations use it)."""
        host = self.headers.get("Host", "")
        if not HOST_HEADER.fullmatch(host):
            host = self.server.netloc
        return f"{self.server.scheme}://{host}"

    def send_reply(self, reply: Reply) -> None:
        """Headers, then the trickled leading spaces, the body and the padding (streamed, never built in memory)."""
        body = reply.body
        if reply.pad_to and not body.strip():
            body = b"{}"  # a huge answer stays valid JSON
        padding = max(0, reply.pad_to - reply.trickle_bytes - len(body))
        try:
            self.send_response(reply.status or 500)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(reply.trickle_bytes + len(body) + padding))
            self.end_headers()
            self.wfile.flush()
            for _sent in range(reply.trickle_bytes):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(reply.trickle_interval)
            self.wfile.write(body)
            chunk = b" " * HUGE_CHUNK
            while padding > 0:
                self.wfile.write(chunk[: min(padding, HUGE_CHUNK)])
                padding -= HUGE_CHUNK
            self.wfile.flush()
        except OSError:  # the client went away (e.g. it timed out during a delay or a trickle)
            self.close_connection = True

    def reset_connection(self) -> None:
        """Drop the connection without an answer; SO_LINGER 0 makes the close send a TCP RST."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass

    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are logged by Emulator.record (without headers, so never a token)."""

    def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin
        log_line(f"{self.server.listener}: {format % args}")


class EmulatorServer(http.server.ThreadingHTTPServer):
    """One listener: a threading HTTP server, with TLS when an SSL context is given."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, emulator: Emulator, listener: str, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self.emulator = emulator
        self.listener = listener
        self.ssl_context = ssl_context
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), EmulatorHandler)

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context else "http"

    @property
    def netloc(self) -> str:
        return f"{url_host(self.server_address[0])}:{self.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup (socket.getfqdn), which can hang without DNS."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Do the TLS handshake here, in the connection's thread, not in the accepting one."""
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            connection = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log_line(f"{self.listener}: TLS handshake with {client_address[0]} failed: {exc}")
            # a client that refused the certificate (an alert) is a request attempt the tests count;
            # a connection closed before any handshake (a port probe) is not
            if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError):
                self.emulator.record_tls_failure(self.listener)
            return
        try:
            self.RequestHandlerClass(connection, client_address, self)
        finally:
            connection.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log_line(f"{self.listener}: connection from {client_address[0]} ended with {sys.exc_info()[1]!r}")


# --------------------------------------------------------------------------------------------------
# Command line


def make_tls_context(state_dir: Path, host: str) -> ssl.SSLContext:
    """A new CA (written to ca.pem) and a server certificate for the loopback names."""
    import trustme  # only `serve` needs it, and it is slow to import (cryptography)

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(state_dir / CA_FILE))
    names = ["localhost", "127.0.0.1", "::1"]
    if host not in names and host not in ("", "0.0.0.0", "::"):
        names.append(host)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically with mode 0600 (the file holds the client secret)."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.replace(temporary, path)


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def is_emulator_process(pid: int) -> bool:
    """Guard against a recycled pid: where /proc exists, the command line must name this script."""
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return Path(__file__).name.encode() in command_line


def build_servers(emulator: Emulator, args: argparse.Namespace, tls: ssl.SSLContext) -> dict[str, EmulatorServer]:
    http_host = args.host if is_loopback(args.host) else "127.0.0.1"
    plan = (
        ("api", args.host, args.api_port, tls),
        ("api_http", http_host, args.api_http_port, None),
        ("login", args.host, args.login_port, tls),
        ("foreign", args.host, args.foreign_port, tls),
        ("proxy", http_host, args.proxy_port, None),
    )
    servers: dict[str, EmulatorServer] = {}
    try:
        for name, host, port, context in plan:
            servers[name] = EmulatorServer(emulator, name, host, port, context)
    except OSError:
        for server in servers.values():
            server.server_close()
        raise
    return servers


def state_document(emulator: Emulator, servers: dict[str, EmulatorServer], state_dir: Path) -> dict[str, Any]:
    identity = emulator.identity
    return {
        "pid": os.getpid(),
        "api_url": servers["api"].url,
        "api_url_http": servers["api_http"].url,
        "authority_host": servers["login"].url,
        "foreign_url": servers["foreign"].url,
        "proxy_url": servers["proxy"].url,
        "control_url": servers["api"].url + CONTROL_PREFIX,
        "ca_path": str(state_dir / CA_FILE),
        "tenant_id": identity.tenant_id,
        "client_id": identity.client_id,
        "client_secret": identity.client_secret,
        "publisher_id": DEFAULT_PUBLISHER,
        "preset": emulator.preset,
    }


def running_pid(state_file: Path) -> int | None:
    """The pid of the emulator that serves a state dir, if one is alive."""
    state = read_state(state_file) or {}
    pid = state.get("pid")
    if isinstance(pid, int) and pid_alive(pid) and is_emulator_process(pid):
        return pid
    return None


def stop_servers(servers: dict[str, EmulatorServer]) -> None:
    stoppers = [threading.Thread(target=server.shutdown) for server in servers.values()]  # in parallel: each waits for a poll
    for stopper in stoppers:
        stopper.start()
    for stopper in stoppers:
        stopper.join()
    for server in servers.values():
        server.server_close()


def command_serve(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    state_file = state_dir / STATE_FILE
    other = running_pid(state_file)
    if other is not None and other != os.getpid():
        print(f"cloudpartner emulator: already running in {state_dir} (pid {other}); stop it first", file=sys.stderr)
        return 1
    emulator = Emulator(Identity.generate(), args.preset)
    try:
        servers = build_servers(emulator, args, make_tls_context(state_dir, args.host))
    except OSError as exc:
        print(f"cloudpartner emulator: cannot listen on {args.host}: {exc}", file=sys.stderr)
        return 1
    emulator.urls = {name: server.url for name, server in servers.items()}
    for name, server in servers.items():
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name=f"listener-{name}", daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    write_private_json(state_file, state_document(emulator, servers, state_dir))
    log_line(f"ready (pid {os.getpid()}): " + ", ".join(f"{name} {server.url}" for name, server in servers.items()))
    while not stop.wait(0.5):
        pass
    log_line("stopping")
    stop_servers(servers)
    if (read_state(state_file) or {}).get("pid") == os.getpid():
        state_file.unlink(missing_ok=True)
    return 0


def listeners_answer(state: dict[str, Any]) -> bool:
    """The control API answers over verified HTTPS, and every other listener accepts a connection."""
    context = ssl.create_default_context(cafile=state["ca_path"])
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(state["control_url"] + "/health", timeout=2) as response:
            if response.status != 200:
                return False
        for key in ("api_url_http", "authority_host", "foreign_url", "proxy_url"):
            url = urllib.parse.urlsplit(state[key])
            with socket.create_connection((url.hostname, url.port), timeout=2) as connection:
                if url.scheme == "https":
                    context.wrap_socket(connection, server_hostname=url.hostname).close()
    except (OSError, ValueError):
        return False
    return True


def serve_arguments(args: argparse.Namespace, state_dir: Path) -> list[str]:
    arguments = ["--state-dir", str(state_dir), "--host", args.host]
    for name in ("api_port", "api_http_port", "login_port", "foreign_port", "proxy_port"):
        arguments += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    if args.preset:
        arguments += ["--preset", args.preset]
    return arguments


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def command_start(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    state_file, log_file = state_dir / STATE_FILE, state_dir / LOG_FILE
    other = running_pid(state_file)
    if other is not None:
        print(f"cloudpartner emulator: already running in {state_dir} (pid {other}); stop it first", file=sys.stderr)
        return 1
    state_file.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "serve", *serve_arguments(args, state_dir)]
    with open(log_file, "ab") as log:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print(f"cloudpartner emulator: exited with status {child.returncode} while starting; {log_file}:\n{log_tail(log_file)}", file=sys.stderr)
            return 1
        state = read_state(state_file)
        if state and state.get("pid") == child.pid and listeners_answer(state):
            print(f"cloudpartner emulator: running (pid {child.pid}), api {state['api_url']}, login {state['authority_host']}; details in {state_file}")
            return 0
        time.sleep(0.05)
    child.terminate()
    print(f"cloudpartner emulator: not ready after {args.timeout:g} s, stopped it; {log_file}:\n{log_tail(log_file)}", file=sys.stderr)
    return 1


def command_stop(args: argparse.Namespace) -> int:
    state_file = Path(args.state_dir).resolve() / STATE_FILE
    if not state_file.exists():
        print(f"cloudpartner emulator: not running (no {state_file})")
        return 0
    pid = running_pid(state_file)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + args.timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            print(f"cloudpartner emulator: pid {pid} ignored SIGTERM for {args.timeout:g} s, sending SIGKILL", file=sys.stderr)
            os.kill(pid, signal.SIGKILL)
    state_file.unlink(missing_ok=True)
    print(f"cloudpartner emulator: stopped (pid {pid})" if pid else f"cloudpartner emulator: was not running; removed {state_file}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Cloud Partner Portal + Entra ID emulator (a test double).")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("serve", "run in the foreground (Ctrl-C stops)"), ("start", "run in the background, return when ready")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--state-dir", required=True, help="where emulator.json, ca.pem and emulator.log go")
        command.add_argument("--preset", choices=sorted(PRESETS), help="offers created at start and by every reset")
        command.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1); api_http and proxy stay on loopback")
        for port in ("api", "api-http", "login", "foreign", "proxy"):
            command.add_argument(f"--{port}-port", type=int, default=0, help=f"{port} listener port (default 0: random)")
        if name == "start":
            command.add_argument("--timeout", type=float, default=15, help="seconds to wait until ready (default 15)")
    stop = commands.add_parser("stop", help="stop the emulator that runs for a state dir")
    stop.add_argument("--state-dir", required=True)
    stop.add_argument("--timeout", type=float, default=10, help="seconds to wait after SIGTERM before SIGKILL (default 10)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    commands = {"serve": command_serve, "start": command_start, "stop": command_stop}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
