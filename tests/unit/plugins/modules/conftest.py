# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a module's main() in-process: module args in, exit JSON out, HTTP through a FakeSession."""

from __future__ import annotations

import contextlib
import json
import types
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.common.parameters import PASS_VARS

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _http, _module

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19: modules read the serialised args from basic._ANSIBLE_ARGS

    @contextlib.contextmanager
    def patch_module_args(args=None):
        serialized = json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode("utf-8")
        with mock.patch.object(basic, "_ANSIBLE_ARGS", serialized):
            yield


def warning_texts(result):
    """Warnings as text: ansible-core >= 2.19 serialises them as WarningSummary objects, older cores as strings."""
    texts = []
    for warning in result.get("warnings", []):
        if isinstance(warning, dict):
            warning = (warning.get("event") or {}).get("msg", json.dumps(warning))
        texts.append(warning)
    return texts


@pytest.fixture
def run_module(monkeypatch, capsys, fakes, fake_clock):
    """run_module(main, args, *script) -> namespace(result, rc, session, built, output, warnings, clock).

    The client runs on ``fake_clock`` (sleeps, request deadlines and waits alike): the modules take
    their time source from the client, so nothing else needs patching.
    """
    # warnings are process-global in ansible-core; each run starts with none
    if hasattr(ansible_warnings, "_global_warnings"):
        monkeypatch.setattr(ansible_warnings, "_global_warnings", type(ansible_warnings._global_warnings)())  # pylint: disable=protected-access

    def runner(main, args, *script):
        session = fakes.Session(*script)
        built = []

        def build_session(verify, timeout):
            built.append({"verify": verify, "timeout": timeout})
            return session

        class Client(_http.CloudPartnerClient):
            def __init__(self, *client_args, **client_kwargs):
                client_kwargs.update(sleep=fake_clock.sleep, jitter=lambda: 0.5, clock=fake_clock)
                super().__init__(*client_args, **client_kwargs)

        monkeypatch.setattr(_module, "build_session", build_session)
        monkeypatch.setattr(_module, "CloudPartnerClient", Client)
        args = dict(args)
        if "inject_invocation" in PASS_VARS:
            # ansible-core >= 2.20 adds `invocation` (what -vvv shows) only when asked to: ask, so that it is checked too
            args.setdefault("_ansible_inject_invocation", True)
        capsys.readouterr()
        with patch_module_args(args):
            with pytest.raises(SystemExit) as info:
                main()
        output = capsys.readouterr().out
        result = json.loads(output.strip().splitlines()[-1])
        return types.SimpleNamespace(
            result=result,
            rc=info.value.code,
            session=session,
            built=built,
            output=output,
            warnings=warning_texts(result),
            clock=fake_clock,
        )

    return runner
