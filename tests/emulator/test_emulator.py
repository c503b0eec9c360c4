"""Tests of the Cloud Partner Portal + Entra ID emulator (a test double), through its CLI and its HTTP API.

Run with ``python -m pytest tests/emulator``. One emulator (``--preset demo``) serves the whole session;
every test starts with ``POST /_emulator/reset``.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import msal
import pytest
import requests

EMULATOR = Path(__file__).with_name("cloudpartner_emulator.py")
API_VERSION = "2017-10-31"
SCOPE = "https://cloudpartner.azure.com/.default"
PUBLISHER = "contoso"
PRESET_OFFERS = {"running-202", "running-200", "idle", "slow-cancel"}
STATE_KEYS = {
    "pid",
    "api_url",
    "api_url_http",
    "authority_host",
    "foreign_url",
    "proxy_url",
    "control_url",
    "ca_path",
    "tenant_id",
    "client_id",
    "client_secret",
    "publisher_id",
}
LOG_KEYS = {"seq", "time", "listener", "method", "host", "path", "query", "status", "auth", "body", "offer", "fault", "secret_received"}
DEFAULT_SETTINGS = {"token_lifetime": 3599, "token_error": None, "token_redirect": None, "discovery_redirect": None, "reject_tokens": 0, "token_max_uses": 0}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EMULATOR), *args], capture_output=True, text=True, timeout=60, check=False)


def process_gone(pid: int) -> bool:
    """True once the process has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return False


def wait_until_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_gone(pid):
            return True
        time.sleep(0.05)
    return False


def make_session(ca_path: str) -> requests.Session:
    """The machine exports REQUESTS_CA_BUNDLE, which beats Session.verify unless trust_env is off."""
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_path
    return session


