# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Validators for option values: each returns the normalised value or raises ValidationError.

FOR INTERNAL COLLECTION USE ONLY: names and signatures may change in any release.

They run before any request is sent, so that bad input never causes a partial action.
Character classes are spelled out in ASCII on purpose: ``\\w`` or ``str.isalnum`` would
accept look-alike Unicode letters and digits.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import typing as t
from urllib.parse import urlsplit

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._errors import ValidationError

_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._-]{1,200}")
_TENANT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?")
_GUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_API_VERSION = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(-preview)?")
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _shown(value: str) -> str:
    """Quote a value for a message; non-ASCII characters appear as escapes so tricks stay visible."""
    text = ascii(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def path_segment(option: str, value: str) -> str:
    """An id that becomes one segment of a request path: letters, digits, '-', '_', '.'."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{option} must be a non-empty string.")
    if not _PATH_SEGMENT.fullmatch(value) or set(value) == {"."}:
        raise ValidationError(
            f"{option} {_shown(value)} is not a valid identifier: use 1 to 200 ASCII letters, digits, "
            "'-', '_' and '.' (and not only dots), because it becomes part of the request URL."
        )
    return value


def guid(option: str, value: str) -> str:
    """A GUID such as 5a63deb5-925b-4ee0-938b-7c86fbf287c5, returned in lower case."""
    if not isinstance(value, str) or not _GUID.fullmatch(value):
        raise ValidationError(f"{option} {_shown(str(value))} is not a GUID (for example 5a63deb5-925b-4ee0-938b-7c86fbf287c5).")
    return value.lower()


def tenant(option: str, value: str) -> str:
    """An Entra ID tenant: a GUID or a domain name such as contoso.onmicrosoft.com."""
    if not isinstance(value, str) or not _TENANT.fullmatch(value) or ".." in value:
        raise ValidationError(f"{option} {_shown(str(value))} is not a tenant id: give the tenant's GUID or its domain name.")
    return value


def email(option: str, value: str) -> str:
    """An e-mail address of the usual shape local@domain.tld (no commas: the service joins them with commas)."""
    local, sep, domain = value.rpartition("@") if isinstance(value, str) else ("", "", "")
    labels = domain.split(".")
    if (
        not sep
        or len(value) > 254
        or not _EMAIL_LOCAL.fullmatch(local)
        or len(labels) < 2
        or not all(_DNS_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValidationError(f"{option} contains {_shown(str(value))}, which is not an e-mail address.")
    return value


def api_version(option: str, value: str) -> str:
    """YYYY-MM-DD with an optional -preview suffix, and a real calendar date."""
    match = _API_VERSION.fullmatch(value) if isinstance(value, str) else None
    try:
        if match is None:
            raise ValueError(value)
        datetime.date.fromisoformat(match.group(1))
    except ValueError:
        raise ValidationError(
            f"{option} {_shown(str(value))} is not an API version: use YYYY-MM-DD with an optional -preview suffix, such as 2017-10-31."
        ) from None
    return value


_STATUS_FILTER = re.compile(r"[A-Za-z][A-Za-z ]{0,39}")


def status_filter(option: str, value: str) -> str:
    """A submission state to filter on, such as running or canceled: letters and spaces only."""
    if not isinstance(value, str) or not _STATUS_FILTER.fullmatch(value):
        raise ValidationError(f"{option} {_shown(str(value))} is not a submission state: use letters only, for example running.")
    return value


def is_loopback_host(host: str) -> bool:
    """True for localhost and for addresses in 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in labels)


def base_url(option: str, value: str, https_only: bool = False) -> str:
    """scheme://host[:port] with nothing after it; plain http only for loopback hosts. Returns it normalised."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{option} must be a URL such as https://cloudpartner.azure.com.")
    parts = urlsplit(value.strip())
    try:
        port = parts.port
    except ValueError:
        raise ValidationError(f"{option} {_shown(value)} has an invalid port.") from None
    host = parts.hostname
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ValidationError(f"{option} {_shown(value)} must be an http(s) URL with a host, such as https://cloudpartner.azure.com.")
    if parts.username is not None or parts.password is not None:
        raise ValidationError(f"{option} must not contain credentials.")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValidationError(f"{option} {_shown(value)} must be only scheme, host and optional port, with no path or query.")
    if not _valid_host(host):
        raise ValidationError(f"{option} {_shown(value)} does not name a valid host (a DNS name or an IP address).")
    scheme = parts.scheme.lower()
    if scheme == "http":
        if https_only:
            raise ValidationError(f"{option} {_shown(value)} must use https.")
        if not is_loopback_host(host):
            raise ValidationError(
                f"{option} {_shown(value)} uses plain http to a host that is not a loopback address: "
                "a bearer token must not cross a network in clear text, use https."
            )
    netloc = f"[{host}]" if ":" in host else host.lower()
    return f"{scheme}://{netloc}:{port}" if port is not None else f"{scheme}://{netloc}"


def positive_int(option: str, value: int, maximum: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValidationError(f"{option} must be a whole number of seconds greater than 0, not {value!r}.")
    if maximum is not None and value > maximum:
        raise ValidationError(f"{option} must be at most {maximum}, not {value!r}.")
    return value


def retry_count(option: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 20:
        raise ValidationError(f"{option} must be a whole number from 0 to 20, not {value!r}.")
    return value


def readable_file(option: str, value: str) -> str:
    if not os.path.isfile(value) or not os.access(value, os.R_OK):
        raise ValidationError(f"{option} {_shown(value)} is not a readable file.")
    return value


def email_list(option: str, values: t.Iterable[str] | None) -> list[str]:
    return [email(option, value) for value in values or []]


def bearer_token(option: str, value: str) -> str:
    """A token for the Authorization header: surrounding whitespace dropped, nothing odd inside.

    The message never shows the value: it is a secret, and a mangled copy would escape masking.
    """
    token = value.strip() if isinstance(value, str) else ""
    if not token:
        raise ValidationError(f"{option} is empty once whitespace is removed; set a token, or leave {option} unset to use client credentials.")
    if any(not 33 <= ord(char) <= 126 for char in token):
        raise ValidationError(
            f"{option} contains whitespace, control or non-ASCII characters inside the token ({len(token)} characters), "
            "so it cannot be sent in an HTTP header. Its value is not shown. Check how the token was copied."
        )
    return token


def absolute_path(option: str, value: str) -> str:
    if not isinstance(value, str) or not os.path.isabs(value):
        raise ValidationError(f"{option} must be an absolute path, not {_shown(str(value))}.")
    return os.path.normpath(value)
