# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Property tests of the code that reads what comes from the network, and of the option validators.

Everything the service (or anything between it and the module) sends is untrusted: header values,
status codes, bodies. For each reader the properties say which outcomes are allowed at all, so that an
unexpected input can only end in a clean, typed failure, never in a traceback, in a request to another
host, or in a message that shows a token.

Deterministic: every test uses FUZZ (derandomize, no example database, no deadline). The tests named
``test_bug_*`` at the end are regression tests for bugs these properties found.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import math
import string
import types
import typing as t
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict
from urllib3.util import parse_url

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _http, _module
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _operations as ops
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _validation as check
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _wait as w
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._auth import GivenToken
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._errors import (
    ApiError,
    CloudPartnerError,
    ResponseFormatError,
    UnsafeLocationError,
    ValidationError,
)
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._options import ConnectionOptions, OfferRef, WaitOptions

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
FUZZ_SLOW = settings(FUZZ, max_examples=150)

V = "2017-10-31"
FAKE_TOKEN = "eyJ0eXAiOiJKV1QifQ.FAKE-TOKEN-7c1e9a.sig"
GUID = "56615b67-2185-49fe-80d2-c4ddf77bb2e8"
STATES = (w.RUNNING, w.SUCCEEDED, w.CANCELLED, w.FAILED)

# api_url values as ConnectionOptions holds them (check.base_url's normalised form)
API_URLS = [
    "https://cloudpartner.azure.com",
    "https://cloudpartner.azure.com:443",
    "https://127.0.0.1:8443",
    "http://127.0.0.1:41002",
    "https://[::1]:8443",
    "http://localhost:8080",
]


