"""Record through the real OpenAI SDK against a local upstream, then replay with it stopped."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

import apirecorder
from apirecorder._serialization import normalize_response_data
from tests.upstream import Upstream

TEST_ID = "tests/test_openai_record_replay.py::scenario"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def _client(upstream: Upstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="sk-test", max_retries=0)


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# Each scenario: a name and a function of the client returning a JSON-able result.
def _chat(c: openai.OpenAI) -> Any:
    return c.chat.completions.create(model="gpt-4o", messages=_user("Name a ringed planet"))


def _chat_stream_tools(c: openai.OpenAI) -> Any:
    stream = c.chat.completions.create(
        model="gpt-4o",
        messages=_user("Weather in Paris?"),
        tools=[WEATHER_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    return list(stream)


def _completion(c: openai.OpenAI) -> Any:
    return c.completions.create(model="gpt-3.5-turbo-instruct", prompt="Roses are", max_tokens=5)


def _completion_stream(c: openai.OpenAI) -> Any:
    return list(c.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi", stream=True))


def _embeddings(c: openai.OpenAI) -> Any:
    return c.embeddings.create(model="text-embedding-3-small", input=["a", "bb"], dimensions=4)


def _models(c: openai.OpenAI) -> Any:
    return list(c.models.list())


def _responses(c: openai.OpenAI) -> Any:
    return c.responses.create(model="gpt-4o", input="Say hi")


def _responses_stream(c: openai.OpenAI) -> Any:
    return list(c.responses.create(model="gpt-4o", input="Say hi", stream=True))


def _quirks(c: openai.OpenAI) -> Any:
    return c.chat.completions.create(model="gpt-4o", messages=_user("TRIGGER_QUIRKS"))


SCENARIOS: dict[str, Callable[[openai.OpenAI], Any]] = {
    "chat": _chat,
    "chat_stream_tools": _chat_stream_tools,
    "completion": _completion,
    "completion_stream": _completion_stream,
    "embeddings": _embeddings,
    "models": _models,
    "responses": _responses,
    "responses_stream": _responses_stream,
    "quirks": _quirks,
}


def _dump(result: Any) -> Any:
    if isinstance(result, list):
        return [_dump(item) for item in result]
    return result.model_dump(mode="json")


def _only_file(folder: Path) -> Path:
    files = sorted(folder.glob("*.json"))
    assert len(files) == 1, files
    return files[0]


@pytest.mark.parametrize("name", SCENARIOS)
def test_record_then_replay_offline(name: str, upstream: Upstream, tmp_path: Path) -> None:
    scenario = SCENARIOS[name]
    client = _client(upstream)
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = scenario(client)
    path = _only_file(tmp_path)
    upstream.stop()

    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        replayed = scenario(client)

    request_hash = path.stem.split("-")[1] if path.stem.startswith("models-") else path.stem
    if name == "models":
        # Model objects keep their ids and timestamps; one recorded list comes back in the
        # order the provider sent it (merging several files sorts by id).
        assert _dump(replayed) == _dump(live)
    elif isinstance(live, list):
        id_map: dict[str, str] = {}
        expected = [normalize_response_data(_dump(c), request_hash, id_map) for c in live]
        assert _dump(replayed) == expected
        assert [type(c) for c in replayed] == [type(c) for c in live]
    else:
        assert _dump(replayed) == normalize_response_data(_dump(live), request_hash)
        assert type(replayed) is type(live)


def test_quirky_provider_data_replays_without_validation(
    upstream: Upstream, tmp_path: Path
) -> None:
    client = _client(upstream)
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = _quirks(client)
    upstream.stop()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        replayed = _quirks(client)
    assert live.object == ""
    assert replayed.object == ""
    assert live.created is None
    assert replayed.created is None  # a null is not volatile: it stays null
    assert replayed.model_dump() == normalize_response_data(
        live.model_dump(), _only_file(tmp_path).stem
    )


def test_recording_file_matches_the_design_format(upstream: Upstream, tmp_path: Path) -> None:
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        _chat_stream_tools(_client(upstream))
    path = _only_file(tmp_path)
    raw = path.read_text(encoding="utf-8")
    data = json.loads(raw)
    assert raw.endswith("}\n") and raw.startswith('{\n  "test_id": ')
    assert list(data) == ["test_id", "request", "response", "format_version"]
    assert data["test_id"] == TEST_ID
    assert list(data["request"]) == ["method", "url", "headers", "body", "endpoint", "model"]
    assert data["request"]["url"] == f"{upstream.url}/v1/v1/chat/completions"
    assert data["request"]["endpoint"] == "/v1/chat/completions"
    assert data["request"]["headers"] == {}
    assert data["request"]["body"]["tools"] == [WEATHER_TOOL]
    response = data["response"]
    assert response["is_streaming"] is True
    chunk_type = "openai.types.chat.chat_completion_chunk.ChatCompletionChunk"
    assert {c["__type__"] for c in response["body"]} == {chunk_type}
    assert {c["__data__"]["id"] for c in response["body"]} == {f"rec-{path.stem[:12]}"}
    assert {c["__data__"]["created"] for c in response["body"]} == {0}
    calls = [
        tc
        for c in response["body"]
        for choice in c["__data__"]["choices"]
        for tc in choice["delta"].get("tool_calls") or []
    ]
    assert calls and calls[0]["function"]["name"] == "get_weather"


def test_rerecording_gives_byte_identical_files(upstream: Upstream, tmp_path: Path) -> None:
    client = _client(upstream)
    contents: list[dict[str, bytes]] = []
    for run in ("first", "second"):
        folder = tmp_path / run
        with apirecorder.test_context(TEST_ID), apirecorder.recording("record", folder):
            for scenario in SCENARIOS.values():
                scenario(client)
        contents.append({p.name: p.read_bytes() for p in folder.glob("*.json")})
    assert len(contents[0]) == len(SCENARIOS)
    assert contents[0] == contents[1]


@pytest.mark.parametrize(
    ("prompt", "error_class", "status"),
    [("TRIGGER_400", openai.BadRequestError, 400), ("TRIGGER_429", openai.RateLimitError, 429)],
)
def test_errors_replay_as_the_sdks_own_class(
    prompt: str,
    error_class: type[openai.APIStatusError],
    status: int,
    upstream: Upstream,
    tmp_path: Path,
) -> None:
    client = _client(upstream)

    def call() -> openai.APIStatusError:
        with pytest.raises(error_class) as err:
            client.chat.completions.create(model="gpt-4o", messages=_user(prompt))
        return err.value

    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = call()
    upstream.stop()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        replayed = call()
    assert replayed.status_code == live.status_code == status
    assert replayed.body == live.body
    assert str(replayed) == str(live)
    data = json.loads(_only_file(tmp_path).read_text())
    assert data["response"]["is_exception"] is True
    assert data["response"]["body"] is None
    assert data["response"]["exception_data"]["type"] == error_class.__name__
    assert data["response"]["exception_data"]["status_code"] == status
    assert data["response"]["exception_data"]["provider"] == "openai"


def test_stream_cut_by_a_server_error_replays_chunks_then_raises(
    upstream: Upstream, tmp_path: Path
) -> None:
    client = _client(upstream)

    def call() -> tuple[list[str], openai.APIError]:
        received: list[str] = []
        stream = client.chat.completions.create(
            model="gpt-4o", messages=_user("TRIGGER_STREAM_ERROR please"), stream=True
        )
        with pytest.raises(openai.APIError) as err:
            for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
        return received, err.value

    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live_chunks, live_error = call()
    upstream.stop()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        replay_chunks, replay_error = call()
    assert live_chunks and replay_chunks == live_chunks
    assert type(replay_error) is type(live_error)
    assert replay_error.message == live_error.message
    data = json.loads(_only_file(tmp_path).read_text())["response"]
    assert data["is_exception"] is True
    assert data["is_streaming"] is True
    assert len(data["body"]) == len(live_chunks)


def test_async_client_record_then_replay(upstream: Upstream, tmp_path: Path) -> None:
    async def scenario(client: openai.AsyncOpenAI) -> list[Any]:
        chat = await client.chat.completions.create(model="gpt-4o", messages=_user("hello"))
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=_user("stream me"), stream=True
        )
        async with stream:
            chunks = [c async for c in stream]
        emb = await client.embeddings.create(model="text-embedding-3-small", input="x")
        resp = await client.responses.create(model="gpt-4o", input="hi", stream=True)
        events = [e async for e in resp]
        await resp.close()
        models = [m async for m in client.models.list()]
        page = await client.models.list()
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="gpt-4o", messages=_user("TRIGGER_429"))
        return [chat, chunks, emb, events, models, page.data]

    base_url = f"{upstream.url}/v1"

    async def in_a_fresh_client() -> list[Any]:
        # One client per event loop, closed before its loop ends.
        async with openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0) as client:
            return await scenario(client)

    def run(mode: str) -> list[Any]:
        with apirecorder.test_context(TEST_ID), apirecorder.recording(mode, tmp_path):
            return asyncio.run(in_a_fresh_client())

    live = run("record")
    upstream.stop()
    replayed = run("replay")
    chat, chunks, emb, events, models, page = replayed
    assert chat.choices[0].message.content == live[0].choices[0].message.content
    assert [c.choices[0].delta.content for c in chunks if c.choices] == [
        c.choices[0].delta.content for c in live[1] if c.choices
    ]
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id.startswith("rec-")
    assert emb.data[0].embedding == live[2].data[0].embedding
    assert [e.type for e in events] == [e.type for e in live[3]]
    assert [m.id for m in live[4]] == [m.id for m in models] == [m.id for m in page]


def test_stream_supports_context_manager_and_close(upstream: Upstream, tmp_path: Path) -> None:
    client = _client(upstream)
    args: dict[str, Any] = {"model": "gpt-4o", "messages": _user("a b c d"), "stream": True}
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        with client.chat.completions.create(**args) as stream:
            first = next(iter(stream))  # stop early: the recording is still complete
    upstream.stop()
    recorded = json.loads(_only_file(tmp_path).read_text())["response"]["body"]
    assert len(recorded) > 2
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        with client.chat.completions.create(**args) as stream:
            assert isinstance(stream, openai.Stream)
            again = next(iter(stream))
            assert stream.response.status_code == 200
            assert stream.response.headers["content-type"] == "text/event-stream"
        stream.close()
        all_chunks = list(client.chat.completions.create(**args))
    assert again.choices[0].delta.content == first.choices[0].delta.content
    assert len(all_chunks) == len(recorded)


def _tool_conversation(client: openai.OpenAI) -> str:
    """Two turns: the model asks for a tool, the tool's answer goes back with the call id."""
    messages: list[Any] = _user("Weather in Paris?")
    first = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
    second = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL])
    return second.choices[0].message.content or ""


