"""The local upstream speaks each provider's wire format well enough for the real clients."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import aiohttp
import anthropic
import httpx
import httpx2
import ollama
import openai
import pydantic
import pytest
import requests
from anthropic.types import Message, RawMessageStreamEvent
from openai import _base_client as openai_base_client
from openai.types import Completion, CreateEmbeddingResponse, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response as OpenAIResponse
from openai.types.responses import ResponseStreamEvent
from tavily import AsyncTavilyClient, TavilyClient  # type: ignore[import-untyped]
from tavily.errors import InvalidAPIKeyError, UsageLimitExceededError  # type: ignore[import-untyped]

from tests.upstream import (
    FIXED_TIME,
    MISSING_MODEL,
    TRIGGER_400,
    TRIGGER_401,
    TRIGGER_429,
    TRIGGER_529,
    TRIGGER_QUIRKS,
    TRIGGER_STREAM_ERROR,
    Request,
    Response,
    Upstream,
    json_response,
)
from tests.upstream import server as upstream_server
from tests.upstream.misc_api import BINARY, JSON_BODY, NDJSON_LINES, TEXT
from tests.upstream.openai_api import embedding

API_KEY = "sk-test-0000"
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}
STREAM_EVENT = pydantic.TypeAdapter[Any](ResponseStreamEvent)
ANTHROPIC_EVENT = pydantic.TypeAdapter[Any](RawMessageStreamEvent)


@pytest.fixture(scope="module")
def server() -> Iterator[Upstream]:
    with Upstream() as upstream:
        yield upstream


@pytest.fixture
def up(server: Upstream) -> Upstream:
    """The module's upstream with its request log cleared."""
    server.reset()
    server.volatile = True
    server.stream_delay = 0.0
    return server


@pytest.fixture
def oai(up: Upstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=up.url + "/v1", api_key=API_KEY, max_retries=0) as client:
        yield client


@pytest.fixture
def claude(up: Upstream) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=up.url, api_key=API_KEY, max_retries=0) as client:
        yield client


@pytest.fixture
def llama(up: Upstream) -> Iterator[ollama.Client]:
    with ollama.Client(host=up.url) as client:
        yield client


