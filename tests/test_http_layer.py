"""The HTTP layer: httpx, httpx2 (sync and async), requests and aiohttp, recorded and replayed.

Every replay runs with the local upstream stopped, so it proves the client got its answer
from the recording. A replayed response must be one the client cannot tell from the live
one: the same status, headers, bytes, and chunks (one per server-sent event or NDJSON line).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import httpx
import httpx2
import openai
import pytest
import requests

import apirecorder
from apirecorder._httpbody import sse_as_events
from tests.stable_ids import live_id_map, with_stable_ids
from tests.upstream import Request, Response, Upstream, sse_event
from tests.upstream.misc_api import BINARY, JSON_BODY, NDJSON_LINES, SSE_EVENTS, TEXT
from tests.upstream.server import dumps

TEST_ID = "tests/test_http_layer.py::test_case"
CLIENTS = ("httpx", "httpx-async", "httpx2", "httpx2-async", "requests", "aiohttp")
T = TypeVar("T")


@dataclass(frozen=True)
class Fetched:
    """What a client saw: status, headers (lower-case names, in order), body and its chunks."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    chunks: list[bytes]


def _pairs(items: Any) -> list[tuple[str, str]]:
    return [(str(name).lower(), str(value)) for name, value in items]


async def _fetch_httpx_async(
    lib: Any, method: str, url: str, body: bytes | None, headers: dict[str, str]
) -> Fetched:
    async with (
        lib.AsyncClient() as client,
        client.stream(method, url, content=body, headers=headers) as response,
    ):
        chunks = [chunk async for chunk in response.aiter_bytes()]
    return Fetched(
        response.status_code, _pairs(response.headers.multi_items()), b"".join(chunks), chunks
    )


async def _fetch_aiohttp(
    method: str, url: str, body: bytes | None, headers: dict[str, str]
) -> Fetched:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=body, headers=headers) as response,
    ):
        chunks = [chunk async for chunk in response.content.iter_any()]
    return Fetched(response.status, _pairs(response.headers.items()), b"".join(chunks), chunks)


def fetch(
    client: str,
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Fetched:
    """One request through ``client``, its body read as the client streams it."""
    headers = headers or {}
    if client in ("httpx", "httpx2"):
        lib: Any = httpx if client == "httpx" else httpx2
        with (
            lib.Client() as sync_client,
            sync_client.stream(method, url, content=body, headers=headers) as response,
        ):
            chunks = list(response.iter_bytes())
        return Fetched(
            response.status_code, _pairs(response.headers.multi_items()), b"".join(chunks), chunks
        )
    if client in ("httpx-async", "httpx2-async"):
        lib = httpx if client == "httpx-async" else httpx2
        return asyncio.run(_fetch_httpx_async(lib, method, url, body, headers))
    if client == "requests":
        with requests.request(method, url, data=body, headers=headers, stream=True) as response:
            chunks = list(response.iter_content(chunk_size=None))
        return Fetched(
            response.status_code, _pairs(response.raw.headers.items()), b"".join(chunks), chunks
        )
    assert client == "aiohttp"
    return asyncio.run(_fetch_aiohttp(method, url, body, headers))


def record_then_replay(upstream: Upstream, folder: Path, scenario: Callable[[], T]) -> tuple[T, T]:
    """Run ``scenario`` recording, stop the upstream, run it again replaying."""
    with apirecorder.recording("record", folder), apirecorder.test_context(TEST_ID):
        # The live run saw live ids where replay hands out stable ones (DESIGN 6).
        recorded = with_stable_ids(scenario(), live_id_map())
    upstream.stop()
    with apirecorder.recording("replay", folder), apirecorder.test_context(TEST_ID):
        replayed = scenario()
    return recorded, replayed


def recordings(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text("utf-8")) for path in sorted(folder.glob("*.json"))]


def only_recording(folder: Path) -> dict[str, Any]:
    found = recordings(folder)
    assert len(found) == 1, [r["request"]["url"] for r in found]
    return found[0]


# -- every client, every kind of body ---------------------------------------------------------

