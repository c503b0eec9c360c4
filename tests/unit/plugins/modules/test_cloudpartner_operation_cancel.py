# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import sys

import requests

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _http
from ansible_collections.azure_marketplace.cloudpartner.plugins.modules import cloudpartner_operation_cancel as module

PUB, OFFER = "contoso", "contoso-vm"
OP = "5a63deb5-925b-4ee0-938b-7c86fbf287c5"
OTHER = "0d4f7a00-1111-4222-8333-444455556666"
BASE = f"/api/publishers/{PUB}/offers/{OFFER}"
LOCATION = f"{BASE}/operations/{OP}?api-version=2017-10-31"
TOKEN = "tok-MODULE-9f8e7d6c5b4a"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0b0f4a2c-1111-4222-8333-944445555666"
SECRET = "Q~module.s3cr3t_VALUE"
MSAL_TOKEN = "eyJ-msal-token-for-module"


def args(**extra):
    values = {"publisher_id": PUB, "offer_id": OFFER, "access_token": TOKEN}
    values.update(extra)
    return values


def running(fakes):
    return fakes.response(200, [{"id": OP, "submissionState": "running", "submissionType": "publish"}])


def operation(status="running", crs="canCancel"):
    return {"id": OP, "status": status, "cancellationRequestState": crs}


def assert_no_secrets(run, *secrets):
    for secret in (TOKEN, SECRET, MSAL_TOKEN) + secrets:
        assert secret not in run.output


# ---------------------------------------------------------------- results


