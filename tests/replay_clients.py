"""One call per client library that reads recordings, for the hostile matrix and the fuzz.

Each scenario makes its call against ``url`` (the local upstream when recording; stopped when
replaying), reads the answer to the end the way an application would, and checks it is the
client's own kind of answer: a recording that hands back anything else fails with
:class:`WrongObject`, the "wrong object returned silently" of issue 14.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apirecorder
from apirecorder._context import TEST_ID_HEADER
from tests.hostile_cases import Shape

TEST_ID = "tests/replay_clients.py::scenario"
API_KEY = "sk-test-0000000000000000000000000000"


class WrongObject(AssertionError):
    """A replay handed back something that is not what the client returns."""


def _expect(value: Any, cls: type[Any] | tuple[type[Any], ...]) -> Any:
    if not isinstance(value, cls):
        raise WrongObject(f"replay returned a {type(value).__module__}.{type(value).__qualname__}")
    return value


@dataclasses.dataclass
class Forecast:
    """What the recorded tool returns: a class of this module, which the tool trusts."""

    city: str
    celsius: float


@apirecorder.tool("hostile", "forecast")
def forecast(city: str) -> Forecast:
    return Forecast(city=city, celsius=21.5)


# One client per URL for a whole run: building one loads the CA certificates (tens of
# milliseconds), which would be most of the cost of a replayed call.
@functools.cache
def _openai(url: str, path: str = "/v1") -> Any:
    import openai

    return openai.OpenAI(base_url=f"{url}{path}", api_key=API_KEY, max_retries=0)


@functools.cache
def _anthropic(url: str) -> Any:
    import anthropic

    return anthropic.Anthropic(base_url=url, api_key=API_KEY, max_retries=0)


@functools.cache
def _genai(url: str) -> Any:
    from google import genai
    from google.genai import types

    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=url))


@functools.cache
def _ollama(url: str) -> Any:
    import ollama

    return ollama.Client(host=url)


@functools.cache
def _httpx() -> Any:
    import httpx

    return httpx.Client()


@functools.cache
def _httpx2() -> Any:
    import httpx2

    return httpx2.Client()


def openai_chat(url: str) -> None:
    from openai.types.chat import ChatCompletion

    answer = _openai(url).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}]
    )
    _expect(answer, ChatCompletion)


def openai_stream(url: str) -> None:
    from openai.types.chat import ChatCompletionChunk

    stream = _openai(url).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Count"}], stream=True
    )
    for chunk in stream:
        _expect(chunk, ChatCompletionChunk)


def openai_embeddings(url: str) -> None:
    from openai.types import CreateEmbeddingResponse

    answer = _openai(url).embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    _expect(answer, CreateEmbeddingResponse)


def openai_models(url: str) -> None:
    from openai.types import Model

    for model in _openai(url).models.list():
        _expect(model, Model)


def anthropic_messages(url: str) -> None:
    from anthropic.types import Message

    answer = _anthropic(url).messages.create(
        model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
    )
    _expect(answer, Message)


def ollama_chat(url: str) -> None:
    import ollama

    answer = _ollama(url).chat(
        model="llama3.2:3b", messages=[{"role": "user", "content": "Name a ringed planet"}]
    )
    _expect(answer, ollama.ChatResponse)


def genai_generate(url: str) -> None:
    from google.genai import types

    answer = _genai(url).models.generate_content(model="gemini-2.0-flash", contents="Say hello")
    _expect(answer, types.GenerateContentResponse)


def _http_answer(status: Any, body: Any) -> None:
    _expect(status, int)
    _expect(body, bytes)


def httpx_get(url: str) -> None:
    response = _httpx().get(f"{url}/misc/json")
    _http_answer(response.status_code, response.content)


def httpx2_post(url: str) -> None:
    response = _httpx2().post(f"{url}/misc/echo", json={"q": "hello"})
    _http_answer(response.status_code, response.content)


def httpx_sse(url: str) -> None:
    with _httpx().stream("GET", f"{url}/misc/sse") as response:
        body = b"".join(response.iter_bytes())
        _http_answer(response.status_code, body)


def requests_get(url: str) -> None:
    import requests

    with requests.Session() as session:
        response = session.get(f"{url}/misc/json", timeout=5)
        _http_answer(response.status_code, response.content)


def aiohttp_get(url: str) -> None:
    import aiohttp

    async def call() -> None:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/misc/json") as answer:
            _http_answer(answer.status, await answer.read())

    asyncio.run(call())


def urllib3_get(url: str) -> None:
    import urllib3

    with urllib3.PoolManager() as http:
        response = http.request("GET", f"{url}/misc/json")
        _http_answer(response.status, response.data)


def tool_call(url: str) -> None:
    _expect(forecast("Paris"), Forecast)


def mcp_call(url: str) -> None:
    """``add`` on the repo's MCP notes server (tests/mcp_servers), over streamable HTTP.

    ``url`` is the notes server's when recording (see :func:`record_all`); on replay the
    session runs on ``mcp_client``'s stand-in streams and only the URL's path (the key's
    server name) matters. An error is caught inside the session block, as an application
    catches it: past the block, the session's task group would wrap it in a group.
    """
    from mcp import ClientSession, types
    from mcp.client.streamable_http import streamable_http_client

    async def call() -> Any:
        async with (
            apirecorder.mcp_client(streamable_http_client(f"{url}/mcp")) as (read, write),
            ClientSession(read, write) as session,
        ):
            try:
                await session.initialize()
                return await session.call_tool("add", {"a": 2, "b": 3})
            except Exception as exc:  # raised again below, unwrapped
                return exc

    answer = asyncio.run(call())
    if isinstance(answer, Exception):
        raise answer
    _expect(answer, types.CallToolResult)


#: client name -> its scenario.
SCENARIOS: dict[str, Callable[[str], None]] = {
    "openai-chat": openai_chat,
    "openai-stream": openai_stream,
    "openai-embeddings": openai_embeddings,
    "openai-models": openai_models,
    "anthropic": anthropic_messages,
    "ollama": ollama_chat,
    "genai": genai_generate,
    "httpx": httpx_get,
    "httpx2": httpx2_post,
    "httpx-sse": httpx_sse,
    "requests": requests_get,
    "aiohttp": aiohttp_get,
    "urllib3": urllib3_get,
    "tool": tool_call,
    "mcp": mcp_call,
}


_INFERENCE = ("method", "url", "headers", "body", "endpoint", "model")
_HTTP = ("test_id", "method", "url", "headers", "payload")
_HTTP_RESPONSE = ("status", "headers", "body_format", "body", "is_streaming")


def _shape(request: tuple[str, ...], response: tuple[str, ...], **kw: Any) -> Shape:
    return Shape(request, response, **kw)


#: What each client's recording holds (checked against the recording made live).
SHAPES: dict[str, Shape] = {
    "openai-chat": _shape(_INFERENCE, ("body", "is_streaming"),
                          type_path="openai.types.chat.chat_completion.ChatCompletion"),
    "openai-stream": _shape(
        _INFERENCE, ("body", "is_streaming"), listed=True, streaming=True,
        type_path="openai.types.chat.chat_completion_chunk.ChatCompletionChunk"),
    "openai-embeddings": _shape(
        _INFERENCE, ("body", "is_streaming"),
        type_path="openai.types.create_embedding_response.CreateEmbeddingResponse"),
    "openai-models": _shape(_INFERENCE, ("body", "is_streaming"), listed=True,
                            type_path="openai.types.model.Model"),
    "anthropic": _shape(_HTTP, _HTTP_RESPONSE),
    "ollama": _shape(_INFERENCE, ("body", "is_streaming"), type_path="ollama._types.ChatResponse"),
    "genai": _shape((*_INFERENCE, "provider_metadata"), ("body", "is_streaming")),
    "httpx": _shape(_HTTP, _HTTP_RESPONSE),
    "httpx2": _shape(_HTTP, _HTTP_RESPONSE),
    "httpx-sse": _shape(_HTTP, _HTTP_RESPONSE, listed=True),
    "requests": _shape(_HTTP, _HTTP_RESPONSE),
    "aiohttp": _shape(_HTTP, _HTTP_RESPONSE),
    "urllib3": _shape(_HTTP, _HTTP_RESPONSE),
    "tool": _shape(("test_id", "provider", "tool_name", "kwargs"),
                   ("body", "is_streaming", "trusted_types"),
                   type_path="tests.replay_clients.Forecast"),
    # The session writes initialize, tools/call and tools/list: the cases replace tools/call.
    "mcp": _shape(("test_id", "provider", "tool_name", "kwargs"),
                  ("body", "is_streaming", "trusted_types"),
                  type_path="mcp_types._types.CallToolResult", method="tools/call"),
}  # fmt: skip


#: The reference recorder's OpenAI endpoints a reference file is replayed through, and the
#: class of each answer (of each chunk, for a stream).
REFERENCE_ENDPOINTS = {
    "/v1/chat/completions": ("chat.completions", "openai.types.chat.ChatCompletion",
                             "openai.types.chat.ChatCompletionChunk"),
    "/v1/completions": ("completions", "openai.types.Completion", "openai.types.Completion"),
    "/v1/embeddings": ("embeddings", "openai.types.CreateEmbeddingResponse", ""),
}  # fmt: skip
REFERENCE = "reference:"


def _class(path: str) -> type[Any]:
    module, _, name = path.rpartition(".")
    cls: type[Any] = getattr(importlib.import_module(module), name)
    return cls


def reference_scenario(original: Path) -> tuple[Callable[[str], None], str | None]:
    """The call a reference recording answers (read from an unmutated copy of it): the
    scenario that replays it through the OpenAI SDK, and the test id it was recorded under."""
    data = json.loads(original.read_text("utf-8"))
    request = data["request"]
    resource, answer, chunk = REFERENCE_ENDPOINTS[request["endpoint"]]
    base = request["url"][: -len(request["endpoint"])]

    def scenario(url: str) -> None:
        method: Any = _openai(base, "")  # the recorded URL is the base URL and the endpoint
        for part in resource.split("."):
            method = getattr(method, part)
        result = method.create(**request["body"])
        if request["body"].get("stream"):
            for item in result:
                _expect(item, _class(chunk))
        else:
            _expect(result, _class(answer))

    test_id = data.get("test_id")
    return scenario, test_id if isinstance(test_id, str) else None


def scenario_for(client: str) -> tuple[Callable[[str], None], str | None]:
    """A client's scenario and the test id it runs under (``reference:<file>``: that file's)."""
    if client.startswith(REFERENCE):
        return reference_scenario(Path(client.removeprefix(REFERENCE)))
    return SCENARIOS[client], TEST_ID


# -- clients of ``apirecorder serve``: each asks the server once, and says what came back --


def _served_error(status: int, body: Any) -> dict[str, Any]:
    """An error answer of the server: the recorder's own (apirecorder_*), or another."""
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if isinstance(kind, str) and kind.startswith("apirecorder"):
        return {"outcome": "recorder", "status": status, "message": str(message)}
    return {"outcome": "client error", "status": status, "message": json.dumps(body)[:2000]}


