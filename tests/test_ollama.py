"""The Ollama SDK layer: record every client method against the local upstream, replay offline."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import ollama
import pytest

import apirecorder
from tests.upstream import (
    MISSING_MODEL,
    TRIGGER_500,
    TRIGGER_STREAM_ERROR,
    Request,
    Response,
    Upstream,
    json_response,
)

TEST_ID = "tests/test_ollama.py::scenario"
MODEL = "llama3.2:3b"
EMBED_MODEL = "nomic-embed-text:latest"
EPOCH = "1970-01-01T00:00:00.000000Z"
DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")
FIXTURES = Path(__file__).parent / "fixtures" / "reference-sample"
PS_FIXTURES = (
    "68a0a14e828ca575c2150f6de6961bf8d326b1ce1beb6902a7aa369b07f7e17a.json",
    "e24ac6cc7566dbe6d1410cbb58d1270f7cf4f9e662c0f4c214838314662b7178.json",
)
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


TOOLS = [WEATHER_TOOL]


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# (name, client method, positional args, keyword args): one recording each.
STEPS: list[tuple[str, str, tuple[Any, ...], dict[str, Any]]] = [
    ("chat", "chat", (), {"model": MODEL, "messages": _user("Name a ringed planet")}),
    ("chat_stream", "chat", (), {"model": MODEL, "messages": _user("a b c d"), "stream": True}),
    ("chat_tools", "chat", (), {"model": MODEL, "messages": _user("Paris?"), "tools": TOOLS}),
    ("chat_think_stream", "chat", (MODEL, _user("why")), {"think": True, "stream": True}),
    ("generate", "generate", (MODEL, "Why is the sky blue"), {}),
    ("generate_stream", "generate", (), {"model": MODEL, "prompt": "one two", "stream": True}),
    ("embed", "embed", (), {"model": EMBED_MODEL, "input": ["a", "bb"], "dimensions": 4}),
    ("ps", "ps", (), {}),
    ("pull", "pull", (MODEL,), {}),
    ("pull_stream", "pull", (), {"model": MODEL, "stream": True}),
    ("list", "list", (), {}),
    ("show", "show", (), {"model": MODEL}),
    ("chat_missing", "chat", (), {"model": MISSING_MODEL, "messages": _user("hi")}),
    ("chat_stream_missing", "chat", (), {"model": MISSING_MODEL, "stream": True}),
    ("generate_500", "generate", (), {"model": MODEL, "prompt": TRIGGER_500}),
    (
        "generate_stream_error",
        "generate",
        (),
        {"model": MODEL, "prompt": f"x {TRIGGER_STREAM_ERROR} y", "stream": True},
    ),
    ("pull_stream_missing", "pull", (), {"model": MISSING_MODEL, "stream": True}),
    ("show_missing", "show", (MISSING_MODEL,), {}),
]  # fmt: skip


MakeClient = Callable[[str], ollama.Client]


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    """Make sync Ollama clients that are closed when the test ends."""
    with ExitStack() as stack:
        yield lambda host: stack.enter_context(ollama.Client(host=host))


# -- outcomes: what a test sees of a call, comparable between live and replay -----------


def _describe(obj: Any) -> dict[str, Any]:
    return {
        "type": type(obj).__name__,
        "dump": obj.model_dump(mode="json"),
        # The fields set tell `"tool_calls" in message` apart; replay must keep them.
        "set": obj.model_dump(mode="json", exclude_unset=True),
    }


def _error(exc: ollama.ResponseError) -> dict[str, Any]:
    return {"error": exc.error, "status": exc.status_code, "str": str(exc)}


def _run_sync(client: ollama.Client, method: str, args: tuple[Any, ...], kwargs: Any) -> Any:
    try:
        result = getattr(client, method)(*args, **kwargs)
    except ollama.ResponseError as exc:
        return _error(exc)
    if not kwargs.get("stream"):
        return _describe(result)
    assert isinstance(result, Iterator)
    items: list[Any] = []
    try:
        for chunk in result:
            items.append(_describe(chunk))
    except ollama.ResponseError as exc:
        items.append(_error(exc))
    return items


async def _run_async(
    client: ollama.AsyncClient, method: str, args: tuple[Any, ...], kwargs: Any
) -> Any:
    try:
        result = await getattr(client, method)(*args, **kwargs)
    except ollama.ResponseError as exc:
        return _error(exc)
    if not kwargs.get("stream"):
        return _describe(result)
    assert isinstance(result, AsyncIterator)
    items: list[Any] = []
    try:
        async for chunk in result:
            items.append(_describe(chunk))
    except ollama.ResponseError as exc:
        items.append(_error(exc))
    return items


def _sync_outcomes(host: str, mode: str, folder: Path) -> dict[str, Any]:
    with (
        ollama.Client(host=host) as client,
        apirecorder.test_context(TEST_ID),
        apirecorder.recording(mode, folder),
    ):
        return {name: _run_sync(client, m, a, k) for name, m, a, k in STEPS}


def _async_outcomes(host: str, mode: str, folder: Path) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        client = ollama.AsyncClient(host=host)
        async with client:
            return {name: await _run_async(client, m, a, k) for name, m, a, k in STEPS}

    with apirecorder.test_context(TEST_ID), apirecorder.recording(mode, folder):
        return asyncio.run(run())


def _as_recorded(outcome: Any) -> Any:
    """A live outcome with DESIGN section 6's normalization, as a replay must return it."""
    if isinstance(outcome, list):
        return [_as_recorded(item) for item in outcome]
    if "type" not in outcome:
        return outcome
    fields = getattr(ollama, outcome["type"]).model_fields
    result = dict(outcome)
    for key in ("dump", "set"):
        data = dict(outcome[key])
        if "created_at" in fields and data.get("created_at") is not None:
            data["created_at"] = EPOCH
        for name in DURATIONS:
            if data.get(name) is not None:
                data[name] = 0
        result[key] = data
    return result


