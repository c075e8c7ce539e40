"""apirecorder's own recordings, read the way the reference recorder reads them.

Each call is recorded through the real client against the local upstream; then the reference's
hash function (``tests/reference_impl.py``, transcribed from its source) must give each file's
name, and each file must have the shape the reference's replay reads (reference notes 3-5):
typed objects as ``{"__type__", "__data__"}``, ``is_streaming``, streams as chunk lists, raw-HTTP
streams as lists of SSE lines, errors with the fields its ``deserialize_exception`` reads.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import anthropic
import ollama
import openai
import pytest
import tavily  # type: ignore[import-untyped]

import apirecorder
from tests import reference_impl
from tests.upstream import MISSING_MODEL, Response, Upstream

TEST_ID = "tests/test_reference_both_ways.py::scenario"
MODEL_LISTS = ("/api/tags", "/v1/models", "/v1/openai/v1/models")


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _record_everything(upstream: Upstream, folder: Path) -> None:
    oai = openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="sk-test", max_retries=0)
    claude = anthropic.Anthropic(base_url=upstream.url, api_key="sk-ant-test", max_retries=0)
    tools = ["tavily:TavilyClient.search tavily web_search"]
    with (
        apirecorder.recording("record", folder, tools=tools),
        apirecorder.test_context(TEST_ID),
        ollama.Client(host=upstream.url) as olla,
    ):
        oai.chat.completions.create(model="gpt-4o", messages=_user("Name a ringed planet"))
        list(oai.chat.completions.create(model="gpt-4o", messages=_user("Stream"), stream=True))
        oai.embeddings.create(model="text-embedding-3-small", input=["a", "bb"])
        list(oai.models.list())
        olla.chat(model="llama3.2:3b", messages=_user("Hello"))
        olla.list()
        with pytest.raises(ollama.ResponseError):
            olla.chat(model=MISSING_MODEL, messages=_user("hi"))
        with claude.messages.stream(
            model="claude-test", max_tokens=20, messages=_user("raw stream")
        ) as stream:
            stream.get_final_message()
        tavily.TavilyClient(api_key="tvly-test", api_base_url=upstream.url).search("saturn")


def _reference_name(recording: dict[str, Any]) -> str:
    """The file name the reference's lookup opens for this recording."""
    request = recording["request"]
    test_id = recording["test_id"]
    if "tool_name" in request:
        name = reference_impl.tool_hash(
            request["provider"], request["tool_name"], request["kwargs"]
        )
    elif "payload" in request:
        name = reference_impl.http_hash(
            request["url"], request["method"], request["payload"], test_id
        )
    else:
        name = reference_impl.inference_hash(
            request["method"], request["url"], request["body"], test_id
        )
        if request["endpoint"] in MODEL_LISTS:
            # The reference's _model_identifiers_digest: `m.model` for Ollama, `m.id` else.
            key = "model" if request["endpoint"] == "/api/tags" else "id"
            body = recording["response"]["body"]
            items = body["__data__"]["models"] if isinstance(body, dict) else body
            ids = sorted({item.get("__data__", item)[key] for item in items})
            digest = hashlib.sha256("|".join(ids).encode()).hexdigest()[:8]
            return f"models-{name}-{digest}.json"
    return f"{name}.json"


def _is_typed(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"__type__", "__data__"}


def _check_reference_shape(recording: dict[str, Any]) -> str:
    """Fail unless the reference's replay can read this recording; say what kind it is."""
    request, response = recording["request"], recording["response"]
    assert isinstance(response["is_streaming"], bool)
    if response.get("is_exception"):
        data = response["exception_data"]
        assert {"category", "type", "message", "status_code", "body"} <= set(data)
        assert isinstance(response["exception_message"], str)
        return "error"
    body = response["body"]
    if "payload" in request:  # the reference's _MockStreamResponse yields each item as a line
        assert response["is_streaming"] is True
        assert all(isinstance(line, str) for line in body) and body[-1] == ""
        return "http stream"
    if "tool_name" in request:
        assert response["is_streaming"] is False and body is not None
        return "tool"
    assert {"method", "url", "body", "endpoint", "model"} <= set(request)
    if response["is_streaming"]:
        assert body and all(_is_typed(chunk) for chunk in body)
        return "stream"
    if request["endpoint"] == "/v1/models":  # combined from each file's list of models
        assert all(_is_typed(item) for item in body)
        return "model list"
    if request["endpoint"] == "/api/tags":  # a ListResponse, whose `models` it combines
        assert _is_typed(body) and body["__type__"] == "ollama._types.ListResponse"
        return "model list"
    assert _is_typed(body), body
    return "object"