def test_ids_sent_back_to_the_model_match_between_record_and_replay(
    upstream: Upstream, tmp_path: Path
) -> None:
    client = _client(upstream)
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live_answer = _tool_conversation(client)
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 2
    second_request = [json.loads(p.read_text())["request"]["body"] for p in files]
    tool_messages = [m for body in second_request for m in body["messages"] if m["role"] == "tool"]
    # The recording holds the stable id, the same one replay hands to the application.
    assert tool_messages[0]["tool_call_id"].startswith("call_rec-")
    upstream.stop()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        assert _tool_conversation(client) == live_answer


def test_record_if_missing_records_only_what_is_missing(upstream: Upstream, tmp_path: Path) -> None:
    client = _client(upstream)
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        _chat(client)
    first = _only_file(tmp_path)
    before = first.read_bytes()
    upstream.reset()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record-if-missing", tmp_path):
        _chat(client)  # replayed
        _completion(client)  # recorded
    assert [r.path for r in upstream.requests] == ["/v1/completions"]
    assert len(list(tmp_path.glob("*.json"))) == 2
    assert first.read_bytes() == before


def test_record_mode_always_calls_and_overwrites(upstream: Upstream, tmp_path: Path) -> None:
    client = _client(upstream)
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = _chat(client).choices[0].message.content
    path = _only_file(tmp_path)
    fresh = path.read_bytes()
    # Make the file on disk say something the upstream never said: a second record run must
    # neither replay it nor keep it.
    stale = json.loads(fresh)
    stale["response"]["body"]["__data__"]["choices"][0]["message"]["content"] = "stale"
    path.write_text(json.dumps(stale, indent=2) + "\n")
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        again = _chat(client).choices[0].message.content
    assert len(upstream.requests_to("/v1/chat/completions")) == 2
    assert again == live != "stale"
    assert _only_file(tmp_path) == path
    assert path.read_bytes() == fresh


