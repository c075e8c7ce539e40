"""The reference recorder's raw-HTTP streams (a list of SSE lines, no status, no headers) replay
through the real clients with the network blocked: the Anthropic SDK for ``/v1/messages`` and a
plain httpx stream for Gemini's ``interactions``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anthropic
import httpx

import apirecorder

FIXTURES = Path(__file__).parent / "fixtures-2026" / "reference-2026"
MESSAGES = "93eb42f3bd69f005727cc3a161e7ab0a8b2c99e4665d9eae5553fe9019ba7b32.json"
INTERACTIONS = "2cb6caa89a82691b08f59f724d697f518e57b07818c26c8a78c972dab8f3a95c.json"


def _fixture(name: str, folder: Path) -> dict[str, object]:
    shutil.copy(FIXTURES / name, folder / name)
    data: dict[str, object] = json.loads((FIXTURES / name).read_text())
    return data


def _recorded_text_deltas(lines: list[str]) -> str:
    deltas = (json.loads(line[6:]) for line in lines if line.startswith("data: {"))
    return "".join(
        d["delta"].get("text", "") for d in deltas if d.get("type") == "content_block_delta"
    )


def test_reference_messages_stream_replays_through_the_anthropic_sdk(tmp_path: Path) -> None:
    data = _fixture(MESSAGES, tmp_path)
    request = data["request"]
    assert isinstance(request, dict) and "status" not in data["response"]  # type: ignore[operator]
    payload = request["payload"]
    base_url = request["url"].removesuffix("/v1/messages")
    client = anthropic.Anthropic(base_url=base_url, api_key="replay-needs-no-key", max_retries=0)
    with (
        apirecorder.recording("replay", tmp_path, block_network=True),
        apirecorder.test_context(str(data["test_id"])),
    ):
        with client.messages.stream(
            model=payload["model"], messages=payload["messages"], max_tokens=payload["max_tokens"]
        ) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
    lines = data["response"]["body"]  # type: ignore[index]
    assert text == _recorded_text_deltas(lines)
    assert final.model == payload["model"]
    assert final.id == "msg_2ca635d951c9f414d5c01a88"


def test_reference_interactions_stream_replays_through_plain_httpx(tmp_path: Path) -> None:
    data = _fixture(INTERACTIONS, tmp_path)
    request = data["request"]
    assert isinstance(request, dict)
    with (
        apirecorder.recording("replay", tmp_path, block_network=True),
        apirecorder.test_context(str(data["test_id"])),
        httpx.Client() as client,
        client.stream("POST", request["url"], json=request["payload"]) as response,
    ):
        status, content_type = response.status_code, response.headers["content-type"]
        lines = list(response.iter_lines())
    assert (status, content_type) == (200, "text/event-stream")  # what the reference replays
    assert lines == data["response"]["body"]  # type: ignore[index]
