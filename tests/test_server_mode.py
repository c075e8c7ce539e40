"""Servers under test: a server's calls are recorded under the id of the test that drove it.

End to end: a Starlette app (tests/server_app) runs under uvicorn in a subprocess and calls
the OpenAI SDK; a pytest test (run with pytester) drives it over HTTP. The client side adds
the test id header because the app's host is a host under test; the server side reads it
with ``apirecorder.asgi.TestIdMiddleware`` and records from the environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import apirecorder
from apirecorder.asgi import (
    TEST_ID_HEADER,
    TestIdMiddleware,
    request_context,
    test_id_from_headers,
)
from tests.upstream import Upstream

ROOT = Path(__file__).resolve().parent.parent

DRIVING_TEST = """
import os

import httpx
import pytest


@pytest.mark.apirecorder
def test_ask():
    server = os.environ["SERVER_URL"]
    for route in ("/ask", "/ask-sync"):
        response = httpx.get(server + route, params={"q": "Saturn"}, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json() == {"answer": "Echo: Saturn", "test_id": "test_drive.py::test_ask"}
"""


@contextmanager
def running_app(mode: str, recordings: Path, openai_url: str, log: Path) -> Iterator[str]:
    """The app under test in a uvicorn subprocess, recording from the environment."""
    env = {
        **os.environ,
        "APIRECORDER_MODE": mode,
        "APIRECORDER_DIR": str(recordings),
        "OPENAI_BASE_URL": openai_url,
        "OPENAI_API_KEY": "sk-test-server-0000",
        "PYTHONPATH": str(ROOT),
    }
    with log.open("w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.server_app.serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("PORT "), f"the app did not start: {log.read_text()}"
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def run_driving_test(pytester: pytest.Pytester, server: str) -> pytest.RunResult:
    # pytester forgets the modules an in-process run imports; loading every interceptor's
    # library here first keeps the inner runs from importing them all over again.
    with apirecorder.recording("live"):
        pass
    host = server.removeprefix("http://")
    pytester.makeini(f"[pytest]\napirecorder_hosts_under_test =\n    {host}\n")
    pytester.makepyfile(test_drive=DRIVING_TEST)
    os.environ["SERVER_URL"] = server
    try:
        return pytester.runpytest("-p", "no:cacheprovider")
    finally:
        del os.environ["SERVER_URL"]


def test_server_calls_are_recorded_under_the_driving_test_and_replay_offline(
    pytester: pytest.Pytester, upstream: Upstream, tmp_path: Path
) -> None:
    recordings = tmp_path / "server-recordings"
    openai_url = upstream.url + "/v1"

    with running_app("record", recordings, openai_url, tmp_path / "record.log") as server:
        run_driving_test(pytester, server).assert_outcomes(passed=1)

    files = sorted(recordings.glob("*.json"))
    assert len(files) == 2  # one streamed chat, one plain
    recorded = [json.loads(path.read_text()) for path in files]
    assert {record["test_id"] for record in recorded} == {"test_drive.py::test_ask"}
    assert {record["request"]["endpoint"] for record in recorded} == {"/v1/chat/completions"}
    assert len(upstream.requests_to("/v1/chat/completions")) == 2
    # The driving test's own traffic to the app is never recorded on the client side.
    assert not list(pytester.path.rglob("*.json"))

    upstream.stop()
    with running_app("replay", recordings, openai_url, tmp_path / "replay.log") as server:
        run_driving_test(pytester, server).assert_outcomes(passed=1)
        # Without the header the app replays for no test, and finds nothing: the id matters.
        anonymous = httpx.get(server + "/ask", params={"q": "Saturn"}, timeout=30)
    assert anonymous.status_code == 500
    assert anonymous.json()["error"] == "RecordingNotFoundError"
    assert sorted(recordings.glob("*.json")) == files


# -- the client side: the header goes to hosts under test only ------------------------------


def test_requests_to_a_host_under_test_carry_the_test_id_and_are_not_recorded(
    upstream: Upstream, tmp_path: Path
) -> None:
    host = upstream.url.removeprefix("http://")
    with (
        apirecorder.recording("replay", tmp_path, hosts_under_test=[host]),
        apirecorder.test_context("tests/test_app.py::test_one[ünï code]"),
    ):
        response = httpx.post(upstream.url + "/misc/echo", json={"a": 1})
    assert response.json() == {"a": 1}
    sent = upstream.requests_to("/misc/echo")[-1].headers
    assert test_id_from_headers(sent) == "tests/test_app.py::test_one[ünï code]"
    assert sent[TEST_ID_HEADER.lower()].isascii()
    assert not list(tmp_path.iterdir())


def test_hosts_under_test_from_the_environment(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APIRECORDER_HOSTS_UNDER_TEST", "example.org, 127.0.0.1")
    with apirecorder.recording("replay", tmp_path), apirecorder.test_context("t.py::test_env"):
        httpx.get(upstream.url + "/misc/json")
    assert test_id_from_headers(upstream.requests[-1].headers) == "t.py::test_env"


def test_other_hosts_get_no_header(upstream: Upstream, tmp_path: Path) -> None:
    with (
        apirecorder.recording("record", tmp_path, hosts_under_test=["localhost:1", "example.org"]),
        apirecorder.test_context("t.py::test_other"),
    ):
        httpx.get(upstream.url + "/misc/json")
    assert test_id_from_headers(upstream.requests[-1].headers) is None
    assert len(list(tmp_path.glob("*.json"))) == 1


# -- the server side, in process --------------------------------------------------------------


async def _echo_test_id(scope: Any, receive: Any, send: Any) -> None:
    body = json.dumps({"test_id": apirecorder.current_test_id()}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_middleware_sets_the_test_id_from_the_header() -> None:
    app = TestIdMiddleware(_echo_test_id, record_from_environment=False)

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            with_header = await client.get("/", headers={TEST_ID_HEADER: "a.py::test_x%5B1%5D"})
            with apirecorder.test_context("outer.py::test_outer"):
                without_header = await client.get("/")
        return with_header, without_header

    with_header, without_header = asyncio.run(scenario())
    assert with_header.json() == {"test_id": "a.py::test_x[1]"}
    # No header: the id already in place (an in-process test) is left alone.
    assert without_header.json() == {"test_id": "outer.py::test_outer"}


def test_request_context_for_other_frameworks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APIRECORDER_MODE", raising=False)
    environ = {"HTTP_X_APIRECORDER_TEST_ID": "tests/test_w.py::test_wsgi", "PATH_INFO": "/"}
    with request_context(environ) as test_id:
        assert test_id == apirecorder.current_test_id() == "tests/test_w.py::test_wsgi"
    assert apirecorder.current_test_id() is None
    assert test_id_from_headers({"x-apirecorder-test-id": "b.py::t"}) == "b.py::t"
    assert test_id_from_headers([(b"X-Apirecorder-Test-Id", b"c.py::t")]) == "c.py::t"
    assert test_id_from_headers({"content-type": "text/plain"}) is None
