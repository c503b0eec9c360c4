# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import sys
import types
from urllib.parse import urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _auth
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._errors import AuthenticationError, MissingLibraryError, TransportError
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._http import build_session
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._token_cache import TokenCache, cache_key

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0b0f4a2c-1111-4222-8333-944445555666"
SECRET = "Q~s3cr3t.VALUE_123"
MSAL_TOKEN = "eyJ-msal-issued-token"
SESSION = object()
SCOPE = "https://cloudpartner.azure.com/.default"


def credentials(fakes, **overrides):
    values = {"access_token": None, "tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET}
    values.update(overrides)
    return fakes.options(**values)


def good(token=MSAL_TOKEN, expires_in=3599):
    return {"token_type": "Bearer", "access_token": token, "expires_in": expires_in, "token_source": "identity_provider"}


class Registry(list):
    """Collects what is handed to register_secret."""

    def __call__(self, value):
        self.append(value)


# ---------------------------------------------------------------- given token


def test_given_token_is_registered_and_used():
    registry = Registry()
    source = _auth.GivenToken("given-abc", registry)
    assert registry == ["given-abc"]
    assert source.token() == "given-abc"
    assert source.renew() is False


def test_given_token_explains_a_rejection():
    message = _auth.GivenToken("given-abc", Registry()).rejection_note()
    assert "access_token" in message
    assert "tenant_id, client_id and client_secret" in message
    assert "given-abc" not in message


def test_token_source_with_access_token_never_imports_msal(fakes, monkeypatch):
    monkeypatch.delitem(sys.modules, "msal", raising=False)
    registry = Registry()
    options = fakes.options(access_token="given-abc", tenant_id=TENANT, client_id=CLIENT, client_secret=SECRET)
    source = _auth.token_source(options, SESSION, registry, pytest.fail)
    assert isinstance(source, _auth.GivenToken)
    assert source.token() == "given-abc"
    assert "msal" not in sys.modules
    assert registry == ["given-abc"]


def test_token_source_with_access_token_works_without_msal(fakes, no_msal):  # pylint: disable=unused-argument
    source = _auth.token_source(fakes.options(access_token="given-abc"), SESSION, Registry(), pytest.fail)
    assert source.token() == "given-abc"


def test_token_source_with_credentials(fakes):
    source = _auth.token_source(credentials(fakes), SESSION, Registry(), pytest.fail)
    assert isinstance(source, _auth.ClientCredentialsToken)


# ---------------------------------------------------------------- client credentials through (fake) msal


def test_client_credentials_flow(fakes, fake_msal):
    fake_msal.results = [good()]
    registry = Registry()
    source = _auth.ClientCredentialsToken(credentials(fakes), SESSION, registry)
    assert not fake_msal.apps  # requested on first use only
    assert source.token() == MSAL_TOKEN
    (app,) = fake_msal.apps
    assert app.client_id == CLIENT
    assert app.kwargs["client_credential"] == SECRET
    assert app.kwargs["authority"] == f"https://login.microsoftonline.com/{TENANT}"
    assert app.kwargs["http_client"] is SESSION
    assert "instance_discovery" not in app.kwargs
    assert "validate_authority" not in app.kwargs
    assert app.scopes == [["https://cloudpartner.azure.com/.default"]]
    assert registry == [MSAL_TOKEN]
    # the token is kept: no second request
    assert source.token() == MSAL_TOKEN
    assert fake_msal.token_requests == 1


@pytest.mark.parametrize(
    "host",
    ["https://login.microsoftonline.com", "https://login.microsoftonline.us", "https://login.chinacloudapi.cn", "https://login.windows.net"],
)
def test_microsoft_hosts_keep_instance_discovery(fakes, fake_msal, host):
    fake_msal.results = [good()]
    _auth.ClientCredentialsToken(credentials(fakes, authority_host=host), SESSION, Registry()).token()
    (app,) = fake_msal.apps
    assert "instance_discovery" not in app.kwargs
    assert app.kwargs["authority"] == f"{host}/{TENANT}"


@pytest.mark.parametrize(
    "host",
    ["https://127.0.0.1:41003", "https://localhost:8443", "https://login.example.test", "https://login.microsoftonline.com.evil.example"],
)
def test_other_hosts_turn_instance_discovery_off(fakes, fake_msal, host):
    fake_msal.results = [good()]
    _auth.ClientCredentialsToken(credentials(fakes, authority_host=host, tenant_id="contoso.onmicrosoft.com"), SESSION, Registry()).token()
    (app,) = fake_msal.apps
    assert app.kwargs["instance_discovery"] is False
    assert app.kwargs["authority"] == f"{host}/contoso.onmicrosoft.com"


def test_refresh_drops_msal_cache_and_registers_new_token(fakes, fake_msal):
    fake_msal.results = [good("first"), good("second")]
    registry = Registry()
    source = _auth.ClientCredentialsToken(credentials(fakes), SESSION, registry)
    assert source.token() == "first"
    assert source.renew() is True
    assert source.token() == "second"
    (app,) = fake_msal.apps
    assert app.removed == 1
    assert registry == ["first", "second"]
    assert fake_msal.token_requests == 2


def test_only_one_renewal_per_task(fakes, fake_msal):
    # security review I9: a server answering 401 to everything got one token request per poll
    fake_msal.results = [good("first"), good("second")]
    source = _auth.ClientCredentialsToken(credentials(fakes), SESSION, Registry())
    source.token()
    assert source.renew() is True
    assert source.renew() is False
    assert source.renew() is False
    assert fake_msal.token_requests == 2
    assert "freshly requested token" in source.rejection_note()


def test_renew_before_first_token(fakes, fake_msal):
    fake_msal.results = [good("only")]
    source = _auth.ClientCredentialsToken(credentials(fakes), SESSION, Registry())
    assert source.renew() is True
    assert source.token() == "only"


def test_entra_error_message(fakes, fake_msal):
    fake_msal.results = [
        {
            "error": "invalid_client",
            "error_description": f"AADSTS7000215: Invalid client secret provided. The secret '{SECRET}' was wrong.\r\n"
            "Trace ID: 0000\r\nCorrelation ID: 1111\r\nTimestamp: 2026-01-01 00:00:00Z",
            "error_codes": [7000215],
            "correlation_id": "corr-1111",
        }
    ]
    registry = Registry()
    with pytest.raises(AuthenticationError) as info:
        _auth.ClientCredentialsToken(credentials(fakes), SESSION, registry).token()
    message = info.value.message
    assert "AADSTS7000215" in message
    assert "invalid_client" in message
    assert "use the secret's value, not its ID" in message
    assert CLIENT in message and TENANT in message
    assert "corr-1111" in message
    assert SECRET not in message
    assert "Trace ID" not in message
    assert not registry


@pytest.mark.parametrize(
    "result, expected",
    [
        ({"error": "unauthorized_client", "error_description": "Application not found.", "error_codes": [700016]}, "application was not found"),
        ({"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."}, "the tenant was not found"),
        ({"error": "invalid_request", "error_description": "AADSTS7000222: expired"}, "has expired"),
        ({"error": "weird", "error_description": "AADSTS1234567: unknown"}, "weird: AADSTS1234567: unknown"),
        ({"error": "weird"}, "no description"),
        ({}, "unknown_error"),
        (None, "unknown_error"),
        ("not a dict", "unknown_error"),
    ],
)
def test_entra_error_variants(fakes, fake_msal, result, expected):
    fake_msal.results = [result]
    with pytest.raises(AuthenticationError) as info:
        _auth.ClientCredentialsToken(credentials(fakes), SESSION, Registry()).token()
    assert expected in info.value.message


def test_unknown_code_has_no_hint(fakes, fake_msal):
    fake_msal.results = [{"error": "weird", "error_description": "AADSTS1234567: unknown"}]
    with pytest.raises(AuthenticationError) as info:
        _auth.ClientCredentialsToken(credentials(fakes), SESSION, Registry()).token()
    assert "Hint" not in info.value.message


def test_token_request_exception_hides_details(fakes, fake_msal):
    fake_msal.results = [requests.exceptions.ConnectionError(f"cannot connect; body client_secret={SECRET}")]
    with pytest.raises(AuthenticationError) as info:
        _auth.ClientCredentialsToken(credentials(fakes, retries=0), SESSION, Registry()).token()
    assert "ConnectionError" in info.value.message
    assert f"https://login.microsoftonline.com/{TENANT}" in info.value.message
    assert SECRET not in info.value.message


def test_authority_value_error_is_masked(fakes, fake_msal):
    fake_msal.init_error = ValueError(f"Invalid authority, secret {SECRET} echoed")
    with pytest.raises(AuthenticationError) as info:
        _auth.ClientCredentialsToken(credentials(fakes), SESSION, Registry()).token()
    assert "Cannot use the authority" in info.value.message
    assert "authority_host" in info.value.message
    assert SECRET not in info.value.message


def test_authority_tls_error_is_not_retried(fakes, fake_msal):
    # maintainer review 1.2: every exception was retried as transient, TLS errors included
    fake_msal.init_error = requests.exceptions.SSLError(f"certificate verify failed {SECRET}")
    sleeps = []
    with pytest.raises(AuthenticationError) as info:
        _auth.ClientCredentialsToken(credentials(fakes, retries=5), SESSION, Registry(), sleep=sleeps.append).token()
    assert "TLS error" in info.value.message
    assert "ca_path" in info.value.message
    assert SECRET not in info.value.message
    assert "Gave up" not in info.value.message
    assert sleeps == [] and fake_msal.constructed == 1


class ScriptedAdapter(requests.adapters.BaseAdapter):
    """The transport under the real session: answers from a script, records method and path."""

    def __init__(self, *answers):
        super().__init__()
        self.answers = list(answers)
        self.sent = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # pylint: disable=too-many-arguments
        self.sent.append((request.method, urlsplit(request.url).path))
        status, body, headers = self.answers.pop(0)
        answer = requests.models.Response()
        answer.status_code = status
        answer._content = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")  # pylint: disable=protected-access
        answer._content_consumed = True  # pylint: disable=protected-access
        answer.headers = CaseInsensitiveDict(headers or {})
        answer.url = request.url
        answer.request = request
        return answer

    def close(self):
        pass


AUTHORITY_HOST = "https://login.example.test"
DISCOVERY = (
    200,
    {
        "issuer": f"{AUTHORITY_HOST}/{TENANT}/v2.0",
        "authorization_endpoint": f"{AUTHORITY_HOST}/{TENANT}/oauth2/v2.0/authorize",
        "token_endpoint": f"{AUTHORITY_HOST}/{TENANT}/oauth2/v2.0/token",
    },
    {"Content-Type": "application/json"},
)
TOKEN_OK = (200, {"token_type": "Bearer", "expires_in": 3599, "access_token": MSAL_TOKEN}, {"Content-Type": "application/json"})
SERVICE_DOWN = (503, "<html>Service Unavailable</html>", {"Content-Type": "text/html", "Retry-After": "2"})


def real_msal_source(fakes, adapter, sleeps, retries=3):
    pytest.importorskip("msal")
    session = build_session(True, 10)
    session.mount("https://", adapter)
    options = credentials(fakes, authority_host=AUTHORITY_HOST, retries=retries)
    return _auth.ClientCredentialsToken(options, session, Registry(), sleep=sleeps.append)


def test_discovery_503_is_retried_with_real_msal(fakes):
    # maintainer review 1.2: MSAL reads the OpenID configuration in its constructor, outside the retry loop
    adapter = ScriptedAdapter(SERVICE_DOWN, DISCOVERY, TOKEN_OK)
    sleeps = []
    assert real_msal_source(fakes, adapter, sleeps).token() == MSAL_TOKEN
    assert [method for method, _path in adapter.sent] == ["GET", "GET", "POST"]
    assert sleeps == [2.0]


def test_token_endpoint_503_is_retried_with_real_msal(fakes):
    # whatever exception this msal raises for a 5xx (HTTPError, MsalServiceError), the status decides
    adapter = ScriptedAdapter(DISCOVERY, SERVICE_DOWN, TOKEN_OK)
    sleeps = []
    assert real_msal_source(fakes, adapter, sleeps).token() == MSAL_TOKEN
    assert adapter.sent[-1] == ("POST", f"/{TENANT}/oauth2/v2.0/token")
    assert [method for method, _path in adapter.sent].count("POST") == 2
    assert sleeps == [2.0]


def test_token_endpoint_429_honours_retry_after_with_real_msal(fakes):
    throttled = (429, {"error": "invalid_request", "error_description": "AADSTS50196: throttled"}, {"Retry-After": "7", "Content-Type": "application/json"})
    adapter = ScriptedAdapter(DISCOVERY, throttled, TOKEN_OK)
    sleeps = []
    assert real_msal_source(fakes, adapter, sleeps).token() == MSAL_TOKEN
    assert sleeps == [7.0]


def test_discovery_404_is_not_retried_with_real_msal(fakes):
    adapter = ScriptedAdapter((404, {"error": "invalid_tenant"}, {"Content-Type": "application/json"}))
    sleeps = []
    with pytest.raises(AuthenticationError) as info:
        real_msal_source(fakes, adapter, sleeps).token()
    assert "Cannot use the authority" in info.value.message
    assert sleeps == [] and len(adapter.sent) == 1


def test_discovery_failure_in_the_constructor_is_retried(fakes, fake_msal):
    fake_msal.init_errors = [requests.exceptions.ConnectionError("reset"), requests.exceptions.ConnectTimeout("slow")]
    fake_msal.results = [good()]
    sleeps = []
    source = _auth.ClientCredentialsToken(credentials(fakes, retries=3), SESSION, Registry(), sleep=sleeps.append)
    assert source.token() == MSAL_TOKEN
    assert fake_msal.constructed == 3
    assert len(sleeps) == 2


def test_a_wait_longer_than_a_token_lifetime_renews_before_expiry(fakes, fake_msal):
    # maintainer review of this change (M1): with one 401 renewal per task, a long wait must renew ahead of expiry
    now = [1000.0]
    fake_msal.results = [good("first", expires_in=3600), good("second", expires_in=3600), good("third", expires_in=3600), good("after-401")]
    source = _auth.ClientCredentialsToken(credentials(fakes), SESSION, Registry(), clock=lambda: now[0])
    seen = []
    for _minute in range(160):  # 160 minutes of polling, once a minute: each token is renewed 5 minutes before it expires
        seen.append(source.token())
        now[0] += 60
    assert seen[0] == "first" and seen[54] == "first" and seen[55] == "second" and seen[-1] == "third"
    assert fake_msal.token_requests == 3
    assert source.renew() is True  # the one renewal after a 401 is still available
    assert source.token() == "after-401"


def test_a_cached_token_close_to_expiry_is_renewed_in_time(fakes, fake_msal, tmp_path):
    now = [1000.0]
    cache = TokenCache(str(tmp_path), clock=lambda: now[0])
    cache.put(key_for(credentials(fakes)), "cached", 700)
    fake_msal.results = [good("fresh", expires_in=3600)]
    source = _auth.ClientCredentialsToken(credentials(fakes), SESSION, Registry(), cache, clock=lambda: now[0])
    assert source.token() == "cached"
    now[0] += 500  # 200 s left: too close for a poll that may still take minutes
    assert source.token() == "fresh"


def test_discovery_4xx_is_not_retried(fakes, fake_msal):
    fake_msal.init_error = ValueError("Unable to get authority configuration for https://login.example/t.")
    sleeps = []
    with pytest.raises(AuthenticationError) as info:
        _auth.ClientCredentialsToken(credentials(fakes, retries=5), SESSION, Registry(), sleep=sleeps.append).token()
    assert "Cannot use the authority" in info.value.message
    assert sleeps == []


def test_a_redirect_from_the_authority_is_not_retried(fakes, fake_msal):
    fake_msal.results = [TransportError("https://login.example answered HTTP 307 with a redirect to http://evil.example", retryable=False)]
    sleeps = []
    with pytest.raises(AuthenticationError) as info:
        _auth.ClientCredentialsToken(credentials(fakes, retries=5), SESSION, Registry(), sleep=sleeps.append).token()
    assert "HTTP 307" in info.value.message
    assert sleeps == [] and fake_msal.token_requests == 1


def test_retry_after_of_the_token_endpoint_is_honoured(fakes, fake_msal):
    session = types.SimpleNamespace(last_answer=(429, 7.0))
    fake_msal.results = [{"error": "invalid_request", "error_description": "AADSTS50196: throttled"}, good()]
    sleeps = []
    assert _auth.ClientCredentialsToken(credentials(fakes, retries=2), session, Registry(), sleep=sleeps.append).token() == MSAL_TOKEN
    assert sleeps == [7.0]


def test_an_unexpected_exception_is_not_retried(fakes, fake_msal):
    fake_msal.results = [RuntimeError("bug")]
    sleeps = []
    with pytest.raises(AuthenticationError):
        _auth.ClientCredentialsToken(credentials(fakes, retries=5), SESSION, Registry(), sleep=sleeps.append).token()
    assert sleeps == []


def test_msal_missing(fakes, no_msal):  # pylint: disable=unused-argument
    with pytest.raises(MissingLibraryError) as info:
        _auth.ClientCredentialsToken(credentials(fakes), SESSION, Registry()).token()
    assert info.value.library == "msal"
    assert "msal" in info.value.message
    assert "ImportError" in info.value.import_traceback or "ModuleNotFoundError" in info.value.import_traceback


def test_real_msal_is_importable():
    # the venvs used by ansible-test have msal; import_msal must hand back the real package then
    pytest.importorskip("msal")
    assert hasattr(_auth.import_msal(), "ConfidentialClientApplication")


# ---------------------------------------------------------------- with the token cache


def key_for(options):
    return cache_key(f"{options.authority_host}/{options.tenant_id}", options.client_id, SCOPE)


def test_cached_token_skips_msal(fakes, no_msal, tmp_path):  # pylint: disable=unused-argument
    # a cache hit must not even import msal
    cache = TokenCache(str(tmp_path))
    cache.put(key_for(credentials(fakes)), "cached-token", 3600)
    registry = Registry()
    source = _auth.ClientCredentialsToken(credentials(fakes), SESSION, registry, cache)
    assert source.token() == "cached-token"
    assert registry == ["cached-token"]


def test_token_is_stored_and_reused_by_the_next_task(fakes, fake_msal, tmp_path):
    fake_msal.results = [good("stored", expires_in=3599)]
    assert _auth.ClientCredentialsToken(credentials(fakes), SESSION, Registry(), TokenCache(str(tmp_path))).token() == "stored"
    # a new process: a new source and a new cache object on the same directory
    second = _auth.ClientCredentialsToken(credentials(fakes), SESSION, Registry(), TokenCache(str(tmp_path)))
    assert second.token() == "stored"
    assert fake_msal.token_requests == 1


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "11111111-2222-4333-8444-555555555555"},
        {"tenant_id": "contoso.onmicrosoft.com"},
        {"authority_host": "https://login.example.test"},
    ],
)
def test_cache_is_per_identity(fakes, fake_msal, tmp_path, change):
    fake_msal.results = [good("first"), good("second")]
    assert _auth.ClientCredentialsToken(credentials(fakes), SESSION, Registry(), TokenCache(str(tmp_path))).token() == "first"
    assert _auth.ClientCredentialsToken(credentials(fakes, **change), SESSION, Registry(), TokenCache(str(tmp_path))).token() == "second"


