# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Option groups shared by every module: argument specs and their validated form.

FOR INTERNAL COLLECTION USE ONLY: names and signatures may change in any release.

Each ``*_ARGSPEC`` mirrors one doc fragment in ``plugins/doc_fragments``. Environment
fallbacks are listed in precedence order; an explicit option always wins.
"""

from __future__ import annotations

import dataclasses
import os
import typing as t

from ansible.module_utils.errors import AnsibleFallbackNotFound

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _validation as check
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._errors import ValidationError
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._token_cache import default_cache_home

DEFAULT_API_URL = "https://cloudpartner.azure.com"
DEFAULT_API_VERSION = "2017-10-31"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_TIMEOUT = 30
DEFAULT_RETRIES = 5
DEFAULT_WAIT_TIMEOUT = 900
DEFAULT_WAIT_SLEEP = 10


def nonempty_env_fallback(*names: str) -> str:
    """The first of ``names`` set to a non-empty value.

    Unlike ansible's env_fallback, an empty variable (an AWX credential field left blank)
    does not hide the variables after it.
    """
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    raise AnsibleFallbackNotFound


ENV = {
    "api_url": ["CLOUDPARTNER_API_URL"],
    "api_version": ["CLOUDPARTNER_API_VERSION"],
    "access_token": ["CLOUDPARTNER_ACCESS_TOKEN"],
    # AZURE_TENANT / AZURE_CLIENT_ID / AZURE_SECRET are what AWX's built-in Azure credential injects.
    "tenant_id": ["CLOUDPARTNER_TENANT_ID", "AZURE_TENANT", "AZURE_TENANT_ID"],
    "client_id": ["CLOUDPARTNER_CLIENT_ID", "AZURE_CLIENT_ID"],
    "client_secret": ["CLOUDPARTNER_CLIENT_SECRET", "AZURE_SECRET", "AZURE_CLIENT_SECRET"],
    "authority_host": ["CLOUDPARTNER_AUTHORITY_HOST", "AZURE_AUTHORITY_HOST"],
    # So that an AWX custom credential can carry a corporate CA and the transport settings.
    "validate_certs": ["CLOUDPARTNER_VALIDATE_CERTS"],
    "ca_path": ["CLOUDPARTNER_CA_PATH"],
    "timeout": ["CLOUDPARTNER_TIMEOUT"],
    "retries": ["CLOUDPARTNER_RETRIES"],
    "token_cache": ["CLOUDPARTNER_TOKEN_CACHE"],
    "token_cache_dir": ["CLOUDPARTNER_TOKEN_CACHE_DIR"],
}


def _fallback(name: str) -> tuple:
    return (nonempty_env_fallback, ENV[name])


CONNECTION_ARGSPEC: dict[str, dict[str, t.Any]] = {
    "api_url": {"type": "str", "default": DEFAULT_API_URL, "fallback": _fallback("api_url")},
    "api_version": {"type": "str", "default": DEFAULT_API_VERSION, "fallback": _fallback("api_version")},
    "access_token": {"type": "str", "no_log": True, "fallback": _fallback("access_token")},
    "tenant_id": {"type": "str", "fallback": _fallback("tenant_id")},
    "client_id": {"type": "str", "fallback": _fallback("client_id")},
    "client_secret": {"type": "str", "no_log": True, "fallback": _fallback("client_secret")},
    "authority_host": {"type": "str", "default": DEFAULT_AUTHORITY_HOST, "fallback": _fallback("authority_host")},
    "validate_certs": {"type": "bool", "default": True, "fallback": _fallback("validate_certs")},
    "ca_path": {"type": "path", "fallback": _fallback("ca_path")},
    "timeout": {"type": "int", "default": DEFAULT_TIMEOUT, "fallback": _fallback("timeout")},
    "retries": {"type": "int", "default": DEFAULT_RETRIES, "fallback": _fallback("retries")},
    # Not secrets themselves (a switch and a directory): say so, the sanity heuristic flags "token".
    "token_cache": {"type": "bool", "default": True, "no_log": False, "fallback": _fallback("token_cache")},
    "token_cache_dir": {"type": "path", "no_log": False, "fallback": _fallback("token_cache_dir")},
}

OFFER_ARGSPEC: dict[str, dict[str, t.Any]] = {
    "publisher_id": {"type": "str", "required": True},
    "offer_id": {"type": "str", "required": True},
}

WAIT_ARGSPEC: dict[str, dict[str, t.Any]] = {
    "wait": {"type": "bool", "default": False},
    "wait_timeout": {"type": "int", "default": DEFAULT_WAIT_TIMEOUT},
    "wait_sleep": {"type": "int", "default": DEFAULT_WAIT_SLEEP},
}


def argument_spec(*groups: dict[str, dict[str, t.Any]], **module_options: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """Connection options, then the given groups, then the module's own options."""
    spec: dict[str, dict[str, t.Any]] = {name: dict(value) for name, value in CONNECTION_ARGSPEC.items()}
    for group in groups:
        spec.update({name: dict(value) for name, value in group.items()})
    spec.update(module_options)
    return spec


