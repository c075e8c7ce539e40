"""A replayed Anthropic answer is the class the SDK asked for, or the recorder's error by name.

The Anthropic SDK replays at the HTTP layer and parses whatever the recorded bytes hold; a file
whose body was edited to ``null``, a list, a string or no JSON at all must not come back as
None, a list, a str, or as ``json``'s own error from inside the SDK. Sync and async clients,
plain answers, ``.with_raw_response.parse()`` and each event of a stream; a valid stream still
replays every event, and a live answer (record mode) is never touched.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic.types import Message

import apirecorder
from apirecorder import RecordingFormatError
from tests.test_anthropic import MODEL, TEST_ID, async_client, client, user
from tests.upstream import Upstream
from tests.upstream.server import Request, Response, json_response

Call = Callable[[str], Any]


def _create(base_url: str) -> Any:
    return client(base_url).messages.create(model=MODEL, max_tokens=64, messages=user("Hi"))


def _acreate(base_url: str) -> Any:
    async def run() -> Any:
        async with async_client(base_url) as ac:
            return await ac.messages.create(model=MODEL, max_tokens=64, messages=user("Hi"))

    return asyncio.run(run())


def _raw_parse(base_url: str) -> Any:
    raw = client(base_url).messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=user("Hi")
    )
    return raw.parse()


def _stream(base_url: str) -> list[Any]:
    stream = client(base_url).messages.create(
        model=MODEL, max_tokens=64, messages=user("Hi"), stream=True
    )
    return [event.model_dump() for event in stream]


def _astream(base_url: str) -> list[Any]:
    async def run() -> list[Any]:
        async with async_client(base_url) as ac:
            stream = await ac.messages.create(
                model=MODEL, max_tokens=64, messages=user("Hi"), stream=True
            )
            return [event.model_dump() async for event in stream]

    return asyncio.run(run())


def _record(upstream: Upstream, folder: Path, call: Call) -> tuple[Any, Path, str]:
    """Record ``call``, then stop the upstream: every replay below is offline."""
    url = upstream.url
    with apirecorder.recording("record", folder), apirecorder.test_context(TEST_ID):
        answer = call(url)
    upstream.stop()
    (path,) = folder.glob("*.json")
    return answer, path, url


def _replay(base_url: str, folder: Path, call: Call) -> Any:
    with (
        apirecorder.recording("replay", folder, block_network=True),
        apirecorder.test_context(TEST_ID),
    ):
        return call(base_url)


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text("utf-8"))
    change(data)
    path.write_text(json.dumps(data), "utf-8")


def _body(value: Any, body_format: str = "json") -> Callable[[dict[str, Any]], None]:
    return lambda data: data["response"].update(body=value, body_format=body_format)


PLAIN_CALLS = {"sync": _create, "async": _acreate, "raw response": _raw_parse}
TAMPERED_BODIES = {
    "null": (_body(None), "NoneType"),
    "a list": (_body([{"id": "msg_1"}]), "builtins.list"),
    "a number": (_body(5), "builtins.int"),
    "a string": (_body("hello"), "builtins.str"),
    "not JSON": (_body("{not json", "text"), "JSONDecodeError"),
}


@pytest.mark.parametrize("label", TAMPERED_BODIES)
@pytest.mark.parametrize("how", PLAIN_CALLS)
def test_a_tampered_answer_is_refused_by_name(
    upstream: Upstream, tmp_path: Path, how: str, label: str
) -> None:
    call = PLAIN_CALLS[how]
    answer, path, url = _record(upstream, tmp_path, call)
    assert isinstance(answer, Message)
    assert isinstance(_replay(url, tmp_path, call), Message)  # the file as recorded
    change, found = TAMPERED_BODIES[label]
    _edit(path, change)
    with pytest.raises(RecordingFormatError) as caught:
        _replay(url, tmp_path, call)
    message = str(caught.value)
    assert str(path) in message
    assert "response.body" in message and "re-record" in message
    assert found in message
    if label == "not JSON":  # the SDK's own error is kept as the cause
        assert isinstance(caught.value.__cause__, json.JSONDecodeError)


STREAM_CALLS = {"sync": _stream, "async": _astream}


def _event_data(line: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        lines = data["response"]["body"]
        # The second event's data (the first is message_start, which the SDK reads too).
        index = [i for i, text in enumerate(lines) if text.startswith("data: ")][1]
        lines[index] = line

    return change


TAMPERED_EVENTS = {
    "null": ("data: null", "NoneType"),
    "not JSON": ("data: {not json", "JSONDecodeError"),
    "a list": ("data: [1, 2]", "builtins.list"),
}


@pytest.mark.parametrize("label", TAMPERED_EVENTS)
@pytest.mark.parametrize("how", STREAM_CALLS)
def test_a_stream_replays_every_event_and_a_tampered_event_is_refused_by_name(
    upstream: Upstream, tmp_path: Path, how: str, label: str
) -> None:
    call = STREAM_CALLS[how]
    recorded, path, url = _record(upstream, tmp_path, call)
    replayed = _replay(url, tmp_path, call)
    assert [event["type"] for event in replayed] == [event["type"] for event in recorded]
    line, found = TAMPERED_EVENTS[label]
    _edit(path, _event_data(line))
    with pytest.raises(RecordingFormatError) as caught:
        _replay(url, tmp_path, call)
    message = str(caught.value)
    assert str(path) in message and "a stream event" in message and found in message


def test_a_recorded_error_event_stays_the_sdks_own_error(
    upstream: Upstream, tmp_path: Path
) -> None:
    _, path, url = _record(upstream, tmp_path, _stream)

    def error_event(data: dict[str, Any]) -> None:
        lines = data["response"]["body"]
        index = [i for i, text in enumerate(lines) if text.startswith("event: ")][1]
        lines[index : index + 2] = ["event: error", 'data: {"type": "error", "error": {}}']

    _edit(path, error_event)
    with pytest.raises(anthropic.APIStatusError):
        _replay(url, tmp_path, _stream)


@pytest.mark.parametrize("how", ["sync", "async"])
def test_a_live_answer_is_never_checked(upstream: Upstream, tmp_path: Path, how: str) -> None:
    # An upstream that answers null: the SDK hands back None, live, as it would without
    # apirecorder; only the replay of that file is refused.
    def null_answer(request: Request) -> Response:
        return json_response(None)

    upstream.add_route("POST", "/v1/messages", null_answer)
    call = PLAIN_CALLS[how]
    answer, path, url = _record(upstream, tmp_path, call)
    assert answer is None
    with pytest.raises(RecordingFormatError, match="re-record") as caught:
        _replay(url, tmp_path, call)
    assert str(path) in str(caught.value)