class Client:
    """HTTP helper for one test: the control API, the API with a bearer token, the login endpoint."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.session = make_session(info["ca_path"])
        self.token: str | None = None

    # control API
    def control(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.info["control_url"] + path, timeout=10, **kwargs)

    def reset(self) -> None:
        assert self.control("POST", "/reset").status_code == 200

    def put_offer(self, offer: str, scenario: dict[str, Any] | None = None, publisher: str = PUBLISHER) -> dict[str, Any]:
        response = self.control("PUT", f"/offers/{publisher}/{offer}", json=scenario or {})
        assert response.status_code == 200, response.text
        return response.json()

    def offer_state(self, offer: str, publisher: str = PUBLISHER) -> dict[str, Any]:
        response = self.control("GET", f"/offers/{publisher}/{offer}")
        assert response.status_code == 200, response.text
        return response.json()

    def log(self, since: int = 0) -> list[dict[str, Any]]:
        return self.control("GET", f"/requests?since={since}").json()

    def issue_token(self, expires_in: int = 3600) -> str:
        return self.control("POST", "/tokens", json={"expires_in": expires_in}).json()["access_token"]

    def settings(self, **settings: Any) -> dict[str, Any]:
        response = self.control("PUT", "/settings", json=settings)
        assert response.status_code == 200, response.text
        return response.json()

    # API
    def api(self, method: str, path: str, token: str | None = "default", version: str | None = API_VERSION, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else self.info["api_url"] + path
        headers = kwargs.pop("headers", {})
        token = self.token if token == "default" else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        params = kwargs.pop("params", {})
        if version:
            params["api-version"] = version
        return self.session.request(method, url, headers=headers, params=params, timeout=kwargs.pop("timeout", 10), **kwargs)

    def list(self, offer: str, publisher: str = PUBLISHER, **kwargs: Any) -> requests.Response:
        return self.api("GET", f"/api/publishers/{publisher}/offers/{offer}/submissions/", **kwargs)

    def operation(self, offer: str, operation_id: str, **kwargs: Any) -> requests.Response:
        return self.api("GET", f"/api/publishers/{PUBLISHER}/offers/{offer}/operations/{operation_id}", **kwargs)

    def cancel(self, offer: str, **kwargs: Any) -> requests.Response:
        return self.api("POST", f"/api/publishers/{PUBLISHER}/offers/{offer}/cancel", **kwargs)

    def poll(self, location: str) -> requests.Response:
        """GET a location as a client would: resolved against api_url, api-version already in it."""
        return self.api("GET", urllib.parse.urljoin(self.info["api_url"], location), version=None)

    # login
    def token_post(self, tenant: str | None = None, **form: str) -> requests.Response:
        data = {
            "grant_type": "client_credentials",
            "client_id": self.info["client_id"],
            "client_secret": self.info["client_secret"],
            "scope": SCOPE,
            **form,
        }
        url = f"{self.info['authority_host']}/{tenant or self.info['tenant_id']}/oauth2/v2.0/token"
        return self.session.post(url, data=data, timeout=10)

    def msal_app(self, secret: str | None = None, tenant: str | None = None) -> msal.ConfidentialClientApplication:
        return msal.ConfidentialClientApplication(
            self.info["client_id"],
            client_credential=secret or self.info["client_secret"],
            authority=f"{self.info['authority_host']}/{tenant or self.info['tenant_id']}",
            instance_discovery=False,
            http_client=self.session,
        )


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Any:
    state_dir = tmp_path_factory.mktemp("emulator")
    result = run_cli("start", "--state-dir", str(state_dir), "--preset", "demo")
    assert result.returncode == 0, result.stderr
    info = json.loads((state_dir / "emulator.json").read_text(encoding="utf-8"))
    yield info
    result = run_cli("stop", "--state-dir", str(state_dir))
    assert result.returncode == 0, result.stderr
    # the whole session's log: tokens (all JWT-shaped, "eyJ...") and the secret never appear in it
    log_text = (state_dir / "emulator.log").read_text(encoding="utf-8")
    assert "#1 " in log_text
    assert info["client_secret"] not in log_text
    assert "eyJ" not in log_text


@pytest.fixture
def client(emulator: dict[str, Any]) -> Any:
    client = Client(emulator)
    client.reset()
    client.token = client.issue_token()
    yield client
    client.session.close()


def error_code(response: requests.Response) -> str:
    return response.json()["error"]["code"]


def api_entries(client: Client, offer: str | None = None) -> list[dict[str, Any]]:
    entries = [entry for entry in client.log() if entry["listener"] in ("api", "api_http")]
    return [entry for entry in entries if offer is None or entry["offer"] == f"{PUBLISHER}/{offer}"]


# --------------------------------------------------------------------------------------------------
# CLI


def test_start_stop(tmp_path: Path) -> None:
    result = run_cli("start", "--state-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    state_file = tmp_path / "emulator.json"
    info = json.loads(state_file.read_text(encoding="utf-8"))
    assert STATE_KEYS <= set(info)
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    assert Path(info["ca_path"]) == tmp_path / "ca.pem"
    assert not process_gone(info["pid"])

    again = run_cli("start", "--state-dir", str(tmp_path))
    assert again.returncode == 1
    assert "already running" in again.stderr

    result = run_cli("stop", "--state-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert not state_file.exists()
    assert wait_until_gone(info["pid"])
    assert run_cli("stop", "--state-dir", str(tmp_path)).returncode == 0
    log_text = (tmp_path / "emulator.log").read_text(encoding="utf-8")
    assert "ready" in log_text
    assert info["client_secret"] not in log_text


def test_state_file(emulator: dict[str, Any]) -> None:
    assert STATE_KEYS <= set(emulator)
    for key in ("api_url", "authority_host", "foreign_url", "control_url"):
        assert emulator[key].startswith("https://127.0.0.1:")
    assert emulator["api_url_http"].startswith("http://127.0.0.1:")
    assert emulator["proxy_url"].startswith("http://127.0.0.1:")
    assert emulator["control_url"] == emulator["api_url"] + "/_emulator"
    assert emulator["publisher_id"] == PUBLISHER
    assert "BEGIN CERTIFICATE" in Path(emulator["ca_path"]).read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# Login listener


def test_msal_gets_a_token_that_the_api_accepts(client: Client) -> None:
    assert os.environ.get("REQUESTS_CA_BUNDLE") != client.info["ca_path"]  # trust_env=False is what makes verify win
    result = client.msal_app().acquire_token_for_client(scopes=[SCOPE])
    assert "error" not in result, result
    assert result["token_type"] == "Bearer"
    assert result["expires_in"] == 3599
    token = result["access_token"]
    assert token.startswith("eyJ") and len(token) > 100

    response = client.list("running-202", token=token)
    assert response.status_code == 200
    tokens = client.control("GET", "/tokens").json()
    assert token in tokens["issued"]
    assert tokens["token_requests"] == 1

    entries = client.log()
    login = [entry for entry in entries if entry["listener"] == "login"]
    assert [(entry["method"], entry["status"]) for entry in login] == [("GET", 200), ("POST", 200)]
    assert login[1]["body"] == {"grant_type": "client_credentials", "client_id": client.info["client_id"], "scope": SCOPE}
    assert entries[-1]["auth"] == "valid"
    assert client.info["client_secret"] not in json.dumps(entries)
    assert token not in json.dumps(entries)


def test_msal_bad_secret(client: Client) -> None:
    result = client.msal_app(secret="not-the-secret").acquire_token_for_client(scopes=[SCOPE])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert result["error_description"].startswith("AADSTS7000215: ")
    assert "access_token" not in result


def test_msal_unknown_tenant(client: Client) -> None:
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        client.msal_app(tenant="00000000-0000-0000-0000-000000000000")


def test_token_endpoint_errors(client: Client) -> None:
    cases = [
        (client.token_post(tenant="no-such-tenant"), 400, "invalid_request", 90002),
        (client.token_post(client_id="11111111-1111-1111-1111-111111111111"), 400, "unauthorized_client", 700016),
        (client.token_post(client_secret="wrong"), 401, "invalid_client", 7000215),
        (client.token_post(scope="https://management.azure.com/.default"), 400, "invalid_scope", 70011),
    ]
    for response, status, error, number in cases:
        body = response.json()
        assert response.status_code == status, body
        assert body["error"] == error
        assert body["error_codes"] == [number]
        assert body["error_description"].startswith(f"AADSTS{number}: ")
        assert {"timestamp", "trace_id", "correlation_id"} <= set(body)
    assert "Tenant 'no-such-tenant' not found." in cases[0][0].json()["error_description"]
    assert client.control("GET", "/tokens").json() == {"issued": [client.token], "token_requests": 4}  # the fixture's token only


def test_token_settings_and_faults(client: Client) -> None:
    client.settings(token_error={"status": 503})
    failed = client.token_post()
    assert failed.status_code == 503
    assert failed.json()["error"] == "temporarily_unavailable"
    assert client.settings(token_error=None, token_lifetime=120)["token_lifetime"] == 120

    client.put_offer("token-faults", {"faults": [{"on": "token", "status": 429, "retry_after": 2}, {"on": "token", "reset": True}]})
    throttled = client.token_post()
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"
    with pytest.raises(requests.ConnectionError):
        client.token_post()
    issued = client.token_post()
    assert issued.status_code == 200
    assert issued.json()["expires_in"] == 120
    assert issued.json()["ext_expires_in"] == 120
    assert client.control("GET", "/tokens").json()["token_requests"] == 4
    faults = [entry["fault"] for entry in client.log() if entry["listener"] == "login"]
    assert faults == [None, "status", "reset", None]


# --------------------------------------------------------------------------------------------------
# API: list, operation, cancel


def test_submissions_list(client: Client) -> None:
    client.put_offer("with-history", {"operation_id": "op-now", "history": [{"submissionState": "completed", "id": "op-old"}, {"submissionState": "canceled"}]})
    items = client.list("with-history").json()
    assert [item["submissionState"] for item in items] == ["running", "completed", "canceled"]
    assert items[0]["id"] == "op-now"
    assert {"id", "offerId", "publisherId", "submissionType", "submissionState", "changedTime"} <= set(items[0])
    assert [item["id"] for item in client.list("with-history", params={"status": "running"}).json()] == ["op-now"]
    assert [item["id"] for item in client.list("with-history", params={"submissionState": "completed"}).json()] == ["op-old"]
    no_slash = client.api("GET", f"/api/publishers/{PUBLISHER}/offers/with-history/submissions")
    assert no_slash.status_code == 200 and len(no_slash.json()) == 3

    assert client.list("idle", params={"status": "running"}).json() == []
    assert client.list("idle").json()[0]["submissionState"] == "completed"

    client.put_offer("gone", {"state": "missing"})
    for offer, publisher in (("gone", PUBLISHER), ("no-such-offer", PUBLISHER), ("no-such-offer", "no-such-publisher")):
        response = client.list(offer, publisher=publisher)
        assert response.status_code == 404
        assert error_code(response) == "NotFound"
    assert [entry["offer"] for entry in client.log()[-2:]] == [f"{PUBLISHER}/no-such-offer", "no-such-publisher/no-such-offer"]


def test_operation(client: Client) -> None:
    operation_id = "5a63deb5-925b-4ee0-938b-7c86fbf287c5"
    client.put_offer("op", {"operation_id": operation_id, "history": [{"id": "old-op", "submissionState": "failed"}]})
    operation = client.operation("op", operation_id).json()
    assert operation["id"] == operation_id
    assert operation["status"] == "running"
    assert operation["cancellationRequestState"] == "canCancel"
    assert {"submissionType", "steps", "messages"} <= set(operation)
    assert client.operation("op", operation_id.upper()).json()["id"] == operation_id
    assert client.operation("op", "old-op").json()["status"] == "failed"
    assert client.operation("op", "unknown-op").status_code == 404

    dollar = client.api("GET", f"/api/operations/{PUBLISHER}$op$2$preview")
    assert dollar.json()["id"] == operation_id
    encoded = client.api("GET", f"/api/operations/{PUBLISHER}%24op%242%24preview")
    assert encoded.json()["id"] == operation_id
    paths = [entry["path"] for entry in client.log()[-2:]]
    assert paths == [f"/api/operations/{PUBLISHER}$op$2$preview", f"/api/operations/{PUBLISHER}%24op%242%24preview"]

    client.put_offer("as-list", {"operation_id": operation_id, "operation_as_list": True})
    as_list = client.operation("as-list", operation_id).json()
    assert isinstance(as_list, list) and as_list[0]["id"] == operation_id


def test_cancel_200(client: Client) -> None:
    operation_id = client.offer_state("running-200")["operation_id"]
    posted = client.cancel("running-200", json={"metadata": {"notification-emails": "jdoe@contoso.com"}})
    assert posted.status_code == 200
    assert posted.content == b""
    operation = client.operation("running-200", operation_id).json()
    assert operation["status"] == "canceled"
    assert client.list("running-200").json()[0]["submissionState"] == "canceled"

    again = client.cancel("running-200")
    assert again.status_code == 202  # nothing runs any more: 202 "whether it cancelled or not"
    assert again.headers["Location"] == f"/api/publishers/{PUBLISHER}/offers/running-200/operations/{operation_id}?api-version={API_VERSION}"
    state = client.offer_state("running-200")
    assert (state["status"], state["submissionState"], state["cancel_posts"]) == ("canceled", "canceled", 2)
    posts = [entry for entry in api_entries(client, "running-200") if entry["method"] == "POST"]
    assert [entry["status"] for entry in posts] == [200, 202]
    assert posts[0]["body"] == {"metadata": {"notification-emails": "jdoe@contoso.com"}}
    assert posts[1]["body"] is None


def expected_location_headers(client: Client, offer: str, operation_id: str, kind: str) -> dict[str, str]:
    path = f"/api/publishers/{PUBLISHER}/offers/{offer}/operations/{operation_id}"
    version = f"?api-version={API_VERSION}"
    api = client.info["api_url"]
    return {
        "relative": {"Location": path + version},
        "absolute": {"Operation-Location": api + path + version},
        "both": {"Location": path + version, "Operation-Location": api + path + version},
        "none": {},
        "foreign": {"Location": client.info["foreign_url"] + path + version},
        "dollar": {"Location": f"/api/operations/{PUBLISHER}${offer}$2$preview{version}"},
        "noversion": {"Operation-Location": api + path},
    }[kind]


def location_headers(response: requests.Response) -> dict[str, str]:
    return {name: response.headers[name] for name in ("Location", "Operation-Location") if name in response.headers}


def test_cancel_202_every_location_kind(client: Client) -> None:
    """All kinds at once, so that the 2 s duration is waited for only once."""
    kinds = ("relative", "absolute", "both", "none", "foreign", "dollar", "noversion")
    operation_ids = {}
    for kind in kinds:
        scenario = {"cancel": {"status": 202, "location": kind, "duration": 2, "poll_retry_after": 3 if kind == "relative" else None}}
        operation_ids[kind] = client.put_offer(f"loc-{kind}", scenario)["operation_id"]
    posted_at = time.monotonic()
    locations = {}
    for kind in kinds:
        offer = f"loc-{kind}"
        response = client.cancel(offer)
        assert response.status_code == 202
        assert location_headers(response) == expected_location_headers(client, offer, operation_ids[kind], kind), kind
        locations[kind] = response.headers.get("Location") or response.headers.get("Operation-Location")
        operation = client.operation(offer, operation_ids[kind]).json()
        assert (operation["status"], operation["cancellationRequestState"]) == ("running", "cancelRequested"), kind
        assert client.list(offer).json()[0]["submissionState"] == "running"
        repeat = client.cancel(offer)  # already cancelRequested: 202, same location, nothing changes
        assert repeat.status_code == 202
        assert location_headers(repeat) == location_headers(response)
        assert client.offer_state(offer)["cancel_posts"] == 2

    relative = client.poll(locations["relative"])
    assert relative.headers["Retry-After"] == "3"
    assert relative.json()["status"] == "running"
    assert client.poll(locations["dollar"]).json()["id"] == operation_ids["dollar"]
    noversion = client.api("GET", locations["noversion"], version=None)
    assert noversion.status_code == 400 and error_code(noversion) == "InvalidAPIVersion"

    foreign = client.session.get(locations["foreign"], timeout=10)
    assert foreign.json() == {"status": "canceled"}
    client.session.get(locations["foreign"], headers={"Authorization": f"Bearer {client.token}"}, timeout=10)
    foreign_entries = [entry for entry in client.log() if entry["listener"] == "foreign"]
    assert [entry["auth"] for entry in foreign_entries] == ["none", "valid"]
    assert foreign_entries[0]["path"] == urllib.parse.urlsplit(locations["foreign"]).path

    time.sleep(max(0.0, posted_at + 2.05 - time.monotonic()))
    for kind in kinds:
        offer = f"loc-{kind}"
        operation = client.operation(offer, operation_ids[kind]).json()
        assert operation["status"] == "canceled", kind
        assert client.list(offer).json()[0]["submissionState"] == "canceled"
        assert client.offer_state(offer)["status"] == "canceled"
        if kind not in ("none", "foreign", "noversion"):
            assert client.poll(locations[kind]).json()["status"] == "canceled"
    assert client.api("GET", locations["noversion"]).json()["status"] == "canceled"


def test_final_status_and_initial_cancellation_state(client: Client) -> None:
    for final in ("completed", "failed"):
        client.put_offer(f"ends-{final}", {"operation_id": f"op-{final}", "cancel": {"final_status": final}})
        assert client.cancel(f"ends-{final}").status_code == 202
        assert client.operation(f"ends-{final}", f"op-{final}").json()["status"] == final

    client.put_offer("already", {"operation_id": "op-already", "cancellation_request_state": "cancelRequested", "cancel": {"duration": 0.5}})
    client.put_offer("refused", {"operation_id": "op-refused", "cancellation_request_state": "notCancellable"})
    assert client.operation("already", "op-already").json()["cancellationRequestState"] == "cancelRequested"
    assert client.cancel("refused").status_code == 202
    refused = client.offer_state("refused")
    assert (refused["status"], refused["cancellationRequestState"]) == ("running", "notCancellable")
    time.sleep(0.55)
    already = client.offer_state("already")
    assert (already["status"], already["cancel_posts"]) == ("canceled", 0)


# --------------------------------------------------------------------------------------------------
# Faults and errors


def test_transient_faults(client: Client) -> None:
    client.put_offer(
        "faulty",
        {
            "operation_id": "op-f",
            "faults": [
                {"on": "cancel", "status": 429, "retry_after": 1},
                {"on": "list", "reset": True},
                {"on": "list", "status": 503, "times": 2},
                {"on": "operation", "malformed": True},
                {"on": "poll", "status": 500},
            ],
        },
    )
    with pytest.raises(requests.ConnectionError):
        client.list("faulty")
    assert [client.list("faulty").status_code for attempt in range(3)] == [503, 503, 200]

    malformed = client.operation("faulty", "op-f")
    assert malformed.status_code == 200
    with pytest.raises(ValueError):
        json.loads(malformed.content)
    assert client.operation("faulty", "op-f").status_code == 200  # before any cancel: not a poll

    throttled = client.cancel("faulty")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert error_code(throttled) == "TooManyRequests"
    assert client.offer_state("faulty")["cancellationRequestState"] == "canCancel"  # a fault has no effect
    assert client.cancel("faulty").status_code == 202
    assert client.operation("faulty", "op-f").status_code == 500  # the poll fault
    assert client.operation("faulty", "op-f").status_code == 200

    entries = api_entries(client, "faulty")
    assert [(entry["status"], entry["fault"]) for entry in entries] == [
        (None, "reset"),
        (503, "status"),
        (503, "status"),
        (200, None),
        (200, "malformed"),
        (200, None),
        (429, "status"),
        (202, None),
        (500, "status"),
        (200, None),
    ]
    assert client.offer_state("faulty")["cancel_posts"] == 2


def test_delay_fault(client: Client) -> None:
    client.put_offer("slow", {"faults": [{"on": "list", "delay": 1.0}]})
    with pytest.raises(requests.Timeout):
        client.list("slow", timeout=0.3)
    started = time.monotonic()
    assert client.list("slow").status_code == 200
    assert time.monotonic() - started < 0.5
    first, second = api_entries(client, "slow")
    assert (first["status"], first["fault"], second["fault"]) == (200, "delay", None)


def test_persistent_error(client: Client) -> None:
    client.put_offer("forbidden", {"error": {"on": "cancel", "status": 403, "code": "Forbidden", "message": "Not yours."}})
    client.put_offer("proxy", {"error": {"on": "any", "status": 502, "raw": "<html>Bad Gateway</html>"}})
    for attempt in range(2):
        response = client.cancel("forbidden")
        assert response.status_code == 403
        assert response.json() == {"error": {"code": "Forbidden", "message": "Not yours."}}
    assert client.list("forbidden").status_code == 200
    raw = client.list("proxy")
    assert (raw.status_code, raw.text) == (502, "<html>Bad Gateway</html>")
    assert [entry["fault"] for entry in api_entries(client, "forbidden")] == ["error", "error", None]


def test_authentication(client: Client) -> None:
    missing = client.list("running-202", token=None)
    assert missing.status_code == 401 and error_code(missing) == "AuthenticationFailed"
    invalid = client.list("running-202", token="eyJnot-a-token")
    assert invalid.status_code == 401 and error_code(invalid) == "InvalidAuthenticationToken"

    client.settings(token_lifetime=1)
    token = client.token_post().json()
    assert token["expires_in"] == 1
    assert client.list("running-202", token=token["access_token"]).status_code == 200
    time.sleep(1.05)
    expired = client.list("running-202", token=token["access_token"])
    assert expired.status_code == 401
    assert error_code(expired) == "ExpiredAuthenticationToken"
    assert expired.json()["error"]["message"].startswith("The access token expiry")
    assert "invalid_token" in expired.headers["WWW-Authenticate"]
    assert [entry["auth"] for entry in api_entries(client)] == ["none", "invalid", "valid", "expired"]
    assert client.offer_state("running-202")["cancel_posts"] == 0


def test_api_version(client: Client) -> None:
    for version in (None, "2016-08-01-preview"):
        response = client.list("running-202", version=version)
        assert response.status_code == 400
        assert error_code(response) == "InvalidAPIVersion"
        assert API_VERSION in response.json()["error"]["message"]
    assert client.cancel("running-202", version=None).status_code == 400
    assert client.offer_state("running-202")["cancel_posts"] == 0


# --------------------------------------------------------------------------------------------------
# Request log, control API, plain HTTP


def test_request_log(client: Client) -> None:
    client.put_offer("logged")  # control requests are never logged
    client.list("logged", params={"status": "running"})
    client.cancel("logged", json={"metadata": {"notification-emails": "a@example.com"}})
    entries = client.log()
    assert [set(entry) for entry in entries] == [LOG_KEYS, LOG_KEYS]
    listed, cancelled = entries
    assert listed["listener"] == "api"
    assert (listed["method"], listed["path"]) == ("GET", f"/api/publishers/{PUBLISHER}/offers/logged/submissions/")
    assert listed["query"] == {"api-version": API_VERSION, "status": "running"}
    assert (listed["status"], listed["auth"], listed["body"], listed["offer"], listed["fault"]) == (200, "valid", None, f"{PUBLISHER}/logged", None)
    assert (cancelled["method"], cancelled["status"]) == ("POST", 202)
    assert cancelled["body"] == {"metadata": {"notification-emails": "a@example.com"}}
    assert cancelled["seq"] == listed["seq"] + 1
    assert 0 <= cancelled["time"] - listed["time"] < 5
    assert client.log(since=listed["seq"]) == [cancelled]
    assert client.token not in json.dumps(entries)

    bad_body = client.cancel("logged", data=b"{not json", headers={"Content-Type": "application/json"})
    assert bad_body.status_code == 400


def test_plain_http_listener(client: Client) -> None:
    base = client.info["api_url_http"]
    response = client.api("GET", f"{base}/api/publishers/{PUBLISHER}/offers/running-202/submissions/")
    assert response.status_code == 200
    client.put_offer("http-abs", {"operation_id": "op-h", "cancel": {"location": "absolute"}})
    posted = client.api("POST", f"{base}/api/publishers/{PUBLISHER}/offers/http-abs/cancel")
    assert posted.headers["Operation-Location"] == f"{base}/api/publishers/{PUBLISHER}/offers/http-abs/operations/op-h?api-version={API_VERSION}"
    assert {entry["listener"] for entry in client.log()} == {"api_http"}
    assert client.session.get(f"{base}/_emulator/health", timeout=10).json() == {"ok": True}


def test_scenario_validation(client: Client) -> None:
    for scenario in ({"colour": "red"}, {"cancel": {"location": "sideways"}}, {"faults": [{"on": "list", "times": 0}]}, {"state": "paused"}):
        response = client.control("PUT", f"/offers/{PUBLISHER}/bad", json=scenario)
        assert response.status_code == 400, scenario
    assert client.control("PUT", "/settings", json={"token_lifetime": "long"}).status_code == 400
    assert client.control("GET", f"/offers/{PUBLISHER}/bad").status_code == 404


def test_reset_restores_presets(client: Client) -> None:
    assert client.cancel("running-200").status_code == 200
    client.put_offer("extra")
    client.settings(token_lifetime=5)
    old_token = client.token
    client.reset()

    offers = client.control("GET", "/offers").json()
    assert {offer["offer_id"] for offer in offers} == PRESET_OFFERS
    state = client.offer_state("running-200")
    assert (state["status"], state["cancellationRequestState"], state["cancel_posts"]) == ("running", "canCancel", 0)
    assert client.offer_state("idle")["status"] == "completed"
    assert client.control("GET", f"/offers/{PUBLISHER}/extra").status_code == 404
    assert client.log() == []
    assert client.control("GET", "/tokens").json() == {"issued": [], "token_requests": 0}
    assert client.control("GET", "/settings").json() == DEFAULT_SETTINGS
    assert client.list("running-200", token=old_token).status_code == 401


# --------------------------------------------------------------------------------------------------
# Issue 7: redirects from the authority, discovery faults, lost answers, slow and huge bodies,
# 401 storms, the proxy listener, under-way cancellation states, ending an operation now


def login_entries(client: Client) -> list[dict[str, Any]]:
    return [entry for entry in client.log() if entry["listener"] == "login"]


def test_token_redirect_to_foreign_and_plain_http(client: Client) -> None:
    tenant = client.info["tenant_id"]
    client.settings(token_redirect={"status": 307, "to": "foreign"})
    refused = client.session.post(
        f"{client.info['authority_host']}/{tenant}/oauth2/v2.0/token",
        data={"client_secret": client.info["client_secret"]},
        allow_redirects=False,
        timeout=10,
    )
    assert refused.status_code == 307
    assert refused.headers["Location"] == f"{client.info['foreign_url']}/{tenant}/oauth2/v2.0/token"
    # what a client that follows redirects does (requests re-POSTs the body on a 307)
    followed = client.token_post()
    assert followed.status_code == 405
    assert [response.status_code for response in followed.history] == [307]

    assert client.settings(token_redirect={"status": 308, "to": "api_http"})["token_redirect"] == {"status": 308, "to": "api_http"}
    followed_http = client.token_post()
    assert followed_http.history[0].headers["Location"].startswith(client.info["api_url_http"] + "/")
    assert followed_http.status_code == 401  # the api app answers; it has no token endpoint

    entries = client.log()
    assert [(entry["listener"], entry["status"], entry["fault"]) for entry in entries] == [
        ("login", 307, "redirect"),
        ("login", 307, "redirect"),
        ("foreign", 405, None),
        ("login", 308, "redirect"),
        ("api_http", 401, None),
    ]
    assert [entry["secret_received"] for entry in entries if entry["listener"] != "login"] == [True, True]
    assert all(entry["body"] is None for entry in entries if entry["listener"] != "login")
    assert client.control("GET", "/tokens").json()["token_requests"] == 3  # every POST to the token endpoint counts
    assert client.info["client_secret"] not in json.dumps(entries)


def test_discovery_redirect_and_msal(client: Client) -> None:
    client.settings(discovery_redirect={"to": "api_http"})
    with pytest.raises(ValueError):
        client.msal_app()  # MSAL follows the redirect to the api listener, which has no discovery document
    entries = client.log()
    assert [(entry["listener"], entry["method"], entry["status"]) for entry in entries] == [("login", "GET", 307), ("api_http", "GET", 401)]
    assert entries[1]["path"] == f"/{client.info['tenant_id']}/v2.0/.well-known/openid-configuration"
    assert entries[1]["secret_received"] is False
    assert entries[1]["host"] == client.info["api_url_http"].split("://")[1]


def test_secret_is_never_logged(client: Client) -> None:
    secret = client.info["client_secret"]
    client.session.post(client.info["foreign_url"] + "/x", json={"client_secret": secret}, timeout=10)
    client.session.get(client.info["foreign_url"] + f"/x?secret={secret}", timeout=10)
    client.session.get(client.info["foreign_url"] + "/x", auth=(client.info["client_id"], secret), timeout=10)
    client.session.get(client.info["foreign_url"] + "/x", json={"other": "value"}, timeout=10)
    entries = client.log()
    assert [entry["secret_received"] for entry in entries] == [True, True, True, False]
    assert entries[0]["body"] is None and entries[3]["body"] == {"other": "value"}
    assert entries[1]["query"] == {"secret": "<client secret>"}
    assert secret not in json.dumps(entries)


def test_discovery_faults(client: Client) -> None:
    client.put_offer("discovery-faults", {"faults": [{"on": "discovery", "status": 503, "retry_after": 2}, {"on": "discovery", "reset": True}]})
    url = f"{client.info['authority_host']}/{client.info['tenant_id']}/v2.0/.well-known/openid-configuration"
    unavailable = client.session.get(url, timeout=10)
    assert unavailable.status_code == 503
    assert unavailable.headers["Retry-After"] == "2"
    assert unavailable.json()["error"] == "temporarily_unavailable"
    with pytest.raises(requests.ConnectionError):
        client.session.get(url, timeout=10)
    assert "token_endpoint" in client.session.get(url, timeout=10).json()
    assert client.token_post().status_code == 200  # discovery faults leave the token endpoint alone
    assert [(entry["method"], entry["status"], entry["fault"]) for entry in login_entries(client)] == [
        ("GET", 503, "status"),
        ("GET", None, "reset"),
        ("GET", 200, None),
        ("POST", 200, None),
    ]
    assert client.offer_state("discovery-faults")["faults_left"] == 0


def test_applied_cancel_whose_answer_is_lost(client: Client) -> None:
    client.put_offer("lost-reset", {"cancel": {"status": 202, "duration": 600}, "faults": [{"on": "cancel", "apply": True, "reset": True}]})
    client.put_offer("lost-502", {"cancel": {"status": 200}, "faults": [{"on": "cancel", "apply": True, "status": 502}]})
    client.put_offer("not-applied", {"faults": [{"on": "cancel", "reset": True}]})
    for offer in ("lost-reset", "not-applied"):
        with pytest.raises(requests.ConnectionError):
            client.cancel(offer)
    assert client.cancel("lost-502").status_code == 502

    lost_reset = client.offer_state("lost-reset")
    assert (lost_reset["status"], lost_reset["cancellationRequestState"], lost_reset["cancel_posts"]) == ("running", "cancelRequested", 1)
    lost_502 = client.offer_state("lost-502")
    assert (lost_502["status"], lost_502["cancel_posts"]) == ("canceled", 1)
    assert client.offer_state("not-applied")["cancellationRequestState"] == "canCancel"
    faults = {entry["offer"]: (entry["status"], entry["fault"]) for entry in api_entries(client)}
    assert faults == {
        f"{PUBLISHER}/lost-reset": (None, "applied-reset"),
        f"{PUBLISHER}/not-applied": (None, "reset"),
        f"{PUBLISHER}/lost-502": (502, "applied-status"),
    }


def test_applied_cancel_answered_after_the_client_timeout(client: Client) -> None:
    client.put_offer("lost-delay", {"cancel": {"status": 202, "duration": 600}, "faults": [{"on": "cancel", "apply": True, "delay": 1.0}]})
    with pytest.raises(requests.Timeout):
        client.cancel("lost-delay", timeout=0.3)
    assert client.offer_state("lost-delay")["cancellationRequestState"] == "cancelRequested"


def raw_https_get(client: Client, path: str) -> tuple[bytes, list[int]]:
    """GET over a TLS socket; returns the whole answer and the size of every recv (one per TLS record written)."""
    import socket
    import ssl

    url = urllib.parse.urlsplit(client.info["api_url"])
    context = ssl.create_default_context(cafile=client.info["ca_path"])
    request = f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {client.token}\r\nConnection: close\r\n\r\n"
    sizes: list[int] = []
    chunks = []
    with socket.create_connection((url.hostname, url.port), timeout=10) as raw, context.wrap_socket(raw, server_hostname=url.hostname) as tls:
        tls.sendall(request.encode())
        while True:
            data = tls.recv(65536)
            if not data:
                break
            sizes.append(len(data))
            chunks.append(data)
    return b"".join(chunks), sizes


def test_trickled_body(client: Client) -> None:
    client.put_offer("trickle", {"operation_id": "op-t", "faults": [{"on": "list", "trickle_bytes": 4, "trickle_interval": 0.25}]})
    started = time.monotonic()
    answer, sizes = raw_https_get(client, f"/api/publishers/{PUBLISHER}/offers/trickle/submissions/?api-version={API_VERSION}")
    assert time.monotonic() - started >= 4 * 0.25 * 0.9  # a lower bound only: load makes it slower, never faster
    head, _separator, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body.startswith(b"    [")
    assert json.loads(body)[0]["id"] == "op-t"
    assert sizes.count(1) >= 4  # the four spaces came one at a time
    # a per-read timeout longer than the interval never fires: the request completes
    assert client.list("trickle").json()[0]["id"] == "op-t"
    assert [entry["fault"] for entry in api_entries(client, "trickle")] == ["trickle", None]


def test_trickled_token_body(client: Client) -> None:
    client.put_offer("token-trickle", {"faults": [{"on": "token", "trickle_bytes": 3, "trickle_interval": 0.1}]})
    issued = client.token_post()
    assert issued.status_code == 200
    assert issued.text.startswith("   {")
    assert issued.json()["token_type"] == "Bearer"
    assert [entry["fault"] for entry in login_entries(client)] == ["trickle"]


def test_huge_body(client: Client) -> None:
    size = 3 * 1024 * 1024 + 7
    client.put_offer("huge", {"operation_id": "op-h", "faults": [{"on": "list", "huge_bytes": size}]})
    response = client.list("huge", stream=True)
    assert response.headers["Content-Length"] == str(size)
    body = response.content
    assert len(body) == size
    assert json.loads(body)[0]["id"] == "op-h"
    client.put_offer("huge-cancel", {"cancel": {"status": 200}, "faults": [{"on": "cancel", "huge_bytes": 1000}]})
    posted = client.cancel("huge-cancel")
    assert (posted.status_code, len(posted.content), posted.json()) == (200, 1000, {})
    assert [entry["fault"] for entry in api_entries(client)] == ["huge", "huge"]


def test_reject_tokens(client: Client) -> None:
    client.settings(reject_tokens=1)
    rejected = [client.list("running-202") for attempt in range(3)]
    assert {response.status_code for response in rejected} == {401}
    assert {error_code(response) for response in rejected} == {"InvalidAuthenticationToken"}
    assert "invalid_token" in rejected[0].headers["WWW-Authenticate"]
    client.settings(reject_tokens=2)  # every second request, starting with the first
    assert [client.list("running-202").status_code for attempt in range(4)] == [401, 200, 401, 200]
    client.settings(reject_tokens=0)
    assert client.list("running-202").status_code == 200
    entries = api_entries(client)
    assert [entry["fault"] for entry in entries] == ["reject_tokens"] * 3 + ["reject_tokens", None, "reject_tokens", None, None]
    assert {entry["auth"] for entry in entries} == {"valid"}  # the token itself was fine
    assert client.offer_state("running-202")["cancel_posts"] == 0


def test_tokens_used_up(client: Client) -> None:
    client.settings(token_max_uses=2)
    token = client.token_post().json()["access_token"]
    given = client.control("POST", "/tokens", json={"expires_in": 3600, "max_uses": 1}).json()["access_token"]
    assert [client.list("running-202", token=token).status_code for attempt in range(3)] == [200, 200, 401]
    expired = client.list("running-202", token=token)
    assert error_code(expired) == "ExpiredAuthenticationToken"
    assert [client.list("running-202", token=given).status_code for attempt in range(2)] == [200, 401]
    assert client.list("running-202").status_code == 200  # the fixture's token has no limit
    assert [entry["auth"] for entry in api_entries(client)] == ["valid", "valid", "expired", "expired", "valid", "expired", "valid"]
    assert client.control("POST", "/tokens", json={"max_uses": -1}).status_code == 400


def test_proxy_listener(client: Client) -> None:
    proxies = {"http": client.info["proxy_url"], "https": client.info["proxy_url"]}
    path = f"/api/publishers/{PUBLISHER}/offers/running-202/submissions/"
    through_proxy = client.api("GET", client.info["api_url_http"] + path, proxies=proxies)
    assert through_proxy.status_code == 502
    with pytest.raises(requests.exceptions.ProxyError):
        client.api("GET", client.info["api_url"] + path, proxies=proxies)
    entries = client.log()
    assert [(entry["listener"], entry["method"], entry["status"]) for entry in entries] == [("proxy", "GET", 502), ("proxy", "CONNECT", 502)]
    plain, tunnel = entries
    assert plain["host"] == client.info["api_url_http"].split("://")[1]
    assert (plain["path"], plain["query"], plain["offer"], plain["auth"]) == (path, {"api-version": API_VERSION}, f"{PUBLISHER}/running-202", "valid")
    assert tunnel["host"] == client.info["api_url"].split("://")[1]
    assert tunnel["auth"] == "none"  # the bearer travels inside the tunnel, never to the proxy
    assert client.token not in json.dumps(entries)


def test_under_way_and_refused_states(client: Client) -> None:
    for state in ("cancelling", "cancelInProgress", "Cancellation_Requested"):
        offer = f"under-way-{state.lower()}"
        client.put_offer(offer, {"operation_id": "op-u", "cancellation_request_state": state, "cancel": {"end_after_reads": 2}})
        first = client.operation(offer, "op-u").json()
        assert (first["status"], first["cancellationRequestState"]) == ("running", state)
        assert client.cancel(offer).status_code == 202  # already under way: nothing changes
        assert client.operation(offer, "op-u").json()["status"] == "canceled"  # the second read ends it
        assert client.offer_state(offer)["cancellationRequestState"] == state
    client.put_offer("refused", {"operation_id": "op-r", "cancellation_request_state": "cannotCancel", "cancel": {"end_after_reads": 1}})
    assert client.cancel("refused").status_code == 202
    refused = client.operation("refused", "op-r").json()
    assert (refused["status"], refused["cancellationRequestState"]) == ("running", "cannotCancel")
    client.put_offer("no-state", {"operation_id": "op-n", "cancellation_request_state": None})
    assert "cancellationRequestState" not in client.operation("no-state", "op-n").json()
    assert client.cancel("no-state").status_code == 202  # absent counts as canCancel
    assert client.operation("no-state", "op-n").json()["cancellationRequestState"] == "cancelRequested"


def test_end_after_reads(client: Client) -> None:
    client.put_offer("reads", {"operation_id": "op-e", "cancel": {"status": 202, "duration": 600, "end_after_reads": 2}})
    assert client.list("reads").json()[0]["submissionState"] == "running"  # before the cancel: not counted
    assert client.cancel("reads").status_code == 202
    assert client.operation("reads", "op-e").json()["status"] == "running"
    assert client.list("reads").json()[0]["submissionState"] == "canceled"
    assert client.operation("reads", "op-e").json()["status"] == "canceled"


def test_end_control(client: Client) -> None:
    client.put_offer("to-end", {"operation_id": "op-x", "cancellation_request_state": "cancelling", "cancel": {"duration": 600}})
    ended = client.control("POST", f"/offers/{PUBLISHER}/to-end/end")
    assert ended.status_code == 200
    assert ended.json()["status"] == "canceled"
    assert client.operation("to-end", "op-x").json()["status"] == "canceled"
    assert client.control("POST", f"/offers/{PUBLISHER}/to-end/end").status_code == 409
    client.put_offer("to-fail", {"operation_id": "op-y"})
    assert client.control("POST", f"/offers/{PUBLISHER}/to-fail/end", json={"status": "failed"}).json()["status"] == "failed"
    assert client.operation("to-fail", "op-y").json()["error"]["code"] == "OperationFailed"
    assert client.control("POST", f"/offers/{PUBLISHER}/idle/end").status_code == 409
    assert client.control("POST", f"/offers/{PUBLISHER}/no-such-offer/end").status_code == 404
    assert client.control("POST", f"/offers/{PUBLISHER}/running-200/end", json={"status": "paused"}).status_code == 400
    assert client.control("GET", f"/offers/{PUBLISHER}/running-200/end").status_code == 405
    assert [entry["path"].rsplit("/", 1)[1] for entry in client.log()] == ["op-x", "op-y"]  # control requests are not logged


def test_tls_failure_is_logged(client: Client, tmp_path: Path) -> None:
    import trustme

    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    session = make_session(str(other_ca))
    with pytest.raises(requests.exceptions.SSLError):
        session.get(client.info["authority_host"] + "/x", timeout=10)
    deadline = time.monotonic() + 5
    while not client.log() and time.monotonic() < deadline:  # the server notices the client's alert a moment later
        time.sleep(0.05)
    assert [(entry["listener"], entry["method"], entry["status"], entry["fault"]) for entry in client.log()] == [("login", None, None, "tls-handshake")]


def test_new_settings_and_fault_keys_are_validated(client: Client) -> None:
    bad_settings = (
        {"token_redirect": {"status": 200}},
        {"token_redirect": {"to": "elsewhere"}},
        {"discovery_redirect": {"colour": "red"}},
        {"reject_tokens": -1},
        {"reject_tokens": True},
    )
    for settings in bad_settings:
        assert client.control("PUT", "/settings", json=settings).status_code == 400, settings
    bad_scenarios = (
        {"faults": [{"on": "discovery", "apply": "yes"}]},
        {"faults": [{"on": "list", "trickle_bytes": 1.5}]},
        {"faults": [{"on": "list", "trickle_interval": 0}]},
        {"faults": [{"on": "list", "huge_bytes": -1}]},
        {"cancel": {"end_after_reads": 0}},
        {"cancellation_request_state": 3},
    )
    for scenario in bad_scenarios:
        assert client.control("PUT", f"/offers/{PUBLISHER}/bad", json=scenario).status_code == 400, scenario
