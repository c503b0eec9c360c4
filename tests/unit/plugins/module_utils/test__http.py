# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import datetime
import email.utils
import http.server
import json
import threading
import time
import typing as t
from urllib.parse import urlsplit

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
    assert len(session.calls) == 1


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
        make_client(session, retries=5).request("GET", url(PATH), retries=0)
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
    session = fakes.Session(fakes.api_error(401, "ExpiredToken", "Token expired."), fakes.response(200))
    client = _http.CloudPartnerClient(fakes.options(retries=5), tokens, session, sleep=lambda s: None)
    with pytest.raises(ApiError) as info:
        client.get_json(PATH)
    assert info.value.status == 401
    assert GivenToken.rejection_note() in info.value.message
    assert "given access_token was rejected" in info.value.message
    assert "ExpiredToken" in info.value.message
    assert "given-xyz" not in info.value.message
    assert len(session.calls) == 1


def test_401_storm_renews_one_token_per_task_not_per_request(fakes, make_client):
    # security review I9: a server answering 401 to everything got one token request per poll
    tokens = fakes.Tokens()
    client = make_client(fakes.Session(*[fakes.response(401)] * 6), tokens=tokens, retries=5)
    for _attempt in range(3):
        with pytest.raises(ApiError) as info:
            client.request("GET", url(PATH), retries=0)
        assert info.value.status == 401
    assert tokens.refreshes == 1
    assert "fake rejection note" in info.value.message


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


def test_api_error_keeps_service_text_whole_so_masking_comes_before_cutting(fakes, make_client):
    # security review I3: truncating here could leave the start of a secret that straddles the cut unmasked;
    # the module masks, then bounds (test__module.py).
    with pytest.raises(ApiError) as info:
        make_client(fakes.Session(fakes.api_error(400, "C" * 5000, "m" * 4990 + "SECRET-XYZ")), retries=0).get_json(PATH)
    assert "m" * 4990 + "SECRET-XYZ" in info.value.message


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
        response._content_consumed = True  # pylint: disable=protected-access
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


# ---------------------------------------------------------------- the session over a real loopback server


class _LoopbackServer:
    """A tiny HTTP server on 127.0.0.1 whose paths behave as the tests need; it records what reached it."""

    def __init__(self) -> None:
        self.hits: list[dict] = []
        self.trickled = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # pylint: disable=arguments-differ
                pass

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _answer(self, status: int, body: bytes = b"{}", headers: t.Optional[dict] = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def handle_one(self) -> None:
                body = self._body()
                outer.hits.append({"method": self.command, "path": self.path, "authorization": self.headers.get("Authorization"), "body": body})
                path = urlsplit(self.path).path
                if path == "/redirect":
                    self._answer(307, b"", {"Location": f"http://127.0.0.1:{outer.port}/stolen"})
                elif path == "/throttled":
                    self._answer(429, b'{"error": "temporarily_unavailable"}', {"Retry-After": "3"})
                elif path == "/trickle":
                    self.send_response(200)
                    self.send_header("Content-Length", "200")
                    self.end_headers()
                    try:
                        for _byte in range(200):
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            outer.trickled += 1
                            time.sleep(0.2)
                    except OSError:
                        pass
                elif path == "/huge-declared":
                    self.send_response(200)
                    self.send_header("Content-Length", str(_http.MAX_RESPONSE_BYTES + 1))
                    self.end_headers()
                elif path == "/huge-chunked":
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    chunk = b"x" * 65536
                    try:
                        for _chunk in range(_http.MAX_RESPONSE_BYTES // len(chunk) + 2):
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.write(b"0\r\n\r\n")
                    except OSError:
                        pass
                else:
                    self._answer(200, b'{"ok": 1}', {"Content-Type": "application/json"})

            do_GET = do_POST = handle_one  # noqa: N815

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def paths(self) -> list:
        return [hit["path"] for hit in self.hits]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def loopback():
    servers = []

    def start() -> _LoopbackServer:
        servers.append(_LoopbackServer())
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_plain_http_api_url_never_goes_through_a_proxy(loopback, monkeypatch, fakes):
    # security review M1: with HTTP_PROXY set, the bearer token went in clear text to the proxy
    api, proxy = loopback(), loopback()
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy.url)
    session = _http.build_session(True, 5)
    client = _http.CloudPartnerClient(fakes.options(api_url=api.url), fakes.Tokens(), session)
    assert client.get_json("/api/x") == {"ok": 1}
    assert proxy.hits == []
    assert [(hit["path"].split("?")[0], hit["authorization"]) for hit in api.hits] == [("/api/x", f"Bearer {fakes.TOKEN}")]


def test_https_still_honours_the_proxy_variables(ca_env):  # pylint: disable=unused-argument
    settings = settings_for(_http.build_session(True, 30))
    assert settings["proxies"].get("https") == "http://proxy.example:3128"


def test_netrc_never_replaces_the_bearer_token(loopback, monkeypatch, tmp_path, fakes):
    # security review L2: a netrc "default" entry replaced "Authorization: Bearer" with Basic credentials
    api = loopback()
    netrc = tmp_path / "netrc"
    netrc.write_text("default login bob password hunter2\n", encoding="utf-8")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".netrc").write_text("default login bob password hunter2\n", encoding="utf-8")
    session = _http.build_session(True, 5)
    _http.CloudPartnerClient(fakes.options(api_url=api.url), fakes.Tokens(), session).get_json("/api/x")
    session.post(f"{api.url}/token", data={"grant_type": "client_credentials"})
    assert [hit["authorization"] for hit in api.hits] == [f"Bearer {fakes.TOKEN}", None]