ECHO_JSON = {"model": "m-1", "messages": [{"role": "user", "content": "héllo"}], "t": 0.7}
NDJSON_BYTES = [(dumps(item) + "\n").encode() for item in NDJSON_LINES]
ROUTES: dict[str, tuple[str, str, bytes | None, dict[str, str]]] = {
    "json": ("GET", "/misc/json?q=1&lang=fr", None, {}),
    "text": ("GET", "/misc/text", None, {}),
    "binary": ("GET", "/misc/binary", None, {}),
    "sse": ("GET", "/misc/sse", None, {}),
    "ndjson": ("GET", "/misc/ndjson", None, {}),
    "status-404": ("GET", "/misc/status/404", None, {}),
    "status-529": ("GET", "/misc/status/529", None, {}),
    "echo-json": (
        "POST",
        "/misc/echo",
        json.dumps(ECHO_JSON).encode(),
        {"content-type": "application/json"},
    ),
    "echo-text": ("PUT", "/misc/echo", "plain ✓ text".encode(), {"content-type": "text/plain"}),
    "gzip": ("GET", "/misc/gzip", None, {}),
    "headers": ("GET", "/misc/headers", None, {}),
    "chunked-text": ("GET", "/misc/chunks?count=3", None, {}),
}
#: Headers that differ between two live calls, or that describe the socket, not the data.
VOLATILE = {"date", "x-request-id", "connection", "keep-alive", "set-cookie"}


def comparable(fetched: Fetched, decoded: bool) -> Fetched:
    # A body stored decoded replays decoded: no content-encoding, the decoded length.
    drop = VOLATILE | ({"content-encoding", "content-length"} if decoded else set())
    headers = [(name, value) for name, value in fetched.headers if name not in drop]
    return Fetched(fetched.status, headers, fetched.body, [])


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("client", CLIENTS)
def test_replay_gives_what_the_live_call_gave(
    client: str, route: str, upstream: Upstream, tmp_path: Path
) -> None:
    method, path, body, headers = ROUTES[route]
    url = upstream.url + path

    def call() -> Fetched:
        return fetch(client, method, url, body, headers)

    with apirecorder.recording("live", tmp_path):
        live = call()
    recorded, replayed = record_then_replay(upstream, tmp_path, call)

    assert replayed == recorded
    decoded = route == "gzip"
    assert comparable(replayed, decoded) == comparable(live, decoded)
    expected_chunks = {"sse": SSE_EVENTS, "ndjson": NDJSON_BYTES}.get(route, [live.body])
    assert replayed.chunks == expected_chunks
    assert len(list(tmp_path.glob("*.json"))) == 1


# -- what a recording looks like --------------------------------------------------------------


def test_json_recording_is_readable(upstream: Upstream, tmp_path: Path) -> None:
    url = upstream.url + "/misc/json?q=1"
    with apirecorder.recording("record", tmp_path), apirecorder.test_context(TEST_ID):
        httpx.get(url, headers={"Authorization": "Bearer sk-live-abcdef0123456789abcdef"})
    recording = only_recording(tmp_path)
    request = recording["request"]
    assert recording["test_id"] == TEST_ID
    assert list(request) == ["test_id", "method", "url", "headers", "payload"]
    assert request["test_id"] == TEST_ID
    assert (request["method"], request["url"], request["payload"]) == ("GET", url, None)
    assert request["headers"]["authorization"] == "<redacted>"
    assert "sk-live" not in json.dumps(recording)
    response = recording["response"]
    assert response["status"] == 200
    assert response["headers"]["content-type"] == "application/json"
    assert response["body_format"] == "json"
    assert response["body"] == {**JSON_BODY, "query": {"q": "1"}}
    assert response["is_streaming"] is False


