"""Ids across layers (issue 10.4) and provider ids beyond OpenAI (issue 15.1).

A stable id the recorder handed out means the same thing in every layer: the SDK layer's
``rec-...`` id, sent back through the HTTP layer in a path (``responses.retrieve``,
``batches.retrieve``, ``files.content``), hashes as it did when recorded; HTTP answers of
provider APIs get stable ids too, so re-recording is byte-identical, ``apirecorder diff`` sees
every difference and ``normalize --check`` an id left live.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

import apirecorder
from apirecorder._cli import main as cli_main
from apirecorder._httpids import is_provider_path, live_ids, stable_url
from tests import offline
from tests.upstream import Upstream

TEST_ID = "tests/test_ids_across_layers.py::scenario"
ANTHROPIC_MODEL = "claude-sonnet-4-5"


def _openai(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)


def _anthropic(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key="sk-ant-test", max_retries=0)


def record_then_replay(
    tmp_path: Path, upstream: Upstream, scenario: Callable[[str], Any]
) -> tuple[Any, Any]:
    """The scenario's result live, then replayed with the upstream stopped."""
    url = upstream.url
    return offline.record_then_replay(upstream, tmp_path, lambda: scenario(url), TEST_ID)


def requests_of(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text())["request"] for p in sorted(folder.glob("*.json"))]


# -- 10.4: a stable id sent back through the HTTP layer ------------------------------------


def background_response(url: str) -> Any:
    client = _openai(url)
    created = client.responses.create(model="gpt-4o", input="Say hi", background=True)
    retrieved = client.responses.retrieve(created.id)  # the SDK layer's id, in an HTTP path
    return {"created": created.id, "retrieved": retrieved.id, "status": retrieved.status}


def test_an_sdk_id_in_a_later_http_path_replays(upstream: Upstream, tmp_path: Path) -> None:
    live, replayed = record_then_replay(tmp_path, upstream, background_response)
    assert replayed == live
    assert replayed["created"].startswith("rec-")
    assert replayed["retrieved"] == replayed["created"]  # the same object, the same id
    urls = [r["url"] for r in requests_of(tmp_path)]
    assert any(u.endswith(f"/v1/responses/{replayed['created']}") for u in urls)
    assert "resp_" not in json.dumps(requests_of(tmp_path))  # no live id in what is hashed


def background_polling(url: str) -> Any:
    client = _openai(url)
    response = client.responses.create(model="gpt-4o", input="Say hi", background=True)
    first_id = response.id
    while response.status != "completed":
        response = client.responses.retrieve(response.id)
    return {"id": first_id, "final_id": response.id, "final": response.status}


def test_background_polling_replays_to_completion(upstream: Upstream, tmp_path: Path) -> None:
    live, replayed = record_then_replay(tmp_path, upstream, background_polling)
    assert replayed == live
    assert replayed["final"] == "completed" and replayed["final_id"] == replayed["id"]


def batch_roundtrip(url: str) -> Any:
    client = _openai(url)
    batch = client.batches.create(
        input_file_id="file-input", endpoint="/v1/chat/completions", completion_window="24h"
    )
    polled = client.batches.retrieve(batch.id)  # an HTTP-layer id, sent back in a path
    return {"id": batch.id, "polled": polled.id, "status": polled.status}


def test_an_http_layer_id_in_a_later_path_replays(upstream: Upstream, tmp_path: Path) -> None:
    live, replayed = record_then_replay(tmp_path, upstream, batch_roundtrip)
    assert replayed == live
    assert replayed["id"].startswith("rec-") and replayed["polled"] == replayed["id"]


def test_record_mode_hands_the_caller_the_live_ids(upstream: Upstream, tmp_path: Path) -> None:
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        batch = batch_roundtrip(upstream.url)
    # The live upstream knew the batch by its live id: the poll found it.
    assert batch["id"].startswith("batch_") and batch["status"] == "in_progress"
    texts = [p.read_text() for p in tmp_path.glob("*.json")]
    (created,) = [json.loads(text) for text in texts if "batches/" not in text]
    assert created["response"]["body"]["id"].startswith("rec-")


def test_ids_in_paths_and_queries_map_and_other_urls_stay_byte_for_byte() -> None:
    ids = {"file-abc123": "rec-000000000001", "resp_9z": "rec-000000000002"}
    assert (
        stable_url("http://h/v1/files/file-abc123/content?after=resp_9z&x=a%20b", ids)
        == "http://h/v1/files/rec-000000000001/content?after=rec-000000000002&x=a%20b"
    )
    for url in ("http://h/v1/files?x=a+b&&y", "http://h/v1/files/other?after=z"):
        assert stable_url(url, ids) == url
    body = b'{"id":"rec-000000000001","items":["rec-000000000001-1"]}'
    assert live_ids(body, ids) == b'{"id":"file-abc123","items":["rec-000000000001-1"]}'


@pytest.mark.parametrize(
    ("url", "provider"),
    [
        ("https://api.openai.com/v1/chat/completions", True),
        ("https://api.anthropic.com/v1/messages/batches/x", True),
        ("https://g/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", True),
        ("http://localhost:11434/api/chat", True),
        ("https://api.openai.com/v1/files/file-1/content", False),
        ("https://api.openai.com/v1/models", False),
        ("https://example.com/misc/json", False),
    ],
)
def test_which_answers_get_stable_ids(url: str, provider: bool) -> None:
    assert is_provider_path(url) is provider


# -- 15.1: provider ids beyond OpenAI, byte-identical re-records ---------------------------