def _serve_openai(stream: bool) -> Callable[[str], dict[str, Any]]:
    def ask(server: str) -> dict[str, Any]:
        import openai
        from openai.types.chat import ChatCompletion, ChatCompletionChunk

        client = _served_openai(server)
        content = "Count" if stream else "Say hello"
        messages: Any = [{"role": "user", "content": content}]
        try:
            # As the scenario asks (``stream`` only when it streams): the same call and file.
            kwargs: Any = {"stream": True} if stream else {}
            answer = client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, **kwargs
            )
            if stream:
                for chunk in answer:
                    _expect(chunk, ChatCompletionChunk)
            else:
                _expect(answer, ChatCompletion)
        except openai.APIStatusError as exc:
            return _served_error(exc.status_code, exc.body and {"error": exc.body})
        except openai.APIError as exc:  # an error event in the stream
            body = exc.body if isinstance(exc.body, dict) else {"message": str(exc)}
            return _served_error(200, {"error": body})
        except WrongObject as exc:
            return {"outcome": "wrong object", "message": str(exc)}
        return {"outcome": "ok"}

    return ask


@functools.cache
def _served_openai(server: str) -> Any:
    import openai

    headers = {TEST_ID_HEADER: TEST_ID}
    return openai.OpenAI(
        base_url=f"{server}/v1", api_key=API_KEY, max_retries=0, default_headers=headers
    )