def _recordings(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json"))


# -- record, then replay with the upstream stopped ----------------------------------------


def _check_live_outcomes(live: dict[str, Any]) -> None:
    # The scenario exercises what it claims to: streams, tool calls, errors of each kind.
    assert live["chat"]["dump"]["message"]["content"] == "Echo: Name a ringed planet"
    assert len(live["chat_stream"]) > 2
    assert live["chat_tools"]["set"]["message"]["tool_calls"][0]["function"]["name"] == (
        "get_weather"
    )
    assert "tool_calls" not in live["chat"]["set"]["message"]
    assert live["chat_missing"] == {
        "error": f"model '{MISSING_MODEL}' not found",
        "status": 404,
        "str": f"model '{MISSING_MODEL}' not found (status code: 404)",
    }
    assert live["chat_stream_missing"] == [live["chat_missing"]]
    assert live["generate_500"]["status"] == 500
    assert live["generate_stream_error"][-1] == {
        "error": "upstream exploded",
        "status": -1,
        "str": "upstream exploded (status code: -1)",
    }
    assert len(live["generate_stream_error"]) == 3
    assert [i.get("dump", {}).get("status") for i in live["pull_stream_missing"]] == [
        "pulling manifest",
        None,
    ]
    assert live["list"]["type"] == "ListResponse"


def test_sync_client_records_every_method_then_replays_offline(
    upstream: Upstream, tmp_path: Path
) -> None:
    host = upstream.url
    live = _sync_outcomes(host, "record", tmp_path)
    _check_live_outcomes(live)
    # One request and one recording per call: nothing recorded twice, nothing skipped.
    assert len(upstream.requests) == len(STEPS)
    assert len(_recordings(tmp_path)) == len(STEPS)
    upstream.stop()

    replayed = _sync_outcomes(host, "replay", tmp_path)
    assert replayed == {name: _as_recorded(outcome) for name, outcome in live.items()}


def test_async_client_records_every_method_then_replays_offline(
    upstream: Upstream, tmp_path: Path
) -> None:
    host = upstream.url
    live = _async_outcomes(host, "record", tmp_path)
    _check_live_outcomes(live)
    assert len(upstream.requests) == len(STEPS)
    assert len(_recordings(tmp_path)) == len(STEPS)
    upstream.stop()

    replayed = _async_outcomes(host, "replay", tmp_path)
    assert replayed == {name: _as_recorded(outcome) for name, outcome in live.items()}
    # The sync and async clients hash a call alike, so either replays the other's recording.
    assert _sync_outcomes(host, "replay", tmp_path) == replayed


def test_replayed_objects_are_ollamas_own_types(
    make_client: MakeClient, upstream: Upstream, tmp_path: Path
) -> None:
    client = make_client(upstream.url)
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        client.chat(model=MODEL, messages=_user("Paris?"), tools=[WEATHER_TOOL])
        client.show(MODEL)
    upstream.stop()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        chat = client.chat(model=MODEL, messages=_user("Paris?"), tools=[WEATHER_TOOL])
        show = client.show(model=MODEL)  # positional and keyword calls share a recording
    assert isinstance(chat, ollama.ChatResponse)
    assert isinstance(chat.message, ollama.Message)
    assert chat.message.tool_calls is not None
    assert isinstance(chat.message.tool_calls[0], ollama.Message.ToolCall)
    assert chat.message.tool_calls[0].function.arguments == {"city": "Paris?"}
    assert "tool_calls" in chat.message
    assert "thinking" not in chat.message
    assert isinstance(show, ollama.ShowResponse)
    assert show.modelinfo is not None
    assert show.modelinfo["general.architecture"] == "llama"
    assert show.details is not None
    assert show.details.family == "llama"


# -- the files ------------------------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_recordings_use_the_reference_labels_and_normalized_responses(
    upstream: Upstream, tmp_path: Path
) -> None:
    _sync_outcomes(upstream.url, "record", tmp_path)
    by_endpoint: dict[str, list[dict[str, Any]]] = {}
    for path in _recordings(tmp_path):
        data = _load(path)
        by_endpoint.setdefault(data["request"]["endpoint"], []).append(data)
        assert data["request"]["method"] == "POST"
        assert data["request"]["url"] == upstream.url + data["request"]["endpoint"]
        if data["request"]["endpoint"] == "/api/tags":
            assert path.name.startswith("models-") and data["request"]["body"] == {}
        else:
            assert path.name == f"{path.stem}.json" and len(path.stem) == 64
    assert sorted(by_endpoint) == [
        "/api/chat", "/api/embeddings", "/api/generate", "/api/ps", "/api/pull", "/api/show",
        "/api/tags",
    ]  # fmt: skip
    assert len(by_endpoint["/api/chat"]) == 6

    generate = next(
        d for d in by_endpoint["/api/generate"] if not d["request"]["body"].get("stream")
    )
    # Positional arguments are bound to their names; defaults left out stay out.
    assert generate["request"]["body"] == {"model": MODEL, "prompt": "Why is the sky blue"}
    assert generate["request"]["model"] == MODEL
    data = generate["response"]["body"]["__data__"]
    assert generate["response"]["body"]["__type__"] == "ollama._types.GenerateResponse"
    assert data["created_at"] == EPOCH
    assert [data[name] for name in DURATIONS] == [0, 0, 0, 0]

    stream = next(d for d in by_endpoint["/api/chat"] if d["request"]["body"].get("think"))
    assert stream["response"]["is_streaming"] is True
    chunks = stream["response"]["body"]
    assert {c["__type__"] for c in chunks} == {"ollama._types.ChatResponse"}
    assert {c["__data__"]["created_at"] for c in chunks} == {EPOCH}
    assert chunks[0]["__data__"]["message"]["thinking"]

    [embed] = by_endpoint["/api/embeddings"]
    assert embed["request"]["body"] == {"model": EMBED_MODEL, "input": ["a", "bb"], "dimensions": 4}
    assert embed["response"]["body"]["__type__"] == "ollama._types.EmbedResponse"