def test_redirects_are_refused_and_nothing_reaches_the_target(loopback):
    # security review L1: MSAL's token POST followed a 307 and re-sent the client secret to another origin
    server = loopback()
    session = _http.build_session(True, 5)
    with pytest.raises(TransportError) as info:
        session.post(f"{server.url}/redirect", data={"client_secret": "S3cret"})
    assert server.paths() == ["/redirect"]
    assert not info.value.retryable
    assert "HTTP 307" in info.value.message and "redirect" in info.value.message
    assert f"127.0.0.1:{server.port}" in info.value.message
    assert "S3cret" not in info.value.message


def test_api_redirect_is_an_error_that_is_not_retried(loopback, fakes):
    server = loopback()
    client = _http.CloudPartnerClient(fakes.options(api_url=server.url, retries=3), fakes.Tokens(), _http.build_session(True, 5), sleep=lambda s: None)
    with pytest.raises(TransportError) as info:
        client.get_json("/redirect")
    assert server.paths() == ["/redirect?api-version=2017-10-31"]
    assert "redirect" in info.value.message


def test_a_trickling_server_cannot_stretch_the_timeout(loopback):
    # security review L9 (slowloris): requests' timeout is per read, so one byte every 0.2 s kept it alive
    server = loopback()
    session = _http.build_session(True, 1)
    with pytest.raises(requests.exceptions.Timeout):
        session.get(f"{server.url}/trickle")
    assert 0 < server.trickled < 200


def test_client_reports_the_trickle_as_a_timeout(loopback, fakes):
    server = loopback()
    client = _http.CloudPartnerClient(fakes.options(api_url=server.url, timeout=1, retries=0), fakes.Tokens(), _http.build_session(True, 1))
    with pytest.raises(TransportError) as info:
        client.get_json("/trickle")
    assert info.value.retryable
    assert "within 1 seconds (timeout)" in info.value.message


@pytest.mark.parametrize("path", ["/huge-declared", "/huge-chunked"])
def test_answers_larger_than_the_cap_are_refused(loopback, fakes, path):
    # security review L9: bodies were read whole, with no size limit
    server = loopback()
    client = _http.CloudPartnerClient(fakes.options(api_url=server.url, retries=3), fakes.Tokens(), _http.build_session(True, 10), sleep=lambda s: None)
    with pytest.raises(TransportError) as info:
        client.get_json(path)
    assert not info.value.retryable
    assert "8 MiB" in info.value.message
    assert len(server.hits) == 1


def test_normal_answers_still_read_whole_and_keep_their_headers(loopback):
    server = loopback()
    answer = _http.build_session(True, 5).get(f"{server.url}/ok")
    assert answer.status_code == 200
    assert answer.json() == {"ok": 1}
    assert answer.headers["Content-Type"] == "application/json"


def test_a_token_with_a_newline_is_not_echoed_nor_retried(loopback, fakes):
    # security review L3: requests' InvalidHeader text quoted the header (the token) in msg, and it was retried 5 times
    server = loopback()
    token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.SIGNATURE-PART-abcdef0123456789\n"
    client = _http.CloudPartnerClient(
        fakes.options(api_url=server.url, retries=5), fakes.Tokens(token=token), _http.build_session(True, 5), sleep=lambda s: None
    )
    with pytest.raises(TransportError) as info:
        client.get_json("/api/x")
    assert not info.value.retryable
    assert "eyJ0eX" not in info.value.message and "SIGNATURE" not in info.value.message
    assert server.hits == []


def test_a_missing_ca_bundle_from_the_environment_is_a_clear_transport_error(fakes, monkeypatch, tmp_path):
    # security review I7: an OSError from the adapter ended in "Unexpected error"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    client = _http.CloudPartnerClient(fakes.options(retries=2), fakes.Tokens(), _http.build_session(True, 5), sleep=lambda s: None)
    with pytest.raises(TransportError) as info:
        client.get_json("/api/x")
    assert not info.value.retryable
    assert "GET /api/x" in info.value.message


# ---------------------------------------------------------------- deadlines


def test_each_attempt_is_clipped_to_the_time_left(fakes, make_client, fake_clock):
    session = fakes.Session(fakes.response(200, {}))
    make_client(session, timeout=30).get_json(PATH, deadline=fake_clock() + 7.5)
    assert session.calls[0].timeout == 7.5


def test_a_passed_deadline_sends_nothing(fakes, make_client, fake_clock):
    session = fakes.Session()
    with pytest.raises(TransportError) as info:
        make_client(session).get_json(PATH, deadline=fake_clock() - 1)
    assert info.value.retryable
    assert session.calls == []


def test_no_retry_sleeps_past_the_deadline(fakes, make_client, fake_clock):
    session = fakes.Session(fakes.api_error(503, headers={"Retry-After": "20"}), fakes.response(200, {}))
    with pytest.raises(TransportError):
        make_client(session, retries=5).get_json(PATH, deadline=fake_clock() + 10)
    assert len(session.calls) == 1
    assert fake_clock.sleeps == []


def test_huge_retry_after_is_finite():
    # maintainer review 1.7: "retry after inf seconds"
    assert _http.parse_retry_after("9" * 5000) == 365 * 86400.0


def test_session_records_status_and_retry_after_for_msal_callers(loopback):
    # MSAL returns only the JSON of a token answer; the token source reads the status and Retry-After here
    server = loopback()
    session = _http.build_session(True, 5)
    assert _http.last_answer(session) == (None, None)
    answer = session.post(f"{server.url}/throttled", data={"grant_type": "client_credentials"})
    assert answer.status_code == 429
    assert _http.last_answer(session) == (429, 3.0)
    session.get(f"{server.url}/ok")
    assert _http.last_answer(session) == (200, None)
    assert _http.last_answer(object()) == (None, None)