def _serve_http(server: str) -> dict[str, Any]:
    import httpx

    try:
        response = _httpx().get(f"{server}/misc/json", headers={TEST_ID_HEADER: TEST_ID})
    except httpx.TransportError as exc:
        # A body cut short: the replay of a file that records a connection broken midway.
        return {"outcome": "client error", "message": f"{type(exc).__name__}: {exc}"}
    if response.status_code < 400:
        return {"outcome": "ok", "status": response.status_code}
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return _served_error(response.status_code, body)


def _serve_health(server: str) -> dict[str, Any]:
    response = _httpx().get(f"{server}/health", timeout=5)
    return {"outcome": "ok" if response.status_code == 200 else "dead"}


#: The clients of ``apirecorder serve``, by the source whose recording the server replays.
SERVE_CLIENTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "openai-chat": _serve_openai(stream=False),
    "openai-stream": _serve_openai(stream=True),
    "httpx": _serve_http,
    "health": _serve_health,
}


def _mcp_server() -> Any:
    from tests.mcp_servers import notes_server

    return notes_server.serve()


#: The server a scenario records against when it is not the upstream: its base URL.
SERVERS: dict[str, Callable[[], Any]] = {"mcp": _mcp_server}


def record_all(url: str, root: Any) -> None:
    """Record every scenario against the running upstream, one folder per client."""
    for name, scenario in SCENARIOS.items():
        with contextlib.ExitStack() as stack:
            base = url
            if name in SERVERS:
                base = stack.enter_context(SERVERS[name]()).removesuffix("/mcp")
            stack.enter_context(apirecorder.recording("record", root / name))
            stack.enter_context(apirecorder.test_context(TEST_ID))
            scenario(base)
