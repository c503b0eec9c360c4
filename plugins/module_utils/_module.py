# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Glue between AnsibleModule and the shared code: validate, connect, act, report.

FOR INTERNAL COLLECTION USE ONLY: names and signatures may change in any release.
"""

from __future__ import annotations

import typing as t

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.parameters import remove_values

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._auth import token_source
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._errors import CloudPartnerError, MissingLibraryError
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._http import CloudPartnerClient, build_session, require_requests
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._options import ConnectionOptions

RequestT = t.TypeVar("RequestT")

# Messages and warnings longer than this are cut in the middle (after masking): the start says
# what failed, the end carries the hint; server text in between is what gets shortened.
MAX_SHOWN_CHARACTERS = 2000
_SHOWN_HEAD = 1400
_SHOWN_TAIL = 500


def shown(text: str, secrets: t.Collection[str]) -> str:
    """``text`` as it may appear in a message or a warning: every secret masked first, then bounded."""
    masked = remove_values(text, secrets) if secrets else text
    if not isinstance(masked, str):
        masked = str(masked)
    if len(masked) <= MAX_SHOWN_CHARACTERS:
        return masked
    cut = len(masked) - _SHOWN_HEAD - _SHOWN_TAIL
    return f"{masked[:_SHOWN_HEAD]} [... {cut} characters left out ...] {masked[-_SHOWN_TAIL:]}"


# Result keys that carry messages, server text included (the wait module reports one per operation).
_MESSAGE_KEYS = frozenset({"msg", "last_error"})


def shown_messages(value: t.Any, secrets: t.Collection[str]) -> t.Any:
    """``value`` with every message string in it (at any depth) masked, then bounded, as ``shown`` does."""
    if isinstance(value, dict):
        return {key: shown(item, secrets) if key in _MESSAGE_KEYS and isinstance(item, str) else shown_messages(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [shown_messages(item, secrets) for item in value]
    return value


def masked_warn(module: AnsibleModule) -> t.Callable[[str], None]:
    """``module.warn`` with no_log masking: ansible-core 2.19 and later do not mask warnings."""

    def warn(text: str) -> None:
        module.warn(shown(text, module.no_log_values))

    return warn


def run_module(
    module: AnsibleModule,
    parse_request: t.Callable[[t.Mapping[str, t.Any]], RequestT],
    action: t.Callable[[CloudPartnerClient, RequestT, bool, t.Callable[[str], None]], dict],
) -> None:
    """Validate every option, then run ``action`` and exit; errors become fail_json.

    All validation happens before the first request, so bad input never causes a partial action.
    """
    warn = masked_warn(module)
    try:
        require_requests()
        options = ConnectionOptions.from_params(module.params)
        request = parse_request(module.params)
        session = build_session(options.verify, options.timeout)
        client = CloudPartnerClient(options, token_source(options, session, module.no_log_values.add, warn), session)
        result = action(client, request, module.check_mode, warn)
    except MissingLibraryError as error:
        module.fail_json(msg=missing_required_lib(error.library), exception=error.import_traceback)
    except CloudPartnerError as error:
        module.fail_json(**shown_messages(dict(error.result, msg=error.message), module.no_log_values))
    except Exception as error:  # pylint: disable=broad-exception-caught
        # Last resort: a clear failure instead of a traceback.
        module.fail_json(msg=shown(f"Unexpected error in the collection: {type(error).__name__}: {error}", module.no_log_values))
    module.exit_json(**shown_messages(result, module.no_log_values))