def sse_data(body: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) of each server-sent event in `body`."""
    events: list[tuple[str | None, str]] = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        name = None
        data: list[str] = []
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        events.append((name, "\n".join(data)))
    return events


def user(text: str) -> Any:
    """A one-message conversation (typed Any: each SDK has its own TypedDicts for it)."""
    return [{"role": "user", "content": text}]


# --- the server itself ------------------------------------------------------------


def test_unknown_route_is_404_json(up: Upstream) -> None:
    response = httpx.get(up.url + "/nope?x=1")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "no route for GET /nope"


def test_requests_are_recorded_and_reset(up: Upstream) -> None:
    requests.post(up.url + "/misc/echo?a=1&b=two", json={"k": "v"}, headers={"X-Test": "yes"})
    [seen] = up.requests
    assert (seen.method, seen.path, seen.query, seen.query_string) == (
        "POST",
        "/misc/echo",
        {"a": "1", "b": "two"},
        "a=1&b=two",
    )
    assert seen.headers["x-test"] == "yes"
    assert seen.json() == {"k": "v"}
    assert up.requests_to("/misc/echo", "POST") == [seen]
    up.reset()
    assert up.requests == []


def test_chunked_request_body_is_read(up: Upstream) -> None:
    def parts() -> Iterator[bytes]:
        yield b'{"a": '
        yield b"1}"

    response = httpx.post(up.url + "/misc/echo", content=parts())
    assert response.json() == {"a": 1}
    assert up.requests[0].headers["transfer-encoding"] == "chunked"


def test_handler_errors_are_500_and_routes_can_be_added(up: Upstream) -> None:
    def broken(request: Request) -> Response:
        raise RuntimeError("boom")

    def hello(request: Request) -> Response:
        return json_response({"name": request.params["name"]}, 201)

    with Upstream(routes={("GET", "/broken"): broken}) as custom:
        custom.add_route("GET", "/hello/{name}", hello)
        failed = httpx.get(custom.url + "/broken")
        assert failed.status_code == 500
        assert "RuntimeError: boom" in failed.json()["error"]["message"]
        assert httpx.get(custom.url + "/hello/ada").json() == {"name": "ada"}
        assert httpx.get(custom.url + "/v1/models").status_code == 404


def test_stop_refuses_new_and_pooled_connections_and_restarts_on_same_port() -> None:
    upstream = Upstream().start()
    url, port = upstream.url, upstream.port
    # A raw keep-alive connection left idle: stop() must close it, not wait for it to end.
    idle = socket.create_connection(("127.0.0.1", port), timeout=30)
    idle.sendall(b"GET /misc/text HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(4096).startswith(b"HTTP/1.1 200")
    with httpx.Client() as client:
        assert client.get(url + "/misc/json").status_code == 200
        upstream.stop()
        with pytest.raises(httpx.TransportError):
            client.get(url + "/misc/json")
    with idle:
        # Reads to the end of the stream: only a server that closed the connection ends it
        # (one still waiting on it would make this read time out and fail).
        while idle.recv(4096):
            pass
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass
    upstream.start()
    try:
        assert upstream.port == port
        assert httpx.get(url + "/misc/text").text == TEXT
    finally:
        upstream.stop()


class _SleepLog:
    """Stands in for the ``time`` module of one library: records every sleep, then sleeps."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        time.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_volatile_fields_vary_only_when_volatile(up: Upstream) -> None:
    body = {"model": "gpt-4o", "messages": user("same")}

    def twice() -> tuple[dict[str, Any], dict[str, Any]]:
        first = httpx.post(up.url + "/v1/chat/completions", json=body).json()
        return first, httpx.post(up.url + "/v1/chat/completions", json=body).json()

    first, second = twice()
    assert first["id"] != second["id"]
    assert first["choices"] == second["choices"]
    up.volatile = False
    first, second = twice()
    assert first == second
    assert first["created"] == FIXED_TIME
    chat = {"model": "llama3.2:3b", "messages": user("x"), "stream": False}
    ollama_reply = httpx.post(up.url + "/api/chat", json=chat).json()
    assert ollama_reply["created_at"] == "2023-11-14T22:13:20.000000123Z"


def _count(items: Iterable[object], gate: threading.Event) -> int:
    count = 0
    for _ in items:
        count += 1
        gate.set()
    return count


async def _acount(items: AsyncIterator[object], gate: threading.Event) -> int:
    count = 0
    async for _ in items:
        count += 1
        gate.set()
    return count


def _read_stream(name: str, url: str, gate: threading.Event) -> int:
    """Read one stream through client `name`, opening `gate` once a part arrived."""
    if name == "requests":
        with requests.get(url + "/misc/ndjson", stream=True) as response:
            return _count(response.iter_lines(), gate)
    if name == "httpx":
        with httpx.stream("GET", url + "/misc/ndjson") as httpx_response:
            return _count(httpx_response.iter_lines(), gate)
    if name == "httpx2":
        with httpx2.stream("GET", url + "/misc/ndjson") as httpx2_response:
            return _count(httpx2_response.iter_lines(), gate)
    if name == "httpx-async":

        async def read_httpx() -> int:
            async with httpx.AsyncClient() as client, client.stream("GET", url + "/misc/sse") as r:
                return await _acount(r.aiter_lines(), gate)

        return asyncio.run(read_httpx())
    if name == "aiohttp":

        async def read_aiohttp() -> int:
            async with aiohttp.ClientSession() as session, session.get(url + "/misc/ndjson") as r:
                return await _acount(aiter(r.content), gate)

        return asyncio.run(read_aiohttp())
    if name == "openai":
        with openai.OpenAI(base_url=url + "/v1", api_key=API_KEY, max_retries=0) as client:
            chunks = client.chat.completions.create(model="m", messages=user("a b c"), stream=True)
            return _count(chunks, gate)
    if name == "anthropic":
        with anthropic.Anthropic(base_url=url, api_key=API_KEY, max_retries=0) as claude:
            events = claude.messages.create(
                model="m", max_tokens=5, messages=user("a b c"), stream=True
            )
            return _count(events, gate)
    with ollama.Client(host=url) as llama:
        return _count(llama.chat(model="m", messages=user("a b c"), stream=True), gate)


