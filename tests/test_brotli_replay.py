"""A brotli-encoded body, with no brotli decoder installed: recorded and replayed as raw bytes.

Neither ``brotli`` nor ``brotlicffi`` is in the environment, so no client decodes
``content-encoding: br``: httpx, httpx2, requests and urllib3 hand back the bytes as the
server sent them. The recorder stores them as they came (base64, the header kept) and replays
the same bytes; a br layer stacked with gzip, which every client would fail on in its own
way, is refused by name (also the hostile matrix's "br then gzip" and "gzip then br"). aiohttp
refuses a br body live with its own error, and nothing is recorded.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

import pytest

import apirecorder
from apirecorder import RecordingFormatError, SerializationError
from tests.hostile_values import brotli_stored
from tests.upstream import Upstream
from tests.upstream.server import Request, Response

TEST_ID = "tests/test_brotli_replay.py::case"
PLAIN = b'{"answer": 42}'
ENCODED = brotli_stored(PLAIN)

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(name) for name in ("brotli", "brotlicffi")),
    reason="a brotli decoder is installed: the clients decode br themselves",
)


def _httpx(url: str) -> bytes:
    import httpx

    with httpx.Client() as client:
        return client.get(url).content


def _httpx2(url: str) -> bytes:
    import httpx2

    with httpx2.Client() as client:
        return client.get(url).content


def _requests(url: str) -> bytes:
    import requests

    with requests.Session() as session:
        return session.get(url, timeout=5).content


def _urllib3(url: str) -> bytes:
    import urllib3

    with urllib3.PoolManager() as http:
        return http.request("GET", url).data


def _aiohttp(url: str) -> bytes:
    import aiohttp

    async def get() -> bytes:
        async with aiohttp.ClientSession() as session, session.get(url) as answer:
            return await answer.read()

    return asyncio.run(get())


CLIENTS: dict[str, Callable[[str], bytes]] = {
    "httpx": _httpx,
    "httpx2": _httpx2,
    "requests": _requests,
    "urllib3": _urllib3,
}


def _brotli_answer(coding: str, body: bytes) -> Callable[[Request], Response]:
    def answer(request: Request) -> Response:
        return Response(
            200, [("Content-Type", "application/json"), ("Content-Encoding", coding)], body
        )

    return answer


def _record(upstream: Upstream, folder: Path, call: Callable[[str], bytes]) -> tuple[bytes, str]:
    """``call`` against a route answering a br body, recorded; the upstream then stopped."""
    upstream.add_route("GET", "/misc/br", _brotli_answer("br", ENCODED))
    url = f"{upstream.url}/misc/br"
    with apirecorder.recording("record", folder), apirecorder.test_context(TEST_ID):
        live = call(url)
    upstream.stop()
    return live, url


@pytest.mark.parametrize("client", CLIENTS)
def test_a_br_body_replays_as_the_raw_bytes_the_client_got_live(
    upstream: Upstream, tmp_path: Path, client: str
) -> None:
    call = CLIENTS[client]
    live, url = _record(upstream, tmp_path, call)
    assert live == ENCODED  # the client cannot decode br: it hands back the wire bytes
    (path,) = tmp_path.glob("*.json")
    response = json.loads(path.read_text("utf-8"))["response"]
    assert response["headers"]["content-encoding"] == "br"
    assert response["body_format"] == "base64"
    assert base64.b64decode(response["body"]) == ENCODED
    with (
        apirecorder.recording("replay", tmp_path, block_network=True),
        apirecorder.test_context(TEST_ID),
    ):
        assert call(url) == live


@pytest.mark.parametrize("client", CLIENTS)
def test_br_stacked_with_gzip_is_refused_by_name_on_replay(
    upstream: Upstream, tmp_path: Path, client: str
) -> None:
    call = CLIENTS[client]
    _, url = _record(upstream, tmp_path, call)
    (path,) = tmp_path.glob("*.json")
    data = json.loads(path.read_text("utf-8"))
    data["response"]["headers"]["content-encoding"] = "gzip, br"
    path.write_text(json.dumps(data), "utf-8")
    with (
        pytest.raises(RecordingFormatError, match="install brotli") as caught,
        apirecorder.recording("replay", tmp_path, block_network=True),
        apirecorder.test_context(TEST_ID),
    ):
        call(url)
    assert str(path) in str(caught.value)


def test_aiohttp_refuses_a_br_body_live_and_nothing_is_recorded(
    upstream: Upstream, tmp_path: Path
) -> None:
    import aiohttp

    upstream.add_route("GET", "/misc/br", _brotli_answer("br", ENCODED))
    with (
        pytest.raises(aiohttp.ClientResponseError, match="brotli"),
        apirecorder.recording("record", tmp_path),
        apirecorder.test_context(TEST_ID),
    ):
        _aiohttp(f"{upstream.url}/misc/br")
    assert list(tmp_path.glob("*.json")) == []


@pytest.mark.parametrize("client", CLIENTS)
def test_recording_br_stacked_with_gzip_is_refused_and_writes_nothing(
    upstream: Upstream, tmp_path: Path, client: str
) -> None:
    # br inside, gzip outside: the client takes the gzip layer off and is left with br bytes
    # it cannot decode; a file of them could never replay (the test above), so none is made.
    upstream.add_route("GET", "/misc/br", _brotli_answer("br, gzip", gzip.compress(ENCODED)))
    with (
        pytest.raises(SerializationError, match="install brotli") as caught,
        apirecorder.recording("record", tmp_path),
        apirecorder.test_context(TEST_ID),
    ):
        CLIENTS[client](f"{upstream.url}/misc/br")
    assert "content-encoding br, gzip" in str(caught.value)
    assert "nothing was written" in str(caught.value)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