def test_event_stream_recording_is_its_lines(upstream: Upstream, tmp_path: Path) -> None:
    # The reference recorder's form (docs/http.md): each recorder replays the other's streams.
    with apirecorder.recording("record", tmp_path), apirecorder.test_context(TEST_ID):
        httpx.get(upstream.url + "/misc/sse")
    response = only_recording(tmp_path)["response"]
    assert response["body_format"] == "sse_lines"
    assert response["is_streaming"] is True
    assert response["body"] == [
        "event: start",
        'data: {"n":0,"text":"start"}',
        "",
        'data: {"n":1,"text":"hello"}',
        "",
        "data: plain text, not JSON",
        "",
        "event: update",
        "id: 4",
        "data: multi",
        "data: line",
        "",
        "event: done",
        "data: [DONE]",
        "",
    ]
    assert "sse_line_ending" not in response and "sse_final_newline" not in response


def test_ndjson_text_and_binary_recordings(upstream: Upstream, tmp_path: Path) -> None:
    with apirecorder.recording("record", tmp_path), apirecorder.test_context(TEST_ID):
        requests.get(upstream.url + "/misc/ndjson")
        requests.get(upstream.url + "/misc/text")
        requests.get(upstream.url + "/misc/binary")
    by_path = {r["request"]["url"].rsplit("/", 1)[1]: r["response"] for r in recordings(tmp_path)}
    assert by_path["ndjson"]["body_format"] == "ndjson"
    assert by_path["ndjson"]["body"] == NDJSON_LINES
    assert by_path["text"]["body_format"] == "text"
    assert by_path["text"]["body"] == TEXT
    assert by_path["binary"]["body_format"] == "base64"
    assert by_path["binary"]["headers"]["content-type"] == "application/octet-stream"
    assert base64.b64decode(by_path["binary"]["body"]) == BINARY


def test_request_payload_is_the_json_body_or_its_text(upstream: Upstream, tmp_path: Path) -> None:
    url = upstream.url + "/misc/echo"
    form = {"content-type": "application/x-www-form-urlencoded"}

    def scenario() -> list[str]:
        return [
            requests.post(url, json=ECHO_JSON).text,
            requests.put(url, data="a=1&b=two", headers=form).text,
            # A one-shot body is read once for the hash and still sent whole.
            requests.post(url, data=(part for part in [b"one ", b"two"])).text,
        ]

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario)
    assert replayed == recorded
    assert replayed[1:] == ["a=1&b=two", "one two"]
    payloads = [r["request"]["payload"] for r in recordings(tmp_path)]
    assert sorted(payloads, key=str) == sorted([ECHO_JSON, "a=1&b=two", "one two"], key=str)


def test_a_compressed_body_is_stored_decoded(upstream: Upstream, tmp_path: Path) -> None:
    with apirecorder.recording("record", tmp_path), apirecorder.test_context(TEST_ID):
        httpx.get(upstream.url + "/misc/gzip")
    response = only_recording(tmp_path)["response"]
    assert response["body"] == JSON_BODY
    # The headers as received; the marker says the body is stored decoded.
    assert response["headers"]["content-encoding"] == "gzip"
    assert response["headers"]["content-length"] == "136"
    assert response["body_decoded"] is True
    url = upstream.url + "/misc/gzip"
    upstream.stop()
    with apirecorder.recording("replay", tmp_path), apirecorder.test_context(TEST_ID):
        for client in CLIENTS:
            replayed = fetch(client, "GET", url, None, {})
            headers = dict(replayed.headers)
            assert json.loads(replayed.body) == JSON_BODY, client
            assert "content-encoding" not in headers, client
            assert headers["content-length"] == str(len(replayed.body)), client


