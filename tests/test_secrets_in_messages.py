"""Nothing the recorder prints holds a secret it would not write: miss messages, debug logs."""

from __future__ import annotations

import logging
from pathlib import Path

import openai
import pytest

import apirecorder
from tests.upstream import Upstream

KEY = "sk-proj-" + "Q7x" * 16
TEST_ID = "tests/test_secrets_in_messages.py::test_x"


def _ask(client: openai.OpenAI, text: str) -> None:
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": text}])


def test_a_miss_message_never_shows_the_key_its_recording_redacted(
    upstream: Upstream, tmp_path: Path
) -> None:
    client = openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="sk-test", max_retries=0)
    with apirecorder.recording("record", tmp_path), apirecorder.test_context(TEST_ID):
        _ask(client, f"my key is {KEY}, keep it")
    assert KEY not in "".join(p.read_text() for p in tmp_path.glob("*.json"))
    with (
        apirecorder.recording("replay", tmp_path),
        apirecorder.test_context(TEST_ID),
        pytest.raises(apirecorder.RecordingNotFoundError) as caught,
    ):
        _ask(client, f"my key is {KEY}, keep it safe")
    message = str(caught.value)
    assert "keep it safe" in message  # the diff is there, with the key as the placeholder
    assert KEY not in message and KEY[:20] not in message


def test_the_debug_log_never_shows_a_key(
    upstream: Upstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("APIRECORDER_DEBUG", "1")
    client = openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="sk-test", max_retries=0)
    with (
        caplog.at_level(logging.WARNING, logger="apirecorder"),
        apirecorder.recording("record", tmp_path),
        apirecorder.test_context(f"{TEST_ID}[?key={KEY}]"),
    ):
        _ask(client, f"the key {KEY}")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "hash=" in logged and "wrote" in logged
    assert KEY not in logged