def test_cache_key_holds_no_hash_of_the_secret(fakes, fake_msal, tmp_path):
    # security review L8: the unsalted SHA-256 of the secret in the key was an offline oracle for it.
    # The token belongs to the identity; another secret of the same application gets the same token.
    fake_msal.results = [good("first")]
    assert _auth.ClientCredentialsToken(credentials(fakes), SESSION, Registry(), TokenCache(str(tmp_path))).token() == "first"
    assert _auth.ClientCredentialsToken(credentials(fakes, client_secret="rotated"), SESSION, Registry(), TokenCache(str(tmp_path))).token() == "first"
    stored = "".join(path.read_text(encoding="utf-8") for path in tmp_path.rglob("tokens.json"))
    assert stored and SECRET not in stored
    assert key_for(credentials(fakes)) == key_for(credentials(fakes, client_secret="rotated"))


def test_renewal_replaces_a_rejected_cached_token(fakes, fake_msal, tmp_path):
    cache = TokenCache(str(tmp_path))
    cache.put(key_for(credentials(fakes)), "rejected", 3600)
    source = _auth.ClientCredentialsToken(credentials(fakes), SESSION, Registry(), cache)
    fake_msal.results = [good("fresh")]
    assert source.token() == "rejected"
    assert source.renew() is True
    assert _auth.ClientCredentialsToken(credentials(fakes), SESSION, Registry(), TokenCache(str(tmp_path))).token() == "fresh"


