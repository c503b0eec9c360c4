# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fakes for the unit tests: a scripted requests session, token sources, a clock, a fake msal.

Everything is exposed through fixtures (``fakes``, ``make_client``, ``fake_clock``, ``fast_wait``, ``fake_msal``)
so that test modules never import this file.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing as t
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict
from urllib3.util import parse_url

from hypothesis import HealthCheck, settings

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _wait
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._http import CloudPartnerClient
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._options import ENV, ConnectionOptions

# Deterministic, quick property tests: no example database on disk, no timing-based flakiness.
settings.register_profile(
    "cloudpartner-unit",
    max_examples=100,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("cloudpartner-unit")

API_URL = "https://cloudpartner.azure.com"
API_HOST = "cloudpartner.azure.com"
API_VERSION = "2017-10-31"
TOKEN = "tok-GIVEN-6b1f0c2e9d"
REFRESHED_TOKEN = "tok-REFRESHED-77a3c1"

# Variables that would leak a developer's (or CI's) environment into the option tests.
_ISOLATED_ENV = sorted({name for names in ENV.values() for name in names})
_PROXY_ENV = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"]

_MISSING = object()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path):
    for name in _ISOLATED_ENV + _PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
    # the token cache defaults to a file under XDG_CACHE_HOME (or ~/.cache): never touch the real one
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@dataclasses.dataclass
class Call:
    """One request as the client handed it to the session."""

    method: str
    url: str
    headers: dict
    data: t.Optional[str]
    verify: t.Any
    timeout: t.Any
    allow_redirects: t.Any
    extra: dict

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict:
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    @property
    def json(self) -> t.Any:
        return None if self.data is None else json.loads(self.data)

    @property
    def connect_host(self) -> str:
        """The host requests would really connect to (its own URL parser, not urllib's)."""
        return (parse_url(requests.Request("GET", self.url).prepare().url).host or "").lower()


class FakeResponse:
    """What ``requests.Session.request`` returns, reduced to what the client reads."""

    def __init__(self, status: int = 200, body: t.Any = _MISSING, headers: t.Optional[dict] = None, text: t.Optional[str] = None) -> None:
        self.status_code = status
        self.headers = CaseInsensitiveDict(headers or {})
        if text is None:
            text = "" if body is _MISSING else json.dumps(body)
        self.text = text

    def __repr__(self) -> str:
        return f"FakeResponse({self.status_code}, {self.text[:60]!r})"


class FakeSession:
    """Records every call and answers from a script: responses, exceptions to raise, or callables(call)."""

    def __init__(self, *script: t.Any) -> None:
        self.script = list(script)
        self.calls: list[Call] = []

    def add(self, *items: t.Any) -> "FakeSession":
        self.script.extend(items)
        return self

    def request(self, method, url, headers=None, data=None, verify=_MISSING, timeout=_MISSING, allow_redirects=_MISSING, **extra):
        call = Call(method, url, dict(headers or {}), data, verify, timeout, allow_redirects, extra)
        self.calls.append(call)
        if not self.script:
            raise AssertionError(f"unexpected request {method} {url} (the script is exhausted)")
        item = self.script.pop(0)
        if callable(item) and not isinstance(item, (FakeResponse, BaseException)):
            item = item(call)
        if isinstance(item, BaseException):
            raise item
        return item

    @property
    def sent(self) -> list:
        return [(call.method, call.path) for call in self.calls]

    @property
    def methods(self) -> list:
        return [call.method for call in self.calls]


class FakeTokens:
    """A TokenSource: counts renewals, switches to a new token on the first one (at most one per task)."""

    def __init__(self, token: str = TOKEN, can_refresh: bool = True, refreshed: str = REFRESHED_TOKEN) -> None:
        self.current = token
        self.can_refresh = can_refresh
        self._refreshed = refreshed
        self.refreshes = 0

    def token(self) -> str:
        return self.current

    def renew(self) -> bool:
        if not self.can_refresh or self.refreshes:
            return False
        self.refreshes += 1
        self.current = self._refreshed
        return True

    def rejection_note(self) -> str:
        return "fake rejection note"