def origin(url: str) -> tuple[str, str, int]:
    """scheme, host, port as urllib.parse sees them (host lower case, without brackets)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def connect_origin(url: str) -> tuple[str, str, int]:
    """scheme, host, port as urllib3 sees them: where requests would really connect."""
    parts = parse_url(url)
    scheme = (parts.scheme or "").lower()
    return scheme, (parts.host or "").lower().strip("[]"), parts.port or (443 if scheme == "https" else 80)


# ---------------------------------------------------------------------------------------------------- JSON

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["running", "Running", "canceled", "Cancelled", "completed", "failed", "in progress", "inProgress", "canCancel", ""]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)),
    max_leaves=12,
)


def dump(value: t.Any) -> str:
    return json.dumps(value)


# ---------------------------------------------------------------------------------------------------- locations

_SCHEMES = [
    "",
    "https://",
    "http://",
    "HTTPS://",
    "hTTp://",
    "//",
    "///",
    "https:",
    "https:/",
    "https:\\\\",
    "ftp://",
    "javascript:",
    "\\\\",
    "/\\",
    " https://",
]
_PORTS = ["", ":443", ":80", ":8443", ":41002", ":8080", ":0", ":", ":abc", ":99999", ":-1", ": 443", ":4\u0664\u0663", ":08443"]
_PATH_PIECES = [
    "",
    "/",
    f"/api/publishers/contoso/offers/vm/operations/{GUID}",
    "/api/operations/contoso$vm$2$preview",
    "/..",
    "/../..",
    "//evil.example/x",
    "/\\evil.example",
    "/%2e%2e/",
    "/%2F%2Fevil.example",
    "/a@evil.example",
    f"?api-version={V}",
    "?API-Version=2016-01-01",
    "?x=1&api-version=",
    "?x=1",
    "?api-version",
    "#frag",
    "#@evil.example",
    "&",
    "\t",
    " ",
    "\n",
    "\r\n",
    "\x00",
    "\x7f",
    "\u00e9",
    "\u2215",
    "\\",
    "@",
    ":",
    ";",
    "%",
]
_URL_CHARS = string.ascii_letters + string.digits + "/\\@:.?#%[]&=;-_~ \t" + "\u3002\uff0e\u2215\uff43\u200b\u0430"


@st.composite
def location_values(draw: t.Callable[..., t.Any], api_url: str) -> str:
    host = urlsplit(api_url).netloc.rsplit(":", 1)[0] if urlsplit(api_url).port else urlsplit(api_url).netloc
    hosts = [
        host,
        host.upper(),
        "evil.example",
        f"{host}.evil.example",
        f"{host}@evil.example",
        f"evil.example@{host}",
        f"evil.example\\@{host}",
        f"{host}\\@evil.example",
        f"{host}%40evil.example",
        f"{host}%2f.evil.example",
        f"{host}:443@evil.example",
        f"{host}#@evil.example",
        f"{host}?@evil.example",
        f"{host};@evil.example",
        f"{host}\u200b",
        "localhost",
        "127.0.0.1",
        "127.1",
        "2130706433",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "cloudpartner\u3002azure.com",
        "\uff43loudpartner.azure.com",
        "",
    ]
    built = st.builds(
        lambda scheme, netloc, port, pieces: scheme + netloc + port + "".join(pieces),
        st.sampled_from(_SCHEMES),
        st.sampled_from(hosts),
        st.sampled_from(_PORTS),
        st.lists(st.sampled_from(_PATH_PIECES), max_size=4),
    )
    return draw(st.one_of(built, st.text(alphabet=_URL_CHARS, max_size=50), st.text(max_size=40)))


@st.composite
def location_case(draw: t.Callable[..., t.Any]) -> tuple[str, CaseInsensitiveDict]:
    api_url = draw(st.sampled_from(API_URLS))
    headers = CaseInsensitiveDict()
    for name in ("Location", "Operation-Location"):
        if draw(st.booleans()):
            headers[draw(st.sampled_from([name, name.lower(), name.upper()]))] = draw(location_values(api_url))
    return api_url, headers


@FUZZ
@given(location_case())
@example(("https://cloudpartner.azure.com", CaseInsensitiveDict({"Location": "https://evil.example\\@cloudpartner.azure.com/x"})))
@example(("https://cloudpartner.azure.com", CaseInsensitiveDict({"Location": "https://cloudpartner.azure.com\\@evil.example/x"})))
@example(("https://cloudpartner.azure.com", CaseInsensitiveDict({"Location": "//evil.example/api/x"})))
@example(("https://cloudpartner.azure.com", CaseInsensitiveDict({"Location": "/\\evil.example/api/x"})))
@example(("https://cloudpartner.azure.com", CaseInsensitiveDict({"Location": "https:\\\\evil.example/api/x"})))
@example(("https://cloudpartner.azure.com", CaseInsensitiveDict({"Operation-Location": "https://cloudpartner.azure.com:443@evil.example/x"})))
@example(("http://127.0.0.1:41002", CaseInsensitiveDict({"Location": "https://127.0.0.1:41002/x"})))
@example(("https://[::1]:8443", CaseInsensitiveDict({"Location": "https://[::1]:8443/api/x#frag"})))
def test_operation_location_stays_on_the_api_origin(case):
    api_url, headers = case
    try:
        url = w.operation_location(headers, api_url, V)
    except UnsafeLocationError as error:
        assert isinstance(error.message, str) and error.message
        return
    if url is None:
        assert not any(isinstance(value, str) and value.strip() for value in headers.values())
        return
    assert isinstance(url, str)
    # the origin of api_url, for urllib.parse and for urllib3 (which requests connects with) alike
    assert origin(url) == origin(api_url)
    assert connect_origin(url) == origin(api_url)
    prepared = requests.Request("GET", url).prepare().url
    assert connect_origin(prepared) == origin(api_url)
    # always an api-version
    assert "api-version" in [key.lower() for key, _value in parse_qsl(urlsplit(url).query, keep_blank_values=True)]
    # nothing a parser could read two ways
    assert not any(char in url for char in "\\ \t\r\n\x00")
    assert url.isascii()


@FUZZ
@given(value=st.one_of(st.text(max_size=40), st.sampled_from(["", " ", "\t", "\r\n"])))
def test_operation_location_blank_or_absent_is_none(value):
    headers = CaseInsensitiveDict({"Location": value} if value.strip() == "" else {})
    assert w.operation_location(headers, API_URLS[0], V) is None


# ---------------------------------------------------------------------------------------------------- HTTP answers

# where a token could sit besides the body: the URL (query, fragment, userinfo) and the headers
TOKEN_URLS = [
    "https://cloudpartner.azure.com/api/publishers/p/offers/o/cancel?api-version=2017-10-31",
    f"https://cloudpartner.azure.com/api/publishers/p/offers/o/submissions/?api-version={V}&access_token={FAKE_TOKEN}",
    f"https://cloudpartner.azure.com/api/x?api-version={V}#{FAKE_TOKEN}",
    f"https://user:{FAKE_TOKEN}@cloudpartner.azure.com/api/x?api-version={V}",
]
TOKEN_HEADERS = {
    "WWW-Authenticate": f'Bearer authorization_uri="https://login.example", error="invalid_token", token="{FAKE_TOKEN}"',
    "Authorization": f"Bearer {FAKE_TOKEN}",
    "Set-Cookie": f"session={FAKE_TOKEN}; Secure",
    "X-Ms-Echo": FAKE_TOKEN,
}

HTTP_DATES = st.builds(
    lambda day, month, year, hms, zone: f"{day}, 01 {month} {year} {hms} {zone}",
    st.sampled_from(["Mon", "Tue", "Sun", "Xyz", ""]),
    st.sampled_from(["Jan", "Feb", "Dec", "Foo"]),
    # a year beyond a C int is the known bug below (test_bug_retry_after_date_with_a_huge_year)
    st.sampled_from(["1970", "1969", "2026", "9999", "10000", "99999", "2147483647", "0001", "26", "-1"]),
    st.sampled_from(["00:00:00", "23:59:60", "24:00:00", "99:99:99", "12:00"]),
    st.sampled_from(["GMT", "UTC", "+0000", "-0000", "+2359", "-2359", "+9999", "+2400", "EST", "Z", ""]),
)
RETRY_AFTER = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.integers(min_value=0, max_value=10**400).map(str),
    st.builds(lambda number, pad: f"{pad}{number}{pad}", st.integers(0, 10**6), st.sampled_from(["", " ", "\t", "\n"])),
    st.sampled_from(["-1", "1.5", "1e3", "0x10", "\u0661\u0662", "\u00b2", "\uff11", "inf", "nan", "NaN", "", " "]),
    HTTP_DATES,
    st.datetimes().map(email.utils.format_datetime),
)
ERROR_BODIES = st.one_of(
    st.builds(lambda code, message: dump({"error": {"code": code, "message": message}}), JSON_VALUES, JSON_VALUES),
    st.builds(lambda error, description: dump({"error": error, "error_description": description}), st.text(max_size=20), JSON_VALUES),
    st.builds(lambda code, message: dump({"code": code, "message": message}), JSON_VALUES, JSON_VALUES),
    st.builds(lambda size: dump({"error": {"code": "C" * size, "message": "M" * (size * 4)}}), st.integers(0, 5000)),
)
BODIES = st.one_of(
    st.text(max_size=200),
    JSON_VALUES.map(dump),
    ERROR_BODIES,
    st.sampled_from(["", " ", "\n", "<html><body>Bad gateway</body></html>", "\ufeff{}", "{", "[", "null", "NaN", "1" * 5000, '{"a": ' + "1" * 5000 + "}"]),
)


@st.composite
def responses(draw: t.Callable[..., t.Any]) -> _http.ApiResponse:
    headers = CaseInsensitiveDict(draw(st.dictionaries(st.sampled_from(sorted(TOKEN_HEADERS)), st.just(""), max_size=4)))
    for name in headers:
        headers[name] = TOKEN_HEADERS[name]
    retry_after = draw(RETRY_AFTER)
    if retry_after is not None:
        headers[draw(st.sampled_from(["Retry-After", "retry-after", "RETRY-AFTER"]))] = retry_after
    if draw(st.booleans()):
        headers["Content-Type"] = draw(st.sampled_from(["application/json", "text/html; charset=utf-8", "", "application/json; charset=utf-16"]))
    return _http.ApiResponse(
        status=draw(st.integers(min_value=100, max_value=599)),
        headers=headers,
        text=draw(BODIES),
        url=draw(st.sampled_from(TOKEN_URLS)),
    )


def assert_retry_after(value: t.Any) -> None:
    assert value is None or (isinstance(value, float) and not math.isnan(value) and value >= 0)


@FUZZ
@given(response=responses(), method=st.sampled_from(["GET", "POST"]), note=st.one_of(st.none(), st.text(max_size=30)))
def test_api_error_from_is_total_and_shows_no_token(response, method, note):
    error = _http.api_error_from(method, response.url, response, note=note)
    assert isinstance(error, ApiError)
    assert error.status == response.status
    assert error.method == method
    assert isinstance(error.message, str)
    assert FAKE_TOKEN not in error.message
    assert error.code is None or isinstance(error.code, str)
    assert error.api_message is None or isinstance(error.api_message, str)
    assert_retry_after(error.retry_after)
    # the service's text is kept whole here: the module masks secrets first, then bounds the message (test__module.py)
    shown = _module.shown(error.message, {FAKE_TOKEN})
    assert FAKE_TOKEN not in shown
    assert len(shown) <= _module.MAX_SHOWN_CHARACTERS + 60


@FUZZ
@given(response=responses())
def test_api_response_json_is_a_value_or_a_format_error(response):
    try:
        value = response.json()
    except ResponseFormatError as error:
        assert FAKE_TOKEN not in error.message
        assert f"HTTP {response.status}" in error.message
        assert urlsplit(response.url).path in error.message
        return
    if not response.text.strip():
        assert value is None
    else:
        assert json.dumps(value, sort_keys=True) == json.dumps(json.loads(response.text), sort_keys=True)
    assert_retry_after(response.retry_after)


@FUZZ
@given(value=RETRY_AFTER, now=st.floats(min_value=0, max_value=4e9))
@example(value="9" * 400, now=0.0)
@example(value="Mon, 01 Jan 10000 00:00:00 GMT", now=0.0)
@example(value="Mon, 01 Jan 9999 00:00:00 +9999", now=0.0)
def test_parse_retry_after_is_none_or_seconds(value, now):
    assert_retry_after(_http.parse_retry_after(value, now=now))


# ---------------------------------------------------------------------------------------------------- operations


@FUZZ
@given(body=JSON_VALUES, where=st.text(max_size=20))
def test_single_operation_is_a_dict_or_a_format_error(body, where):
    try:
        operation = w.single_operation(body, where)
    except ResponseFormatError as error:
        assert not isinstance(body, dict)
        assert not (isinstance(body, list) and len(body) == 1 and isinstance(body[0], dict))
        assert error.message.startswith(where)
        return
    assert isinstance(operation, dict)
    assert operation is body or operation is body[0]


@FUZZ
@given(status=JSON_VALUES)
def test_classify_any_json(status):
    state = w.classify(status)
    assert state in STATES
    if not isinstance(status, str):
        assert state == w.RUNNING


@FUZZ
@given(status=st.text(alphabet="canceledCANCELEDompltsufirg _-\u0130\u0131", max_size=14))
def test_classify_ends_only_on_a_known_word(status):
    """Only the six terminal words (any case, ignoring ' ', '-', '_') end a wait; nothing else does."""
    key = "".join(char for char in status.lower() if char not in " -_")
    expected = {
        "completed": w.SUCCEEDED,
        "complete": w.SUCCEEDED,
        "succeeded": w.SUCCEEDED,
        "canceled": w.CANCELLED,
        "cancelled": w.CANCELLED,
        "failed": w.FAILED,
    }
    assert w.classify(status) == expected.get(key, w.RUNNING)


SUBMISSION_STATES = st.one_of(
    JSON_VALUES,
    st.sampled_from(
        [
            "running",
            "Running",
            "RUNNING",
            "in progress",
            "In-Progress",
            "in_progress",
            "inProgress",
            "notStarted",
            "waitingForPublisherReview",
            "canceled",
            "completed",
            "runnin",
            "running ",
            "",
            " - ",
        ]
    ),
)
SUBMISSIONS = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"submissionState": SUBMISSION_STATES},
            optional={"id": st.one_of(st.just(GUID), st.just(GUID.upper()), st.text(max_size=40), JSON_SCALARS)},
        ),
        JSON_VALUES,
    ),
    max_size=5,
)


@FUZZ
@given(submission=st.one_of(JSON_VALUES, SUBMISSIONS.flatmap(lambda items: st.sampled_from(items) if items else st.none())))
def test_is_running_submission_any_json(submission):
    running = w.is_running_submission(submission)
    assert isinstance(running, bool)
    # one policy with the wait loops: a non-empty state that is not one of the six terminal words
    state = submission.get("submissionState") if isinstance(submission, dict) else None
    key = "".join(char for char in state.lower() if char not in " -_") if isinstance(state, str) else ""
    assert running is (bool(key) and key not in ("completed", "complete", "succeeded", "canceled", "cancelled", "failed"))
    assert not running or w.classify(state) == w.RUNNING


class StubClient:
    """Answers get_json with a fixed body; records the queries."""

    def __init__(self, body: t.Any) -> None:
        self.body = body
        self.calls: list[tuple[str, dict]] = []

    def get_json(self, path: str, deadline: t.Optional[float] = None, **query: str) -> t.Any:
        self.calls.append((path, query))
        return self.body


OFFER = OfferRef("contoso", "vm")


@FUZZ
@given(body=st.one_of(SUBMISSIONS, JSON_VALUES))
def test_running_submission_any_list(body):
    try:
        found = ops.running_submission(t.cast(t.Any, StubClient(body)), OFFER)
    except ResponseFormatError:
        assert not isinstance(body, list)
        return
    assert isinstance(body, list)
    if found is None:
        assert not any(w.is_running_submission(item) for item in body)
    else:
        assert found is next(item for item in body if w.is_running_submission(item))


@FUZZ
@given(body=st.one_of(SUBMISSIONS, JSON_VALUES), status=st.one_of(st.none(), st.sampled_from(["running", "Running", "in progress", "canceled"])))
def test_read_operations_filters_any_list(body, status):
    request = ops.InfoRequest(offer=OFFER, operation_id=None, status=status)
    try:
        result = ops.read_operations(t.cast(t.Any, StubClient(body)), request, False, lambda message: None)
    except ResponseFormatError:
        assert not isinstance(body, list)
        return
    assert result["changed"] is False
    operations = result["operations"]
    assert isinstance(operations, list)
    if status:
        wanted = "".join(char for char in status.lower() if char not in " -_")
        assert all(isinstance(item, dict) for item in operations)
        assert all("".join(char for char in item["submissionState"].lower() if char not in " -_") == wanted for item in operations)
    else:
        assert operations == body


# The whole cancel flow over the real client, with a scripted session: whatever the service answers,
# the task ends with a result or a CloudPartnerError, the token only goes to api_url, and no message shows it.


class ScriptedSession:
    def __init__(self, answers: dict) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str, dict]] = []

    def request(self, method: str, url: str, headers: t.Optional[dict] = None, **_kwargs: t.Any) -> t.Any:
        self.calls.append((method, url, dict(headers or {})))
        path = urlsplit(url).path
        if method == "POST":
            status, response_headers, text = self.answers["post"]
        elif "/submissions" in path:
            status, response_headers, text = self.answers["list"]
        else:
            status, response_headers, text = self.answers["operation"]
        return types.SimpleNamespace(status_code=status, headers=CaseInsensitiveDict(response_headers), text=text)


def answer(statuses: t.Sequence[int], bodies: st.SearchStrategy[str], headers: st.SearchStrategy[dict]) -> st.SearchStrategy[tuple]:
    return st.tuples(st.sampled_from(statuses), headers, bodies)


OPERATIONS = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.just(GUID),
            "status": st.one_of(JSON_SCALARS, st.sampled_from(["running", "canceled", "completed"])),
            "cancellationRequestState": st.one_of(
                JSON_SCALARS, st.sampled_from(["canCancel", "CanCancel", "cancelRequested", "cancellationInProgress", "notCancellable", "cannotCancel"])
            ),
        },
    ),
    JSON_VALUES,
).flatmap(lambda operation: st.sampled_from([operation, [operation]]))
LIST_BODIES = st.one_of(
    SUBMISSIONS.map(dump),
    st.lists(
        st.fixed_dictionaries({"id": st.sampled_from([GUID, GUID.upper(), "../x", "a/b", "", "x" * 300]), "submissionState": st.just("running")}),
        min_size=1,
        max_size=2,
    ).map(dump),
    BODIES,
)
POST_HEADERS = st.dictionaries(
    st.sampled_from(["Location", "Operation-Location", "Retry-After"]),
    st.one_of(location_values("https://cloudpartner.azure.com"), RETRY_AFTER.filter(lambda value: value is not None)),
    max_size=3,
)


RUNNING_LISTS = st.lists(
    st.fixed_dictionaries({"id": st.sampled_from([GUID, GUID.upper()]), "submissionState": st.sampled_from(["running", "Running", "inProgress"])}),
    min_size=1,
    max_size=2,
).map(dump)
CANCELLABLE = st.fixed_dictionaries(
    {"id": st.just(GUID), "status": st.just("running"), "cancellationRequestState": st.sampled_from(["canCancel", "CanCancel", "cancelRequested"])}
).flatmap(lambda operation: st.sampled_from([operation, [operation]]))
POST_ANSWERS = answer([200, 202, 202, 202, 400, 401, 403, 404, 409, 429, 500, 503], st.sampled_from(["", "{}", "not json"]), POST_HEADERS)


@FUZZ_SLOW
@given(
    list_answer=answer([200, 200, 200, 400, 401, 403, 404, 500, 503], LIST_BODIES, st.just({})),
    operation_answer=answer([200, 200, 200, 404, 500], st.one_of(OPERATIONS.map(dump), BODIES), st.just({})),
    post_answer=POST_ANSWERS,
    operation_id=st.sampled_from([None, GUID, "5a63deb5-925b-4ee0-938b-7c86fbf287c5"]),
    check_mode=st.booleans(),
)
# the cancel's answer is lost, and the read afterwards shows the operation ended: changed, no status_code
@example(
    list_answer=(200, {}, dump([{"id": GUID, "submissionState": "running"}])),
    operation_answer=(200, {}, dump({"id": GUID, "status": "canceled"})),
    post_answer=(503, {}, ""),
    operation_id=None,
    check_mode=False,
)
def test_cancel_flow_ends_cleanly_whatever_the_service_answers(list_answer, operation_answer, post_answer, operation_id, check_mode):
    run_cancel_flow(list_answer, operation_answer, post_answer, operation_id, check_mode)


@FUZZ_SLOW
@given(
    list_body=RUNNING_LISTS,
    operation_body=CANCELLABLE.map(dump),
    post_answer=POST_ANSWERS,
    operation_id=st.sampled_from([None, GUID]),
    check_mode=st.booleans(),
)
def test_cancel_flow_after_plausible_reads_whatever_the_cancel_answers(list_body, operation_body, post_answer, operation_id, check_mode):
    """Here the reads succeed, so the POST and its answer (status, Location, Retry-After) are what varies."""
    run_cancel_flow((200, {}, list_body), (200, {}, operation_body), post_answer, operation_id, check_mode)


def run_cancel_flow(list_answer: tuple, operation_answer: tuple, post_answer: tuple, operation_id: t.Optional[str], check_mode: bool) -> None:
    session = ScriptedSession({"list": list_answer, "operation": operation_answer, "post": post_answer})
    registered: list[str] = []
    warnings: list[str] = []
    options = ConnectionOptions(
        api_url="https://cloudpartner.azure.com", api_version=V, authority_host="https://login.microsoftonline.com", verify=True, timeout=30, retries=0
    )
    client = _http.CloudPartnerClient(options, GivenToken(FAKE_TOKEN, registered.append), session, sleep=lambda seconds: None)
    request = ops.CancelRequest(offer=OFFER, operation_id=operation_id, notification_emails=[], wait=WaitOptions(enabled=False, timeout=10, sleep=1))
    try:
        result = ops.cancel_offer_operation(client, request, check_mode, warnings.append)
    except CloudPartnerError as error:
        shown = error.message + json.dumps(error.result, default=str)
        result = None
    else:
        assert isinstance(result["changed"], bool)
        assert isinstance(result["msg"], str)
        shown = json.dumps(result, default=str)
    assert FAKE_TOKEN not in shown
    assert not any(FAKE_TOKEN in message for message in warnings)
    assert registered == [FAKE_TOKEN]
    # the token went to api_url only
    for _method, url, headers in session.calls:
        assert connect_origin(url) == ("https", "cloudpartner.azure.com", 443)
        assert headers.get("Authorization") == f"Bearer {FAKE_TOKEN}"
    posts = [call for call in session.calls if call[0] == "POST"]
    # retries is 0: the POST is never repeated, not even after a lost answer
    assert len(posts) <= 1
    if check_mode:
        assert not posts
    if posts and result is not None:
        assert result["changed"] is True
        if post_answer[0] in (200, 202):
            assert result["status_code"] == post_answer[0]
        else:
            # the answer was lost (429/5xx) and a read afterwards showed the cancellation: no status to report
            assert post_answer[0] in _http.RETRYABLE_STATUSES
            assert "status_code" not in result
            assert "answer was lost" in result["msg"]
    if result is not None and result["changed"] and not check_mode:
        assert posts
    if posts:
        # nothing is sent unless the service said the operation may be cancelled (absent state = canCancel)
        first_read = [call for call in session.calls if call[0] == "GET" and "/operations/" in call[1]]
        assert first_read
        operation = w.single_operation(json.loads(operation_answer[2]), "x")
        assert w.cancellation_verdict(operation.get("cancellationRequestState")) == w.MAY_CANCEL
    # operation_location is only ever a URL the token may go to; a refused location comes with a warning instead
    location = (result or {}).get("operation_location")
    assert location is None or _http.same_origin(location, options.api_url)
    if (
        result is not None
        and result.get("status_code") == 202
        and location is None
        and any((post_answer[1].get(name) or "").strip() for name in ("Location", "Operation-Location"))
    ):
        assert warnings


# ---------------------------------------------------------------------------------------------------- validators
# test__validation.py covers path_segment, guid, tenant, email, api_version, base_url, positive_int, retry_count
# and readable_file with examples, and path_segment, api_version, email and base_url with properties. These add
# status_filter (not tested there), is_loopback_host, positive_int / retry_count over any type, email_list,
# base_url(https_only=True), guid and tenant properties, and the shape of every rejection message.

ANY_OPTION_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=2),
)
NEAR_TEXT = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=string.ascii_letters + string.digits + " .-_/\\@:,;%\t\n\u0430\u043e\u00e9\uff41\u200b\u2215", max_size=60),
)


@FUZZ
@given(
    value=st.one_of(
        NEAR_TEXT,
        ANY_OPTION_VALUE,
        st.sampled_from(["running", "Running", "in progress", "canceled", "a" * 40, "a" * 41, " running", "running\n", "r\u00fcnning"]),
    )
)
def test_status_filter(value):
    try:
        result = check.status_filter("status", value)
    except ValidationError as error:
        assert "status" in error.message
        return
    assert result == value
    assert 1 <= len(result) <= 40
    assert result[0] in string.ascii_letters
    assert set(result) <= set(string.ascii_letters + " ")


@FUZZ
@given(
    host=st.one_of(
        NEAR_TEXT,
        st.sampled_from(
            [
                "localhost",
                "LOCALHOST",
                "127.0.0.1",
                "127.255.255.255",
                "127.1",
                "::1",
                "::ffff:127.0.0.1",
                "::1%eth0",
                "0:0:0:0:0:0:0:1",
                "0x7f000001",
                "2130706433",
                "127.0.0.1.",
                "localhost.",
                "[::1]",
                "localhost\x00",
            ]
        ),
    )
)
def test_is_loopback_host_is_strict(host):
    loopback = check.is_loopback_host(host)
    assert isinstance(loopback, bool)
    if loopback:
        if host.lower() != "localhost":
            assert ipaddress.ip_address(host).is_loopback


@FUZZ
@given(value=ANY_OPTION_VALUE, maximum=st.one_of(st.none(), st.integers(min_value=1, max_value=10**6)))
def test_positive_int_any_value(value, maximum):
    try:
        result = check.positive_int("wait_timeout", value, maximum=maximum)
    except ValidationError as error:
        assert "wait_timeout" in error.message
        assert not (type(value) is int and value > 0 and (maximum is None or value <= maximum))  # pylint: disable=unidiomatic-typecheck
        return
    assert type(result) is int  # pylint: disable=unidiomatic-typecheck
    assert result == value and result > 0
    assert maximum is None or result <= maximum


@FUZZ
@given(value=ANY_OPTION_VALUE)
def test_retry_count_any_value(value):
    try:
        result = check.retry_count("retries", value)
    except ValidationError as error:
        assert "retries" in error.message
        assert not (type(value) is int and 0 <= value <= 20)  # pylint: disable=unidiomatic-typecheck
        return
    assert type(result) is int and 0 <= result <= 20  # pylint: disable=unidiomatic-typecheck


@FUZZ
@given(values=st.one_of(st.none(), st.lists(st.one_of(NEAR_TEXT, st.sampled_from(["a@contoso.com", "ops.team@sub.contoso.co.uk", "x@y"])), max_size=4)))
def test_email_list_all_or_nothing(values):
    try:
        result = check.email_list("notification_emails", values)
    except ValidationError as error:
        assert "notification_emails" in error.message
        assert values  # an empty list or None is always fine
        return
    assert result == list(values or [])
    for address in result:
        assert address.isascii() and address.count("@") == 1
        assert not set(address) & set(",; \t\r\n")


@FUZZ
@given(
    value=st.one_of(
        NEAR_TEXT,
        st.builds(
            lambda scheme, host, port: f"{scheme}://{host}{port}",
            st.sampled_from(["http", "https", "HTTPS"]),
            st.sampled_from(["localhost", "127.0.0.1", "[::1]", "login.microsoftonline.com", "10.0.0.1"]),
            st.sampled_from(["", ":443", ":8443"]),
        ),
    )
)
def test_base_url_https_only(value):
    try:
        result = check.base_url("authority_host", value, https_only=True)
    except ValidationError as error:
        assert "authority_host" in error.message
        return
    assert result.startswith("https://")
    assert check.base_url("authority_host", result, https_only=True) == result


@FUZZ
@given(value=st.one_of(NEAR_TEXT, st.uuids().map(str), st.uuids().map(lambda uuid: str(uuid).upper()), st.uuids().map(lambda uuid: f"{{{uuid}}}")))
def test_guid_is_canonical(value):
    try:
        result = check.guid("operation_id", value)
    except ValidationError as error:
        assert "operation_id" in error.message
        return
    assert result == value.lower()
    assert len(result) == 36 and set(result) <= set("0123456789abcdef-")
    assert check.guid("operation_id", result) == result


@FUZZ
@given(value=st.one_of(NEAR_TEXT, st.uuids().map(str), st.sampled_from(["contoso.onmicrosoft.com", "a..b", "a.-b", "-a", "a" * 255, "a" * 254])))
def test_tenant_is_a_safe_path_segment(value):
    try:
        result = check.tenant("tenant_id", value)
    except ValidationError as error:
        assert "tenant_id" in error.message
        return
    # it becomes a path segment of the authority URL
    assert result == value
    assert result.isascii() and 1 <= len(result) <= 254
    assert not set(result) & set("/\\?#%@: \t\r\n")
    assert ".." not in result


_TEXT_VALIDATORS = [
    (check.path_segment, {}),
    (check.guid, {}),
    (check.tenant, {}),
    (check.email, {}),
    (check.api_version, {}),
    (check.status_filter, {}),
    (check.base_url, {}),
    (check.base_url, {"https_only": True}),
]


@FUZZ
@given(value=st.one_of(NEAR_TEXT, st.text(min_size=100, max_size=400)))
def test_rejection_messages_are_ascii_bounded_and_name_the_option(value):
    """Look-alike characters are shown escaped, and a huge value does not make a huge message."""
    for validator, kwargs in _TEXT_VALIDATORS:
        try:
            validator("the_option", value, **kwargs)
        except ValidationError as error:
            assert "the_option" in error.message
            assert error.message.isascii(), (validator.__name__, error.message)
            assert len(error.message) < 400, (validator.__name__, len(error.message))


# ---------------------------------------------------------------------------------------------------- known bugs

# valid JSON, nested deeper than the C scanner recurses (about 1000 levels on Python 3.11, more on 3.12+)
DEEP_JSON = "[" * 100000 + "]" * 100000


def test_bug_deeply_nested_body_is_a_format_error():
    response = _http.ApiResponse(status=200, headers=CaseInsensitiveDict(), text=DEEP_JSON, url=TOKEN_URLS[0])
    with pytest.raises(ResponseFormatError):
        response.json()


def test_bug_deeply_nested_error_body_is_still_an_api_error():
    response = _http.ApiResponse(status=502, headers=CaseInsensitiveDict(), text=DEEP_JSON, url=TOKEN_URLS[0])
    assert isinstance(_http.api_error_from("GET", TOKEN_URLS[0], response), ApiError)


def test_bug_operation_location_with_user_info_is_refused():
    headers = CaseInsensitiveDict({"Location": "https://user:pass@cloudpartner.azure.com/api/publishers/p/offers/o/operations/x"})
    try:
        url = w.operation_location(headers, "https://cloudpartner.azure.com", V)
    except UnsafeLocationError:
        return
    assert url is not None
    assert "@" not in urlsplit(url).netloc
    prepared = requests.Request("GET", url, headers={"Authorization": f"Bearer {FAKE_TOKEN}"}).prepare()
    assert prepared.headers["Authorization"] == f"Bearer {FAKE_TOKEN}"


@pytest.mark.parametrize("value", ["Mon, 01 Jan 99999999999 00:00:00 GMT", "Mon, 01 Jan 2147483648 00:00:00 GMT"])
def test_bug_retry_after_date_with_a_huge_year(value):
    assert _http.parse_retry_after(value, now=0.0) is None
