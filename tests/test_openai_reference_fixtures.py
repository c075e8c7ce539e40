"""Reference recordings replay through the real OpenAI clients, with no connection attempted."""

from __future__ import annotations

import asyncio
import importlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai._models import construct_type

import apirecorder

FIXTURES = Path(__file__).parent / "fixtures"
SEED_DIR = FIXTURES / "seed"
SAMPLE_DIR = FIXTURES / "reference-sample"
SEED_TEXT = (
    'The planet with rings around it that has a name starting with the letter "S" is Saturn. '
    "Saturn is renowned for its prominent and visually striking ring system."
)
SEED_TEST_ID = (
    "tests/integration/responses/test_basic_responses.py::"
    "test_response_streaming_basic[openai_client-txt=openai/gpt-4o-saturn]"
)
SDK_ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")


@pytest.fixture(autouse=True)
def no_connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Fail any attempt to open a network connection: replay must stay offline."""
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise AssertionError(f"replay tried to connect to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield attempts
    assert attempts == []


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _sdk_fixtures() -> list[Path]:
    return [
        p
        for p in sorted(SAMPLE_DIR.glob("*.json"))
        if _load(p)["request"].get("endpoint") in SDK_ENDPOINTS
    ]


def _base_url(request: dict[str, Any]) -> str:
    url: str = request["url"]
    return url[: -len(request["endpoint"])]


def _method(client: Any, endpoint: str) -> Any:
    return {
        "/v1/chat/completions": client.chat.completions.create,
        "/v1/completions": client.completions.create,
        "/v1/embeddings": client.embeddings.create,
    }[endpoint]


def _sdk_class(type_path: str) -> Any:
    # Imported directly, not through apirecorder's allow-list: the expectation must not share
    # any code with the replay path it checks.
    module, _, name = type_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _built_by_the_sdk(item: dict[str, Any]) -> Any:
    """The recorded object as the OpenAI SDK itself builds a response from JSON."""
    return construct_type(type_=_sdk_class(item["__type__"]), value=item["__data__"])


def _assert_same(replayed: Any, recorded: dict[str, Any]) -> None:
    assert type(replayed) is _sdk_class(recorded["__type__"])
    # Exactly the recorded fields, no more, no less...
    assert replayed.model_dump(exclude_unset=True) == recorded["__data__"]
    # ...and the same object, nested types included, that the SDK builds from that data.
    expected = _built_by_the_sdk(recorded)
    assert replayed == expected
    assert replayed.model_dump() == expected.model_dump()


def test_seed_replays_through_sync_client() -> None:
    body = _load(next(SEED_DIR.glob("*.json")))["request"]["body"]
    client = openai.OpenAI(base_url="https://api.openai.com/v1", api_key="unused")
    with apirecorder.test_context(SEED_TEST_ID), apirecorder.recording("replay", SEED_DIR):
        stream = client.chat.completions.create(**body)
        assert isinstance(stream, openai.Stream)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == SEED_TEXT


def test_seed_replays_through_async_client() -> None:
    body = _load(next(SEED_DIR.glob("*.json")))["request"]["body"]

    async def main() -> str:
        client = openai.AsyncOpenAI(base_url="https://api.openai.com/v1", api_key="unused")
        stream = await client.chat.completions.create(**body)
        assert isinstance(stream, openai.AsyncStream)
        async with stream:
            parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        return "".join(parts)

    with apirecorder.test_context(SEED_TEST_ID), apirecorder.recording("replay", SEED_DIR):
        assert asyncio.run(main()) == SEED_TEXT


@pytest.mark.parametrize("path", _sdk_fixtures(), ids=lambda p: p.stem[:12])
def test_reference_recording_replays_equal(path: Path) -> None:
    data = _load(path)
    request, response = data["request"], data["response"]
    client = openai.OpenAI(base_url=_base_url(request), api_key="unused", max_retries=0)
    with apirecorder.test_context(data["test_id"]), apirecorder.recording("replay", SAMPLE_DIR):
        call = _method(client, request["endpoint"])
        if response.get("is_exception"):
            with pytest.raises(openai.APIStatusError) as err:
                call(**request["body"])
            recorded = response["exception_data"]
            assert type(err.value).__name__ == recorded["type"]
            assert err.value.status_code == recorded["status_code"]
            assert err.value.body == recorded["body"]
            assert str(err.value) == recorded["message"]
            return
        result = call(**request["body"])
        if response["is_streaming"]:
            chunks = list(result)
            assert len(chunks) == len(response["body"])
            for replayed, recorded_chunk in zip(chunks, response["body"], strict=True):
                _assert_same(replayed, recorded_chunk)
        else:
            _assert_same(result, response["body"])


def test_recorded_bad_request_is_the_sdks_own_class() -> None:
    path = SAMPLE_DIR / "28a43dc80443ccae98eee165c58522090fd6f0637031153b0105399093d39c52.json"
    data = _load(path)
    client = openai.OpenAI(base_url=_base_url(data["request"]), api_key="unused", max_retries=0)
    with (
        apirecorder.test_context(data["test_id"]),
        apirecorder.recording("replay", SAMPLE_DIR),
        pytest.raises(openai.BadRequestError) as err,
    ):
        client.chat.completions.create(**data["request"]["body"])
    assert err.value.status_code == 400
    assert err.value.message.startswith("Error code: 400")
    assert err.value.body == {
        "message": "invalid image input",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def _model_ids(path: Path) -> set[str]:
    return {item["__data__"]["id"] for item in _load(path)["response"]["body"]}


def test_model_lists_with_one_hash_are_merged_sorted_and_unique() -> None:
    files = sorted(SAMPLE_DIR.glob("models-64a2277c*.json"))
    assert len(files) == 2
    expected = sorted(_model_ids(files[0]) | _model_ids(files[1]))
    assert _model_ids(files[0]) != _model_ids(files[1])
    client = openai.OpenAI(base_url="http://0.0.0.0:11434/v1", api_key="unused")
    with apirecorder.recording("replay", SAMPLE_DIR):
        ids_iterated = [m.id for m in client.models.list()]
        page = client.models.list()
    assert ids_iterated == expected
    assert [m.id for m in page.data] == expected
    assert all(isinstance(m, openai.types.Model) for m in page.data)


def test_async_model_list_supports_await_and_async_for() -> None:
    files = sorted(SAMPLE_DIR.glob("models-64a2277c*.json"))
    expected = sorted(_model_ids(files[0]) | _model_ids(files[1]))

    async def main() -> tuple[list[str], list[str]]:
        client = openai.AsyncOpenAI(base_url="http://0.0.0.0:11434/v1", api_key="unused")
        page = await client.models.list()
        iterated = [m.id async for m in client.models.list()]
        return [m.id for m in page.data], iterated

    with apirecorder.recording("replay", SAMPLE_DIR):
        awaited, iterated = asyncio.run(main())
    assert awaited == expected
    assert iterated == expected


def test_single_model_list_file_replays_for_its_test() -> None:
    path = next(SAMPLE_DIR.glob("models-2b2dde71*.json"))
    data = _load(path)
    client = openai.OpenAI(base_url=_base_url(data["request"]), api_key="unused")
    with apirecorder.test_context(data["test_id"]), apirecorder.recording("replay", SAMPLE_DIR):
        models = list(client.models.list())
    recorded = {i["__data__"]["id"]: i["__data__"] for i in data["response"]["body"]}
    assert [m.id for m in models] == list(recorded)  # one file: in recorded order
    assert all(m.model_dump(exclude_unset=True) == recorded[m.id] for m in models)