def test_token_source_uses_the_cache_home_option(fakes, fake_msal, tmp_path):
    fake_msal.results = [good("stored")]
    _auth.token_source(credentials(fakes, token_cache_home=str(tmp_path)), SESSION, Registry(), pytest.fail).token()
    stored = tmp_path / "azure_marketplace.cloudpartner" / "tokens.json"
    assert "stored" in stored.read_text(encoding="utf-8")


def test_no_cache_without_a_cache_home(fakes, fake_msal, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_msal.results = [good("a"), good("b")]
    assert _auth.token_source(credentials(fakes, token_cache_home=None), SESSION, Registry(), pytest.fail).token() == "a"
    assert _auth.token_source(credentials(fakes, token_cache_home=None), SESSION, Registry(), pytest.fail).token() == "b"
    assert not list(tmp_path.rglob("*.json"))


def test_nothing_is_cached_without_tls_verification(fakes, fake_msal, tmp_path):
    # security review L10: a token obtained with validate_certs false (possibly from a MITM) was served to later tasks
    warnings = []
    fake_msal.results = [good("unverified"), good("second")]
    options = credentials(fakes, token_cache_home=str(tmp_path), verify=False, authority_host="https://login.example.test")
    assert _auth.token_source(options, SESSION, Registry(), warnings.append).token() == "unverified"
    assert _auth.token_source(options, SESSION, Registry(), warnings.append).token() == "second"
    assert not list(tmp_path.rglob("tokens.json"))
    assert warnings == []


def test_unverified_tls_to_a_microsoft_authority_warns(fakes, fake_msal, tmp_path):
    warnings = []
    _auth.token_source(credentials(fakes, verify=False), SESSION, Registry(), warnings.append)
    assert len(warnings) == 1 and "client secret" in warnings[0]
    assert SECRET not in warnings[0]


def test_transient_token_failures_are_retried_with_backoff(fakes, fake_msal):
    throttled = {"error": "temporarily_unavailable", "error_description": "AADSTS90033: A transient error has occurred.", "error_codes": [90033]}
    fake_msal.results = [requests.exceptions.ConnectionError("reset"), throttled, good()]
    sleeps = []
    source = _auth.ClientCredentialsToken(credentials(fakes, retries=2), SESSION, Registry(), sleep=sleeps.append)
    assert source.token() == MSAL_TOKEN
    assert fake_msal.token_requests == 3
    assert len(sleeps) == 2 and 0 < sleeps[0] <= sleeps[1] * 2


def test_token_failures_stop_after_retries_and_say_so(fakes, fake_msal):
    fake_msal.results = [requests.exceptions.ConnectionError("reset")] * 3
    sleeps = []
    with pytest.raises(AuthenticationError) as info:
        _auth.ClientCredentialsToken(credentials(fakes, retries=2), SESSION, Registry(), sleep=sleeps.append).token()
    assert "Gave up after 2 retries" in info.value.message
    assert len(sleeps) == 2


def test_permanent_token_errors_are_not_retried(fakes, fake_msal):
    fake_msal.results = [{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": [7000215]}]
    sleeps = []
    with pytest.raises(AuthenticationError) as info:
        _auth.ClientCredentialsToken(credentials(fakes, retries=5), SESSION, Registry(), sleep=sleeps.append).token()
    assert "AADSTS7000215" in info.value.message
    assert sleeps == []


def test_short_lived_tokens_do_not_bring_back_one_token_request_per_call(fakes, fake_msal):
    # security review of this change (L3): tokens of 200 s were renewed before every request
    now = [1000.0]
    fake_msal.results = [good("short-1", expires_in=200), good("short-2", expires_in=200)]
    source = _auth.ClientCredentialsToken(credentials(fakes), SESSION, Registry(), clock=lambda: now[0])
    seen = []
    for _second in range(0, 120, 10):
        seen.append(source.token())
        now[0] += 10
    assert seen[:10] == ["short-1"] * 10 and seen[10:] == ["short-2"] * 2
    assert fake_msal.token_requests == 2


@pytest.mark.parametrize("expires_in", [10**400, "1e999", float("nan"), -5, None, "soon"])
def test_an_absurd_lifetime_from_the_authority_is_survived(fakes, fake_msal, expires_in):
    # security review of this change (I1): float(10**400) raised OverflowError out of the task
    now = [1000.0]
    fake_msal.results = [good("odd", expires_in=expires_in), good("next")]
    source = _auth.ClientCredentialsToken(credentials(fakes), SESSION, Registry(), clock=lambda: now[0])
    assert source.token() == "odd"
    now[0] += 86400 * 2
    assert source.token() == "next"