@pytest.mark.parametrize(
    "client",
    ["requests", "httpx", "httpx2", "httpx-async", "aiohttp", "openai", "anthropic", "ollama"],
)
def test_streams_arrive_incrementally(client: str) -> None:
    # The server holds each stream after its first part until the client has yielded that
    # part; a client that buffered the whole body would make the server's wait run out.
    gate = threading.Event()
    with Upstream(stream_gate=gate) as upstream:
        assert _read_stream(client, upstream.url, gate) >= 4
        assert upstream.gate_timeouts == 0


def test_stream_delay_spaces_the_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _SleepLog()
    monkeypatch.setattr(upstream_server, "time", clock)
    with (
        Upstream(stream_delay=0.02) as upstream,
        httpx.stream("GET", upstream.url + "/misc/ndjson") as r,
    ):
        lines = list(r.iter_lines())
    assert len(lines) >= 4
    # One pause between each two parts, none before the first.
    assert clock.slept == [0.02] * (len(lines) - 1)


# --- OpenAI -----------------------------------------------------------------------


def test_openai_chat(oai: openai.OpenAI, up: Upstream) -> None:
    completion = oai.chat.completions.create(model="gpt-4o", messages=user("hello there"))
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == 5
    assert completion.id.startswith("chatcmpl-")
    assert up.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    raw = httpx.post(up.url + "/v1/chat/completions", json={"model": "m", "messages": user("x")})
    ChatCompletion.model_validate(raw.json())

    async def run() -> str | None:
        async with openai.AsyncOpenAI(
            base_url=up.url + "/v1", api_key=API_KEY, max_retries=0
        ) as client:
            reply = await client.chat.completions.create(model="gpt-4o", messages=user("async"))
            return reply.choices[0].message.content

    assert asyncio.run(run()) == "Echo: async"


def test_openai_chat_stream(oai: openai.OpenAI, up: Upstream) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o",
            messages=user("one two three"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: one two three"
    assert len(chunks) == 7
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert len({c.id for c in chunks}) == 1
    body = {"model": "m", "messages": user("x"), "stream": True}
    events = sse_data(httpx.post(up.url + "/v1/chat/completions", json=body).content)
    assert events[-1] == (None, "[DONE]")
    for _, data in events[:-1]:
        ChatCompletionChunk.model_validate_json(data)

    async def run() -> str:
        async with openai.AsyncOpenAI(
            base_url=up.url + "/v1", api_key=API_KEY, max_retries=0
        ) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=user("async stream"), stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream])

    assert asyncio.run(run()) == "Echo: async stream"