def test_errors_are_stored_as_the_design_says(
    make_client: MakeClient, upstream: Upstream, tmp_path: Path
) -> None:
    client = make_client(upstream.url)
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        with pytest.raises(ollama.ResponseError):
            client.chat(model=MISSING_MODEL, messages=_user("hi"))
        with pytest.raises(ollama.ResponseError):
            for _ in client.generate(model=MODEL, prompt=f"a {TRIGGER_STREAM_ERROR}", stream=True):
                pass
    # On disk once the block has ended (the rename into place is done off the call's path).
    recorded = list(map(_load, _recordings(tmp_path)))
    [plain] = [d for d in recorded if not d["response"]["is_streaming"]]
    [streamed] = [d for d in recorded if d["response"]["is_streaming"]]

    assert plain["response"] == {
        "body": None,
        "is_streaming": False,
        "is_exception": True,
        "exception_data": {
            "category": "provider_sdk",
            "provider": "ollama",
            "type": "ResponseError",
            # .error, as the reference writes it: it rebuilds ResponseError(error=message).
            "message": f"model '{MISSING_MODEL}' not found",
            "status_code": 404,
            "body": {"error": f"model '{MISSING_MODEL}' not found"},
        },
        "exception_message": f"model '{MISSING_MODEL}' not found (status code: 404)",
    }
    response = streamed["response"]
    assert response["is_exception"] is True
    assert response["exception_data"]["status_code"] == -1
    assert response["exception_data"]["body"] == {"error": "upstream exploded"}
    assert [c["__data__"]["response"] for c in response["body"]] == ["Echo:", " a"]


