"""google-genai at the SDK layer, in the reference recorder's format, sync and async.

Recorded against the local upstream's Gemini routes, replayed with the upstream stopped and the
network blocked, through a real ``genai.Client``; the reference's own genai recordings replay
through it too.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

import apirecorder
from apirecorder._interceptors._genai import reference_body
from tests.offline import record_then_replay, recordings
from tests.upstream import Upstream

# google-genai's own async path subclasses aiohttp.ClientSession, which aiohttp warns about.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
)

TEST_ID = "tests/test_genai.py::scenario"
MODEL = "gemini-2.0-flash"
REFERENCE = Path(__file__).parent / "fixtures" / "reference-2026"
GENERATE = REFERENCE / "08bc5ab4957fd99a3660fc84d08a9ec0ff727cbd03815a099007a567b9696901.json"
STREAM = REFERENCE / "3e772832e9e7e0439e5b9675566b39936675bdb8a6100e285ff3bd914de17cb0.json"


def _client(url: str = "http://127.0.0.1:9") -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=url))


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json", exclude_none=True)


def test_generate_stream_and_embed_sync(upstream: Upstream, tmp_path: Path) -> None:
    url = upstream.url

    def scenario() -> tuple[Any, ...]:
        client = _client(url)  # kept: a collected client closes its HTTP client
        models = client.models
        config = types.GenerateContentConfig(temperature=0.5)
        answer = models.generate_content(model=MODEL, contents="Say hello", config=config)
        stream = models.generate_content_stream(model=MODEL, contents="Count to five")
        chunks = [chunk.text for chunk in stream]
        embedded = models.embed_content(model="text-embedding-004", contents=["a", "b"])
        assert isinstance(answer, types.GenerateContentResponse)
        assert isinstance(embedded, types.EmbedContentResponse)
        return answer.text, _dump(answer), chunks, _dump(embedded)

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario, TEST_ID)
    assert replayed == recorded
    assert len(recorded[2]) > 1
    # One recording per call: the HTTP layer under the SDK recorded nothing.
    files = recordings(tmp_path)
    assert sorted(f["request"]["url"] for f in files) == [
        "vertexai:///embed_content",
        "vertexai:///generate_content",
        "vertexai:///generate_content_stream",
    ]


def test_generate_stream_and_embed_async(upstream: Upstream, tmp_path: Path) -> None:
    url = upstream.url

    async def scenario() -> tuple[Any, ...]:
        client = _client(url)
        models = client.aio.models
        answer = await models.generate_content(model=MODEL, contents="Say hello")
        stream = await models.generate_content_stream(model=MODEL, contents="Count to five")
        chunks = [chunk.text async for chunk in stream]
        embedded = await models.embed_content(model="text-embedding-004", contents="a")
        return answer.text, _dump(answer), chunks, _dump(embedded)

    recorded, replayed = record_then_replay(
        upstream, tmp_path, lambda: asyncio.run(scenario()), TEST_ID
    )
    assert replayed == recorded
    assert len(recorded[2]) > 1
    assert len(recordings(tmp_path)) == 3


def test_recording_is_the_reference_format(upstream: Upstream, tmp_path: Path) -> None:
    url = upstream.url
    contents = [types.Content(role="user", parts=[types.Part(text="Hi")])]
    with apirecorder.recording("record", tmp_path), apirecorder.test_context(TEST_ID):
        client = _client(url)
        client.models.generate_content(model=MODEL, contents=contents)
    (path,) = tmp_path.glob("*.json")
    data = json.loads(path.read_text("utf-8"))
    body = {"model": MODEL, "contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
    assert data["request"]["body"] == body
    assert data["request"]["provider_metadata"] == {"provider": "vertexai"}
    key = {"method": "POST", "endpoint": "/generate_content", "body": body, "test_id": TEST_ID}
    assert path.stem == hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    response = data["response"]
    assert response["is_streaming"] is False
    assert "__type__" not in json.dumps(response)
    assert response["body"]["candidates"][0]["content"]["role"] == "model"


def test_reference_body_rules() -> None:
    config = types.GenerateContentConfig(temperature=0.5)
    body = reference_body(
        {"model": "m", "contents": ["a", None, {"k": None}], "config": config, "other": 1.5j}
    )
    assert body == {
        "model": "m",
        "contents": ["a", "None", {"k": None}],
        "config": {"temperature": 0.5},
        "other": "1.5j",
    }


@pytest.mark.parametrize(
    ("trigger", "cls", "code", "status"),
    [
        ("TRIGGER_400", errors.ClientError, 400, "INVALID_ARGUMENT"),
        ("TRIGGER_500", errors.ServerError, 500, "INTERNAL"),
    ],
)
def test_errors_replay_as_the_sdks_classes(
    upstream: Upstream,
    tmp_path: Path,
    trigger: str,
    cls: type[errors.APIError],
    code: int,
    status: str,
) -> None:
    url = upstream.url

    def scenario() -> list[tuple[Any, ...]]:
        client = _client(url)
        models = client.models
        caught = []
        with pytest.raises(cls) as plain:
            models.generate_content(model=MODEL, contents=trigger)
        caught.append(plain.value)
        with pytest.raises(cls) as streamed:
            list(models.generate_content_stream(model=MODEL, contents=trigger))
        caught.append(streamed.value)

        async def in_async() -> None:
            await client.aio.models.generate_content(model=MODEL, contents=trigger)

        with pytest.raises(cls) as awaited:
            asyncio.run(in_async())
        caught.append(awaited.value)
        return [(type(e), e.code, e.status, e.message, str(e)) for e in caught]

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario, TEST_ID)
    assert replayed == recorded
    assert all(found[1:3] == (code, status) for found in recorded)
    # Sync and async generate_content are one request made twice (<hash>.json and
    # <hash>-2.json); the stream is the other.
    assert len(recordings(tmp_path)) == 3


# -- the reference's own recordings -------------------------------------------------------------


def _reference(path: Path, folder: Path) -> dict[str, Any]:
    shutil.copy(path, folder / path.name)
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def _recorded_text(body: Any) -> str:
    return "".join(
        part.get("text", "")
        for candidate in body.get("candidates") or []
        for part in (candidate.get("content") or {}).get("parts") or []
    )


def _arguments(data: dict[str, Any]) -> dict[str, Any]:
    body = data["request"]["body"]
    return {
        "model": body["model"],
        "contents": body["contents"],
        "config": types.GenerateContentConfig(**body["config"]),
    }


def test_reference_generate_content_replays_sync_and_async(tmp_path: Path) -> None:
    data = _reference(GENERATE, tmp_path)
    expected = _recorded_text(data["response"]["body"])
    client = _client()

    async def in_async() -> Any:
        return await client.aio.models.generate_content(**_arguments(data))

    with (
        apirecorder.recording("replay", tmp_path, block_network=True),
        apirecorder.test_context(data["test_id"]),
    ):
        sync_answer = client.models.generate_content(**_arguments(data))
        async_answer = asyncio.run(in_async())
    assert sync_answer.text == async_answer.text == expected
    assert expected.startswith("Okay, here's a handoff summary")
    assert _dump(sync_answer) == data["response"]["body"]


def test_reference_stream_replays_sync_and_async(tmp_path: Path) -> None:
    data = _reference(STREAM, tmp_path)
    expected = "".join(_recorded_text(chunk) for chunk in data["response"]["body"])
    client = _client()

    async def in_async() -> str:
        stream = await client.aio.models.generate_content_stream(**_arguments(data))
        return "".join([chunk.text or "" async for chunk in stream])

    with (
        apirecorder.recording("replay", tmp_path, block_network=True),
        apirecorder.test_context(data["test_id"]),
    ):
        sync_text = "".join(
            chunk.text or "" for chunk in client.models.generate_content_stream(**_arguments(data))
        )
        async_text = asyncio.run(in_async())
    assert sync_text == async_text == expected
    assert expected.startswith("The Eiffel Tower is approximately")


def _reference_error_file(folder: Path, endpoint: str, streaming: bool) -> None:
    """A recording in the reference's error shape: only ``str(exc)`` is kept."""
    body = {"model": "missing-model", "contents": "Hi"}
    key = {"method": "POST", "endpoint": endpoint, "body": body, "test_id": TEST_ID}
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    message = (
        "404 NOT_FOUND. {'error': {'code': 404, 'message': 'models/missing-model is not "
        "found', 'status': 'NOT_FOUND'}}"
    )
    recording = {
        "test_id": TEST_ID,
        "request": {"method": "POST", "url": f"vertexai://{endpoint}", "headers": {},
                    "body": body, "endpoint": endpoint, "model": "missing-model"},
        "response": {
            "body": None,
            "is_streaming": streaming,
            "is_exception": True,
            "exception_data": {"category": "unknown", "type": "ClientError", "message": message},
            "exception_message": message,
        },
        "id_normalization_mapping": {},
    }  # fmt: skip
    (folder / f"{name}.json").write_text(json.dumps(recording, indent=2) + "\n", "utf-8")


def test_reference_error_files_replay_as_client_error(tmp_path: Path) -> None:
    _reference_error_file(tmp_path, "/generate_content", streaming=False)
    _reference_error_file(tmp_path, "/generate_content_stream", streaming=True)
    client = _client()
    models = client.models
    with (
        apirecorder.recording("replay", tmp_path, block_network=True),
        apirecorder.test_context(TEST_ID),
    ):
        with pytest.raises(errors.ClientError) as plain:
            models.generate_content(model="missing-model", contents="Hi")
        with pytest.raises(errors.ClientError) as streamed:
            list(models.generate_content_stream(model="missing-model", contents="Hi"))
    for caught in (plain.value, streamed.value):
        assert (caught.code, caught.status) == (404, "NOT_FOUND")
        assert caught.message == "models/missing-model is not found"
