# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import datetime
import email.utils
import json
import time

import pytest
import requests
import urllib3
from hypothesis import given
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _http
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._auth import GivenToken
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._errors import (
    ApiError,
    CloudPartnerError,
    ResponseFormatError,
    TransportError,
    UnsafeLocationError,
)

PATH = "/api/publishers/contoso/offers/vm/submissions/"


def url(path=PATH, base="https://cloudpartner.azure.com"):
    return f"{base}{path}?api-version=2017-10-31"


def connection_error(text="Connection refused"):
    return requests.exceptions.ConnectionError(text)


# ---------------------------------------------------------------- request basics


def test_request_sends_token_accept_verify_timeout_and_no_redirects(fakes, make_client):
    session = fakes.Session(fakes.response(200, [{"id": "x"}]))
    client = make_client(session, timeout=12, verify="/etc/cp/ca.pem")
    assert client.get_json(PATH, status="running") == [{"id": "x"}]
    (call,) = session.calls
    assert call.method == "GET"
    assert call.path == PATH
    assert call.query == {"api-version": "2017-10-31", "status": "running"}
    assert call.headers["Authorization"] == f"Bearer {fakes.TOKEN}"
    assert call.headers["Accept"] == "application/json"
    assert "Content-Type" not in call.headers
    assert call.data is None
    assert call.verify == "/etc/cp/ca.pem"
    assert call.timeout == 12
    assert call.allow_redirects is False
    assert client.request_count == 1


def test_url_builds_query(fakes, make_client):
    client = make_client(fakes.Session(), api_version="2016-08-01-preview")
    assert client.url("/api/x") == "https://cloudpartner.azure.com/api/x?api-version=2016-08-01-preview"
    assert client.url("/api/x", status=None) == "https://cloudpartner.azure.com/api/x?api-version=2016-08-01-preview"
    assert client.url("/api/x", status="a b&c") == "https://cloudpartner.azure.com/api/x?api-version=2016-08-01-preview&status=a+b%26c"


def test_json_body_is_serialised(fakes, make_client):
    session = fakes.Session(fakes.response(202))
    client = make_client(session)
    body = {"metadata": {"notification-emails": "a@x.com,b@y.com"}}
    response = client.request("POST", url("/api/publishers/contoso/offers/vm/cancel"), json_body=body, expected=(200, 202))
    assert response.status == 202
    (call,) = session.calls
    assert call.headers["Content-Type"] == "application/json"
    assert call.json == body


def test_unexpected_success_status_is_an_error(fakes, make_client):
    session = fakes.Session(fakes.response(204))
    with pytest.raises(ApiError) as info:
        make_client(session).request("GET", url())
    assert info.value.status == 204
    assert len(session.calls) == 1


# ---------------------------------------------------------------- retries


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retries_retryable_statuses_then_succeeds(fakes, make_client, fake_clock, status):
    session = fakes.Session(fakes.api_error(status), fakes.api_error(status), fakes.response(200, {"ok": True}))
    client = make_client(session, retries=3)
    assert client.get_json(PATH) == {"ok": True}
    assert len(session.calls) == 3
    assert len(fake_clock.sleeps) == 2


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retries_stop_at_budget(fakes, make_client, fake_clock, status):
    session = fakes.Session(*[fakes.api_error(status, "Busy", "Try later.") for _attempt in range(4)])
    with pytest.raises(ApiError) as info:
        make_client(session, retries=2).get_json(PATH)
    assert len(session.calls) == 3
    assert len(fake_clock.sleeps) == 2
    assert info.value.status == status
    assert "Gave up after 2 retries" in info.value.message
    assert "Busy" in info.value.message and "Try later." in info.value.message


def test_zero_retries_means_one_attempt(fakes, make_client, fake_clock):
    session = fakes.Session(fakes.api_error(503), fakes.response(200))
    with pytest.raises(ApiError):
        make_client(session, retries=0).get_json(PATH)
    assert len(session.calls) == 1
    assert not fake_clock.sleeps


