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
import threading
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
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
# A Retry-After longer than this is not slept through: the task would look hung.
MAX_RETRY_AFTER = 300.0
# Larger answers are refused: neither the API nor Entra ID sends anything near this, and a
# broken gateway or a hostile server must not exhaust the memory of the host that runs the module.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024
USER_AGENT = "ansible-collection-azure_marketplace.cloudpartner"


def require_requests() -> None:
    if not HAS_REQUESTS:
        raise MissingLibraryError("requests", "The Python library requests is required on the host that runs the module.", REQUESTS_IMPORT_ERROR)


def _seconds(timeout: t.Any, default: float) -> float:
    """One number of seconds from a requests-style timeout (a number, a (connect, read) pair or None)."""
    if isinstance(timeout, (tuple, list)):
        parts = [float(part) for part in timeout if part is not None]
        return max(parts) if parts else default
    return default if timeout is None else float(timeout)


def _origin_of(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
    except ValueError:
        return "an unreadable URL"


def _read_capped(response: t.Any, url: str) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise TransportError(_too_large(url, int(declared)), retryable=False)
    body = bytearray()
    for chunk in response.iter_content(_CHUNK_BYTES):
        body.extend(chunk)
        if len(body) > MAX_RESPONSE_BYTES:
            raise TransportError(_too_large(url), retryable=False)
    return bytes(body)


def _too_large(url: str, size: t.Optional[int] = None) -> str:
    what = f"{size} bytes" if size is not None else "more than that"
    return f"The answer from {_origin_of(url)} is larger than the limit of {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB ({what}); it was not read."


def build_session(verify: t.Union[bool, str], timeout: float) -> "requests.Session":
    """The one requests session of a module run, for the API and for MSAL alike.

    - ``verify`` beats REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE: requests lets those replace it
      unless it is passed on every call, and MSAL calls the session without it.
    - Plain http (only ever a loopback api_url) never goes through a proxy: the bearer token
      would cross the network in clear text. https keeps honouring the proxy variables.
    - ~/.netrc is never read: requests would replace the bearer token with its credentials.
    - Redirects are never followed (a 3xx raises TransportError): MSAL would re-POST the
      client secret to wherever a 307 points.
    - ``timeout`` bounds the whole request, connect to last byte, and bodies are capped at
      MAX_RESPONSE_BYTES: requests' own timeout is per socket read, so a server that
      trickles bytes could hold a task forever.
    """
    require_requests()

    class _NoNetrc(requests.auth.AuthBase):  # pylint: disable=too-few-public-methods
        # An explicit auth object, so that requests does not look for netrc credentials.
        def __call__(self, prepared):  # type: ignore[no-untyped-def]
            return prepared

    # Defined here because requests is an optional import at module level (sanity import test).
    class _Session(requests.Session):
        def merge_environment_settings(self, url, proxies, stream, verify_arg, cert):  # type: ignore[override]
            settings = super().merge_environment_settings(url, proxies, stream, verify_arg, cert)
            if verify is not True:
                settings["verify"] = verify
            if urlsplit(url).scheme.lower() != "https":
                settings["proxies"] = {}
            return settings

        def request(self, method, url, *args, **kwargs):  # type: ignore[override]
            seconds = _seconds(kwargs.pop("timeout", None), timeout)
            kwargs.update(timeout=seconds, allow_redirects=False, stream=True)
            send = super().request
            self.last_answer = (None, None)
            # An abandoned (timed-out) request must not overwrite what a later one recorded.
            self.requests_started += 1
            current = self.requests_started
            return _run_within(lambda: send(method, url, *args, **kwargs), lambda response: self._complete(response, url, current), seconds, method, url)

        def _complete(self, response: t.Any, url: str, current: int) -> t.Any:
            if current == self.requests_started:
                self.last_answer = (response.status_code, parse_retry_after(response.headers.get("Retry-After")))
            try:
                if response.status_code in REDIRECT_STATUSES:
                    target = response.headers.get("Location") or ""
                    raise TransportError(
                        f"{_origin_of(url)} answered HTTP {response.status_code} with a redirect to "
                        f"{_origin_of(requests.compat.urljoin(url, target)) if target else 'nowhere'}; "
                        "redirects are not followed, so that no token or secret goes anywhere else.",
                        retryable=False,
                    )
                # requests' own attributes: what Response.content sets once the body was read.
                response._content = _read_capped(response, url)  # pylint: disable=protected-access
                response._content_consumed = True  # pylint: disable=protected-access
            except BaseException:
                response.close()
                raise
            return response

    session = _Session()
    session.last_answer = (None, None)
    session.requests_started = 0
    session.headers["User-Agent"] = USER_AGENT
    session.auth = _NoNetrc()
    return session


def last_answer(session: t.Any) -> tuple[t.Optional[int], t.Optional[float]]:
    """HTTP status and Retry-After of the session's latest answer: MSAL hides them from its caller."""
    answer = getattr(session, "last_answer", None)
    return answer if isinstance(answer, tuple) and len(answer) == 2 else (None, None)


def _run_within(send: t.Callable[[], t.Any], finish: t.Callable[[t.Any], t.Any], seconds: float, method: str, url: str) -> t.Any:
    """Run one whole request (``send``, then ``finish`` reading the body) in a worker thread; give up after ``seconds``.

    Socket timeouts bound each read, not the request; a watchdog is the portable way to bound
    connect, headers and body together. An abandoned worker is a daemon thread that ends with
    the module process at the latest. Its response is not closed from here: closing a buffered
    socket file waits for the read that the worker is blocked in.
    """
    outcome: dict[str, t.Any] = {}

    def work() -> None:
        try:
            outcome["response"] = finish(send())
        except BaseException as error:  # pylint: disable=broad-exception-caught
            outcome["error"] = error

    worker = threading.Thread(target=work, name="cloudpartner-request", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise requests.exceptions.Timeout(f"{method} {urlsplit(url).path} did not complete within {seconds:g} seconds")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["response"]


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


# Far beyond any Retry-After worth honouring; keeps absurd values finite and printable.
_RETRY_AFTER_CEILING = 86400.0 * 365


def parse_retry_after(value: t.Optional[str], now: t.Optional[float] = None) -> t.Optional[float]:
    """Seconds from a Retry-After value: delta-seconds or an HTTP date. None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value) if len(value) < 16 else _RETRY_AFTER_CEILING
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    try:
        return min(_RETRY_AFTER_CEILING, max(0.0, when.timestamp() - current))
    except (OverflowError, ValueError):
        return None


def backoff_delay(attempt: int, jitter: t.Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter: between half and all of base * 2**attempt, capped."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** min(attempt, 32)))
    return ceiling * (0.5 + jitter() / 2)


def api_error_from(method: str, url: str, response: ApiResponse, note: t.Optional[str] = None) -> ApiError:
    """An ApiError with the service's ``error.code`` / ``error.message`` when the body has them.

    The service's text is kept whole here: the module masks secrets in it before it bounds its
    length (cutting first could leave the start of a secret unmasked).
    """
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
        code=str(code) if code is not None else None,
        api_message=str(message) if message is not None else None,
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
    """Where bearer tokens come from (``_auth``)."""

    def token(self) -> str:
        """The current token; requested on first use."""

    def renew(self) -> bool:
        """After a 401: get a fresh token. False when this source cannot, or already did in this task."""

    def rejection_note(self) -> t.Optional[str]:
        """What to tell the user when the service keeps refusing this source's tokens."""


class CloudPartnerClient:
    """Sends API requests with the bearer token, retrying what is safe to retry.

    ``clock`` is monotonic; a ``deadline`` on that clock bounds a request and its retries.
    """

    def __init__(
        self,
        options: ConnectionOptions,
        tokens: TokenSource,
        session: t.Any,
        sleep: t.Callable[[float], None] = time.sleep,
        jitter: t.Callable[[], float] = random.random,
        clock: t.Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        self._tokens = tokens
        self._session = session
        self.sleep = sleep
        self.clock = clock
        self._jitter = jitter

    def url(self, path: str, **query: t.Optional[str]) -> str:
        params = {"api-version": self.options.api_version}
        params.update({key: value for key, value in query.items() if value is not None})
        return f"{self.options.api_url}{path}?{urlencode(params)}"

    def get_json(self, path: str, deadline: t.Optional[float] = None, **query: t.Optional[str]) -> t.Any:
        return self.request("GET", self.url(path, **query), deadline=deadline).json()

    def backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, self._jitter)

    def request(
        self,
        method: str,
        url: str,
        json_body: t.Any = None,
        expected: t.Collection[int] = (200,),
        retries: t.Optional[int] = None,
        deadline: t.Optional[float] = None,
    ) -> ApiResponse:
        """One API request; retried (``retries``, default the option) on 429, 5xx and connection errors.

        With a ``deadline`` (on ``clock``) every attempt is clipped to the time left, and no
        retry starts after it.
        """
        if not same_origin(url, self.options.api_url):
            raise UnsafeLocationError(f"Refusing to send the bearer token to {urlsplit(url).netloc}: it is not the origin of api_url.")
        budget = self.options.retries if retries is None else retries
        attempt = 0
        while True:
            try:
                response = self._send(method, url, json_body, self._time_for_attempt(method, url, deadline))
            except TransportError as exc:
                if not exc.retryable or attempt >= budget:
                    raise
                delay = self.backoff(attempt)
            else:
                if response.status in expected:
                    return response
                if response.status == 401:
                    # A token can expire during a long wait: one fresh token per task, never one per request.
                    if self._tokens.renew():
                        continue
                    raise api_error_from(method, url, response, note=self._tokens.rejection_note())
                if response.status not in RETRYABLE_STATUSES or attempt >= budget:
                    raise api_error_from(method, url, response, note=self._retry_note(attempt))
                retry_after = response.retry_after
                if retry_after is not None and retry_after > MAX_RETRY_AFTER:
                    raise api_error_from(method, url, response, note=f"The service asked to retry after {retry_after:.0f} seconds.")
                delay = retry_after if retry_after is not None else self.backoff(attempt)
            if deadline is not None and self.clock() + delay >= deadline:
                raise TransportError(f"{method} {urlsplit(url).path}: no time left for another attempt before the deadline.")
            self.sleep(delay)
            attempt += 1

    def _time_for_attempt(self, method: str, url: str, deadline: t.Optional[float]) -> float:
        if deadline is None:
            return float(self.options.timeout)
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise TransportError(f"{method} {urlsplit(url).path} was not sent: the deadline has passed.")
        return min(float(self.options.timeout), remaining)

    @staticmethod
    def _retry_note(attempt: int) -> t.Optional[str]:
        return f"Gave up after {attempt} retries." if attempt else None

    def _send(self, method: str, url: str, json_body: t.Any, timeout: float) -> ApiResponse:
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self._tokens.token()}"}
        data = None
        if json_body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(json_body)
        where = f"{method} {urlsplit(url).path}"
        try:
            raw = self._session.request(
                method,
                url,
                headers=headers,
                data=data,
                timeout=timeout,
                verify=self.options.verify,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            raise TransportError(
                f"TLS error talking to {urlsplit(url).netloc}: {_reason(exc)}. Check ca_path, or validate_certs for test servers.",
                retryable=False,
            ) from None
        except requests.exceptions.Timeout:
            raise TransportError(f"{where} got no complete answer within {timeout:g} seconds (timeout).") from None
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, ValueError) as exc:
            # The request could not even be built; the text of these errors can quote a header (the token).
            raise TransportError(f"{where} could not be sent: {type(exc).__name__}.", retryable=False) from None
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"{where} failed: {_reason(exc)}.") from None
        except OSError as exc:
            # For example a REQUESTS_CA_BUNDLE that names a missing file.
            raise TransportError(f"{where} failed: {type(exc).__name__}: {exc.strerror or exc}.", retryable=False) from None
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
    return str(reason) or type(reason).__name__
