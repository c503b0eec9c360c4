# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The HTTP client for the Cloud Partner Portal API: one requests session, retries, typed errors.

FOR INTERNAL COLLECTION USE ONLY: names and signatures may change in any release.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import random
import time
import traceback
import typing as t
from urllib.parse import urlencode, urlsplit

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._errors import (
    ApiError,
    MissingLibraryError,
    ResponseFormatError,
    TransportError,
    UnsafeLocationError,
)
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._options import ConnectionOptions

try:
    import requests
    from urllib3.util import parse_url as urllib3_parse_url
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR: t.Optional[str] = traceback.format_exc()
else:
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
# A Retry-After longer than this is not slept through: the task would look hung.
MAX_RETRY_AFTER = 300.0
USER_AGENT = "ansible-collection-azure_marketplace.cloudpartner"


def require_requests() -> None:
    if not HAS_REQUESTS:
        raise MissingLibraryError("requests", "The Python library requests is required on the host that runs the module.", REQUESTS_IMPORT_ERROR)


def build_session(verify: t.Union[bool, str], timeout: float) -> "requests.Session":
    """A requests session whose TLS choice beats REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE.

    requests lets those environment variables replace ``verify`` unless it is passed on
    every call, and MSAL calls the session without it. Proxy variables must keep working,
    so ``trust_env`` stays on and only the verify setting is forced.
    """
    require_requests()

    # Defined here because requests is an optional import at module level (sanity import test).
    class _Session(requests.Session):
        def merge_environment_settings(self, url, proxies, stream, verify_arg, cert):  # type: ignore[override]
            settings = super().merge_environment_settings(url, proxies, stream, verify_arg, cert)
            if verify is not True:
                settings["verify"] = verify
            return settings

        def request(self, method, url, *args, **kwargs):  # type: ignore[override]
            kwargs.setdefault("timeout", timeout)
            return super().request(method, url, *args, **kwargs)

    session = _Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


@dataclasses.dataclass
class ApiResponse:
    status: int
    headers: t.Mapping[str, str]
    text: str
    url: str

    def json(self) -> t.Any:
        if not self.text.strip():
            return None
        try:
            return json.loads(self.text)
        except (ValueError, RecursionError):
            content_type = self.headers.get("Content-Type", "no content type")
            raise ResponseFormatError(
                f"The service answered {urlsplit(self.url).path} with HTTP {self.status} and a body that is not valid JSON "
                f"({content_type}, {len(self.text)} characters)."
            ) from None

    @property
    def retry_after(self) -> t.Optional[float]:
        return parse_retry_after(self.headers.get("Retry-After"))


def parse_retry_after(value: t.Optional[str], now: t.Optional[float] = None) -> t.Optional[float]:
    """Seconds from a Retry-After value: delta-seconds or an HTTP date. None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    try:
        return max(0.0, when.timestamp() - current)
    except (OverflowError, ValueError):
        return None


def backoff_delay(attempt: int, jitter: t.Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter: between half and all of base * 2**attempt, capped."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt))
    return ceiling * (0.5 + jitter() / 2)


def api_error_from(method: str, url: str, response: ApiResponse, note: t.Optional[str] = None) -> ApiError:
    """An ApiError with the service's ``error.code`` / ``error.message`` when the body has them."""
    code = message = None
    try:
        body = json.loads(response.text) if response.text.strip() else None
    except (ValueError, RecursionError):
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            code, message = error.get("code"), error.get("message")
        elif isinstance(error, str):
            code, message = error, body.get("error_description") or body.get("message")
        else:
            code, message = body.get("code"), body.get("message")
    return ApiError(
        method,
        urlsplit(url).path,
        response.status,
        code=str(code)[:200] if code is not None else None,
        api_message=str(message)[:1000] if message is not None else None,
        retry_after=response.retry_after,
        note=note,
    )


_UNSAFE_URL_CHARACTERS = frozenset("\\ \t\r\n\x00")


def _origin(value: str) -> tuple[str, str, int]:
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def same_origin(url: str, base: str) -> bool:
    """True only when ``url`` certainly goes to the scheme, host and port of ``base``.

    The URL may come from the network. A backslash, whitespace or a control character can
    make parsers disagree on the host (``https://evil.example\\@api.example`` is api.example
    to urlsplit but evil.example to urllib3), so such URLs never match, and the host urllib3
    (which requests uses to connect) sees must agree as well.
    """
    if any(char in _UNSAFE_URL_CHARACTERS or ord(char) < 32 or ord(char) > 126 for char in url):
        return False
    try:
        if "@" in urlsplit(url).netloc:
            # User info from the network would make requests replace the bearer token with Basic auth.
            return False
        if _origin(url) != _origin(base):
            return False
        if HAS_REQUESTS:
            connect_host = (urllib3_parse_url(url).host or "").lower().strip("[]")
            if connect_host != _origin(base)[1].strip("[]"):
                return False
    except ValueError:  # includes urllib3's LocationParseError
        return False
    return True