def test_openai_chat_tool_calls(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="gpt-4o", messages=user("Paris"), tools=[WEATHER_TOOL]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "days": 5}

    stream = oai.chat.completions.create(
        model="gpt-4o", messages=user("Paris"), tools=[WEATHER_TOOL], stream=True
    )
    deltas = [c.choices[0].delta for c in stream]
    pieces = [
        d.tool_calls[0].function.arguments or ""
        for d in deltas
        if d.tool_calls and d.tool_calls[0].function
    ]
    assert len(pieces) >= 3
    assert json.loads("".join(pieces)) == {"city": "Paris", "days": 5}

    answered = oai.chat.completions.create(
        model="gpt-4o",
        tools=[WEATHER_TOOL],
        messages=[
            *user("Paris"),
            {"role": "assistant", "tool_calls": [call.model_dump()]},  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert answered.choices[0].message.content == "Echo: sunny"


def test_openai_errors(oai: openai.OpenAI, up: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        oai.chat.completions.create(model="gpt-4o", messages=user(TRIGGER_400))
    assert bad.value.status_code == 400
    assert bad.value.body == {
        "message": "Invalid request: the prompt contains TRIGGER_400.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.RateLimitError) as limited:
        oai.chat.completions.create(model="gpt-4o", messages=user(TRIGGER_429))
    assert limited.value.response.headers["retry-after"] == "0"
    assert limited.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model=MISSING_MODEL, messages=user("x"))
    # Retries honour retry-after-ms, so they cost milliseconds, not the SDK's backoff.
    up.reset()
    clock = _SleepLog()
    monkeypatch.setattr(openai_base_client, "time", clock)
    with pytest.raises(openai.RateLimitError):
        oai.with_options(max_retries=2).chat.completions.create(
            model="gpt-4o", messages=user(TRIGGER_429)
        )
    assert len(up.requests) == 3
    assert clock.slept == [0.001, 0.001]


def test_openai_stream_error(oai: openai.OpenAI) -> None:
    received: list[ChatCompletionChunk] = []
    with pytest.raises(openai.APIError, match="upstream exploded"):
        received.extend(
            oai.chat.completions.create(
                model="gpt-4o", messages=user(f"{TRIGGER_STREAM_ERROR} a b c"), stream=True
            )
        )
    assert len(received) == 3


def test_openai_quirks_break_declared_types(oai: openai.OpenAI, up: Upstream) -> None:
    completion = oai.chat.completions.create(model="gpt-4o", messages=user(TRIGGER_QUIRKS))
    assert completion.model_dump()["object"] == ""
    assert completion.created is None
    assert completion.system_fingerprint is None
    assert completion.model_extra == {"provider_extra": {"quirk": True}}
    raw = httpx.post(
        up.url + "/v1/chat/completions", json={"model": "m", "messages": user(TRIGGER_QUIRKS)}
    ).json()
    assert "system_fingerprint" not in raw
    with pytest.raises(pydantic.ValidationError):
        ChatCompletion.model_validate(raw)


def test_openai_completions(oai: openai.OpenAI, up: Upstream) -> None:
    completion = oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="say hi")
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "Echo: say hi"
    raw = httpx.post(up.url + "/v1/completions", json={"model": "m", "prompt": ["a", "b"]})
    assert [c["text"] for c in Completion.model_validate(raw.json()).model_dump()["choices"]] == [
        "Echo: a",
        "Echo: b",
    ]
    chunks = list(
        oai.completions.create(
            model="m", prompt="x y", stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Echo: x y"
    assert chunks[-1].usage is not None
    assert len(chunks) == 5


def test_openai_embeddings(oai: openai.OpenAI, up: Upstream) -> None:
    # With no encoding_format the SDK asks for base64 and decodes float32 itself.
    result = oai.embeddings.create(model="text-embedding-3-small", input="hello")
    assert up.requests[0].json()["encoding_format"] == "base64"
    expected = embedding("hello", 8)
    assert result.data[0].embedding == pytest.approx(expected, abs=1e-6)
    assert result.data[0].embedding != expected  # float32 precision, not the float64 values

    floats = oai.embeddings.create(
        model="m", input=["a", "bb"], encoding_format="float", dimensions=4
    )
    assert [d.embedding for d in floats.data] == [embedding("a", 4), embedding("bb", 4)]
    assert floats.usage.prompt_tokens == 2
    raw = httpx.post(
        up.url + "/v1/embeddings", json={"model": "m", "input": "x", "encoding_format": "base64"}
    ).json()
    # On the wire a base64 embedding is a string, although the declared type is list[float].
    with pytest.raises(pydantic.ValidationError):
        CreateEmbeddingResponse.model_validate(raw)
    float_body = {"model": "m", "input": "x", "encoding_format": "float"}
    CreateEmbeddingResponse.model_validate(
        httpx.post(up.url + "/v1/embeddings", json=float_body).json()
    )
    packed = base64.b64decode(raw["data"][0]["embedding"])
    assert struct.unpack("<8f", packed) == pytest.approx(embedding("x", 8), abs=1e-6)
    assert any(len(repr(v)) > 12 for v in embedding("x", 8))

    async def run() -> list[float]:
        async with openai.AsyncOpenAI(
            base_url=up.url + "/v1", api_key=API_KEY, max_retries=0
        ) as client:
            reply = await client.embeddings.create(model="m", input="hi", encoding_format="float")
            return reply.data[0].embedding

    assert asyncio.run(run()) == embedding("hi", 8)


def test_openai_models(oai: openai.OpenAI, up: Upstream) -> None:
    models = list(oai.models.list())
    assert [m.id for m in models][:2] == ["gpt-4o", "gpt-4o-mini"]
    assert all(m.object == "model" and m.created == 1_715_367_049 for m in models)
    Model.model_validate(httpx.get(up.url + "/v1/models/gpt-4o").json())
    assert oai.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve(MISSING_MODEL)


def test_openai_responses(oai: openai.OpenAI, up: Upstream) -> None:
    response = oai.responses.create(model="gpt-4o", input="hi there", instructions="be brief")
    assert response.output_text == "Echo: hi there"
    assert response.status == "completed"
    assert response.id.startswith("resp_")
    raw = httpx.post(up.url + "/v1/responses", json={"model": "m", "input": "x"}).json()
    OpenAIResponse.model_validate(raw)

    tool: Any = {
        "type": "function",
        "name": "get_weather",
        "parameters": WEATHER_TOOL["function"]["parameters"],
    }
    called = oai.responses.create(model="gpt-4o", input=user("Rome"), tools=[tool])
    item = called.output[0]
    assert item.type == "function_call"
    assert json.loads(item.arguments) == {"city": "Rome", "days": 4}
    body = {"model": "m", "input": "Rome", "tools": [tool], "stream": True}
    raw_events = sse_data(httpx.post(up.url + "/v1/responses", json=body).content)
    assert [STREAM_EVENT.validate_json(data).type for _, data in raw_events][2:6] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
    ]
    with oai.responses.stream(model="m", input="Rome", tools=[tool]) as stream:
        final = stream.get_final_response()
    assert final.output[0].type == "function_call"
    assert json.loads(final.output[0].arguments) == {"city": "Rome", "days": 4}


def test_openai_responses_stream(oai: openai.OpenAI, up: Upstream) -> None:
    events = list(oai.responses.create(model="gpt-4o", input="one two", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 3
    assert [e.sequence_number for e in events] == list(range(len(events)))
    raw = httpx.post(up.url + "/v1/responses", json={"model": "m", "input": "x", "stream": True})
    named = sse_data(raw.content)
    for name, data in named:
        event = STREAM_EVENT.validate_json(data)
        assert event.type == name

    with oai.responses.stream(model="gpt-4o", input="streamed helper") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Echo: streamed helper"

    failing = list(oai.responses.create(model="m", input=TRIGGER_STREAM_ERROR, stream=True))
    assert failing[-1].type == "error"

    async def run() -> list[str]:
        async with openai.AsyncOpenAI(
            base_url=up.url + "/v1", api_key=API_KEY, max_retries=0
        ) as client:
            stream = await client.responses.create(model="m", input="one two", stream=True)
            return [e.type async for e in stream]

    assert asyncio.run(run()) == kinds


# --- Ollama -----------------------------------------------------------------------


def test_ollama_chat(llama: ollama.Client, up: Upstream) -> None:
    reply = llama.chat(model="llama3.2:3b", messages=user("hi you"))
    assert reply.message.content == "Echo: hi you"
    assert reply.done
    assert reply.total_duration
    assert reply.created_at
    parts = list(llama.chat(model="llama3.2:3b", messages=user("hi you"), stream=True))
    assert "".join(p.message.content or "" for p in parts) == "Echo: hi you"
    assert [p.done for p in parts] == [False, False, False, True]
    assert up.requests[-1].json()["stream"] is True

    tool = llama.chat(model="llama3.2:3b", messages=user("Oslo"), tools=[WEATHER_TOOL])
    assert tool.message.tool_calls is not None
    called = tool.message.tool_calls[0].function
    assert (called.name, dict(called.arguments)) == ("get_weather", {"city": "Oslo", "days": 4})

    with pytest.raises(ollama.ResponseError) as missing:
        llama.chat(model=MISSING_MODEL, messages=user("x"))
    assert missing.value.status_code == 404
    assert missing.value.error == "model 'missing-model' not found"
    with pytest.raises(ollama.ResponseError, match="upstream exploded"):
        list(llama.chat(model="m", messages=user(f"{TRIGGER_STREAM_ERROR} a b"), stream=True))

    async def run() -> str:
        async with ollama.AsyncClient(host=up.url) as client:
            stream = await client.chat(model="m", messages=user("async"), stream=True)
            return "".join([p.message.content or "" async for p in stream])

    assert asyncio.run(run()) == "Echo: async"


def test_ollama_generate(llama: ollama.Client, up: Upstream) -> None:
    reply = llama.generate(model="llama3.2:3b", prompt="why sky")
    assert reply.response == "Echo: why sky"
    assert reply.context
    assert reply.eval_count == 3
    parts = list(llama.generate(model="llama3.2:3b", prompt="why sky", stream=True))
    assert "".join(p.response or "" for p in parts) == "Echo: why sky"
    assert len(parts) == 4
    assert parts[-1].done_reason == "stop"
    structured = llama.generate(model="m", prompt="q", format="json")
    assert json.loads(structured.response or "") == {"echo": "q"}

    async def run() -> str | None:
        async with ollama.AsyncClient(host=up.url) as client:
            reply: ollama.GenerateResponse = await client.generate(model="m", prompt="async")
            return reply.response

    assert asyncio.run(run()) == "Echo: async"


def test_ollama_embed(llama: ollama.Client, up: Upstream) -> None:
    reply = llama.embed(model="nomic-embed-text", input=["a", "bb"])
    assert [list(e) for e in reply.embeddings] == [embedding("a", 8), embedding("bb", 8)]

    async def run() -> list[float]:
        async with ollama.AsyncClient(host=up.url) as client:
            return list((await client.embed(model="m", input="x", dimensions=3)).embeddings[0])

    assert asyncio.run(run()) == embedding("x", 3)


def test_ollama_models(llama: ollama.Client) -> None:
    assert [m.model for m in llama.list().models] == ["llama3.2:3b", "nomic-embed-text:latest"]
    running = llama.ps().models[0]
    assert running.model == "llama3.2:3b"
    assert running.expires_at is not None
    shown = llama.show("llama3.2:3b")
    assert shown.modelinfo
    assert shown.modelinfo["general.architecture"] == "llama"
    assert shown.capabilities == ["completion", "tools"]
    with pytest.raises(ollama.ResponseError):
        llama.show(MISSING_MODEL)


def test_ollama_pull(llama: ollama.Client) -> None:
    assert llama.pull("llama3.2:3b").status == "success"
    statuses = [p.status for p in llama.pull("llama3.2:3b", stream=True)]
    assert statuses[0] == "pulling manifest"
    assert statuses[-1] == "success"
    assert len(statuses) == 7
    with pytest.raises(ollama.ResponseError, match="file does not exist"):
        list(llama.pull(MISSING_MODEL, stream=True))


# --- Anthropic --------------------------------------------------------------------


def test_anthropic_messages(claude: anthropic.Anthropic, up: Upstream) -> None:
    message = claude.messages.create(
        model="claude-test", max_tokens=64, messages=user("hello claude")
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: hello claude"
    assert message.stop_reason == "end_turn"
    assert message.id.startswith("msg_01")
    # anthropic 2.x sends the API key as a bearer token, not as x-api-key.
    assert up.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert "anthropic-version" in up.requests[0].headers
    raw = httpx.post(
        up.url + "/v1/messages", json={"model": "m", "max_tokens": 5, "messages": user("x")}
    )
    Message.model_validate(raw.json())

    async def run() -> str:
        async with (
            anthropic.AsyncAnthropic(base_url=up.url, api_key=API_KEY, max_retries=0) as client,
            client.messages.stream(model="m", max_tokens=5, messages=user("async")) as stream,
        ):
            return "".join([text async for text in stream.text_stream])

    assert asyncio.run(run()) == "Echo: async"


def test_anthropic_stream(claude: anthropic.Anthropic, up: Upstream) -> None:
    events = list(
        claude.messages.create(model="m", max_tokens=64, messages=user("a b c"), stream=True)
    )
    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    body = {"model": "m", "max_tokens": 5, "messages": user("x"), "stream": True}
    named = sse_data(httpx.post(up.url + "/v1/messages", json=body).content)
    assert [name for name, _ in named][:3] == ["message_start", "content_block_start", "ping"]
    for name, data in named:
        if name != "ping":
            assert ANTHROPIC_EVENT.validate_json(data).type == name

    with claude.messages.stream(model="m", max_tokens=64, messages=user("helper")) as stream:
        assert "".join(stream.text_stream) == "Echo: helper"
        assert stream.get_final_message().usage.output_tokens == 2

    with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        list(
            claude.messages.create(
                model="m", max_tokens=5, messages=user(f"{TRIGGER_STREAM_ERROR} a b"), stream=True
            )
        )


def test_anthropic_tools(claude: anthropic.Anthropic) -> None:
    tool: Any = {
        "name": "get_weather",
        "description": "Weather",
        "input_schema": WEATHER_TOOL["function"]["parameters"],
    }
    message = claude.messages.create(
        model="m",
        max_tokens=64,
        messages=user("Lima"),
        tools=[tool],
    )
    assert message.stop_reason == "tool_use"
    use = message.content[1]
    assert use.type == "tool_use"
    assert use.input == {"city": "Lima", "days": 4}
    with claude.messages.stream(
        model="m",
        max_tokens=64,
        messages=user("Lima"),
        tools=[tool],
    ) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_message()
    assert "input_json" in kinds
    streamed = final.content[1]
    assert streamed.type == "tool_use"
    assert streamed.input == {"city": "Lima", "days": 4}


def test_anthropic_errors(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        claude.messages.create(model="m", max_tokens=5, messages=user(TRIGGER_529))
    assert overloaded.value.status_code == 529
    assert overloaded.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.create(model="m", max_tokens=5, messages=user(TRIGGER_400))
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model=MISSING_MODEL, max_tokens=5, messages=user("x"))


# --- Tavily -----------------------------------------------------------------------


def test_tavily_search(up: Upstream) -> None:
    client = TavilyClient(api_key="tvly-test", api_base_url=up.url)
    try:
        result = client.search("python testing", max_results=3, include_answer=True)
    finally:
        client.close()
    assert result["query"] == "python testing"
    assert result["answer"] == "An answer about python testing."
    assert [r["url"] for r in result["results"]] == [
        f"https://example.com/python-testing/{i}" for i in (1, 2, 3)
    ]
    seen = up.requests[0]
    assert seen.headers["authorization"] == "Bearer tvly-test"
    assert seen.headers["x-client-source"] == "tavily-python"
    assert seen.json() == {"query": "python testing", "include_answer": True, "max_results": 3}

    async def run() -> dict[str, Any]:
        async_client = AsyncTavilyClient(api_key="tvly-test", api_base_url=up.url)
        try:
            result: dict[str, Any] = await async_client.search("async search", include_usage=True)
            return result
        finally:
            await async_client.close()

    async_result = asyncio.run(run())
    assert len(async_result["results"]) == 5
    assert async_result["usage"] == {"credits": 1}
    assert up.requests[1].headers["authorization"] == "Bearer tvly-test"

    with TavilyClient(api_key="tvly-test", api_base_url=up.url) as failing:
        with pytest.raises(InvalidAPIKeyError):
            failing.search(TRIGGER_401)
        with pytest.raises(UsageLimitExceededError):
            failing.search(TRIGGER_429)


# --- misc, through the plain HTTP clients -------------------------------------------


def test_misc_with_requests(up: Upstream) -> None:
    with requests.Session() as session:
        assert session.get(up.url + "/misc/json", params={"q": "1"}).json() == {
            **JSON_BODY,
            "query": {"q": "1"},
        }
        text = session.get(up.url + "/misc/text")
        assert text.text == TEXT
        assert text.headers["content-type"].startswith("text/plain")
        binary = session.get(up.url + "/misc/binary")
        assert binary.content == BINARY
        assert len(BINARY) == 4096
        with pytest.raises(UnicodeDecodeError):
            binary.content.decode()
        assert session.post(up.url + "/misc/echo", json={"x": [1, 2]}).json() == {"x": [1, 2]}
        with session.get(up.url + "/misc/sse", stream=True) as sse:
            assert sse.headers["transfer-encoding"] == "chunked"
            events = sse_data(b"".join(sse.iter_content(None)))
        assert [name for name, _ in events] == ["start", None, None, "update", "done"]
        assert events[2][1] == "plain text, not JSON"
        assert events[3][1] == "multi\nline"
        with session.get(up.url + "/misc/ndjson", stream=True) as lines:
            assert [json.loads(line) for line in lines.iter_lines()] == NDJSON_LINES
        status = session.get(up.url + "/misc/status/418")
        assert status.status_code == 418
        assert status.json() == {"error": {"code": 418, "message": "I'm a Teapot"}}
        headers = session.get(up.url + "/misc/headers")
        assert headers.cookies.get_dict() == {"session": "abc123", "theme": "dark"}
        assert headers.headers["x-custom-header"] == "custom-value"
        assert session.get(up.url + "/misc/gzip").json() == JSON_BODY


def test_misc_with_httpx(up: Upstream) -> None:
    with httpx.Client(base_url=up.url) as client:
        assert client.get("/misc/json").json()["nested"]["pi"] == math.pi
        assert client.get("/misc/binary").content == BINARY
        headers = client.get("/misc/headers").headers
        assert headers.get_list("set-cookie") == [
            "session=abc123; Path=/; HttpOnly",
            "theme=dark; Path=/",
        ]
        assert client.get("/misc/status/503").status_code == 503
        assert client.get("/misc/status/204").content == b""
        raw = client.get("/misc/gzip")
        assert raw.headers["content-encoding"] == "gzip"
        assert raw.json() == JSON_BODY

    async def run() -> tuple[list[str], Any]:
        async with httpx.AsyncClient(base_url=up.url) as client:
            async with client.stream("GET", "/misc/ndjson") as response:
                lines = [line async for line in response.aiter_lines()]
            echoed = (await client.post("/misc/echo", json={"a": "é"})).json()
            return lines, echoed

    lines, echoed = asyncio.run(run())
    assert [json.loads(line) for line in lines] == NDJSON_LINES
    assert echoed == {"a": "é"}


def test_misc_with_httpx2(up: Upstream) -> None:
    with httpx2.Client(base_url=up.url) as client:
        assert client.get("/misc/text").text == TEXT
        with client.stream("GET", "/misc/sse") as response:
            chunks = list(response.iter_raw())
        assert len(sse_data(b"".join(chunks))) == 5
        assert client.get("/misc/status/429").json()["error"]["code"] == 429

    async def run() -> bytes:
        async with httpx2.AsyncClient(base_url=up.url) as client:
            return (await client.get("/misc/binary")).content

    assert asyncio.run(run()) == BINARY


def test_misc_with_aiohttp(up: Upstream) -> None:
    async def run() -> None:
        async with aiohttp.ClientSession(up.url) as session:
            async with session.get("/misc/json") as response:
                assert (await response.json())["message"] == "hello"
            async with session.get("/misc/binary") as response:
                assert await response.read() == BINARY
            async with session.post("/misc/echo", json={"k": 1}) as response:
                assert await response.json() == {"k": 1}
            async with session.get("/misc/sse") as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                lines = [line async for line in response.content]
            assert lines[0] == b"event: start\n"
            async with session.get("/misc/headers") as response:
                assert response.headers.getall("set-cookie") == [
                    "session=abc123; Path=/; HttpOnly",
                    "theme=dark; Path=/",
                ]
            async with session.get("/misc/status/500") as response:
                assert response.status == 500

    asyncio.run(run())
