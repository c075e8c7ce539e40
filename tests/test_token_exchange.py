"""Token exchanges: a signed assertion that changes every run still replays, and no
credential (assertion, client secret, access token) is ever written.

Recorded against the local upstream's token endpoints through the real client libraries
(google-auth over requests, httpx), replayed with the upstream stopped and the network blocked.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import google.auth.transport.requests
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2 import service_account

import apirecorder
from apirecorder._tokens import fake_tokens, token_request_payload
from tests.offline import disk_bytes, recordings
from tests.upstream import Upstream
from tests.upstream.server import json_response

TEST_ID = "tests/test_token_exchange.py::scenario"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
EMAIL = "recorder@project.iam.gserviceaccount.com"


def _service_account(token_uri: str) -> service_account.Credentials:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "project",
        "private_key_id": "kid1",
        "private_key": pem,
        "client_email": EMAIL,
        "client_id": "1234",
        "token_uri": token_uri,
    }
    creds: service_account.Credentials = service_account.Credentials.from_service_account_info(
        info, scopes=[SCOPE]
    )
    return creds


class _Capture:
    """Keeps the assertion google-auth signs, to prove it never reaches the disk."""

    def __init__(self) -> None:
        self.assertions: list[str] = []

    def __call__(self, request: Any, token_uri: str, assertion: Any, **kwargs: Any) -> Any:
        self.assertions.append(assertion.decode() if isinstance(assertion, bytes) else assertion)
        return self.original(request, token_uri, assertion, **kwargs)

    original: Any = None


def test_service_account_refresh_replays_without_secrets_on_disk(
    upstream: Upstream, tmp_path: Path, monkeypatch: Any
) -> None:
    token_uri = upstream.url + "/token"
    capture = _Capture()
    capture.original = service_account._client.jwt_grant
    monkeypatch.setattr(service_account._client, "jwt_grant", capture)

    with apirecorder.recording("record", tmp_path), apirecorder.test_context(TEST_ID):
        live = _service_account(token_uri)
        live.refresh(google.auth.transport.requests.Request())
    upstream.stop()
    # Another key, another time: the assertion differs, the recording still answers.
    with (
        apirecorder.recording("replay", tmp_path, block_network=True),
        apirecorder.test_context(TEST_ID),
    ):
        replayed = _service_account(token_uri)
        replayed.refresh(google.auth.transport.requests.Request())

    assert len(capture.assertions) == 2 and capture.assertions[0] != capture.assertions[1]
    (recording,) = recordings(tmp_path)
    stored_token = recording["response"]["body"]["access_token"]
    # The live caller got the live token; the replay gets the stable fake the file holds.
    assert live.token != stored_token and live.token.startswith("ya29.")
    assert replayed.token == stored_token and stored_token.startswith("ya29.")
    assert replayed.valid
    payload = recording["request"]["payload"]
    assert payload["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert payload["assertion"].startswith("<redacted> jwt ")
    assert f"iss={EMAIL}" in payload["assertion"] and f"scope={SCOPE}" in payload["assertion"]
    written = disk_bytes(tmp_path)
    for assertion in capture.assertions:
        for secret in (assertion, assertion.split(".")[1], assertion.split(".")[2]):
            assert secret.encode() not in written
    assert live.token.encode() not in written


def test_azure_client_credentials_through_httpx(upstream: Upstream, tmp_path: Path) -> None:
    url = upstream.url + "/tenant-1/oauth2/v2.0/token"
    secret = "Zx8Q~client.secret-value-1234567890"
    form = {
        "client_id": "00000000-1111-2222-3333-444444444444",
        "scope": "https://cognitiveservices.azure.com/.default",
        "grant_type": "client_credentials",
    }

    def scenario(client_secret: str) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.post(
            url, data={**form, "client_secret": client_secret}
        ).json()
        return answer

    with apirecorder.recording("record", tmp_path), apirecorder.test_context(TEST_ID):
        live = scenario(secret)
    upstream.stop()
    with (
        apirecorder.recording("replay", tmp_path, block_network=True),
        apirecorder.test_context(TEST_ID),
    ):
        replayed = scenario("another-secret-in-ci")

    (recording,) = recordings(tmp_path)
    assert recording["request"]["payload"] == {**form, "client_secret": "<redacted>"}
    assert replayed == recording["response"]["body"]
    assert replayed["access_token"] != live["access_token"]
    assert {k: v for k, v in replayed.items() if k != "access_token"} == {
        k: v for k, v in live.items() if k != "access_token"
    }
    written = disk_bytes(tmp_path)
    assert secret.encode() not in written and live["access_token"].encode() not in written


def test_refresh_token_grant_keeps_a_jwt_shaped_id_token(
    upstream: Upstream, tmp_path: Path
) -> None:
    url = upstream.url + "/oauth2/token"
    form = {"grant_type": "refresh_token", "refresh_token": "1//live-refresh-token-abc123"}
    with apirecorder.recording("record", tmp_path), apirecorder.test_context(TEST_ID):
        live = httpx.post(url, data=form).json()
    upstream.stop()
    with apirecorder.recording("replay", tmp_path), apirecorder.test_context(TEST_ID):
        replayed = httpx.post(url, data={**form, "refresh_token": "1//another"}).json()
    parts = replayed["id_token"].split(".")
    assert len(parts) == 3 and all(parts)
    assert replayed["id_token"] != live["id_token"]
    written = disk_bytes(tmp_path)
    for secret in (live["id_token"], live["access_token"], form["refresh_token"]):
        assert secret.encode() not in written


def test_bodies_that_are_not_token_exchanges_are_left_alone() -> None:
    form = b"grant=1&scope=x"
    assert token_request_payload(form, "application/x-www-form-urlencoded") is None
    assert token_request_payload(b'{"grant_type": "x"}', "application/json") is None
    chat = json.dumps({"choices": [{"text": "access_token is a word"}]}).encode()
    assert fake_tokens(chat, "application/json", "0" * 64) == chat
    token = b'{"access_token": "ya29.live", "expires_in": 5}'
    assert fake_tokens(token, "application/json", "0" * 64) == (
        b'{"access_token": "ya29.apirecorder-fake-access-token-000000000000", "expires_in": 5}'
    )


def _managed_identity(request: Any) -> Any:
    # Azure's instance metadata service: an absolute expiry, in epoch seconds, as a string.
    expires_on = str(int(time.time()) + 3599)
    body = {"access_token": "eyJ0eXAiOiJKV1QifQ.eyJpc3MiOiJ4In0.c2ln", "expires_on": expires_on}
    return json_response(
        {**body, "resource": "https://management.azure.com/", "token_type": "Bearer"}
    )


def test_an_absolute_expiry_lies_ahead_on_replay(upstream: Upstream, tmp_path: Path) -> None:
    upstream.add_route("GET", "/metadata/identity/oauth2/token", _managed_identity)
    url = upstream.url + "/metadata/identity/oauth2/token?resource=https://management.azure.com/"
    with apirecorder.recording("record", tmp_path), apirecorder.test_context(TEST_ID):
        live = httpx.get(url, headers={"Metadata": "true"}).json()
    upstream.stop()
    with apirecorder.recording("replay", tmp_path), apirecorder.test_context(TEST_ID):
        replayed = httpx.get(url, headers={"Metadata": "true"}).json()
    (recording,) = recordings(tmp_path)
    assert 0 < recording["response"]["token_lifetimes"]["expires_on"] <= 3599
    # The replay is later than the recording, and its token lives as long from then on.
    assert int(replayed["expires_on"]) >= int(live["expires_on"])
    assert replayed["access_token"].count(".") == 2
    assert live["access_token"].encode() not in disk_bytes(tmp_path)