def test_live_mode_writes_nothing(upstream: Upstream, tmp_path: Path) -> None:
    with apirecorder.test_context(TEST_ID), apirecorder.recording("live", tmp_path):
        result = _chat(_client(upstream))
    assert result.choices[0].message.content
    assert len(upstream.requests) == 1
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_replay_miss_names_everything_needed_to_fix_it(tmp_path: Path) -> None:
    client = openai.OpenAI(base_url="https://api.openai.com/v1", api_key="unused")
    test_id = "tests/test_chat.py::test_saturn"
    with (
        apirecorder.test_context(test_id),
        apirecorder.recording("replay", tmp_path),
        pytest.raises(apirecorder.RecordingNotFoundError) as err,
    ):
        client.chat.completions.create(model="gpt-4o", messages=_user("Which planet has rings?"))
    assert str(err.value) == (
        "No recording for this inference call (mode: replay).\n"
        "  test id:  tests/test_chat.py::test_saturn\n"
        "  endpoint: /v1/chat/completions\n"
        "  model:    gpt-4o\n"
        "  hash:     4cf500218a07f09fc6dcdd90378d2d3a18d4459ae4815e5eb09bda0c6bef7e62\n"
        f"  searched: {tmp_path}\n"
        "Nearest recording: none for /v1/chat/completions in the searched folders.\n"
        "To record it, run:\n"
        "  pytest tests/test_chat.py::test_saturn --apirecorder-mode=record-if-missing"
    )
    assert err.value.test_id == test_id