def test_re_recording_gives_identical_files(upstream: Upstream, tmp_path: Path) -> None:
    def record_once(folder: Path) -> dict[str, bytes]:
        with apirecorder.recording("record", folder), apirecorder.test_context(TEST_ID):
            for path in ("/misc/headers", "/misc/sse", "/misc/json"):
                requests.get(upstream.url + path)
        return {path.name: path.read_bytes() for path in folder.glob("*.json")}

    first, second = record_once(tmp_path / "a"), record_once(tmp_path / "b")
    assert first == second
    headers = json.loads(next(v for v in first.values() if b"x-custom-header" in v))["response"][
        "headers"
    ]
    assert headers["date"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert headers["x-request-id"].startswith("rec-")
    assert headers["x-custom-header"] == "custom-value"


def test_key_in_the_query_is_masked_and_does_not_change_the_hash(
    upstream: Upstream, tmp_path: Path
) -> None:
    base = upstream.url + "/misc/json?lang=en&api_key="
    with apirecorder.recording("record", tmp_path), apirecorder.test_context(TEST_ID):
        httpx.get(base + "sk-recording-time-key-0001")
    assert only_recording(tmp_path)["request"]["url"] == base + "<redacted>"
    upstream.stop()
    with apirecorder.recording("replay", tmp_path), apirecorder.test_context(TEST_ID):
        replayed = httpx.get(base + "sk-another-key-in-ci-0002")
    assert replayed.json()["message"] == "hello"


# -- streaming as the libraries stream ------------------------------------------------------


def test_requests_iter_lines_and_iter_content(upstream: Upstream, tmp_path: Path) -> None:
    url = upstream.url + "/misc/sse"

    def scenario() -> tuple[list[bytes], list[bytes], str]:
        with requests.get(url, stream=True) as response:
            lines = list(response.iter_lines())
        with requests.get(url, stream=True) as response:
            pieces = list(response.iter_content(chunk_size=16))
        return lines, pieces, requests.get(url).text

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario)
    lines, pieces, text = replayed
    assert replayed == recorded
    assert lines == b"".join(SSE_EVENTS).splitlines()
    # Pieces never span two events, as with a live chunked response.
    assert all(len(piece) <= 16 for piece in pieces)
    assert b"".join(pieces) == b"".join(SSE_EVENTS)
    assert text == b"".join(SSE_EVENTS).decode()


def test_aiohttp_json_text_and_content_iteration(upstream: Upstream, tmp_path: Path) -> None:
    base = upstream.url

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/misc/json", params={"q": "x"}) as response:
                seen["json"] = await response.json()
            async with session.post(base + "/misc/echo", json={"a": [1, 2]}) as response:
                seen["echo"] = await response.json()
            async with session.request("GET", base + "/misc/text") as response:
                seen["text"] = await response.text()
            async with session.get(base + "/misc/sse") as response:
                seen["lines"] = [line async for line in response.content]
            async with session.get(base + "/misc/ndjson") as response:
                seen["chunks"] = [chunk async for chunk in response.content.iter_any()]
            async with session.get(base + "/misc/binary") as response:
                seen["binary"] = await response.read()
            async with session.get(base + "/misc/status/500") as response:
                seen["status"] = (response.status, response.reason, response.ok)
        return seen

    recorded, replayed = record_then_replay(upstream, tmp_path, lambda: asyncio.run(scenario()))
    assert replayed == recorded
    assert replayed["json"] == {**JSON_BODY, "query": {"q": "x"}}
    assert replayed["echo"] == {"a": [1, 2]}
    assert replayed["text"] == TEXT
    assert replayed["lines"] == b"".join(SSE_EVENTS).splitlines(keepends=True)
    assert replayed["chunks"] == NDJSON_BYTES
    assert replayed["binary"] == BINARY
    assert replayed["status"] == (500, "Internal Server Error", False)


def test_openai_event_stream_through_plain_httpx(upstream: Upstream, tmp_path: Path) -> None:
    url = upstream.url + "/v1/chat/completions"

    def body(prompt: str) -> dict[str, Any]:
        return {
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": prompt}],
            "stream": True,
        }

    def chunks() -> list[dict[str, Any]]:
        # A client that is not the OpenAI SDK, reading the event stream line by line.
        seen: list[dict[str, Any]] = []
        headers = {"Authorization": "Bearer sk-test-0000"}
        with httpx.stream("POST", url, json=body("Saturn"), headers=headers) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    seen.append(json.loads(line.removeprefix("data: ")))
        return seen

    async def async_chunks() -> list[dict[str, Any]]:
        async with (
            httpx2.AsyncClient() as client,
            client.stream("POST", url, json=body("Jupiter")) as response,
        ):
            return [
                json.loads(line[6:])
                async for line in response.aiter_lines()
                if line.startswith("data: {")
            ]

    recorded, replayed = record_then_replay(
        upstream, tmp_path, lambda: (chunks(), asyncio.run(async_chunks()))
    )
    assert replayed == recorded

    def text(stream: list[dict[str, Any]]) -> str:
        return "".join(
            c["choices"][0]["delta"].get("content") or "" for c in stream if c["choices"]
        )

    assert (text(replayed[0]), text(replayed[1])) == ("Echo: Saturn", "Echo: Jupiter")
    for recording in recordings(tmp_path):
        events = sse_as_events(recording["response"])["body"]
        assert all(isinstance(event["data"], dict) for event in events[:-1])
        assert events[-1] == {"data": "[DONE]"}


