# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.azure_marketplace.cloudpartner.plugins.modules import cloudpartner_operation_info as module

PUB, OFFER = "contoso", "contoso-vm"
OP = "5a63deb5-925b-4ee0-938b-7c86fbf287c5"
BASE = f"/api/publishers/{PUB}/offers/{OFFER}"
TOKEN = "tok-INFO-0a1b2c3d"
SUBMISSIONS = [
    {"id": OP, "submissionState": "running", "submissionType": "publish"},
    {"id": "0d4f7a00-1111-4222-8333-444455556666", "submissionState": "completed", "submissionType": "publish"},
]


def args(**extra):
    return dict({"publisher_id": PUB, "offer_id": OFFER, "access_token": TOKEN}, **extra)


def test_lists_operations(fakes, run_module):
    run = run_module(module.main, args(), fakes.response(200, SUBMISSIONS))
    assert run.rc == 0
    assert run.result["changed"] is False
    assert run.result["operations"] == SUBMISSIONS
    assert run.session.sent == [("GET", f"{BASE}/submissions/")]
    assert TOKEN not in run.output


def test_status_filter_is_sent_and_applied(fakes, run_module):
    run = run_module(module.main, args(status="running"), fakes.response(200, SUBMISSIONS))
    assert run.result["operations"] == SUBMISSIONS[:1]
    assert run.session.calls[0].query["status"] == "running"


def test_one_operation(fakes, run_module):
    body = {"id": OP, "status": "running", "steps": []}
    run = run_module(module.main, args(operation_id=OP), fakes.response(200, [body]))
    assert run.result["operations"] == [body]
    assert run.session.sent == [("GET", f"{BASE}/operations/{OP}")]


def test_check_mode_reads_too(fakes, run_module):
    run = run_module(module.main, args(_ansible_check_mode=True), fakes.response(200, SUBMISSIONS))
    assert run.rc == 0
    assert run.result["operations"] == SUBMISSIONS


@pytest.mark.parametrize("extra, word", [({"status": "run&ning"}, "status"), ({"operation_id": "x"}, "operation_id"), ({"offer_id": "a/b"}, "offer_id")])
def test_bad_input(fakes, run_module, extra, word):
    run = run_module(module.main, args(**extra), fakes.response(200, []))
    assert run.rc == 1
    assert word in run.result["msg"]
    assert not run.session.calls


def test_not_found(fakes, run_module):
    run = run_module(module.main, args(), fakes.api_error(404, "NotFound", "No such offer."))
    assert run.rc == 1
    assert "HTTP 404" in run.result["msg"]
    assert "NotFound" in run.result["msg"]
