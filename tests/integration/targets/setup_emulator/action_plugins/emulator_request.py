# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test helper: one JSON request to the emulator's control API, made in the controller process.

An ansible.builtin.uri task costs a whole module run (0.5 to 1 s on a busy 2-core CI machine), and the
integration tests create dozens of offers. This action does the same request with the same TLS stack
(ansible.module_utils.urls.open_url, certificate verified against ca_path) without a module run.

Arguments: url, method (GET), body (JSON-serialisable, optional), ca_path, status_code (list, [200]).
Returns: status, json (the parsed answer or None).
"""

from __future__ import annotations

import json
from urllib.error import HTTPError, URLError

from ansible.module_utils.urls import open_url
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("url", "method", "body", "ca_path", "status_code"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        url = args["url"]
        method = str(args.get("method", "GET")).upper()
        expected = [int(code) for code in args.get("status_code", [200])]
        body = args.get("body")
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            response = open_url(
                url, data=data, method=method, headers=headers, ca_path=args.get("ca_path"),
                validate_certs=True, use_proxy=False, timeout=30,
            )
            status, text = response.status, response.read()
        except HTTPError as error:
            status, text = error.code, error.read()
        except URLError as error:
            result.update(failed=True, msg=f"{method} {url} failed: {error.reason}")
            return result
        try:
            payload = json.loads(text) if text.strip() else None
        except ValueError:
            payload = None
        result.update(changed=False, status=status, json=payload)
        if status not in expected:
            result.update(failed=True, msg=f"{method} {url} answered HTTP {status}, expected {expected}: {text[:500]!r}")
        return result
