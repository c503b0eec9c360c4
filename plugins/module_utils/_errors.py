# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Typed errors of the collection's shared code.

FOR INTERNAL COLLECTION USE ONLY: names and signatures may change in any release.

Every message is meant to be shown to users as is: it never contains a secret, a token
or a request header. ``result`` carries the partial result a module returns with the failure.
"""

from __future__ import annotations

import typing as t

_HINTS = {
    400: "The service rejected the request as invalid; fix the cause before retrying (for example api_version).",
    401: "The bearer token was rejected: check access_token, or tenant_id, client_id and client_secret, "
    "and that the token is issued for https://cloudpartner.azure.com.",
    403: "Make sure the service principal was added to the publisher account (Partner Center account settings, "
    "Azure AD applications, using the local object id of its enterprise application) and that publisher_id is right.",
    404: "The publisher or the offer was not found: check publisher_id and offer_id.",
    429: "The service is throttling requests; try again later or with a larger retries.",
}


class CloudPartnerError(Exception):
    """Base class. ``message`` is safe to show; ``result`` holds extra keys for the module result."""

    def __init__(self, message: str, **result: t.Any) -> None:
        super().__init__(message)
        self.message = message
        self.result = result


class ValidationError(CloudPartnerError):
    """An option value is not acceptable. Raised before any request is sent."""


class MissingLibraryError(CloudPartnerError):
    """A required Python library cannot be imported."""

    def __init__(self, library: str, message: str, import_traceback: str | None) -> None:
        super().__init__(message)
        self.library = library
        self.import_traceback = import_traceback


class AuthenticationError(CloudPartnerError):
    """No bearer token could be obtained, or the one given was rejected."""


class TransportError(CloudPartnerError):
    """The request did not get an HTTP answer: connection refused or reset, TLS failure, timeout."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class ResponseFormatError(CloudPartnerError):
    """The service answered with a body the collection cannot interpret."""


class ApiError(CloudPartnerError):
    """The service answered with an unexpected HTTP status."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int,
        code: str | None = None,
        api_message: str | None = None,
        retry_after: float | None = None,
        note: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.api_message = api_message
        self.retry_after = retry_after
        detail = ""
        if code or api_message:
            detail = f" ({code or 'no error code'}: {api_message or 'no error message'})"
        hint = _HINTS.get(status)
        if hint is None and status >= 500:
            hint = "The service failed or is unavailable; try again later or with a larger retries."
        parts = [f"{method} {path} failed with HTTP {status}{detail}."]
        if note:
            parts.append(note)
        if hint:
            parts.append(hint)
        super().__init__(" ".join(parts))


class UnsafeLocationError(CloudPartnerError):
    """A URL from the network points at another origin than api_url: the token must not go there."""


class WaitTimeoutError(CloudPartnerError):
    """The operation did not end before the deadline. ``result`` holds what is known."""
