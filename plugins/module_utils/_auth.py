# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bearer tokens: a given access token, or MSAL client credentials against Entra ID.

FOR INTERNAL COLLECTION USE ONLY: names and signatures may change in any release.

MSAL is imported only when a token has to be requested, so tasks that are given a
token never pay for the import. Every token obtained is handed to ``register_secret``
(the module's ``no_log_values``) before anything else can see it.
"""

from __future__ import annotations

import re
import time
import traceback
import typing as t
from urllib.parse import urlsplit

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._errors import AuthenticationError, MissingLibraryError
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._http import backoff_delay
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._options import ConnectionOptions
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._token_cache import TokenCache, cache_key

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

    can_refresh = False
    rejected_note = (
        "The given access_token was rejected; it may have expired. "
        "Supply a fresh token, or use tenant_id, client_id and client_secret so that the module can renew it."
    )

    def __init__(self, access_token: str, register_secret: RegisterSecret) -> None:
        register_secret(access_token)
        self._access_token = access_token

    def token(self) -> str:
        return self._access_token

    def refresh(self) -> str:
        raise AuthenticationError(f"The service answered HTTP 401. {self.rejected_note}")


class ClientCredentialsToken:
    """Tokens from MSAL's client-credentials flow, requested on first use."""

    can_refresh = True

    def __init__(
        self,
        options: ConnectionOptions,
        session: t.Any,
        register_secret: RegisterSecret,
        cache: t.Optional[TokenCache] = None,
        sleep: t.Callable[[float], None] = time.sleep,
    ) -> None:
        self._options = options
        self._session = session
        self._register_secret = register_secret
        self._cache = cache
        self._sleep = sleep
        # MSAL replays a 429/5xx answer from this cache for a while; it is emptied before each retry.
        self._http_cache: dict = {}
        self._app: t.Any = None
        self._access_token: t.Optional[str] = None
        self.token_requests = 0

    @property
    def authority(self) -> str:
        return f"{self._options.authority_host}/{self._options.tenant_id}"

    @property
    def _cache_key(self) -> str:
        return cache_key(self.authority, t.cast(str, self._options.client_id), SCOPE, t.cast(str, self._options.client_secret))

    def token(self) -> str:
        if self._access_token is None:
            self._access_token = self._cached_or_acquired()
        return self._access_token

    def refresh(self) -> str:
        if self._app is not None:
            # Drop what MSAL cached so that it asks Entra ID for a new token.
            self._app.remove_tokens_for_client()
        self._access_token = self._acquire()
        return self._access_token

    def _cached_or_acquired(self) -> str:
        if self._cache is None:
            return self._acquire()
        with self._cache.locked():
            # Checked under the lock: a parallel task may have just stored a token.
            cached = self._cache.get(self._cache_key)
            if cached:
                self._register_secret(cached)
                return cached
            return self._acquire()

    def _application(self) -> t.Any:
        if self._app is None:
            msal = import_msal()
            kwargs: dict[str, t.Any] = {}
            host = (urlsplit(self._options.authority_host).hostname or "").lower()
            if host not in KNOWN_AUTHORITY_HOSTS:
                kwargs["instance_discovery"] = False
            try:
                self._app = msal.ConfidentialClientApplication(
                    self._options.client_id,
                    client_credential=self._options.client_secret,
                    authority=self.authority,
                    http_client=self._session,
                    http_cache=self._http_cache,
                    **kwargs,
                )
            except ValueError as exc:
                raise AuthenticationError(f"Cannot use the authority {self.authority}: {self._safe(str(exc))} Check authority_host and tenant_id.") from None
            except Exception as exc:  # pylint: disable=broad-exception-caught
                # requests' connection and TLS errors while MSAL reads the authority's metadata.
                raise AuthenticationError(
                    f"Cannot reach the authority {self.authority}: {type(exc).__name__}. Check authority_host, ca_path and proxies."
                ) from None
        return self._app

    def _acquire(self) -> str:
        """One token from Entra ID, retrying transient failures like any API request (``retries``)."""
        app = self._application()
        attempt = 0
        while True:
            self.token_requests += 1
            failure: t.Optional[str] = None
            result: t.Any = None
            try:
                result = app.acquire_token_for_client(scopes=[SCOPE])
            except Exception as exc:  # pylint: disable=broad-exception-caught
                # Connection and TLS errors, and MSAL's MsalServiceError for unreadable 5xx answers.
                detail = self._safe(str(exc)).splitlines()[0][:200] if str(exc).strip() else "no details"
                failure = f"{type(exc).__name__}: {detail}"
            token = result.get("access_token") if isinstance(result, dict) else None
            if token:
                self._register_secret(token)
                if self._cache is not None:
                    self._cache.put(self._cache_key, token, result.get("expires_in"))
                return token
            if attempt >= self._options.retries or not self._transient(result, failure):
                break
            self._http_cache.clear()
            self._sleep(backoff_delay(attempt))
            attempt += 1
        retried = f" Gave up after {attempt} retries." if attempt else ""
        if failure is not None:
            raise AuthenticationError(f"The token request to {self.authority} failed: {failure}.{retried} Check authority_host, ca_path and proxies.")
        raise AuthenticationError(self._describe_failure(result if isinstance(result, dict) else {}) + retried)

    @staticmethod
    def _transient(result: t.Any, failure: t.Optional[str]) -> bool:
        if failure is not None:
            return True
        if not isinstance(result, dict):
            return False
        codes = {str(code) for code in result.get("error_codes") or []}
        # AADSTS90033: "A transient error has occurred"; the OAuth errors below say "try again".
        return result.get("error") in ("temporarily_unavailable", "server_error") or "90033" in codes

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


def token_source(options: ConnectionOptions, session: t.Any, register_secret: RegisterSecret) -> t.Union[GivenToken, ClientCredentialsToken]:
    if options.access_token:
        return GivenToken(options.access_token, register_secret)
    cache = TokenCache(options.token_cache_path) if options.token_cache_path else None
    return ClientCredentialsToken(options, session, register_secret, cache)