def anthropic_calls(url: str) -> Any:
    client = _anthropic(url)
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    plain = client.messages.create(model=ANTHROPIC_MODEL, max_tokens=32, messages=messages)
    with client.messages.stream(model=ANTHROPIC_MODEL, max_tokens=32, messages=messages) as stream:
        final = stream.get_final_message()
    return [plain, final]


def _record(folder: Path, url: str, scenario: Callable[[str], Any]) -> dict[str, bytes]:
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", folder):
        scenario(url)
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.json"))}


def test_rerecording_anthropic_is_byte_identical(upstream: Upstream, tmp_path: Path) -> None:
    first = _record(tmp_path / "a", upstream.url, anthropic_calls)
    second = _record(tmp_path / "b", upstream.url, anthropic_calls)
    assert len(first) == 2 and second == first
    text = b"".join(first.values()).decode()
    assert "msg_0" not in text and "rec-" in text


def test_anthropic_replays_with_stable_ids(upstream: Upstream, tmp_path: Path) -> None:
    live, replayed = record_then_replay(tmp_path, upstream, anthropic_calls)
    assert [m.model_dump() for m in replayed] == [m.model_dump() for m in live]
    assert replayed[0].id.startswith("rec-") and "rec-" in replayed[1].id


def gemini_rest(url: str) -> Any:
    endpoint = f"{url}/v1beta/models/gemini-2.0-flash:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    return httpx.post(endpoint, json=body, headers={"x-goog-api-key": "k"}).json()


def ollama_rest(url: str) -> Any:
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", f"{url}/api/chat", json=body) as response:
        return [json.loads(line) for line in response.iter_lines() if line]


@pytest.mark.parametrize("scenario", [gemini_rest, ollama_rest], ids=["gemini", "ollama"])
def test_other_providers_rerecord_byte_identical(
    scenario: Callable[[str], Any], upstream: Upstream, tmp_path: Path
) -> None:
    first = _record(tmp_path / "a", upstream.url, scenario)
    assert _record(tmp_path / "b", upstream.url, scenario) == first


def test_gemini_response_id_is_stable(upstream: Upstream, tmp_path: Path) -> None:
    live, replayed = record_then_replay(tmp_path, upstream, gemini_rest)
    assert replayed == live and replayed["responseId"].startswith("rec-")


# -- the CLI sees every difference -----------------------------------------------------------


def _cli(*args: str) -> int:
    try:
        return cli_main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)


def test_diff_reports_one_nested_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recording = {
        "test_id": TEST_ID,
        "request": {"method": "GET", "url": "http://h/v1/x", "headers": {}, "payload": None},
        "response": {"status": 200, "headers": {}, "body_format": "json", "body": {"a": {"b": 1}}},
    }
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(recording))
    recording["response"]["body"] = {"a": {"b": 2}}
    b.write_text(json.dumps(recording))
    assert _cli("diff", str(a), str(b)) == 1
    out = capsys.readouterr().out
    assert "same" not in out and "b" in out and "1" in out and "2" in out
    assert _cli("diff", str(a), str(a)) == 0


def test_normalize_check_flags_a_live_anthropic_id(
    upstream: Upstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _record(tmp_path, upstream.url, anthropic_calls)
    assert _cli("normalize", "--check", str(tmp_path)) == 0
    path = next(p for p in tmp_path.glob("*.json") if '"body_format": "json"' in p.read_text())
    data = json.loads(path.read_text())
    data["response"]["body"]["id"] = "msg_01XFDUDYJgAACzvnptvVoYEL"  # as written before 15.1
    data["response"]["body"]["content"][0]["id"] = "toolu_01A09q90qw90lq917835lq9"
    path.write_text(json.dumps(data, indent=2))
    capsys.readouterr()
    assert _cli("normalize", "--check", str(tmp_path)) == 1
    assert "would normalize" in capsys.readouterr().out
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(path, copy / path.name)
    assert _cli("normalize", "--yes", str(copy)) == 0
    assert "msg_01" not in (copy / path.name).read_text()


def test_async_anthropic_stream_rerecords_byte_identical(
    upstream: Upstream, tmp_path: Path
) -> None:
    def scenario(url: str) -> Any:
        async def run() -> Any:
            async with anthropic.AsyncAnthropic(
                base_url=url, api_key="sk-ant-test", max_retries=0
            ) as client:
                async with client.messages.stream(
                    model=ANTHROPIC_MODEL,
                    max_tokens=16,
                    messages=[{"role": "user", "content": "hi"}],
                ) as stream:
                    return await stream.get_final_message()

        return asyncio.run(run())

    first = _record(tmp_path / "a", upstream.url, scenario)
    assert _record(tmp_path / "b", upstream.url, scenario) == first


def anthropic_batch(url: str) -> Any:
    client = _anthropic(url)
    params = {
        "model": ANTHROPIC_MODEL,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
    }
    batch = client.messages.batches.create(requests=[{"custom_id": "one", "params": params}])
    while batch.processing_status != "ended":
        batch = client.messages.batches.retrieve(batch.id)
    return batch


def test_anthropic_batches_rerecord_byte_identical(upstream: Upstream, tmp_path: Path) -> None:
    first = _record(tmp_path / "a", upstream.url, anthropic_batch)
    assert _record(tmp_path / "b", upstream.url, anthropic_batch) == first
    text = b"".join(first.values()).decode()
    assert "msgbatch_" not in text  # in the id and in the results_url that names it