def test_per_call_retries_override(fakes, make_client, fake_clock):
    session = fakes.Session(fakes.api_error(503), fakes.response(200))
    with pytest.raises(ApiError):
        make_client(session, retries=5).get_json(PATH, retries=0)
    assert len(session.calls) == 1
    assert not fake_clock.sleeps


@pytest.mark.parametrize("status", [400, 403, 404, 409, 412, 422])
def test_no_retry_on_client_errors(fakes, make_client, fake_clock, status):
    session = fakes.Session(fakes.api_error(status), fakes.response(200))
    with pytest.raises(ApiError) as info:
        make_client(session, retries=5).get_json(PATH)
    assert len(session.calls) == 1
    assert not fake_clock.sleeps
    assert info.value.status == status
    assert "Gave up" not in info.value.message


def test_post_is_retried_with_the_same_body(fakes, make_client):
    session = fakes.Session(fakes.api_error(503), fakes.response(202))
    body = {"metadata": {"notification-emails": "a@x.com"}}
    make_client(session).request("POST", url("/api/publishers/contoso/offers/vm/cancel"), json_body=body, expected=(200, 202))
    assert [call.method for call in session.calls] == ["POST", "POST"]
    assert session.calls[0].data == session.calls[1].data
    assert session.calls[1].json == body


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ConnectionError("Connection reset by peer"),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectTimeout("connect timed out"),
        requests.exceptions.ChunkedEncodingError("broken"),
    ],
)
def test_connection_errors_are_retried(fakes, make_client, fake_clock, error):
    session = fakes.Session(error, error, fakes.response(200, {"ok": 1}))
    assert make_client(session, retries=2).get_json(PATH) == {"ok": 1}
    assert len(session.calls) == 3
    assert len(fake_clock.sleeps) == 2


def test_connection_errors_exhaust_budget(fakes, make_client, fake_clock):
    session = fakes.Session(*[connection_error() for _attempt in range(3)])
    with pytest.raises(TransportError) as info:
        make_client(session, retries=2).get_json(PATH)
    assert len(session.calls) == 3
    assert len(fake_clock.sleeps) == 2
    assert info.value.retryable is True
    assert "Connection refused" in info.value.message
    assert PATH in info.value.message


def test_timeout_message(fakes, make_client):
    session = fakes.Session(requests.exceptions.ReadTimeout("HTTPSConnectionPool(...): Read timed out. (read timeout=7)"))
    with pytest.raises(TransportError) as info:
        make_client(session, retries=0, timeout=7).get_json(PATH)
    assert "7 seconds" in info.value.message
    assert "timeout" in info.value.message


def test_tls_errors_are_not_retried(fakes, make_client, fake_clock):
    session = fakes.Session(requests.exceptions.SSLError("certificate verify failed"), fakes.response(200))
    with pytest.raises(TransportError) as info:
        make_client(session, retries=5).get_json(PATH)
    assert len(session.calls) == 1
    assert not fake_clock.sleeps
    assert info.value.retryable is False
    assert "certificate verify failed" in info.value.message
    assert "ca_path" in info.value.message


def test_transport_error_reports_innermost_reason(fakes, make_client):
    inner = OSError("[Errno 111] Connection refused")
    outer = requests.exceptions.ConnectionError("HTTPSConnectionPool(host='x', port=443): Max retries exceeded with url: /a?b")
    outer.__cause__ = inner
    with pytest.raises(TransportError) as info:
        make_client(fakes.Session(outer), retries=0).get_json(PATH)
    assert "Connection refused" in info.value.message
    assert "Max retries exceeded" not in info.value.message


def test_verify_and_timeout_on_every_attempt(fakes, make_client):
    session = fakes.Session(connection_error(), fakes.api_error(503), fakes.response(401), fakes.response(200))
    make_client(session, verify=False, timeout=9, retries=3).get_json(PATH)
    assert len(session.calls) == 4
    assert [call.verify for call in session.calls] == [False] * 4
    assert [call.timeout for call in session.calls] == [9] * 4
    assert [call.allow_redirects for call in session.calls] == [False] * 4


# ---------------------------------------------------------------- Retry-After and backoff


