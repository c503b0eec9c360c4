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

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._auth import token_source
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._errors import CloudPartnerError, MissingLibraryError
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._http import CloudPartnerClient, build_session, require_requests
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._options import ConnectionOptions

RequestT = t.TypeVar("RequestT")


def run_module(
    module: AnsibleModule,
    parse_request: t.Callable[[t.Mapping[str, t.Any]], RequestT],
    action: t.Callable[[CloudPartnerClient, RequestT, bool, t.Callable[[str], None]], dict],
) -> None:
    """Validate every option, then run ``action`` and exit; errors become fail_json.

    All validation happens before the first request, so bad input never causes a partial action.
    """
    try:
        require_requests()
        options = ConnectionOptions.from_params(module.params)
        request = parse_request(module.params)
        session = build_session(options.verify, options.timeout)
        client = CloudPartnerClient(options, token_source(options, session, module.no_log_values.add), session)
        result = action(client, request, module.check_mode, module.warn)
    except MissingLibraryError as error:
        module.fail_json(msg=missing_required_lib(error.library), exception=error.import_traceback)
    except CloudPartnerError as error:
        module.fail_json(msg=error.message, **error.result)
    except Exception as error:  # pylint: disable=broad-exception-caught
        # Last resort: a clear failure instead of a traceback. fail_json still masks every no_log value.
        module.fail_json(msg=f"Unexpected error in the collection: {type(error).__name__}: {str(error)[:300]}")
    module.exit_json(**result)
