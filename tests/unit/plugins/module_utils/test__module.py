# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""run_module's boundary: what reaches a message or a warning is masked first, then bounded."""

from __future__ import annotations

import contextlib
import json
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _module
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._errors import ApiError, CloudPartnerError
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._options import argument_spec

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19

    @contextlib.contextmanager
    def patch_module_args(args=None):
        with mock.patch.object(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode("utf-8")):
            yield


SECRET = "Q~unit-secret-value-0123456789"
TOKEN = "eyJ.unit-access-token.value"


def run(capsys, action, **args):
    params = {"tenant_id": "contoso.onmicrosoft.com", "client_id": "0b0f4a2c-1111-4222-8333-944445555666", "client_secret": SECRET}
    params.update(args)
    with patch_module_args(params):
        module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
        with pytest.raises(SystemExit):
            _module.run_module(module, lambda module_params: None, action)
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def warning_texts(result):
    return [(warning.get("event") or {}).get("msg", "") if isinstance(warning, dict) else warning for warning in result.get("warnings", [])]


def test_warnings_are_masked(capsys):
    # security review L4: ansible-core >= 2.19 does not apply no_log masking to warnings
    def action(client, request, check_mode, warn):
        warn(f"the gateway echoed {SECRET} back")
        return {"changed": False}

    result = run(capsys, action)
    (text,) = warning_texts(result)
    assert SECRET not in json.dumps(result)
    assert "the gateway echoed ******** back" in text


def test_failure_messages_are_masked_before_they_are_cut(capsys):
    # security review I3: truncation before masking could leave a secret's start unmasked
    def action(client, request, check_mode, warn):
        raise ApiError("GET", "/api/x", 400, code="Bad", api_message="m" * (_module._SHOWN_HEAD - 60) + SECRET + "x" * 5000)

    result = run(capsys, action)
    assert result["failed"] is True
    assert SECRET[:6] not in result["msg"]
    assert len(result["msg"]) <= _module.MAX_SHOWN_CHARACTERS + 60
    assert result["msg"].endswith("fix the cause before retrying (for example api_version).")


def test_registered_tokens_are_masked_in_warnings(capsys):
    def action(client, request, check_mode, warn):
        client._tokens._register_secret(TOKEN)  # what the token source does with every token it gets
        warn(f"token {TOKEN} seen")
        return {"changed": False}

    result = run(capsys, action)
    assert TOKEN not in json.dumps(result)


def test_unexpected_errors_are_masked_too(capsys):
    def action(client, request, check_mode, warn):
        raise RuntimeError(f"bug that printed {SECRET}")

    result = run(capsys, action)
    assert result["msg"].startswith("Unexpected error in the collection: RuntimeError")
    assert SECRET not in result["msg"]


def test_shown_keeps_short_text_and_cuts_long_text_in_the_middle():
    assert _module.shown("short", set()) == "short"
    text = "A" * 3000 + "TAIL"
    cut = _module.shown(text, set())
    assert len(cut) < _module.MAX_SHOWN_CHARACTERS + 60
    assert cut.startswith("A" * 100) and cut.endswith("TAIL")
    assert "characters left out" in cut


def test_messages_inside_results_are_masked_and_bounded_too(capsys):
    # maintainer review of this change (M3): the wait module copies server text into operations[].msg / last_error
    long_text = "m" * 100_000 + SECRET

    def action(client, request, check_mode, warn):
        raise CloudPartnerError("1 operation failed", operations=[{"offer_id": "a", "msg": long_text, "last_error": long_text, "status": "x" * 3000}])

    result = run(capsys, action)
    (operation,) = result["operations"]
    for key in ("msg", "last_error"):
        assert len(operation[key]) <= _module.MAX_SHOWN_CHARACTERS + 60
        assert SECRET not in operation[key]
    assert operation["status"] == "x" * 3000  # data is returned as the service gave it; only messages are bounded


def test_success_messages_are_bounded(capsys):
    def action(client, request, check_mode, warn):
        return {"changed": False, "msg": "ended with status " + "s" * 10_000}

    result = run(capsys, action)
    assert len(result["msg"]) <= _module.MAX_SHOWN_CHARACTERS + 60