def test_nothing_running(fakes, run_module):
    run = run_module(module.main, args(), fakes.response(200, []))
    assert run.rc == 0
    assert run.result["changed"] is False
    assert "nothing to cancel" in run.result["msg"]
    assert "status_code" not in run.result
    assert "operation_id" not in run.result
    assert run.session.sent == [("GET", f"{BASE}/submissions/")]
    assert run.result["invocation"]["module_args"]["access_token"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert_no_secrets(run)


def test_cancel_202(fakes, run_module):
    run = run_module(module.main, args(), running(fakes), fakes.response(200, operation()), fakes.response(202, headers={"Location": LOCATION}))
    assert run.rc == 0
    assert run.result["changed"] is True
    assert run.result["status_code"] == 202
    assert run.result["operation_location"] == f"https://cloudpartner.azure.com{LOCATION}"
    assert run.result["operation"]["id"] == OP
    # what cloudpartner_operation_wait needs to wait for it later
    assert run.result["operation_id"] == OP
    assert "accepted" in run.result["msg"]
    assert run.session.methods == ["GET", "GET", "POST"]
    assert all(call.headers["Authorization"] == f"Bearer {TOKEN}" for call in run.session.calls)
    assert run.built == [{"verify": True, "timeout": 30}]
    assert_no_secrets(run)


def test_cancel_200_with_emails(fakes, run_module):
    run = run_module(
        module.main,
        args(notification_emails=["release@contoso.com", "oncall@contoso.com"]),
        running(fakes),
        fakes.response(200, operation()),
        fakes.response(200),
    )
    assert run.result["changed"] is True
    assert run.result["status_code"] == 200
    assert run.session.calls[2].json == {"metadata": {"notification-emails": "release@contoso.com,oncall@contoso.com"}}


def test_check_mode(fakes, run_module):
    run = run_module(module.main, args(_ansible_check_mode=True), running(fakes), fakes.response(200, operation()))
    assert run.rc == 0
    assert run.result["changed"] is True
    assert "POST" not in run.session.methods
    assert "status_code" not in run.result
    assert run.result["operation_id"] == OP


def test_operation_id_mismatch(fakes, run_module):
    run = run_module(module.main, args(operation_id=OTHER), running(fakes))
    assert run.result["changed"] is False
    assert run.result["operation"]["id"] == OP
    assert run.result["operation_id"] == OP
    assert len(run.session.calls) == 1


def test_wait_until_cancelled(fakes, run_module):
    run = run_module(
        module.main,
        args(wait=True, wait_sleep=4),
        running(fakes),
        fakes.response(200, operation()),
        fakes.response(202, headers={"Location": LOCATION}),
        fakes.response(200, operation(crs="cancelRequested")),
        fakes.response(200, operation(status="canceled", crs="cancelRequested")),
    )
    assert run.rc == 0
    assert run.result["changed"] is True
    assert run.result["operation"]["status"] == "canceled"
    assert run.result["elapsed"] == 4
    assert "cancelled" in run.result["msg"]
    assert not run.warnings


def test_wait_timeout_fails_changed(fakes, run_module):
    run = run_module(
        module.main,
        args(wait=True, wait_timeout=20, wait_sleep=10),
        running(fakes),
        fakes.response(200, operation()),
        fakes.response(202, headers={"Location": LOCATION}),
        *[fakes.response(200, operation(crs="cancelRequested")) for _attempt in range(3)],
    )
    assert run.rc == 1
    assert run.result["failed"] is True
    assert run.result["changed"] is True
    assert run.result["status_code"] == 202
    assert run.result["operation_id"] == OP
    assert run.result["operation_location"].endswith(LOCATION)
    assert run.result["operation"]["cancellationRequestState"] == "cancelRequested"
    assert "Timed out after 20 seconds" in run.result["msg"]
    assert "running" in run.result["msg"]
    # polls at 0, 10 and 15: the last one starts when 5 s are left and its request gets those 5 s
    assert [call.timeout for call in run.session.calls[3:]] == [20, 10, 5]
    assert run.clock.elapsed == 15


def test_foreign_location_warns(fakes, run_module):
    run = run_module(
        module.main, args(), running(fakes), fakes.response(200, operation()), fakes.response(202, headers={"Location": f"https://evil.example{BASE}/x"})
    )
    assert run.rc == 0
    assert run.result["changed"] is True
    assert any("another origin" in warning for warning in run.warnings)
    assert len(run.session.calls) == 3


def test_other_terminal_state_warns(fakes, run_module):
    run = run_module(
        module.main,
        args(wait=True),
        running(fakes),
        fakes.response(200, operation()),
        fakes.response(202, headers={"Location": LOCATION}),
        fakes.response(200, operation(status="completed")),
    )
    assert run.rc == 0
    assert "failed" not in run.result
    assert "completed" in run.result["msg"]
    assert any("instead of being cancelled" in warning for warning in run.warnings)


def test_already_cancelling_is_ok_and_waits_with_wait(fakes, run_module):
    run = run_module(
        module.main,
        args(wait=True, wait_sleep=3),
        running(fakes),
        fakes.response(200, operation(crs="cancellationInProgress")),
        fakes.response(200, operation(status="canceled", crs="cancellationInProgress")),
    )
    assert run.rc == 0
    assert run.result["changed"] is False
    assert "already under way" in run.result["msg"]
    assert "POST" not in run.session.methods


def test_refused_cancellation_state_fails_unchanged(fakes, run_module):
    # Review 1.5 / ranked 6: cannotCancel was reported ok and, with wait, waited for the publish to end.
    run = run_module(module.main, args(wait=True), running(fakes), fakes.response(200, operation(crs="cannotCancel")))
    assert run.rc == 1
    assert run.result["failed"] is True
    assert run.result["changed"] is False
    assert "does not allow cancelling" in run.result["msg"] and "cannotCancel" in run.result["msg"]
    assert run.result["operation_id"] == OP
    assert run.result["operation"]["cancellationRequestState"] == "cannotCancel"
    assert "status_code" not in run.result
    assert run.session.methods == ["GET", "GET"]
    assert run.clock.elapsed == 0


LONG_TOKEN = "eyJ" + "A" * 120 + "." + "B" * 120


def test_an_echoed_token_in_the_state_is_masked_not_cut(fakes, run_module):
    # security review of this change (L1): the state was cut to 100 characters before masking, leaving most of an
    # echoed token in msg
    state = f"echo {LONG_TOKEN}"
    run = run_module(module.main, args(access_token=LONG_TOKEN), running(fakes), fakes.response(200, operation(crs=state)))
    assert run.result["failed"] is True
    assert LONG_TOKEN[:20] not in run.output and LONG_TOKEN[-20:] not in run.output


def test_an_echoed_token_in_a_location_warning_is_masked_not_cut(fakes, run_module):
    run = run_module(
        module.main,
        args(access_token=LONG_TOKEN),
        running(fakes),
        fakes.response(200, operation()),
        fakes.response(202, headers={"Location": f"javascript:{LONG_TOKEN}"}),
    )
    assert run.rc == 0
    assert any("not a valid http(s) URL" in warning for warning in run.warnings)
    assert LONG_TOKEN[:20] not in run.output


def test_lost_answer_is_reported_changed_not_failed(fakes, run_module):
    # Review 1.3 / ranked 6: the answer to the POST is lost, the operation shows the cancel: the task succeeds, POST not repeated.
    run = run_module(
        module.main,
        args(),
        running(fakes),
        fakes.response(200, operation()),
        requests.exceptions.ConnectionError("Connection reset by peer"),
        fakes.response(200, operation(crs="cancelRequested")),
        fakes.response(200),
    )
    assert run.rc == 0
    assert run.result["changed"] is True
    assert "failed" not in run.result
    assert "status_code" not in run.result
    assert "answer was lost" in run.result["msg"]
    assert run.session.methods == ["GET", "GET", "POST", "GET"]


# ---------------------------------------------------------------- bad input fails before any request


BAD_INPUT = [
    ({"publisher_id": "a/b"}, "publisher_id"),
    ({"publisher_id": "c\u043entoso"}, "publisher_id"),
    ({"offer_id": ".."}, "offer_id"),
    ({"offer_id": "vm offer"}, "offer_id"),
    ({"operation_id": "latest"}, "operation_id"),
    ({"notification_emails": ["not-an-address"]}, "notification_emails"),
    ({"wait_timeout": 0}, "wait_timeout"),
    ({"wait_sleep": 0}, "wait_sleep"),
    ({"api_url": "http://cloudpartner.example.com"}, "api_url"),
    ({"api_url": "https://cloudpartner.azure.com/api"}, "api_url"),
    ({"api_version": "2017-10-31x"}, "api_version"),
    ({"authority_host": "http://127.0.0.1:1"}, "authority_host"),
    ({"timeout": 0}, "timeout"),
    ({"retries": 99}, "retries"),
    ({"ca_path": "/nonexistent/ca.pem"}, "ca_path"),
    ({"wait_timeout": "soon"}, "wait_timeout"),
    ({"unknown_option": 1}, "unknown_option"),
]


def test_bad_input_fails_with_no_request(fakes, run_module):
    problems = []
    for extra, word in BAD_INPUT:
        run = run_module(module.main, args(**extra), fakes.response(200, []))
        if run.rc != 1 or run.result.get("failed") is not True:
            problems.append((extra, "did not fail", run.result))
        elif word not in run.result["msg"]:
            problems.append((extra, f"msg does not name {word}", run.result["msg"]))
        elif run.session.calls or run.built:
            problems.append((extra, "sent requests", run.session.sent))
        elif run.result.get("changed", False) is not False:
            problems.append((extra, "changed", run.result))
        assert_no_secrets(run)
    assert not problems


def test_required_options(fakes, run_module):
    run = run_module(module.main, {"access_token": TOKEN})
    assert run.rc == 1
    assert "publisher_id" in run.result["msg"] and "offer_id" in run.result["msg"]
    assert not run.session.calls


def test_missing_credentials_message(fakes, run_module):
    run = run_module(module.main, {"publisher_id": PUB, "offer_id": OFFER, "client_secret": SECRET})
    assert run.rc == 1
    msg = run.result["msg"]
    for word in ("access_token", "CLOUDPARTNER_ACCESS_TOKEN", "tenant_id", "AZURE_TENANT", "client_id", "AZURE_CLIENT_ID"):
        assert word in msg, word
    assert not run.session.calls
    assert_no_secrets(run)


# ---------------------------------------------------------------- API failures


def test_api_error_on_cancel(fakes, run_module):
    run = run_module(
        module.main,
        args(),
        running(fakes),
        fakes.response(200, operation()),
        fakes.api_error(403, "Forbidden", f"Token {TOKEN} may not cancel offers of this publisher."),
    )
    assert run.rc == 1
    msg = run.result["msg"]
    assert "HTTP 403" in msg and "Forbidden" in msg and "service principal" in msg
    assert run.result["status_code"] == 403
    assert run.result.get("changed", False) is False
    # the service echoed the token: the module masks it
    assert_no_secrets(run)


def test_api_error_on_read_has_no_status_code(fakes, run_module):
    run = run_module(module.main, args(), fakes.api_error(404, "NotFound", "Offer not found."))
    assert run.rc == 1
    assert "HTTP 404" in run.result["msg"] and "offer_id" in run.result["msg"]
    assert "status_code" not in run.result


def test_expired_given_token(fakes, run_module):
    run = run_module(module.main, args(), fakes.response(401, {"error": {"code": "Unauthorized", "message": "Token expired."}}))
    assert run.rc == 1
    assert "HTTP 401" in run.result["msg"]
    assert "given access_token was rejected" in run.result["msg"]
    assert len(run.session.calls) == 1


def test_retries_use_options(fakes, run_module):
    run = run_module(module.main, args(retries=1), fakes.api_error(503), fakes.api_error(503))
    assert run.rc == 1
    assert len(run.session.calls) == 2
    assert "Gave up after 1 retries" in run.result["msg"]


# ---------------------------------------------------------------- TLS options reach the session


def test_validate_certs_false(fakes, run_module, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("pem")
    run = run_module(module.main, args(validate_certs=False, ca_path=str(bundle), timeout=7), fakes.response(200, []))
    assert run.built == [{"verify": False, "timeout": 7}]
    assert run.session.calls[0].verify is False


def test_ca_path(fakes, run_module, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("pem")
    run = run_module(module.main, args(ca_path=str(bundle)), fakes.response(200, []))
    assert run.built == [{"verify": str(bundle), "timeout": 30}]
    assert run.session.calls[0].verify == str(bundle)


# ---------------------------------------------------------------- credentials


def awx_env(monkeypatch):
    monkeypatch.setenv("AZURE_TENANT", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_SECRET", SECRET)


def test_client_credentials_from_awx_env(fakes, run_module, fake_msal, monkeypatch):
    awx_env(monkeypatch)
    fake_msal.results = [{"access_token": MSAL_TOKEN, "expires_in": 3599, "token_type": "Bearer"}]
    run = run_module(
        module.main,
        {"publisher_id": PUB, "offer_id": OFFER},
        running(fakes),
        fakes.response(200, operation()),
        fakes.api_error(403, "Forbidden", f"{MSAL_TOKEN} / {SECRET} rejected"),
    )
    (app,) = fake_msal.apps
    assert app.client_id == CLIENT
    assert app.kwargs["authority"] == f"https://login.microsoftonline.com/{TENANT}"
    assert app.kwargs["http_client"] is run.session
    assert [call.headers["Authorization"] for call in run.session.calls] == [f"Bearer {MSAL_TOKEN}"] * 3
    assert run.rc == 1
    assert_no_secrets(run)


def test_client_credentials_token_is_cached_between_runs(fakes, run_module, fake_msal, monkeypatch, tmp_path):
    awx_env(monkeypatch)
    (tmp_path / "tc").mkdir()
    monkeypatch.setenv("CLOUDPARTNER_TOKEN_CACHE_DIR", str(tmp_path / "tc"))
    fake_msal.results = [{"access_token": MSAL_TOKEN, "expires_in": 3599}]
    first = run_module(module.main, {"publisher_id": PUB, "offer_id": OFFER}, fakes.response(200, []))
    second = run_module(module.main, {"publisher_id": PUB, "offer_id": OFFER}, fakes.response(200, []))
    assert first.rc == second.rc == 0
    assert fake_msal.token_requests == 1
    assert second.session.calls[0].headers["Authorization"] == f"Bearer {MSAL_TOKEN}"
    assert (tmp_path / "tc" / "azure_marketplace.cloudpartner" / "tokens.json").exists()
    assert_no_secrets(second)


def test_token_cache_off(fakes, run_module, fake_msal, monkeypatch, tmp_path):
    awx_env(monkeypatch)
    fake_msal.results = [{"access_token": "one", "expires_in": 3599}, {"access_token": "two", "expires_in": 3599}]
    run_module(module.main, {"publisher_id": PUB, "offer_id": OFFER, "token_cache": False}, fakes.response(200, []))
    second = run_module(module.main, {"publisher_id": PUB, "offer_id": OFFER, "token_cache": False}, fakes.response(200, []))
    assert second.session.calls[0].headers["Authorization"] == "Bearer two"
    assert not list(tmp_path.rglob("tokens.json"))


def test_entra_error_is_reported_without_secret(fakes, run_module, fake_msal, monkeypatch):
    awx_env(monkeypatch)
    fake_msal.results = [{"error": "invalid_client", "error_description": f"AADSTS7000215: Invalid client secret {SECRET}.", "error_codes": [7000215]}]
    run = run_module(module.main, {"publisher_id": PUB, "offer_id": OFFER})
    assert run.rc == 1
    assert "AADSTS7000215" in run.result["msg"]
    assert not run.session.calls
    assert_no_secrets(run)


def test_msal_missing(fakes, run_module, no_msal, monkeypatch):  # pylint: disable=unused-argument
    awx_env(monkeypatch)
    run = run_module(module.main, {"publisher_id": PUB, "offer_id": OFFER})
    assert run.rc == 1
    assert "msal" in run.result["msg"]
    assert not run.session.calls
    assert_no_secrets(run)


def test_access_token_does_not_import_msal(fakes, run_module, monkeypatch):
    monkeypatch.delitem(sys.modules, "msal", raising=False)
    awx_env(monkeypatch)  # credentials are present too: access_token still wins
    run = run_module(module.main, args(), fakes.response(200, []))
    assert run.rc == 0
    assert "msal" not in sys.modules


def test_requests_missing(fakes, run_module, monkeypatch):
    monkeypatch.setattr(_http, "HAS_REQUESTS", False)
    monkeypatch.setattr(_http, "REQUESTS_IMPORT_ERROR", "Traceback: ImportError requests")
    run = run_module(module.main, args(), fakes.response(200, []))
    assert run.rc == 1
    assert "requests" in run.result["msg"]
    assert not run.session.calls