def test_the_reference_finds_and_reads_every_recording(upstream: Upstream, tmp_path: Path) -> None:
    _record_everything(upstream, tmp_path)
    files = sorted(tmp_path.glob("*.json"))
    kinds: dict[str, list[str]] = {}
    for path in files:
        recording = json.loads(path.read_text())
        assert path.name == _reference_name(recording), recording["request"]
        kinds.setdefault(_check_reference_shape(recording), []).append(path.name)
    assert {kind: len(names) for kind, names in kinds.items()} == {
        "object": 3,  # chat, embedding, Ollama chat
        "stream": 1,
        "model list": 2,
        "error": 1,
        "http stream": 1,
        "tool": 1,
    }


def test_an_ollama_error_rebuilt_as_the_reference_does_reads_as_the_live_one(
    upstream: Upstream, tmp_path: Path
) -> None:
    with (
        apirecorder.recording("record", tmp_path),
        apirecorder.test_context(TEST_ID),
        ollama.Client(host=upstream.url) as client,
        pytest.raises(ollama.ResponseError) as live,
    ):
        client.chat(model=MISSING_MODEL, messages=_user("hi"))
    [path] = tmp_path.glob("*.json")
    data = json.loads(path.read_text())["response"]["exception_data"]
    assert (data["category"], data["provider"], data["type"]) == (
        "provider_sdk",
        "ollama",
        "ResponseError",
    )
    # The reference's create_provider_error for "ollama":
    rebuilt = ollama.ResponseError(error=data["message"], status_code=data["status_code"])
    assert (rebuilt.error, rebuilt.status_code, str(rebuilt)) == (
        live.value.error,
        live.value.status_code,
        str(live.value),
    )
    assert str(rebuilt).count("status code") == 1


def test_a_failed_ollama_list_replays_here_and_fails_loudly_in_the_reference(
    upstream: Upstream, tmp_path: Path
) -> None:
    upstream.add_route(
        "GET", "/api/tags", lambda request: Response(500, body=b'{"error": "tags broke"}')
    )
    with apirecorder.test_context(TEST_ID), ollama.Client(host=upstream.url) as client:
        with apirecorder.recording("record", tmp_path), pytest.raises(ollama.ResponseError):
            client.list()
        upstream.stop()
        with (
            apirecorder.recording("replay", tmp_path, block_network=True),
            pytest.raises(ollama.ResponseError) as replayed,
        ):
            client.list()
    assert (replayed.value.error, replayed.value.status_code) == ("tags broke", 500)
    [path] = tmp_path.glob("models-*.json")
    response = json.loads(path.read_text())["response"]
    # No file makes the reference raise again (it reads the body before is_exception); a null
    # body makes it fail loudly, where an empty list would replay as no models (docs/http.md).
    assert response["body"] is None and response["is_exception"] is True


def test_a_reference_file_of_a_call_with_transport_arguments_is_found(
    upstream: Upstream, tmp_path: Path
) -> None:
    client = openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="sk-test", max_retries=0)

    def chat() -> str:
        completion = client.chat.completions.create(
            model="gpt-4o", messages=_user("Hi"), timeout=30.0, extra_headers={"X-Trace": "t"}
        )
        return str(completion.choices[0].message.content)

    ours = tmp_path / "ours"
    with apirecorder.recording("record", ours), apirecorder.test_context(TEST_ID):
        live = chat()
    [path] = ours.glob("*.json")
    recording = json.loads(path.read_text())
    assert "timeout" not in recording["request"]["body"]  # ours: transport stays out
    # The same call as the reference writes it: every keyword argument in body and hash.
    request = recording["request"]
    request["body"].update(timeout=30.0, extra_headers={"X-Trace": "t"})
    name = reference_impl.inference_hash("POST", request["url"], request["body"], TEST_ID)
    assert name != path.stem  # only the lookup's fallback finds it
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / f"{name}.json").write_text(json.dumps(recording))
    upstream.stop()
    with (
        apirecorder.recording("replay", theirs, block_network=True),
        apirecorder.test_context(TEST_ID),
    ):
        assert chat() == live
    shutil.rmtree(ours)