class TokenSource(t.Protocol):
    can_refresh: bool

    def token(self) -> str: ...

    def refresh(self) -> str: ...


class CloudPartnerClient:
    """Sends API requests with the bearer token, retrying what is safe to retry.

    Retrying a cancel POST is deliberate: asking the service again to cancel the same
    offer's operation has the same effect as asking once.
    """

    def __init__(
        self,
        options: ConnectionOptions,
        tokens: TokenSource,
        session: t.Any,
        sleep: t.Callable[[float], None] = time.sleep,
        jitter: t.Callable[[], float] = random.random,
    ) -> None:
        self.options = options
        self._tokens = tokens
        self._session = session
        self._sleep = sleep
        self._jitter = jitter
        self.request_count = 0

    def url(self, path: str, **query: str) -> str:
        params = {"api-version": self.options.api_version}
        params.update({key: value for key, value in query.items() if value is not None})
        return f"{self.options.api_url}{path}?{urlencode(params)}"

    def get_json(self, path: str, retries: t.Optional[int] = None, **query: str) -> t.Any:
        return self.request("GET", self.url(path, **query), retries=retries).json()

    def request(
        self,
        method: str,
        url: str,
        json_body: t.Any = None,
        expected: t.Collection[int] = (200,),
        retries: t.Optional[int] = None,
    ) -> ApiResponse:
        if not same_origin(url, self.options.api_url):
            raise UnsafeLocationError(f"Refusing to send the bearer token to {urlsplit(url).netloc}: it is not the origin of api_url.")
        budget = self.options.retries if retries is None else retries
        attempt = 0
        refreshed = False
        while True:
            try:
                response = self._send(method, url, json_body)
            except TransportError as exc:
                if not exc.retryable or attempt >= budget:
                    raise
                delay = self._backoff(attempt)
            else:
                if response.status in expected:
                    return response
                if response.status == 401 and not refreshed and self._tokens.can_refresh:
                    # A token can expire during a long wait: get one fresh token, then go on.
                    self._tokens.refresh()
                    refreshed = True
                    continue
                if response.status == 401 and not self._tokens.can_refresh:
                    raise api_error_from(method, url, response, note=getattr(self._tokens, "rejected_note", None))
                if response.status not in RETRYABLE_STATUSES or attempt >= budget:
                    raise api_error_from(method, url, response, note=self._retry_note(attempt))
                retry_after = response.retry_after
                if retry_after is not None and retry_after > MAX_RETRY_AFTER:
                    raise api_error_from(method, url, response, note=f"The service asked to retry after {retry_after:.0f} seconds.")
                delay = retry_after if retry_after is not None else self._backoff(attempt)
            self._sleep(delay)
            attempt += 1

    @staticmethod
    def _retry_note(attempt: int) -> t.Optional[str]:
        return f"Gave up after {attempt} retries." if attempt else None

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, self._jitter)

    def _send(self, method: str, url: str, json_body: t.Any) -> ApiResponse:
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self._tokens.token()}"}
        data = None
        if json_body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(json_body)
        self.request_count += 1
        try:
            raw = self._session.request(
                method,
                url,
                headers=headers,
                data=data,
                timeout=self.options.timeout,
                verify=self.options.verify,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            raise TransportError(
                f"TLS error talking to {urlsplit(url).netloc}: {_reason(exc)}. Check ca_path, or validate_certs for test servers.",
                retryable=False,
            ) from None
        except requests.exceptions.Timeout:
            raise TransportError(f"{method} {urlsplit(url).path} got no answer within {self.options.timeout} seconds (timeout).") from None
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"{method} {urlsplit(url).path} failed: {_reason(exc)}.") from None
        return ApiResponse(status=raw.status_code, headers=raw.headers, text=raw.text, url=url)


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, without the long connection-pool preamble."""
    reason: BaseException = exc
    seen = {id(exc)}
    while True:
        inner = getattr(reason, "reason", None) or reason.__cause__ or reason.__context__
        if not isinstance(inner, BaseException) or id(inner) in seen:
            break
        seen.add(id(inner))
        reason = inner
    text = str(reason) or type(reason).__name__
    return text if len(text) <= 300 else f"{text[:297]}..."