# -- a stream cut midway -------------------------------------------------------------------------


def _cut_stream(request: Request) -> Response:
    def events() -> Iterator[bytes]:
        yield sse_event({"n": 1})
        yield sse_event({"n": 2})
        # aiohttp drops unread data once the connection error arrives: let the client read.
        time.sleep(0.1)
        raise ConnectionAbortedError("the upstream went away")

    return Response(200, [("Content-Type", "text/event-stream")], stream=events())


def _read_cut(client: str, url: str) -> tuple[list[bytes], str]:
    chunks: list[bytes] = []
    try:
        if client == "httpx":
            with httpx.stream("GET", url) as response:
                chunks.extend(response.iter_raw())
        elif client == "requests":
            with requests.get(url, stream=True) as response:
                chunks.extend(response.iter_content(chunk_size=None))
        else:

            async def read() -> None:
                async with aiohttp.ClientSession() as session, session.get(url) as response:
                    async for chunk in response.content.iter_any():
                        chunks.append(chunk)

            asyncio.run(read())
    except Exception as exc:
        return chunks, type(exc).__name__
    return chunks, "no error"


@pytest.mark.parametrize("client", ["httpx", "requests", "aiohttp"])
def test_stream_cut_midway_replays_its_events_then_the_error(
    client: str, upstream: Upstream, tmp_path: Path
) -> None:
    upstream.add_route("GET", "/cut", _cut_stream)
    url = upstream.url + "/cut"
    recorded, replayed = record_then_replay(upstream, tmp_path, lambda: _read_cut(client, url))
    expected_error = {
        "httpx": "RemoteProtocolError",
        "requests": "ChunkedEncodingError",
        "aiohttp": "ClientPayloadError",
    }[client]
    assert replayed == recorded
    assert b"".join(replayed[0]) == sse_event({"n": 1}) + sse_event({"n": 2})
    assert replayed[1] == expected_error
    response = only_recording(tmp_path)["response"]
    assert response["is_exception"] is True
    assert [event["data"] for event in sse_as_events(response)["body"]] == [{"n": 1}, {"n": 2}]


# -- redirects: every hop is an exchange of its own ------------------------------------------


def test_redirect_hops_are_recorded_one_by_one(upstream: Upstream, tmp_path: Path) -> None:
    upstream.add_route(
        "GET", "/moved", lambda request: Response(302, [("Location", "/misc/json?q=moved")])
    )
    url = upstream.url + "/moved"

    async def with_aiohttp() -> Any:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return [len(response.history), await response.json()]

    def scenario() -> list[Any]:
        via_requests = requests.get(url)
        via_httpx = httpx.get(url, follow_redirects=True)
        return [
            [len(via_requests.history), via_requests.json()],
            [len(via_httpx.history), via_httpx.json()],
            asyncio.run(with_aiohttp()),
        ]

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario)
    assert replayed == recorded
    assert replayed[0] == [1, {**JSON_BODY, "query": {"q": "moved"}}]
    assert {r["response"]["status"] for r in recordings(tmp_path)} == {302, 200}


# -- one call, one recording; what the layer leaves alone ----------------------------------------


