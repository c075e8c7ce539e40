"""The Anthropic SDK through the HTTP layer (it rides on httpx2): record, then replay offline.

The SDK's requests are recorded at the transport, and on replay the SDK parses the recorded
bytes into its own types, streams and exception classes exactly as it parses a live response
(``_interceptors/_anthropic`` only checks that a replayed answer parses into the class the SDK
asked for: tests/test_anthropic_replay_checks.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anthropic
import pytest
from anthropic.types import Message

import apirecorder
from apirecorder._httpbody import sse_as_events
from tests.stable_ids import live_id_map, with_stable_ids
from tests.upstream import Upstream

TEST_ID = "tests/test_anthropic.py::test_case"
API_KEY = "sk-ant-api03-test-key-0000000000000000"
MODEL = "claude-test"
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
}
T = TypeVar("T")


def user(text: str) -> Any:
    return [{"role": "user", "content": text}]


def record_then_replay(
    upstream: Upstream, folder: Path, scenario: Callable[[str], T]
) -> tuple[T, T]:
    """Run ``scenario(base_url)`` recording, stop the upstream, run it again replaying."""
    base_url = upstream.url
    with apirecorder.recording("record", folder), apirecorder.test_context(TEST_ID):
        # The live run saw live ids where replay hands out stable ones (DESIGN 6).
        recorded = with_stable_ids(scenario(base_url), live_id_map())
    upstream.stop()
    with apirecorder.recording("replay", folder), apirecorder.test_context(TEST_ID):
        replayed = scenario(base_url)
    return recorded, replayed


def client(base_url: str, max_retries: int = 0) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key=API_KEY, max_retries=max_retries)


def async_client(base_url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=base_url, api_key=API_KEY, max_retries=0)


def recordings(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text("utf-8")) for path in sorted(folder.glob("*.json"))]


def test_create_plain_sync_and_async(upstream: Upstream, tmp_path: Path) -> None:
    def scenario(base_url: str) -> tuple[Message, Message]:
        plain = client(base_url).messages.create(
            model=MODEL, max_tokens=100, messages=user("Saturn has rings")
        )

        async def run() -> Message:
            async with async_client(base_url) as ac:
                return await ac.messages.create(
                    model=MODEL, max_tokens=100, messages=user("Jupiter has storms")
                )

        return plain, asyncio.run(run())

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario)
    assert [m.model_dump() for m in replayed] == [m.model_dump() for m in recorded]
    assert all(isinstance(m, Message) for m in replayed)
    assert replayed[0].content[0].type == "text"
    assert replayed[0].content[0].text == "Echo: Saturn has rings"
    assert replayed[1].content[0].text == "Echo: Jupiter has storms"
    assert replayed[0]._request_id is not None
    assert len(recordings(tmp_path)) == 2


def test_create_streaming_replays_every_event_in_order(upstream: Upstream, tmp_path: Path) -> None:
    def scenario(base_url: str) -> tuple[list[Any], list[Any]]:
        stream = client(base_url).messages.create(
            model=MODEL, max_tokens=100, messages=user("stream me please"), stream=True
        )
        sync_events = [event.model_dump() for event in stream]

        async def run() -> list[Any]:
            async with async_client(base_url) as ac:
                events = await ac.messages.create(
                    model=MODEL, max_tokens=100, messages=user("and me too"), stream=True
                )
                return [event.model_dump() async for event in events]

        return sync_events, asyncio.run(run())

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario)
    assert replayed == recorded
    types = [event["type"] for event in replayed[0]]
    assert types[0] == "message_start"
    assert types[-2:] == ["message_delta", "message_stop"]
    text = "".join(
        event["delta"]["text"] for event in replayed[0] if event["type"] == "content_block_delta"
    )
    assert text == "Echo: stream me please"


def test_stream_recording_holds_its_lines_and_reads_as_events(
    upstream: Upstream, tmp_path: Path
) -> None:
    with apirecorder.recording("record", tmp_path), apirecorder.test_context(TEST_ID):
        for _ in client(upstream.url).messages.create(
            model=MODEL, max_tokens=100, messages=user("readable"), stream=True
        ):
            pass
    (recording,) = recordings(tmp_path)
    response = recording["response"]
    # The reference recorder's line form (docs/http.md); its events still parse as JSON objects.
    assert response["body_format"] == "sse_lines"
    assert all(isinstance(line, str) for line in response["body"])
    events = sse_as_events(response)["body"]
    assert [event["event"] for event in events][:2] == ["message_start", "content_block_start"]
    for event in events:
        assert isinstance(event["data"], dict), event  # an object, not an escaped string
        assert event["data"]["type"] == event["event"]
    assert events[0]["data"]["message"]["model"] == MODEL
    assert recording["request"]["payload"]["messages"] == user("readable")
    headers = recording["request"]["headers"]
    assert headers["anthropic-version"]
    # Whichever header the SDK sends the key in (anthropic 2.x: authorization) is redacted.
    assert "<redacted>" in (headers.get("authorization"), headers.get("x-api-key"))
    assert API_KEY not in json.dumps(recording)


def test_tool_use_plain_and_streamed(upstream: Upstream, tmp_path: Path) -> None:
    def scenario(base_url: str) -> tuple[Message, Message, list[str]]:
        anthropic_client = client(base_url)
        plain = anthropic_client.messages.create(
            model=MODEL, max_tokens=200, tools=[WEATHER_TOOL], messages=user("Weather in Paris?")
        )
        with anthropic_client.messages.stream(
            model=MODEL, max_tokens=200, tools=[WEATHER_TOOL], messages=user("Weather in Oslo?")
        ) as stream:
            deltas = [
                event.delta.partial_json
                for event in stream
                if event.type == "content_block_delta" and event.delta.type == "input_json_delta"
            ]
            final = stream.get_final_message()
        return plain, final, deltas

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario)
    plain, final, deltas = replayed
    assert plain.model_dump() == recorded[0].model_dump()
    assert final.model_dump() == recorded[1].model_dump()
    assert deltas == recorded[2]
    for message, city in ((plain, "Weather in Paris?"), (final, "Weather in Oslo?")):
        assert message.stop_reason == "tool_use"
        tool_use = next(block for block in message.content if block.type == "tool_use")
        assert tool_use.name == "get_weather"
        assert tool_use.input == {"city": city, "days": len(city)}


def test_stream_helper_text_stream_and_final_message(upstream: Upstream, tmp_path: Path) -> None:
    def scenario(base_url: str) -> tuple[list[str], Message, list[str], Message]:
        with client(base_url).messages.stream(
            model=MODEL, max_tokens=100, messages=user("tell me about Saturn")
        ) as stream:
            pieces = list(stream.text_stream)
            final = stream.get_final_message()

        async def run() -> tuple[list[str], Message]:
            async with (
                async_client(base_url) as ac,
                ac.messages.stream(
                    model=MODEL, max_tokens=100, messages=user("tell me about Mars")
                ) as astream,
            ):
                return [
                    piece async for piece in astream.text_stream
                ], await astream.get_final_message()

        async_pieces, async_final = asyncio.run(run())
        return pieces, final, async_pieces, async_final

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario)
    pieces, final, async_pieces, async_final = replayed
    assert pieces == recorded[0]
    assert len(pieces) > 1  # delivered piece by piece, not as one buffered body
    assert "".join(pieces) == "Echo: tell me about Saturn"
    assert final.model_dump() == recorded[1].model_dump()
    assert final.content[0].type == "text"
    assert final.content[0].text == "Echo: tell me about Saturn"
    assert async_pieces == recorded[2]
    assert "".join(async_pieces) == "Echo: tell me about Mars"
    assert async_final.model_dump() == recorded[3].model_dump()


def test_overloaded_529_replays_as_the_sdk_error(upstream: Upstream, tmp_path: Path) -> None:
    def scenario(base_url: str) -> tuple[type[BaseException], int, object]:
        # The SDK retries a 529 (twice by default): every attempt is the same request made
        # again, recorded as <hash>.json, <hash>-2.json, <hash>-3.json, and the replay
        # retries and fails just the same.
        with pytest.raises(anthropic.APIStatusError) as caught:
            client(base_url, max_retries=2).messages.create(
                model=MODEL, max_tokens=100, messages=user("TRIGGER_529 please")
            )
        return type(caught.value), caught.value.status_code, caught.value.body

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario)
    assert replayed == recorded
    error_class, status, body = replayed
    assert error_class is anthropic.OverloadedError
    assert status == 529
    assert body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert len(upstream.requests_to("/v1/messages")) == 3
    attempts = recordings(tmp_path)
    assert len(attempts) == 3
    assert {attempt["response"]["status"] for attempt in attempts} == {529}


def test_error_event_midway_replays_the_same_error(upstream: Upstream, tmp_path: Path) -> None:
    def scenario(base_url: str) -> tuple[list[str], str, str]:
        seen: list[str] = []
        with pytest.raises(anthropic.APIStatusError) as caught:
            for event in client(base_url).messages.create(
                model=MODEL,
                max_tokens=100,
                messages=user("one two three four TRIGGER_STREAM_ERROR"),
                stream=True,
            ):
                seen.append(event.type)
        return seen, type(caught.value).__name__, str(caught.value)

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario)
    assert replayed == recorded
    assert replayed[0][0] == "message_start"
    assert "Overloaded" in replayed[2]
