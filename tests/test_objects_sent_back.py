"""Objects sent back (issue 10.1): what an application derives from a replayed object is what
it derived from the live one, the next request included.

Each scenario runs once live (recording) against the local upstream and once in replay with
the upstream stopped and the network blocked; the replay must see exactly what the live run
saw: the same values, and the same fields set on every SDK object at every level.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import BaseModel

import apirecorder
from apirecorder import _recorder, _serialization
from apirecorder._legacy import extra_nulls
from tests.test_openai_record_replay import WEATHER_TOOL as WEATHER
from tests.upstream import Upstream

TEST_ID = "tests/test_objects_sent_back.py::scenario"
RESPONSES_WEATHER = {"type": "function", **WEATHER["function"]}


# Values a recording writes in a stable form (DESIGN 6): the live run sees the provider's.
_VOLATILE = frozenset({"id", "call_id", "created", "created_at", "completed_at"})


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: "<volatile>" if key in _VOLATILE and item is not None else _stable(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_stable(item) for item in value]
    return value


def trace(value: Any) -> Any:
    """A value as plain data, with each pydantic object's set fields made visible, nested ones
    included (``model_fields_set`` of every object below it, not only the top one)."""
    if isinstance(value, BaseModel):
        return {
            "__class__": type(value).__qualname__,
            "fields_set": sorted(value.model_fields_set),
            "unset_excluded": _stable(value.model_dump(mode="json", exclude_unset=True)),
            "fields": {
                name: trace(getattr(value, name))
                for name in sorted(value.model_fields_set)
                if name not in _VOLATILE
            },
        }
    if isinstance(value, list | tuple):
        return [trace(item) for item in value]
    if isinstance(value, dict):
        return {key: trace(item) for key, item in value.items()}
    return value


def record_then_replay(
    tmp_path: Path, upstream: Upstream, scenario: Callable[[str], Any]
) -> tuple[Any, Any]:
    """The scenario's trace live (recorded), then replayed offline; the caller compares."""
    url = upstream.url
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = trace(scenario(url))
    upstream.stop()
    with (
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("replay", tmp_path, block_network=True),
    ):
        replayed = trace(scenario(url))
    return live, replayed


def _openai(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)


def chat_tool_loop(url: str) -> Any:
    client = _openai(url)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER])
    message = first.choices[0].message
    messages.append(message)  # the OpenAI guide's tool loop: the SDK object itself
    for call in message.tool_calls or []:
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
    second = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER])
    return [first, message, second]


def responses_loop(url: str) -> Any:
    client = _openai(url)
    items: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.responses.create(model="gpt-4o", input=items, tools=[RESPONSES_WEATHER])
    items += first.output  # the Responses guide: output items go back as input
    for item in first.output:
        if item.type == "function_call":
            items.append(
                {"type": "function_call_output", "call_id": item.call_id, "output": "sunny"}
            )
    second = client.responses.create(model="gpt-4o", input=items, tools=[RESPONSES_WEATHER])
    items += second.output
    items.append({"role": "user", "content": "And tomorrow?"})
    third = client.responses.create(model="gpt-4o", input=items)
    return [first, second, third]


@pytest.mark.parametrize("scenario", [chat_tool_loop, responses_loop], ids=lambda f: f.__name__)
def test_loop_that_sends_objects_back_replays(
    scenario: Callable[[str], Any], upstream: Upstream, tmp_path: Path
) -> None:
    live, replayed = record_then_replay(tmp_path, upstream, scenario)
    assert replayed == live


def test_replayed_message_carries_only_the_live_fields(upstream: Upstream, tmp_path: Path) -> None:
    live, replayed = record_then_replay(tmp_path, upstream, chat_tool_loop)
    message = replayed[1]
    assert "audio" not in message["fields_set"] and "function_call" not in message["fields_set"]
    assert "content" in message["fields_set"]  # sent as null on the wire, so set: kept
    assert message == live[1]


def test_recording_holds_the_fields_the_wire_held(upstream: Upstream, tmp_path: Path) -> None:
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        chat_tool_loop(upstream.url)
    first = next(
        json.loads(path.read_text())
        for path in tmp_path.glob("*.json")
        if len(json.loads(path.read_text())["request"]["body"]["messages"]) == 1
    )
    message = first["response"]["body"]["__data__"]["choices"][0]["message"]
    assert set(message) == {"role", "content", "refusal", "annotations", "tool_calls"}
    assert first["format_version"] == 2


def write_as_before_format_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Write recordings as releases before format 2 did: every field of every object."""

    def dump_every_field(value: Any) -> Any:
        return value.model_dump(mode="json")

    monkeypatch.setattr(_serialization, "_model_data", dump_every_field)
    monkeypatch.setattr(_recorder, "FORMAT_VERSION", 1)


@pytest.mark.parametrize("scenario", [chat_tool_loop, responses_loop], ids=lambda f: f.__name__)
def test_old_recording_with_every_field_still_replays_the_loop(
    scenario: Callable[[str], Any],
    upstream: Upstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = upstream.url
    write_as_before_format_2(monkeypatch)
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = scenario(url)
    assert all(json.loads(p.read_text())["format_version"] == 1 for p in tmp_path.glob("*.json"))
    monkeypatch.undo()  # replay with today's code
    upstream.stop()
    with (
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("replay", tmp_path, block_network=True),
    ):
        replayed = scenario(url)
    # The objects are over-set (the old file cannot tell a null the wire sent from a default),
    # but every call replays the recording made of it, with the same values.
    assert [_stable(r.model_dump(mode="json")) for r in replayed] == [
        _stable(r.model_dump(mode="json")) for r in live
    ]


def test_new_recording_still_needs_the_same_nulls(upstream: Upstream, tmp_path: Path) -> None:
    """The loose match is for old files only: a new one replays only the request it holds."""
    url = upstream.url
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        _openai(url).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    upstream.stop()
    with (
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("replay", tmp_path, block_network=True),
        pytest.raises(apirecorder.RecordingNotFoundError),
    ):
        _openai(url).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi", "name": None}]
        )


def test_the_loose_match_only_forgives_nulls_the_new_request_adds() -> None:
    recorded = {"messages": [{"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]}]}
    sent = {
        "messages": [
            {"role": "assistant", "content": None, "audio": None, "tool_calls": [{"id": "c"}]}
        ]
    }
    assert extra_nulls(sent, recorded) == 1
    assert extra_nulls(recorded, recorded) == 0
    assert extra_nulls(recorded, sent) is None  # a null the recording holds must be sent
    assert extra_nulls({"a": 1, "b": None}, {"a": 2}) is None
    assert extra_nulls({"a": 1, "b": 0}, {"a": 1}) is None
    assert extra_nulls({"a": [1, None]}, {"a": [1]}) is None
    assert extra_nulls({"a": 1}, {"a": True}) is None