def test_an_openai_sdk_call_is_recorded_once(upstream: Upstream, tmp_path: Path) -> None:
    client = openai.OpenAI(base_url=upstream.url + "/v1", api_key="sk-test-0000", max_retries=0)
    async_client = openai.AsyncOpenAI(base_url=upstream.url + "/v1", api_key="sk-test-0000")
    messages: Any = [{"role": "user", "content": "once"}]
    with apirecorder.recording("record", tmp_path / "sync"), apirecorder.test_context(TEST_ID):
        client.chat.completions.create(model="gpt-4o", messages=messages)

    async def call_and_close() -> None:
        # Closed in its own loop: left to the garbage collector, the client's finalizers run
        # inside whatever comes next (CPython 3.11's ast.parse fails with a SystemError then).
        async with async_client:
            await async_client.chat.completions.create(model="gpt-4o", messages=messages)

    with apirecorder.recording("record", tmp_path / "async"), apirecorder.test_context(TEST_ID):
        asyncio.run(call_and_close())
    for folder in ("sync", "async"):
        recording = only_recording(tmp_path / folder)
        # The SDK layer's recording (typed objects), not a raw HTTP one.
        assert recording["request"]["endpoint"] == "/v1/chat/completions"
        assert "payload" not in recording["request"]


def test_openai_raw_response_is_left_to_the_http_layer(upstream: Upstream, tmp_path: Path) -> None:
    base_url = upstream.url + "/v1"
    messages: Any = [{"role": "user", "content": "raw"}]

    def scenario() -> tuple[str | None, str, Any]:
        client = openai.OpenAI(base_url=base_url, api_key="sk-test-0000", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=messages)
        completion = raw.parse()
        return raw.headers.get("content-type"), raw.http_request.method, completion.model_dump()

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario)
    assert replayed == recorded
    assert replayed[2]["choices"][0]["message"]["content"] == "Echo: raw"
    recording = only_recording(tmp_path)
    assert recording["request"]["payload"]["messages"] == messages
    assert recording["response"]["body_format"] == "json"


def test_ignored_hosts_pass_through_in_every_mode(upstream: Upstream, tmp_path: Path) -> None:
    for mode in ("replay", "record", "record-if-missing"):
        with apirecorder.recording(mode, tmp_path, ignore_hosts=["127.0.0.1"]):
            assert httpx.get(upstream.url + "/misc/json").json()["message"] == "hello"
            assert requests.get(upstream.url + "/misc/text").text == TEXT
    assert len(upstream.requests) == 6
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("client", ["httpx", "requests", "aiohttp"])
def test_replay_miss_raises_recording_not_found(
    client: str, upstream: Upstream, tmp_path: Path
) -> None:
    with (
        apirecorder.recording("replay", tmp_path),
        apirecorder.test_context(TEST_ID),
        pytest.raises(apirecorder.RecordingNotFoundError) as caught,
    ):
        fetch(client, "GET", upstream.url + "/misc/json")
    assert "/misc/json" in str(caught.value)
    assert not upstream.requests


def test_record_if_missing_and_live(upstream: Upstream, tmp_path: Path) -> None:
    url = upstream.url + "/misc/json"
    with apirecorder.recording("live", tmp_path):
        httpx.get(url)
    assert not list(tmp_path.iterdir())
    for _ in range(2):
        with apirecorder.recording("record-if-missing", tmp_path):
            assert httpx.get(url).json()["message"] == "hello"
    assert len(upstream.requests) == 2  # the live call, then one recorded call
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_a_broken_recording_names_the_file_and_the_field(
    upstream: Upstream, tmp_path: Path
) -> None:
    with apirecorder.recording("record", tmp_path):
        httpx.get(upstream.url + "/misc/sse")
    path = next(tmp_path.glob("*.json"))
    data = json.loads(path.read_text())
    data["response"]["body"] = "not a list"
    path.write_text(json.dumps(data))
    with (
        apirecorder.recording("replay", tmp_path),
        pytest.raises(apirecorder.ApiRecorderError) as caught,
    ):
        httpx.get(upstream.url + "/misc/sse")
    assert str(path) in str(caught.value)
    assert "body must be a list" in str(caught.value).replace('"', "")
