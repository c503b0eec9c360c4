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
    "control_url",
    "ca_path",
    "tenant_id",
    "client_id",
    "client_secret",
    "publisher_id",
}
LOG_KEYS = {"seq", "time", "listener", "method", "path", "query", "status", "auth", "body", "offer", "fault"}


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
    assert client.control("GET", "/settings").json() == {"token_lifetime": 3599, "token_error": None}
    assert client.list("running-200", token=old_token).status_code == 401
