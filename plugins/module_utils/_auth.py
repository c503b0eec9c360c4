# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bearer tokens: a given access token, or MSAL client credentials against Entra ID.

FOR INTERNAL COLLECTION USE ONLY: names and signatures may change in any release.

MSAL is imported only when a token has to be requested, so tasks that are given a
token (or find one in the token cache) never pay for the import. Every token obtained is
handed to ``register_secret`` (the module's ``no_log_values``) before anything else can see it.
A task renews a token at most once (after a 401), never once per request.
"""

from __future__ import annotations

import math
import re
import time
import traceback
import typing as t
from urllib.parse import urlsplit

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._errors import (
    AuthenticationError,
    CloudPartnerError,
    MissingLibraryError,
    TransportError,
)
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._http import (
    MAX_RETRY_AFTER,
    RETRYABLE_STATUSES,
    backoff_delay,
    last_answer,
)
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._options import ConnectionOptions
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._token_cache import MIN_REMAINING_SECONDS, TokenCache, cache_key

try:
    import requests
except ImportError:  # reported by _http.require_requests before any token is requested
    requests = None  # type: ignore[assignment]

SCOPE = "https://cloudpartner.azure.com/.default"

# Entra ID hosts that MSAL's instance discovery knows. For any other host (sovereign test
# servers, emulators) discovery must be off or MSAL asks login.microsoftonline.com about it.
# The real hosts keep MSAL's default behaviour.
KNOWN_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "sts.windows.net",
        "login.microsoftonline.us",
        "login-us.microsoftonline.com",
        "login.usgovcloudapi.net",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
        "login.microsoftonline.de",
    }
)

_AADSTS_HINTS = {
    "7000215": "check client_secret: use the secret's value, not its ID.",
    "7000222": "the client secret has expired: create a new one.",
    "700016": "check client_id and tenant_id: the application was not found in that tenant.",
    "90002": "check tenant_id: the tenant was not found.",
    "900023": "check tenant_id: it is not a valid tenant GUID or domain.",
    "70011": "the scope was refused.",
    "7000112": "the application is disabled.",
}

RegisterSecret = t.Callable[[str], None]
Warn = t.Callable[[str], None]

# How long a task waits for a parallel task (fork) that is requesting the same token.
CACHE_LOCK_WAIT = 5.0
# A token is renewed before it has less than this left (seconds): a wait can outlast several tokens, and
# a renewal after a 401 happens at most once per task. The token cache serves nothing closer to its expiry.
RENEW_BEFORE_EXPIRY = MIN_REMAINING_SECONDS


def import_msal() -> t.Any:
    try:
        import msal  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise MissingLibraryError(
            "msal",
            "The Python library msal is required on the host that runs the module to request a token with client credentials.",
            traceback.format_exc(),
        ) from None
    return msal


class GivenToken:
    """A bearer token supplied by the user. It cannot be renewed."""

    def __init__(self, access_token: str, register_secret: RegisterSecret) -> None:
        register_secret(access_token)
        self._access_token = access_token

    def token(self) -> str:
        return self._access_token

    def renew(self) -> bool:
        return False

    @staticmethod
    def rejection_note() -> str:
        return (
            "The given access_token was rejected; it may have expired. "
            "Supply a fresh token, or use tenant_id, client_id and client_secret so that the module can renew it."
        )


class ClientCredentialsToken:
    """Tokens from MSAL's client-credentials flow, requested on first use, renewed at most once."""

    def __init__(
        self,
        options: ConnectionOptions,
        session: t.Any,
        register_secret: RegisterSecret,
        cache: t.Optional[TokenCache] = None,
        sleep: t.Callable[[float], None] = time.sleep,
        clock: t.Callable[[], float] = time.time,
    ) -> None:
        self._options = options
        self._session = session
        self._register_secret = register_secret
        self._cache = cache
        self._sleep = sleep
        # Wall-clock time, as token lifetimes and the token cache are.
        self._clock = clock
        # MSAL replays a 429/5xx answer from this cache for a while; it is emptied before each retry.
        self._http_cache: dict = {}
        self._app: t.Any = None
        self._access_token: t.Optional[str] = None
        self._renew_at = 0.0
        self._renewed = False

    @property
    def authority(self) -> str:
        return f"{self._options.authority_host}/{self._options.tenant_id}"

    @property
    def _cache_key(self) -> str:
        return cache_key(self.authority, t.cast(str, self._options.client_id), SCOPE)

    def token(self) -> str:
        if self._access_token is None or self._clock() >= self._renew_at:
            self._use(*self._cached_or_acquired())
        return t.cast(str, self._access_token)

    def renew(self) -> bool:
        if self._renewed:
            return False
        self._renewed = True
        if self._app is not None:
            # Drop what MSAL cached so that it asks Entra ID for a new token.
            self._app.remove_tokens_for_client()
        self._use(*self._acquire())
        return True

    def _use(self, token: str, expires_on: float) -> None:
        # Renewed RENEW_BEFORE_EXPIRY before it expires, but never before half its remaining life: an authority that
        # hands out tokens of a few minutes must not get one token request per API request.
        self._access_token = token
        self._renew_at = expires_on - min(RENEW_BEFORE_EXPIRY, max(0.0, expires_on - self._clock()) / 2)

    def rejection_note(self) -> str:
        return (
            "The service rejected a freshly requested token too: check that the service principal was added to the "
            "publisher account and that the token is for https://cloudpartner.azure.com."
            if self._renewed
            else "The token was rejected."
        )

    def _cached_or_acquired(self) -> tuple[str, float]:
        if self._cache is None:
            return self._acquire()
        # Under the lock (when it could be had quickly), so that parallel forks request one token.
        with self._cache.locked(wait=CACHE_LOCK_WAIT):
            cached = self._cache.lookup(self._cache_key)
            if cached:
                self._register_secret(cached[0])
                return cached
            return self._acquire()

    def _application(self) -> t.Any:
        if self._app is None:
            msal = import_msal()
            kwargs: dict[str, t.Any] = {}
            if authority_hostname(self._options.authority_host) not in KNOWN_AUTHORITY_HOSTS:
                kwargs["instance_discovery"] = False
            # The constructor reads the authority's OpenID configuration: a network request.
            self._app = msal.ConfidentialClientApplication(
                self._options.client_id,
                client_credential=self._options.client_secret,
                authority=self.authority,
                http_client=self._session,
                http_cache=self._http_cache,
                **kwargs,
            )
        return self._app

    def _acquire(self) -> tuple[str, float]:
        """One token from Entra ID and its expiry; transient failures (discovery included) are retried like API requests."""
        attempt = 0
        while True:
            failure = self._attempt()
            if not isinstance(failure, _Failure):
                return failure
            transient, retry_after = failure.transient, failure.retry_after
            if not transient or attempt >= self._options.retries:
                retried = f" Gave up after {attempt} retries." if attempt else ""
                raise AuthenticationError(failure.message + retried)
            if retry_after is not None and retry_after > MAX_RETRY_AFTER:
                raise AuthenticationError(f"{failure.message} Entra ID asked to retry after {retry_after:.0f} seconds.")
            self._http_cache.clear()
            self._sleep(retry_after if retry_after is not None else backoff_delay(attempt))
            attempt += 1

    def _attempt(self) -> t.Union[tuple[str, float], "_Failure"]:
        """A token with its expiry, or why there is none."""
        try:
            app = self._application()
        except MissingLibraryError:
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught
            return self._exception_failure(exc, f"Cannot use the authority {self.authority}", "Check authority_host and tenant_id.")
        try:
            result = app.acquire_token_for_client(scopes=[SCOPE])
        except Exception as exc:  # pylint: disable=broad-exception-caught
            return self._exception_failure(exc, f"The token request to {self.authority} failed", "Check authority_host, ca_path and proxies.")
        token = result.get("access_token") if isinstance(result, dict) else None
        if isinstance(token, str) and token:
            self._register_secret(token)
            if self._cache is not None:
                self._cache.put(self._cache_key, token, result.get("expires_in"))
            return token, self._clock() + _lifetime(result.get("expires_in"))
        result = result if isinstance(result, dict) else {}
        status, retry_after = last_answer(self._session)
        codes = {str(code) for code in result.get("error_codes") or []}
        # AADSTS90033: "A transient error has occurred"; the OAuth errors below say "try again".
        transient = status in RETRYABLE_STATUSES or result.get("error") in ("temporarily_unavailable", "server_error") or "90033" in codes
        return _Failure(self._describe_failure(result), transient, retry_after if transient else None)

    def _exception_failure(self, exc: Exception, what: str, advice: str) -> "_Failure":
        if isinstance(exc, CloudPartnerError):
            # Raised by the session itself: a redirect, an oversized answer, a timeout of the whole request.
            return _Failure(f"{what}: {exc.message}", isinstance(exc, TransportError) and exc.retryable)
        if requests is not None and isinstance(exc, requests.exceptions.SSLError):
            return _Failure(f"{what}: TLS error: {self._first_line(exc)} Check ca_path, or validate_certs for test servers.", False)
        if requests is not None and isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            return _Failure(f"{what}: {type(exc).__name__}: {self._first_line(exc)} {advice}", True)
        # MSAL turns a 5xx into an exception of its own (requests' HTTPError, or MsalServiceError in newer
        # releases): classify by the status the session saw, not by the exception's type.
        status, retry_after = last_answer(self._session)
        if status in RETRYABLE_STATUSES:
            return _Failure(f"{what}: HTTP {status}. {advice}", True, retry_after)
        # ValueError and the rest: MSAL refusing the authority, an unreadable answer, a bug. Retrying would not help.
        return _Failure(f"{what}: {type(exc).__name__}: {self._first_line(exc)} {advice}", False)

    def _first_line(self, exc: Exception) -> str:
        lines = self._safe(str(exc)).strip().splitlines()
        return lines[0] if lines else "no details."

    def _describe_failure(self, result: t.Mapping[str, t.Any]) -> str:
        error = result.get("error") or "unknown_error"
        description = self._safe(str(result.get("error_description") or "")).strip().splitlines()
        first_line = description[0] if description else "no description"
        codes = [str(code) for code in result.get("error_codes") or []]
        match = re.search(r"AADSTS(\d+)", first_line)
        code = match.group(1) if match else (codes[0] if codes else None)
        message = f"Entra ID refused a token for client {self._options.client_id} in tenant {self._options.tenant_id}: {error}: {first_line}"
        if code and code in _AADSTS_HINTS:
            message += f" Hint: {_AADSTS_HINTS[code]}"
        correlation = result.get("correlation_id")
        if correlation:
            message += f" (correlation id {correlation})"
        return message

    def _safe(self, text: str) -> str:
        secret = self._options.client_secret
        return text.replace(secret, "********") if secret else text


def _lifetime(expires_in: t.Any) -> float:
    """Seconds a fresh token is valid; unreadable or absurd values count as just long enough for this task's use."""
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError, OverflowError):
        return RENEW_BEFORE_EXPIRY + 60.0
    return min(seconds, 86400.0) if math.isfinite(seconds) and seconds > 0 else RENEW_BEFORE_EXPIRY + 60.0


class _Failure(t.NamedTuple):
    message: str
    transient: bool
    retry_after: t.Optional[float] = None


def authority_hostname(authority_host: str) -> str:
    return (urlsplit(authority_host).hostname or "").lower()


def token_source(
    options: ConnectionOptions, session: t.Any, register_secret: RegisterSecret, warn: Warn
) -> t.Union[GivenToken, ClientCredentialsToken]:
    if options.access_token:
        return GivenToken(options.access_token, register_secret)
    if options.verify is False and authority_hostname(options.authority_host) in KNOWN_AUTHORITY_HOSTS:
        warn(
            "validate_certs is false: TLS is not verified for Entra ID either, so the client secret could reach "
            "anyone in the network path. Use ca_path for a test server's certificate instead."
        )
    # A token obtained without TLS verification is never kept for later tasks.
    cache_home = options.token_cache_home if options.verify is not False else None
    cache = TokenCache(cache_home, warn=warn, quiet_when_unavailable=not options.token_cache_home_given) if cache_home else None
    return ClientCredentialsToken(options, session, register_secret, cache)