@dataclasses.dataclass(frozen=True)
class ConnectionOptions:
    """Validated connection and authentication options. ``repr`` hides the secrets."""

    api_url: str
    api_version: str
    authority_host: str
    verify: t.Union[bool, str]
    timeout: int
    retries: int
    access_token: t.Optional[str] = dataclasses.field(default=None, repr=False)
    tenant_id: t.Optional[str] = None
    client_id: t.Optional[str] = None
    client_secret: t.Optional[str] = dataclasses.field(default=None, repr=False)
    token_cache_home: t.Optional[str] = None
    # False for the default cache home: a home that cannot be used then costs no warning on every task.
    token_cache_home_given: bool = False

    @classmethod
    def from_params(cls, params: t.Mapping[str, t.Any]) -> "ConnectionOptions":
        ca_path = params.get("ca_path")
        verify: t.Union[bool, str] = bool(params.get("validate_certs", True))
        if verify and ca_path:
            verify = check.readable_file("ca_path", ca_path)
        access_token = check.bearer_token("access_token", params["access_token"]) if params.get("access_token") else None
        options = cls(
            api_url=check.base_url("api_url", params.get("api_url") or DEFAULT_API_URL),
            api_version=check.api_version("api_version", params.get("api_version") or DEFAULT_API_VERSION),
            authority_host=check.base_url("authority_host", params.get("authority_host") or DEFAULT_AUTHORITY_HOST, https_only=True),
            verify=verify,
            timeout=check.positive_int("timeout", params.get("timeout", DEFAULT_TIMEOUT), maximum=3600),
            retries=check.retry_count("retries", params.get("retries", DEFAULT_RETRIES)),
            access_token=access_token,
            tenant_id=params.get("tenant_id") or None,
            client_id=params.get("client_id") or None,
            client_secret=params.get("client_secret") or None,
            token_cache_home=_token_cache_home(params),
            token_cache_home_given=bool(params.get("token_cache_dir")),
        )
        options.check_credentials()
        return options

    def check_credentials(self) -> None:
        if self.access_token:
            return
        given = {"tenant_id": self.tenant_id, "client_id": self.client_id, "client_secret": self.client_secret}
        missing = [name for name, value in given.items() if not value]
        if missing:
            sources = "; ".join(f"{name} (or {' / '.join(ENV[name])})" for name in missing)
            raise ValidationError(
                "No credentials for the Cloud Partner Portal API: set access_token (or CLOUDPARTNER_ACCESS_TOKEN), "
                f"or all of tenant_id, client_id and client_secret. Missing: {sources}."
            )
        check.tenant("tenant_id", t.cast(str, self.tenant_id))
        check.guid("client_id", t.cast(str, self.client_id))


def _token_cache_home(params: t.Mapping[str, t.Any]) -> t.Optional[str]:
    """The absolute directory under which the token cache keeps its private directory, or None (no cache)."""
    if not params.get("token_cache", True):
        return None
    explicit = params.get("token_cache_dir")
    if explicit:
        return check.absolute_path("token_cache_dir", explicit)
    return default_cache_home()


@dataclasses.dataclass(frozen=True)
class OfferRef:
    publisher_id: str
    offer_id: str

    @classmethod
    def from_params(cls, params: t.Mapping[str, t.Any]) -> "OfferRef":
        return cls(
            publisher_id=check.path_segment("publisher_id", params.get("publisher_id")),
            offer_id=check.path_segment("offer_id", params.get("offer_id")),
        )

    @property
    def path(self) -> str:
        return f"/api/publishers/{self.publisher_id}/offers/{self.offer_id}"

    def __str__(self) -> str:
        return f"{self.publisher_id}/{self.offer_id}"


@dataclasses.dataclass(frozen=True)
class WaitOptions:
    enabled: bool
    timeout: int
    sleep: int

    @classmethod
    def from_params(cls, params: t.Mapping[str, t.Any]) -> "WaitOptions":
        return cls(
            enabled=bool(params.get("wait")),
            timeout=check.positive_int("wait_timeout", params.get("wait_timeout", DEFAULT_WAIT_TIMEOUT), maximum=86400),
            sleep=check.positive_int("wait_sleep", params.get("wait_sleep", DEFAULT_WAIT_SLEEP), maximum=3600),
        )