def test_co_located_layout_uses_the_test_files_folder(upstream: Upstream, tmp_path: Path) -> None:
    client = _client(upstream)
    with (
        apirecorder.test_context("suite/chat/test_a.py::test_one"),
        apirecorder.recording("record", root=tmp_path),
    ):
        _chat(client)
    with apirecorder.recording("record", root=tmp_path):  # no test id: session set-up
        _completion(client)
    assert len(list((tmp_path / "suite" / "chat" / "recordings").glob("*.json"))) == 1
    assert len(list((tmp_path / "recordings").glob("*.json"))) == 1
    upstream.stop()
    with (
        apirecorder.test_context("suite/chat/test_a.py::test_one"),
        apirecorder.recording("replay", root=tmp_path),
    ):
        _chat(client)


def test_environment_variables_choose_mode_and_folder(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APIRECORDER_MODE", "record")
    monkeypatch.setenv("APIRECORDER_DIR", str(tmp_path / "env"))
    with apirecorder.test_context(TEST_ID), apirecorder.recording() as session:
        assert session.mode is apirecorder.Mode.RECORD
        _chat(_client(upstream))
    _only_file(tmp_path / "env")


def test_azure_clients_share_the_openai_layer(upstream: Upstream, tmp_path: Path) -> None:
    from tests.upstream import openai_api

    upstream.add_route(
        "POST", "/openai/deployments/{deployment}/chat/completions", openai_api.chat_completions
    )
    sync_client = openai.AzureOpenAI(
        azure_endpoint=upstream.url, api_key="k", api_version="2024-06-01", max_retries=0
    )
    endpoint = upstream.url

    def run(mode: str) -> tuple[str, str]:
        with apirecorder.test_context(TEST_ID), apirecorder.recording(mode, tmp_path):
            plain = sync_client.chat.completions.create(model="my-gpt", messages=_user("azure"))

            async def streamed() -> str:
                async with openai.AsyncAzureOpenAI(
                    azure_endpoint=endpoint, api_key="k", api_version="2024-06-01", max_retries=0
                ) as async_client:
                    stream = await async_client.chat.completions.create(
                        model="my-gpt", messages=_user("azure stream"), stream=True
                    )
                    return "".join(
                        [c.choices[0].delta.content or "" async for c in stream if c.choices]
                    )

            return plain.choices[0].message.content or "", asyncio.run(streamed())

    live = run("record")
    assert len(upstream.requests_to("/openai/deployments/my-gpt/chat/completions")) == 2
    upstream.stop()
    assert run("replay") == live == ("Echo: azure", "Echo: azure stream")
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_the_callers_own_ids_are_never_rewritten(upstream: Upstream, tmp_path: Path) -> None:
    client = _client(upstream)
    metadata = {"user_id": "u1", "order_id": "A-1", "session_id": "sess_2024x"}

    def calls() -> list[Any]:
        first = client.responses.create(model="gpt-4o", input="one", metadata=metadata)
        second = client.responses.create(model="gpt-4o", input="two", metadata=metadata)
        return [first.metadata, second.metadata]

    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = calls()
    bodies = [json.loads(p.read_text())["request"]["body"] for p in tmp_path.glob("*.json")]
    assert [b["metadata"] for b in bodies] == [metadata, metadata]
    upstream.stop()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        assert calls() == live == [metadata, metadata]


def test_live_mode_does_not_touch_arguments_it_could_not_record(
    upstream: Upstream, tmp_path: Path
) -> None:
    class Opaque:
        """Not JSON: a recording could not hold it, but live mode never tries."""

    client = _client(upstream)
    with apirecorder.test_context(TEST_ID), apirecorder.recording("live", tmp_path):
        client.chat.completions.create(
            model="gpt-4o",
            messages=_user("hi"),
            extra_headers={"X-Trace": "1"},
            metadata={"k": "v"},
            timeout=5.0,
            extra_query={"q": "1"},
        )
        with pytest.raises(TypeError):  # the SDK's own error for a body it cannot encode
            client.chat.completions.create(
                model="gpt-4o", messages=_user("hi"), extra_body={"o": Opaque()}
            )
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_debug_logging_shows_hash_input_folders_and_misses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("APIRECORDER_DEBUG", "1")
    client = openai.OpenAI(base_url="https://api.openai.com/v1", api_key="unused")
    with (
        caplog.at_level("WARNING", logger="apirecorder"),
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("replay", tmp_path),
        pytest.raises(apirecorder.RecordingNotFoundError) as err,
    ):
        client.embeddings.create(model="m", input="hi")
    call_line, miss_line = caplog.messages
    assert f"hash={err.value.request_hash}" in call_line
    assert '"body": {"input": "hi", "model": "m"}' in call_line
    assert miss_line == f"apirecorder: miss {err.value.request_hash} in {[str(tmp_path)]}"