@pytest.mark.parametrize("name", ["Retry-After", "retry-after", "RETRY-AFTER"])
def test_retry_after_seconds_any_header_case(fakes, make_client, fake_clock, name):
    session = fakes.Session(fakes.api_error(429, headers={name: "7"}), fakes.response(200))
    make_client(session).get_json(PATH)
    assert fake_clock.sleeps == [7.0]


def test_retry_after_http_date(fakes, make_client, fake_clock):
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=20)
    session = fakes.Session(fakes.api_error(503, headers={"retry-after": email.utils.format_datetime(when, usegmt=True)}), fakes.response(200))
    make_client(session).get_json(PATH)
    (delay,) = fake_clock.sleeps
    assert 15 <= delay <= 20


def test_retry_after_beyond_maximum_stops(fakes, make_client, fake_clock):
    session = fakes.Session(fakes.api_error(429, headers={"Retry-After": str(int(_http.MAX_RETRY_AFTER) + 1)}), fakes.response(200))
    with pytest.raises(ApiError) as info:
        make_client(session, retries=5).get_json(PATH)
    assert len(session.calls) == 1
    assert not fake_clock.sleeps
    assert info.value.status == 429
    assert str(int(_http.MAX_RETRY_AFTER) + 1) in info.value.message
    assert info.value.retry_after == _http.MAX_RETRY_AFTER + 1


def test_retry_after_at_maximum_is_slept(fakes, make_client, fake_clock):
    session = fakes.Session(fakes.api_error(429, headers={"Retry-After": str(int(_http.MAX_RETRY_AFTER))}), fakes.response(200))
    make_client(session).get_json(PATH)
    assert fake_clock.sleeps == [_http.MAX_RETRY_AFTER]


def test_unreadable_retry_after_falls_back_to_backoff(fakes, make_client, fake_clock):
    session = fakes.Session(fakes.api_error(503, headers={"Retry-After": "soon"}), fakes.response(200))
    make_client(session, jitter=lambda: 1.0).get_json(PATH)
    assert fake_clock.sleeps == [_http.BACKOFF_BASE]


