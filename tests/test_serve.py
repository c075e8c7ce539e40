"""``apirecorder serve``: the npm openai package records and replays through the server, and
the same recordings replay through the Python SDK in-process, both ways."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import openai
import pytest

import apirecorder
from apirecorder._cli.serve import serve_process
from tests.upstream import Upstream

JS = Path(__file__).parent / "js"
TEST_ID = "tests/test_serve.py::from_node"


def _node_ready() -> None:
    if shutil.which("node") is None:
        pytest.fail("Node.js is needed for the serve tests: install it (see README)")
    if not (JS / "node_modules" / "openai").is_dir():
        pytest.fail(f"the npm packages are not installed: run `npm ci --prefix {JS}`")


def node(base_url: str, test_id: str | None, *scenarios: str) -> dict[str, Any]:
    """What the npm openai client saw, scenario by scenario."""
    _node_ready()
    done = subprocess.run(
        ["node", str(JS / "openai_client.mjs"), base_url, test_id or "", *scenarios],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def python_chat(base_url: str) -> dict[str, Any]:
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
    answer = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Name a ringed planet"}]
    )
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    deltas = [c.choices[0].delta.content or "" for c in stream if c.choices]
    try:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "TRIGGER_400 please"}]
        )
        error: Any = "no error"
    except openai.BadRequestError as exc:
        error = {"status": exc.status_code, "message": exc.message}
    return {"content": answer.choices[0].message.content, "stream": deltas, "error": error}


SCENARIOS = ("chat", "stream", "error", "embeddings")


def _without_ids(seen: dict[str, Any]) -> dict[str, Any]:
    # A live call gives the application the provider's id; replay gives its stable rec- id.
    return {**seen, "chat": {k: v for k, v in seen["chat"].items() if k != "id"}}


def test_node_records_then_replays_through_the_server(upstream: Upstream, tmp_path: Path) -> None:
    with serve_process(
        "--mode", "record", "--dir", str(tmp_path), "--upstream", f"openai={upstream.url}"
    ) as url:
        live = node(f"{url}/v1", TEST_ID, *SCENARIOS)
    assert live["chat"]["content"] == "Echo: Name a ringed planet"
    assert "".join(live["stream"]) == "Echo: one two three"
    assert live["error"]["status"] == 400 and live["error"]["name"] == "BadRequestError"
    recorded = sorted(tmp_path.glob("*.json"))
    assert len(recorded) == 4
    assert {json.loads(p.read_text())["test_id"] for p in recorded} == {TEST_ID}
    upstream.stop()

    with serve_process("--dir", str(tmp_path)) as url:
        replayed = node(f"{url}/v1", TEST_ID, *SCENARIOS)
        # The same test id in the path, for clients that cannot set a header.
        prefixed = node(f"{url}/t/{_quoted(TEST_ID)}/v1", None, *SCENARIOS)
    assert replayed["chat"]["id"].startswith("rec-")
    assert _without_ids(replayed) == _without_ids(live)
    assert prefixed == replayed


def test_node_recordings_replay_in_python_and_python_recordings_in_node(
    upstream: Upstream, tmp_path: Path
) -> None:
    node_dir, python_dir = tmp_path / "node", tmp_path / "python"
    with serve_process(
        "--mode", "record", "--dir", str(node_dir), "--upstream", f"openai={upstream.url}"
    ) as url:
        from_node = node(f"{url}/v1", TEST_ID, "chat", "stream", "error")
    with apirecorder.recording("record", python_dir), apirecorder.test_context(TEST_ID):
        from_python = python_chat(f"{upstream.url}/v1")
    # One hash for the same request from either client: the same file names.
    assert sorted(p.name for p in node_dir.glob("*.json")) == sorted(
        p.name for p in python_dir.glob("*.json")
    )
    url = upstream.url
    upstream.stop()

    with apirecorder.recording("replay", node_dir), apirecorder.test_context(TEST_ID):
        assert python_chat(f"{url}/v1") == from_python
    with serve_process("--dir", str(python_dir)) as url:
        replayed = node(f"{url}/v1", TEST_ID, "chat", "stream", "error")
    assert _without_ids(replayed) == _without_ids(from_node)


def test_a_miss_answers_404_with_the_explanation(tmp_path: Path) -> None:
    with serve_process("--dir", str(tmp_path)) as url:
        miss = node(f"{url}/v1", TEST_ID, "miss")["miss"]
    # The npm client raises its own NotFoundError; its message is the recorder's explanation.
    assert miss["name"] == "NotFoundError" and miss["status"] == 404
    assert TEST_ID in miss["message"] and "record" in miss["message"]


def _quoted(test_id: str) -> str:
    from urllib.parse import quote

    return quote(test_id, safe="")