class FakeClock:
    """A monotonic clock that only moves when something sleeps (or a test advances it)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.start = start
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, f"negative sleep {seconds}"
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds

    @property
    def elapsed(self) -> float:
        return self.now - self.start


def make_options(**overrides: t.Any) -> ConnectionOptions:
    values: dict[str, t.Any] = {
        "api_url": API_URL,
        "api_version": API_VERSION,
        "authority_host": "https://login.microsoftonline.com",
        "verify": True,
        "timeout": 30,
        "retries": 3,
        "access_token": TOKEN,
    }
    values.update(overrides)
    return ConnectionOptions(**values)


def response(status: int = 200, body: t.Any = _MISSING, headers: t.Optional[dict] = None, text: t.Optional[str] = None) -> FakeResponse:
    return FakeResponse(status, body, headers, text)


def api_error(status: int, code: str = "SomeCode", message: str = "Something went wrong.", headers: t.Optional[dict] = None) -> FakeResponse:
    return FakeResponse(status, {"error": {"code": code, "message": message}}, headers)


@pytest.fixture
def fakes() -> types.SimpleNamespace:
    return types.SimpleNamespace(
        Session=FakeSession,
        Response=FakeResponse,
        Tokens=FakeTokens,
        Clock=FakeClock,
        options=make_options,
        response=response,
        api_error=api_error,
        API_URL=API_URL,
        API_HOST=API_HOST,
        API_VERSION=API_VERSION,
        TOKEN=TOKEN,
        REFRESHED_TOKEN=REFRESHED_TOKEN,
    )


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_client(fake_clock):
    """CloudPartnerClient over a FakeSession; sleeps go to ``fake_clock``; jitter fixed unless given."""

    def build(session: FakeSession, tokens: t.Optional[FakeTokens] = None, jitter: t.Callable[[], float] = lambda: 0.5, **options: t.Any):
        return CloudPartnerClient(make_options(**options), tokens or FakeTokens(), session, sleep=fake_clock.sleep, jitter=jitter, clock=fake_clock)

    return build


@pytest.fixture
def fast_wait(monkeypatch, fake_clock) -> FakeClock:
    """Make every ``poll_until`` run on ``fake_clock`` (its defaults are bound to the real clock at import)."""
    real = _wait.poll_until

    def poll_until(*args, **kwargs):
        kwargs.setdefault("clock", fake_clock)
        kwargs.setdefault("sleep", fake_clock.sleep)
        return real(*args, **kwargs)

    monkeypatch.setattr(_wait, "poll_until", poll_until)
    return fake_clock


class FakeMsal(types.ModuleType):
    """Stands in for the msal package: records applications and answers acquire_token_for_client from a script."""

    def __init__(self) -> None:
        super().__init__("msal")
        self.apps: list[t.Any] = []
        self.results: list[t.Any] = []
        self.init_error: t.Optional[BaseException] = None
        self.init_errors: list[BaseException] = []  # raised once each, in order, before init_error
        self.constructed = 0
        fake = self

        class ConfidentialClientApplication:  # pylint: disable=too-few-public-methods
            def __init__(self, client_id, **kwargs):
                # Like MSAL: the constructor reads the authority's OpenID configuration (a request).
                fake.constructed += 1
                if fake.init_errors:
                    raise fake.init_errors.pop(0)
                if fake.init_error is not None:
                    raise fake.init_error
                self.client_id = client_id
                self.kwargs = kwargs
                self.scopes: list[t.Any] = []
                self.removed = 0
                fake.apps.append(self)

            def acquire_token_for_client(self, scopes):
                self.scopes.append(scopes)
                if not fake.results:
                    raise AssertionError("unexpected token request")
                item = fake.results.pop(0)
                if isinstance(item, BaseException):
                    raise item
                return item

            def remove_tokens_for_client(self):
                self.removed += 1

        self.ConfidentialClientApplication = ConfidentialClientApplication  # pylint: disable=invalid-name

    @property
    def token_requests(self) -> int:
        return sum(len(app.scopes) for app in self.apps)


@pytest.fixture
def fake_msal(monkeypatch) -> FakeMsal:
    fake = FakeMsal()
    monkeypatch.setitem(sys.modules, "msal", fake)
    return fake


@pytest.fixture
def no_msal(monkeypatch) -> None:
    """Make ``import msal`` fail, as on a host without it."""
    monkeypatch.setitem(sys.modules, "msal", None)