@pytest.mark.parametrize("jitter", [0.0, 0.999999])
def test_backoff_grows_and_stays_within_bounds(fakes, make_client, fake_clock, jitter):
    session = fakes.Session(*[connection_error() for _attempt in range(12)], fakes.response(200))
    make_client(session, retries=12, jitter=lambda: jitter).get_json(PATH)
    assert len(fake_clock.sleeps) == 12
    for attempt, delay in enumerate(fake_clock.sleeps):
        ceiling = min(_http.BACKOFF_CAP, _http.BACKOFF_BASE * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert fake_clock.sleeps == sorted(fake_clock.sleeps)
    assert fake_clock.sleeps[-1] <= _http.BACKOFF_CAP
    assert fake_clock.sleeps[5] > fake_clock.sleeps[0] * 8


def test_backoff_is_jittered(fakes, make_client, fake_clock):
    values = iter([0.0, 1.0, 0.0])
    session = fakes.Session(connection_error(), connection_error(), connection_error(), fakes.response(200))
    make_client(session, retries=3, jitter=lambda: next(values)).get_json(PATH)
    low0, high1, low2 = fake_clock.sleeps
    assert low0 == pytest.approx(_http.BACKOFF_BASE / 2)
    assert high1 == pytest.approx(_http.BACKOFF_BASE * 2)
    assert low2 == pytest.approx(_http.BACKOFF_BASE * 4 / 2)


def test_backoff_with_real_random_jitter(fakes):
    sleeps = []
    session = fakes.Session(*[connection_error() for _attempt in range(6)], fakes.response(200))
    client = _http.CloudPartnerClient(fakes.options(retries=6), fakes.Tokens(), session, sleep=sleeps.append)
    client.get_json(PATH)
    for attempt, delay in enumerate(sleeps):
        ceiling = min(_http.BACKOFF_CAP, _http.BACKOFF_BASE * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling


RETRY_AFTER = [
    (None, None),
    ("0", 0.0),
    ("120", 120.0),
    (" 5 ", 5.0),
    ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
    ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ("-5", None),
    ("1.5", None),
    ("soon", None),
    ("", None),
    ("Wed, 21 Oct 2015 07:28:30 -0000", None),
    # str.isdigit() is true for these but float() refuses them (a ValueError once escaped from ApiResponse.retry_after)
    ("\xb2", None),
    ("\u0663", None),
    (" \uff15 ", None),
]


def test_parse_retry_after():
    now = datetime.datetime(2015, 10, 21, 7, 28, 0, tzinfo=datetime.timezone.utc).timestamp()
    assert [
        (value, _http.parse_retry_after(value, now=now), expected) for value, expected in RETRY_AFTER if _http.parse_retry_after(value, now=now) != expected
    ] == []


@given(
    value=st.text(max_size=40)
    | st.builds(lambda number, pad: f"{pad}{number}{pad}", st.integers(0, 10**40), st.sampled_from(["", " ", "\t"]))
    | st.datetimes(timezones=st.just(datetime.timezone.utc)).map(lambda when: email.utils.format_datetime(when, usegmt=True))
)
def test_parse_retry_after_is_total(value):
    seconds = _http.parse_retry_after(value, now=time.time())
    assert seconds is None or seconds >= 0


# ---------------------------------------------------------------- 401 and token refresh


def test_401_refreshes_token_once_then_retries(fakes, make_client, fake_clock):
    tokens = fakes.Tokens()
    session = fakes.Session(fakes.response(401), fakes.response(200, {"ok": True}))
    assert make_client(session, tokens=tokens).get_json(PATH) == {"ok": True}
    assert tokens.refreshes == 1
    assert [call.headers["Authorization"] for call in session.calls] == [f"Bearer {fakes.TOKEN}", f"Bearer {fakes.REFRESHED_TOKEN}"]
    assert not fake_clock.sleeps


def test_second_401_fails_without_another_refresh(fakes, make_client):
    tokens = fakes.Tokens()
    session = fakes.Session(fakes.response(401), fakes.api_error(401, "InvalidToken", "Token expired."), fakes.response(200))
    with pytest.raises(ApiError) as info:
        make_client(session, tokens=tokens, retries=5).get_json(PATH)
    assert tokens.refreshes == 1
    assert len(session.calls) == 2
    assert info.value.status == 401
    assert "access_token" in info.value.message


def test_401_with_given_token_is_not_refreshed(fakes, make_client):
    tokens = fakes.Tokens(can_refresh=False)
    session = fakes.Session(fakes.response(401), fakes.response(200))
    with pytest.raises(ApiError) as info:
        make_client(session, tokens=tokens).get_json(PATH)
    assert tokens.refreshes == 0
    assert len(session.calls) == 1
    assert info.value.status == 401
    assert "access_token" in info.value.message


def test_401_with_given_token_explains_the_token(fakes, monkeypatch):
    tokens = GivenToken("given-xyz", lambda value: None)
    monkeypatch.setattr(tokens, "refresh", lambda: pytest.fail("a given token cannot be refreshed: no attempt expected"))
    session = fakes.Session(fakes.api_error(401, "ExpiredToken", "Token expired."), fakes.response(200))
    client = _http.CloudPartnerClient(fakes.options(retries=5), tokens, session, sleep=lambda s: None)
    with pytest.raises(ApiError) as info:
        client.get_json(PATH)
    assert info.value.status == 401
    assert GivenToken.rejected_note in info.value.message
    assert "given access_token was rejected" in info.value.message
    assert "ExpiredToken" in info.value.message
    assert "given-xyz" not in info.value.message
    assert len(session.calls) == 1


def test_refresh_happens_once_per_request_even_after_retries(fakes, make_client):
    tokens = fakes.Tokens()
    session = fakes.Session(fakes.api_error(503), fakes.response(401), fakes.api_error(503), fakes.response(401))
    with pytest.raises(ApiError) as info:
        make_client(session, tokens=tokens, retries=5).get_json(PATH)
    assert tokens.refreshes == 1
    assert info.value.status == 401
    assert len(session.calls) == 4


# ---------------------------------------------------------------- error messages


@pytest.mark.parametrize(
    "status, hint",
    [
        (400, "invalid"),
        (401, "access_token"),
        (403, "service principal"),
        (404, "publisher_id and offer_id"),
        (500, "service failed"),
        (503, "service failed"),
    ],
)
def test_api_error_message(fakes, make_client, status, hint):
    session = fakes.Session(fakes.api_error(status, "SomeCode", "Some message from the service."))
    with pytest.raises(ApiError) as info:
        make_client(session, tokens=fakes.Tokens(can_refresh=False), retries=0).get_json(PATH)
    message = info.value.message
    assert f"HTTP {status}" in message
    assert "SomeCode" in message
    assert "Some message from the service." in message
    assert hint in message
    assert f"GET {PATH}" in message
    assert fakes.TOKEN not in message
    assert "Bearer" not in message and "Authorization" not in message
    assert "api-version" not in message
    # status_code is a result key of the cancel request only (the operations layer adds it for the POST)
    assert "status_code" not in info.value.result
    assert (info.value.code, info.value.api_message) == ("SomeCode", "Some message from the service.")
    assert str(info.value) == message


@pytest.mark.parametrize(
    "body, code, api_message",
    [
        ({"error": {"code": "Forbidden", "message": "No access."}}, "Forbidden", "No access."),
        ({"error": "invalid_request", "error_description": "Bad thing."}, "invalid_request", "Bad thing."),
        ({"code": "NotFound", "message": "Offer not found."}, "NotFound", "Offer not found."),
        ({"error": {"code": 42}}, "42", None),
        ({"unrelated": True}, None, None),
        (["not", "a", "dict"], None, None),
    ],
)
def test_api_error_body_shapes(fakes, make_client, body, code, api_message):
    with pytest.raises(ApiError) as info:
        make_client(fakes.Session(fakes.response(403, body)), retries=0).get_json(PATH)
    assert (info.value.code, info.value.api_message) == (code, api_message)
    assert "HTTP 403" in info.value.message


@pytest.mark.parametrize("text", ["<html>Bad gateway</html>", "", "{not json"])
def test_api_error_with_unreadable_body(fakes, make_client, text):
    with pytest.raises(ApiError) as info:
        make_client(fakes.Session(fakes.response(404, text=text)), retries=0).get_json(PATH)
    assert info.value.code is None
    assert "HTTP 404" in info.value.message
    assert "publisher_id" in info.value.message


def test_api_error_truncates_long_service_text(fakes, make_client):
    with pytest.raises(ApiError) as info:
        make_client(fakes.Session(fakes.api_error(400, "C" * 5000, "m" * 5000)), retries=0).get_json(PATH)
    assert len(info.value.message) < 1600


def test_malformed_json_is_a_response_format_error(fakes, make_client):
    session = fakes.Session(fakes.response(200, text="<html>oops</html>", headers={"content-type": "text/html"}))
    with pytest.raises(ResponseFormatError) as info:
        make_client(session).get_json(PATH)
    assert PATH in info.value.message
    assert "text/html" in info.value.message
    assert "HTTP 200" in info.value.message
    assert fakes.TOKEN not in info.value.message
    assert len(session.calls) == 1


def test_empty_body_is_none(fakes, make_client):
    assert make_client(fakes.Session(fakes.response(200, text="  \n"))).get_json(PATH) is None


# ---------------------------------------------------------------- origin checks


FOREIGN_TARGETS = [
    "https://evil.example/api/x",
    "https://cloudpartner.azure.com.evil.example/api/x",
    "https://cloudpartner.azure.com:8443/api/x",
    "http://cloudpartner.azure.com/api/x",
    "https://evil.example/https://cloudpartner.azure.com/",
    "https://cloudpartner.azure.com@evil.example/api/x",
    "ftp://cloudpartner.azure.com/api/x",
]


def test_token_never_sent_to_another_origin(fakes, make_client):
    session = fakes.Session(fakes.response(200))
    client = make_client(session)
    allowed = []
    for target in FOREIGN_TARGETS:
        try:
            client.request("GET", target)
            allowed.append(target)
        except UnsafeLocationError as error:
            assert fakes.TOKEN not in error.message
    assert not allowed
    assert not session.calls


@pytest.mark.parametrize(
    "target",
    [
        "https://cloudpartner.azure.com:443/api/x?api-version=2017-10-31",
        "HTTPS://CloudPartner.Azure.COM/api/x?api-version=2017-10-31",
    ],
)
def test_same_origin_variants_are_allowed(fakes, make_client, target):
    session = fakes.Session(fakes.response(200))
    make_client(session).request("GET", target)
    assert len(session.calls) == 1


@pytest.mark.parametrize(
    "target",
    [
        # urllib.parse.urlsplit reads the host after the last '@' (cloudpartner.azure.com), requests/urllib3 stop the
        # authority at the backslash and would connect to evil.example
        "https://evil.example\\@cloudpartner.azure.com/api/x?api-version=2017-10-31",
        "https://evil.example\t@cloudpartner.azure.com/api/x",
    ],
)
def test_parser_differential_url_does_not_reach_another_host(fakes, make_client, target):
    session = fakes.Session(fakes.response(200))
    with pytest.raises(UnsafeLocationError):
        make_client(session).request("GET", target)
    assert not session.calls


ORIGINS = [
    ("https://h.example/a", "https://h.example", True),
    ("https://h.example:443/a", "https://h.example", True),
    ("https://h.example/a", "https://h.example:443", True),
    ("http://localhost:80/a", "http://localhost", True),
    ("https://H.Example/a", "https://h.example", True),
    ("https://h.example:8443/a", "https://h.example", False),
    ("http://h.example/a", "https://h.example", False),
    ("https://h.example:80/a", "http://h.example", False),
    ("https://g.example/a", "https://h.example", False),
    ("http://127.0.0.1:41002/a", "http://127.0.0.1:41002", True),
    ("http://127.0.0.1:41003/a", "http://127.0.0.1:41002", False),
    ("http://[::1]:5000/a", "http://[::1]:5000", True),
    # backslash, whitespace, control and non-ASCII characters never match, even on the right host
    ("https://evil.example\\@h.example/a", "https://h.example", False),
    ("https://h.example\\/a", "https://h.example", False),
    ("https://h.example/a b", "https://h.example", False),
    ("https://h.example/a\tb", "https://h.example", False),
    ("https://h.example/a\x00", "https://h.example", False),
    ("https://h.example/a\x7f", "https://h.example", False),
    ("https://h.example/\u00e9", "https://h.example", False),
    ("https://h.example:abc/a", "https://h.example", False),
    ("https://[h.example/a", "https://h.example", False),
]


def test_same_origin():
    assert [(left, right, same) for left, right, same in ORIGINS if _http.same_origin(left, right) is not same] == []


def test_same_origin_also_asks_urllib3(monkeypatch):
    # Defence in depth: requests connects where urllib3's parse_url says; should it ever disagree with urlsplit
    # (or fail), there is no match.
    real = _http.urllib3_parse_url
    monkeypatch.setattr(_http, "urllib3_parse_url", lambda value: real(value.replace("h.example", "evil.example")))
    assert _http.same_origin("https://h.example/a", "https://h.example") is False

    def refuse(value):
        raise urllib3.exceptions.LocationParseError(value)

    monkeypatch.setattr(_http, "urllib3_parse_url", refuse)
    assert _http.same_origin("https://h.example/a", "https://h.example") is False


# ---------------------------------------------------------------- build_session and the environment


class RecordingAdapter(requests.adapters.BaseAdapter):
    """A transport that records what requests would send and answers 200 '{}'."""

    def __init__(self):
        super().__init__()
        self.sent = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # pylint: disable=too-many-arguments
        self.sent.append({"url": request.url, "headers": dict(request.headers), "timeout": timeout, "verify": verify, "proxies": proxies})
        response = requests.models.Response()
        response.status_code = 200
        response._content = b"{}"  # pylint: disable=protected-access
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass


@pytest.fixture
def ca_env(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/requests-ca.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/env/curl-ca.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")


def settings_for(session, target="https://cloudpartner.azure.com/api/x"):
    return session.merge_environment_settings(target, {}, None, None, None)


@pytest.mark.parametrize("verify", ["/some/ca.pem", False])
def test_build_session_explicit_verify_beats_env_bundle(ca_env, verify):  # pylint: disable=unused-argument
    session = _http.build_session(verify, 30)
    settings = settings_for(session)
    assert settings["verify"] == verify
    assert settings["proxies"].get("https") == "http://proxy.example:3128"
    # MSAL passes verify=True itself (or nothing): the explicit choice must still win
    assert session.merge_environment_settings("https://login.example/t", {}, None, True, None)["verify"] == verify


def test_build_session_default_verify_uses_env_bundle(ca_env):  # pylint: disable=unused-argument
    session = _http.build_session(True, 30)
    settings = settings_for(session)
    assert settings["verify"] == "/env/requests-ca.pem"
    assert settings["proxies"].get("https") == "http://proxy.example:3128"


def test_build_session_no_proxy_keeps_working(ca_env, monkeypatch):  # pylint: disable=unused-argument
    monkeypatch.setenv("NO_PROXY", "cloudpartner.azure.com")
    session = _http.build_session("/some/ca.pem", 30)
    assert not settings_for(session)["proxies"].get("https")
    assert settings_for(session, "https://other.example/x")["proxies"].get("https") == "http://proxy.example:3128"


@pytest.mark.parametrize("verify", ["/some/ca.pem", False, True])
def test_build_session_end_to_end_through_requests(ca_env, verify):  # pylint: disable=unused-argument
    session = _http.build_session(verify, 17)
    adapter = RecordingAdapter()
    session.mount("https://", adapter)
    # as MSAL calls it: no verify, no timeout
    session.post("https://login.example/tenant/oauth2/v2.0/token", data={"grant_type": "client_credentials"})
    (sent,) = adapter.sent
    assert sent["verify"] == ("/env/requests-ca.pem" if verify is True else verify)
    assert sent["timeout"] == 17
    assert sent["proxies"].get("https") == "http://proxy.example:3128"
    assert sent["headers"]["User-Agent"] == _http.USER_AGENT
    assert session.trust_env is True


def test_client_over_real_session_passes_verify(ca_env, fakes):  # pylint: disable=unused-argument
    session = _http.build_session("/some/ca.pem", 30)
    adapter = RecordingAdapter()
    session.mount("https://", adapter)
    client = _http.CloudPartnerClient(fakes.options(verify="/some/ca.pem", timeout=5), fakes.Tokens(), session)
    assert client.get_json(PATH) == {}
    (sent,) = adapter.sent
    assert sent["verify"] == "/some/ca.pem"
    assert sent["timeout"] == 5
    assert sent["headers"]["Authorization"] == f"Bearer {fakes.TOKEN}"


def test_client_over_real_session_never_sends_token_elsewhere(fakes):
    # test_parser_differential_url_does_not_reach_another_host, seen through the real requests stack
    session = _http.build_session(True, 30)
    adapter = RecordingAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    client = _http.CloudPartnerClient(fakes.options(), fakes.Tokens(), session)
    for target in ["https://evil.example\\@cloudpartner.azure.com/api/x", "https://evil.example/x", "https://cloudpartner.azure.com:444/x"]:
        try:
            client.request("GET", target)
        except CloudPartnerError:
            pass
    leaked = [sent["url"] for sent in adapter.sent if not sent["url"].startswith("https://cloudpartner.azure.com/")]
    assert not leaked, f"bearer token sent to {leaked}"


def test_api_response_json_and_retry_after():
    response = _http.ApiResponse(200, CaseInsensitiveDict({"retry-after": "3"}), json.dumps({"a": 1}), "https://h/x")
    assert response.json() == {"a": 1}
    assert response.retry_after == 3.0


def test_require_requests(monkeypatch):
    _http.require_requests()
    monkeypatch.setattr(_http, "HAS_REQUESTS", False)
    with pytest.raises(CloudPartnerError) as info:
        _http.require_requests()
    assert info.value.library == "requests"
