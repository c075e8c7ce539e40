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


SCENARIOS = ("chat", "stream", "error", "embeddings", "responses")


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
    assert len(recorded) == 6
    assert live["responses"]["text"] == "Echo: Say hi"
    assert live["responses"]["kinds"][0] == "response.created"
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


# -- any process: Python clients of other providers through the server ------------------------


def _anthropic_calls(base_url: str) -> dict[str, Any]:
    import anthropic

    client = anthropic.Anthropic(
        base_url=base_url,
        api_key="sk-ant-from-the-client",
        max_retries=0,
        default_headers={"X-Apirecorder-Test-Id": TEST_ID},
    )
    user = [{"role": "user", "content": "Name a ringed planet"}]
    plain = client.messages.create(model="claude-sonnet-4-5", max_tokens=32, messages=user)
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=32, messages=user) as s:
        streamed = "".join(s.text_stream)
    try:
        client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=8,
            messages=[{"role": "user", "content": "TRIGGER_400"}],
        )
        error: Any = "no error"
    except anthropic.BadRequestError as exc:
        error = {"status": exc.status_code, "type": type(exc).__name__}
    return {"plain": plain.content[0].text, "streamed": streamed, "error": error}


def _ollama_calls(host: str) -> dict[str, Any]:
    import ollama

    client = ollama.Client(host=host, headers={"X-Apirecorder-Test-Id": TEST_ID})
    chat = client.chat(model="llama3.2", messages=[{"role": "user", "content": "Hello there"}])
    stream = client.chat(
        model="llama3.2", messages=[{"role": "user", "content": "one two"}], stream=True
    )
    return {
        "chat": chat.message.content,
        "stream": "".join(part.message.content or "" for part in stream),
    }


def _gemini_calls(base_url: str) -> dict[str, Any]:
    from google import genai
    from google.genai import errors, types

    options = types.HttpOptions(base_url=base_url, headers={"X-Apirecorder-Test-Id": TEST_ID})
    client = genai.Client(api_key="AIza-from-the-client", http_options=options)
    answer = client.models.generate_content(model="gemini-2.0-flash", contents="Name a planet")
    pieces = [
        chunk.text
        for chunk in client.models.generate_content_stream(
            model="gemini-2.0-flash", contents="one two"
        )
    ]
    try:
        client.models.generate_content(model="gemini-2.0-flash", contents="TRIGGER_400")
        error: Any = "no error"
    except errors.ClientError as exc:
        error = {"code": exc.code, "status": exc.status}
    return {"text": answer.text, "pieces": pieces, "error": error}


@pytest.mark.parametrize(
    ("provider", "calls"),
    [("anthropic", _anthropic_calls), ("ollama", _ollama_calls), ("gemini", _gemini_calls)],
)
def test_other_providers_record_and_replay_through_the_server(
    provider: str, calls: Any, upstream: Upstream, tmp_path: Path
) -> None:
    # Raw HTTP recordings hash the upstream's URL: replay names the same upstream.
    where = f"{provider}={upstream.url}"
    with serve_process("--mode", "record", "--dir", str(tmp_path), "--upstream", where) as url:
        live = calls(url)
    written = b"".join(p.read_bytes() for p in tmp_path.glob("*.json"))
    assert written and b"sk-ant-from-the-client" not in written
    upstream.stop()
    with serve_process("--dir", str(tmp_path), "--upstream", where) as url:
        assert calls(url) == live


# -- bad input, binding, shutdown ------------------------------------------------------------------


def test_bad_requests_get_a_clear_error_and_the_server_keeps_serving(tmp_path: Path) -> None:
    import httpx

    with serve_process("--dir", str(tmp_path), "--max-body", "1000") as url:
        not_json = httpx.post(f"{url}/v1/chat/completions", content=b"{not json")
        assert not_json.status_code == 400
        assert "not JSON" in not_json.json()["error"]["message"]
        huge = httpx.post(f"{url}/v1/chat/completions", content=b"x" * 5000)
        assert huge.status_code == 413
        unknown = httpx.get(f"{url}/nowhere/at/all", headers={"X-Apirecorder-Test-Id": TEST_ID})
        assert unknown.status_code == 404
        assert "--upstream http=URL" in unknown.json()["error"]["message"]
        assert httpx.get(f"{url}/health").json()["status"] == "ok"


def test_binding_beyond_loopback_needs_a_flag() -> None:
    from apirecorder._cli import main

    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2


def test_sigterm_stops_the_server_cleanly(tmp_path: Path) -> None:
    import signal
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "apirecorder._cli", "serve", "--port", "0", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("APIRECORDER_SERVE_URL="):
            break
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert "stopped" in process.stdout.read()


def test_a_hundred_concurrent_streams_each_get_their_own_answer(
    upstream: Upstream, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    prompts = [f"stream number {n} of many" for n in range(100)]

    def ask(url: str, prompt: str) -> str:
        client = openai.OpenAI(
            base_url=f"{url}/v1",
            api_key="sk-test",
            max_retries=0,
            default_headers={"X-Apirecorder-Test-Id": TEST_ID},
        )
        stream = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": prompt}], stream=True
        )
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    with (
        serve_process(
            "--mode", "record", "--dir", str(tmp_path), "--upstream", f"openai={upstream.url}"
        ) as url,
        ThreadPoolExecutor(max_workers=100) as pool,
    ):
        recorded = list(pool.map(lambda p: ask(url, p), prompts))
    upstream.stop()
    with serve_process("--dir", str(tmp_path)) as url, ThreadPoolExecutor(100) as pool:
        replayed = list(pool.map(lambda p: ask(url, p), prompts))
    assert recorded == [f"Echo: {p}" for p in prompts]
    assert replayed == recorded


# -- the docs' curl examples -------------------------------------------------------------------

DOCS = Path(__file__).parent.parent / "docs" / "serve.md"


def _curl_examples() -> list[str]:
    import re

    blocks = re.findall(r"```sh\n(.*?)```", DOCS.read_text(), re.S)
    return [block for block in blocks if block.startswith("curl ")]


def _run_curl(example: str, url: str) -> str:
    import os

    if shutil.which("curl") is None:
        pytest.fail("curl is needed for the docs' examples: apt-get install curl")
    script = example.replace("http://127.0.0.1:8765", url)
    env = {**os.environ, "OPENAI_API_KEY": "sk-docs-example-key"}
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    return done.stdout


def test_the_docs_curl_examples_record_and_replay(upstream: Upstream, tmp_path: Path) -> None:
    examples = _curl_examples()
    assert len(examples) == 2
    where = f"openai={upstream.url}"
    with serve_process("--mode", "record", "--dir", str(tmp_path), "--upstream", where) as url:
        live = [_run_curl(example, url) for example in examples]
    upstream.stop()
    with serve_process("--dir", str(tmp_path)) as url:
        replayed = [_run_curl(example, url) for example in examples]
    answer = json.loads(replayed[0])
    assert answer["choices"][0]["message"]["content"] == "Echo: Which planet has rings?"
    assert json.loads(live[0])["choices"][0]["message"] == answer["choices"][0]["message"]
    events = [line for line in replayed[1].splitlines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]" and len(events) > 3
    assert b"sk-docs-example-key" not in b"".join(p.read_bytes() for p in tmp_path.glob("*"))
