"""What replay costs around the call (issue 16): a replayed stream builds chunks as read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest

import apirecorder
from apirecorder import _recorder
from tests.upstream import Upstream

TEST_ID = "tests/test_replay_cost.py::scenario"


def _stream(upstream_url: str) -> Any:
    client = openai.OpenAI(base_url=f"{upstream_url}/v1", api_key="sk-test", max_retries=0)
    return client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "stream me"}], stream=True
    )


def _text(chunk: Any) -> list[str | None]:
    return [choice.delta.content for choice in chunk.choices]


def test_a_replayed_stream_builds_each_chunk_when_it_is_read(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = upstream.url
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = [_text(chunk) for chunk in _stream(url)]
    assert len(live) > 2
    upstream.stop()

    built: list[object] = []
    deserialize = _recorder.Session.deserialize

    def counting(self: _recorder.Session, *args: Any, **kwargs: Any) -> Any:
        value = deserialize(self, *args, **kwargs)
        built.append(value)
        return value

    monkeypatch.setattr(_recorder.Session, "deserialize", counting)
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        stream = _stream(url)
        assert built == []  # nothing built before the first chunk is asked for
        first = next(iter(stream))
        assert built == [first]
        rest = list(stream)
    assert len(built) == len(live)
    assert [_text(chunk) for chunk in [first, *rest]] == live  # ids are normalized (DESIGN 6)