def test_an_error_recorded_with_only_a_message_replays_its_text(
    make_client: MakeClient, upstream: Upstream, tmp_path: Path
) -> None:
    # The reference recorder stores str(exc) and no body; the status suffix is not the error.
    client = make_client(upstream.url)
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        with pytest.raises(ollama.ResponseError):
            client.show(MISSING_MODEL)
    upstream.stop()
    [path] = _recordings(tmp_path)
    data = _load(path)
    del data["response"]["exception_data"]["body"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        with pytest.raises(ollama.ResponseError) as err:
            client.show(MISSING_MODEL)
    assert err.value.error == f"model '{MISSING_MODEL}' not found"
    assert err.value.status_code == 404


def test_rerecording_gives_byte_identical_files(upstream: Upstream, tmp_path: Path) -> None:
    runs = []
    for run in ("first", "second"):
        _sync_outcomes(upstream.url, "record", tmp_path / run)
        runs.append({p.name: p.read_bytes() for p in _recordings(tmp_path / run)})
    assert runs[0].keys() == runs[1].keys()
    assert len(runs[0]) == len(STEPS)
    # /api/ps reports when each loaded model expires: a live value DESIGN section 6 keeps.
    ps_name = next(name for name, raw in runs[0].items() if b'"/api/ps"' in raw)
    different = [name for name in runs[0] if runs[0][name] != runs[1][name]]
    assert different in ([], [ps_name])


def test_a_stream_is_recorded_whole_when_the_reader_stops_early(
    make_client: MakeClient, upstream: Upstream, tmp_path: Path
) -> None:
    client = make_client(upstream.url)
    kwargs: dict[str, Any] = {"model": MODEL, "prompt": "one two three four", "stream": True}
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        first = next(iter(client.generate(**kwargs)))
    [path] = _recordings(tmp_path)
    chunks = _load(path)["response"]["body"]
    assert [c["__data__"]["response"] for c in chunks] == [
        "Echo:", " one", " two", " three", " four", "",
    ]  # fmt: skip
    upstream.stop()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        replayed = list(client.generate(**kwargs))
    assert replayed[0].response == first.response
    assert all(isinstance(c, ollama.GenerateResponse) for c in replayed)
    assert replayed[-1].done is True
    assert replayed[-1].context == chunks[-1]["__data__"]["context"]


# -- model lists: shared by every test, merged across recordings ----------------------------


def _tags_handler(names: list[str]) -> Any:
    def tags(request: Request) -> Response:
        models = [
            {"name": n, "model": n, "size": 1000 + i, "digest": f"{i:064x}", "details": {}}
            for i, n in enumerate(names)
        ]
        return json_response({"models": models})

    return tags


def test_model_lists_from_different_servers_merge_on_replay(
    make_client: MakeClient, tmp_path: Path
) -> None:
    folder = tmp_path / "recordings"
    for test_id, names in (
        ("t.py::a", ["zeta:1b", "alpha:3b"]),
        ("t.py::b", ["alpha:3b", "mid:7b"]),
    ):
        server = Upstream()
        server.add_route("GET", "/api/tags", _tags_handler(names))
        with server, apirecorder.test_context(test_id), apirecorder.recording("record", folder):
            listed = make_client(server.url).list()
        assert [m.model for m in listed.models] == names
    files = _recordings(folder)
    assert len(files) == 2
    assert all(p.name.startswith("models-") for p in files)
    assert len({p.name.rsplit("-", 1)[0] for p in files}) == 1  # one hash, two model sets

    async def async_list() -> ollama.ListResponse:
        client = ollama.AsyncClient(host="http://127.0.0.1:9")
        async with client:
            return await client.list()

    with apirecorder.test_context("t.py::other"), apirecorder.recording("replay", folder):
        merged = make_client("http://127.0.0.1:9").list()
        merged_async = asyncio.run(async_list())
    for result in (merged, merged_async):
        assert isinstance(result, ollama.ListResponse)
        assert [m.model for m in result.models] == ["alpha:3b", "mid:7b", "zeta:1b"]
        assert all(isinstance(m, ollama.ListResponse.Model) for m in result.models)


# -- the reference recorder's /api/ps recordings ---------------------------------------------


@pytest.mark.parametrize("name", PS_FIXTURES)
def test_reference_ps_recordings_replay_through_both_clients(
    make_client: MakeClient, name: str, tmp_path: Path
) -> None:
    shutil.copy(FIXTURES / name, tmp_path / name)
    recorded = _load(FIXTURES / name)
    host = "http://localhost:11434"

    async def async_ps() -> ollama.ProcessResponse:
        client = ollama.AsyncClient(host=host)
        async with client:
            return await client.ps()

    with (
        apirecorder.test_context(recorded["test_id"]),
        apirecorder.recording("replay", tmp_path),
    ):
        results = [make_client(host).ps(), asyncio.run(async_ps())]
    for result in results:
        assert isinstance(result, ollama.ProcessResponse)
        # Fields newer than the recording (context_length) stay unset, as from an old server.
        data = recorded["response"]["body"]["__data__"]
        assert result.model_dump(mode="json", exclude_unset=True) == data
        assert result.models[0].context_length is None
        assert result.models[0].details is not None
        assert result.models[0].details.family == "llama"


@pytest.mark.parametrize("name", PS_FIXTURES)
def test_recording_ps_under_a_reference_test_id_reproduces_its_file_name(
    make_client: MakeClient, name: str, upstream: Upstream, tmp_path: Path
) -> None:
    test_id = _load(FIXTURES / name)["test_id"]
    with apirecorder.test_context(test_id), apirecorder.recording("record", tmp_path):
        make_client(upstream.url).ps()
    assert [p.name for p in _recordings(tmp_path)] == [name]


# -- interception boundaries -------------------------------------------------------------


def test_module_level_shortcuts_are_intercepted(
    make_client: MakeClient, upstream: Upstream, tmp_path: Path
) -> None:
    # `ollama.ps` is bound to a default client at import; its host differs, the path does not.
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = make_client(upstream.url).ps()
    upstream.stop()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        replayed = ollama.ps()
    assert replayed.model_dump() == live.model_dump()


def test_a_replay_miss_names_the_call(make_client: MakeClient, tmp_path: Path) -> None:
    client = make_client("http://127.0.0.1:9")
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        with pytest.raises(apirecorder.RecordingNotFoundError) as err:
            client.show(model=MODEL)
    message = str(err.value)
    assert "/api/show" in message
    assert MODEL in message


def test_patches_are_undone_when_the_block_ends(
    make_client: MakeClient, upstream: Upstream, tmp_path: Path
) -> None:
    originals = {name: getattr(ollama.Client, name) for name in ("chat", "list", "show")}
    shortcut = ollama.chat
    with apirecorder.recording("record", tmp_path):
        assert ollama.Client.chat is not originals["chat"]
        assert ollama.chat is not shortcut
    assert {name: getattr(ollama.Client, name) for name in originals} == originals
    assert ollama.chat == shortcut
    # Outside a block nothing is recorded.
    make_client(upstream.url).show(MODEL)
    assert _recordings(tmp_path) == []


def test_live_mode_calls_through_without_writing(
    make_client: MakeClient, upstream: Upstream, tmp_path: Path
) -> None:
    client = make_client(upstream.url)
    with apirecorder.recording("live", tmp_path):
        chunks = list(client.pull(MODEL, stream=True))
    assert chunks[-1].status == "success"
    assert _recordings(tmp_path) == []


def get_weather(city: str) -> str:
    """Get the weather in a city.

    Args:
        city: The city to look up

    Returns:
        str: A short forecast
    """
    return f"Sunny in {city}"


def test_message_objects_and_python_tools_are_hashed_as_the_client_sends_them(
    make_client: MakeClient, upstream: Upstream, tmp_path: Path
) -> None:
    client = make_client(upstream.url)
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = client.chat(model=MODEL, messages=_user("Rome"), tools=[get_weather])
    [path] = _recordings(tmp_path)
    body = _load(path)["request"]["body"]
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert body["tools"][0]["function"]["parameters"]["required"] == ["city"]
    upstream.stop()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        # A one-shot generator: read once for the hash, still sent whole.
        messages: Any = (m for m in [ollama.Message(role="user", content="Rome")])
        replayed = client.chat(model=MODEL, messages=messages, tools=[get_weather])
    assert replayed.message.tool_calls is not None
    assert live.message.tool_calls is not None
    assert replayed.message.tool_calls[0].function == live.message.tool_calls[0].function


def test_a_shared_model_list_is_found_from_any_test_folder(
    upstream: Upstream, tmp_path: Path
) -> None:
    client = ollama.Client(host=upstream.url)
    with (
        apirecorder.test_context("suite_a/test_x.py::t"),
        apirecorder.recording("record", root=tmp_path),
    ):
        recorded = client.list()
    (path,) = (tmp_path / "recordings").glob("models-*.json")
    assert json.loads(path.read_text())["test_id"] is None
    upstream.stop()
    with (
        apirecorder.test_context("suite_b/test_y.py::t"),
        apirecorder.recording("replay", root=tmp_path),
    ):
        replayed = client.list()
    assert [m.model for m in replayed.models] == sorted(m.model for m in recorded.models)
