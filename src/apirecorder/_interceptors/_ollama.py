"""The Ollama SDK layer: ``ollama.Client`` and ``ollama.AsyncClient``.

Patches ``chat``, ``generate``, ``embed``, ``ps``, ``pull``, ``list`` and ``show`` on both
clients (and the module-level shortcuts such as ``ollama.chat``), so a call is recorded as its
keyword arguments under the reference recorder's endpoint labels and replayed as ``ollama``'s
own response types. Everything that touches ``ollama``'s internals lives in this module.
"""

from __future__ import annotations

import base64
import functools
import inspect
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from typing import Any
from unittest import mock

import ollama
import pydantic
from ollama._utils import convert_function_to_tool

from .._flow import SdkAdapter, areplay_or_record, replay_or_record
from .._recorder import Call, Session, active_session
from .._requestjson import request_json
from .._serialization import TypeBuilder
from .._storage import Recording

__all__ = ["install"]

PROVIDER = "ollama"

#: (client method, the endpoint label the reference recorder hashed it under)
_METHODS: tuple[tuple[str, str], ...] = (
    ("chat", "/api/chat"),
    ("generate", "/api/generate"),
    ("embed", "/api/embeddings"),  # sic: the reference labels `embed` with the legacy path
    ("ps", "/api/ps"),
    ("pull", "/api/pull"),
    ("list", "/api/tags"),
    ("show", "/api/show"),
)

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def install(stack: ExitStack) -> None:
    """Patch both Ollama clients for as long as ``stack`` stays open."""
    for name, endpoint in _METHODS:
        sync_original = getattr(ollama.Client, name)
        async_original = getattr(ollama.AsyncClient, name)
        stack.enter_context(
            mock.patch.object(ollama.Client, name, _sync_method(sync_original, endpoint))
        )
        stack.enter_context(
            mock.patch.object(ollama.AsyncClient, name, _async_method(async_original, endpoint))
        )
        # `ollama.chat` and friends are methods bound to a default client when ollama is
        # imported, so patching the class does not reach them; rebind them for the session.
        shortcut = getattr(ollama, name, None)
        owner = getattr(shortcut, "__self__", None)
        if isinstance(owner, ollama.Client) and getattr(shortcut, "__func__", None) is (
            sync_original
        ):
            stack.enter_context(mock.patch.object(ollama, name, getattr(owner, name)))


# -- rebuilding responses ---------------------------------------------------------------


def _build(cls: type[Any], data: Any) -> Any:
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object for {cls.__qualname__}, got {type(data).__name__}")
    try:
        # by_name: a dump keeps field names (ShowResponse's `modelinfo`), the wire uses aliases.
        built = cls.model_validate(data, by_name=True)
    except pydantic.ValidationError:
        # Replay must not fail where the live call did not: build it without validation.
        return cls.model_construct(**data)
    _mark_sent_fields(built)
    return built


def _mark_sent_fields(value: Any) -> None:
    # Ollama's server omits empty fields and its models answer `"tool_calls" in message` from
    # the fields that were set; a dump lists every field, so only the non-null ones count.
    if isinstance(value, pydantic.BaseModel):
        present = {name for name in type(value).model_fields if getattr(value, name) is not None}
        object.__setattr__(value, "__pydantic_fields_set__", present)
        for name in present:
            _mark_sent_fields(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in value:
            _mark_sent_fields(item)
    elif isinstance(value, dict):
        for item in value.values():
            _mark_sent_fields(item)


# -- describing a call ------------------------------------------------------------------


def _arguments(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any] | None:
    """The call's arguments by name (positional ones bound), or None when they do not fit."""
    try:
        signature.bind(None, *args, **kwargs)
    except TypeError:
        return None
    names = [p.name for p in list(signature.parameters.values())[1:] if p.kind in _POSITIONAL]
    # The reference hashed the keyword arguments as passed; positional ones join them by name.
    bound = dict(zip(names, args, strict=False))
    bound.update(kwargs)
    return {key: _materialize(value) for key, value in bound.items()}


def _materialize(value: Any) -> Any:
    # A one-shot iterator (a generator of messages) is read once for the hash, so the live
    # call gets the same items as a list.
    if isinstance(value, Iterator) and not isinstance(value, str | bytes):
        return list(value)
    return value


def _plain(value: Any, *, key: str = "") -> Any:
    """A request argument as JSON the way the client sends it: bytes as base64, tools as schemas."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {str(k): _plain(item, key=str(k)) for k, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, key=key) for item in value]
    if key == "tools" and callable(value) and not isinstance(value, type):
        return _tool_schema(value)
    if isinstance(value, ollama.Image):
        return request_json(value.model_dump(mode="json"), None)
    if isinstance(value, pydantic.BaseModel):
        return _plain(value.model_dump(mode="json", exclude_unset=True))
    return request_json(value, None)


def _tool_schema(function: Callable[..., Any]) -> Any:
    try:
        return request_json(convert_function_to_tool(function), None)
    except Exception:
        # The live call will raise the conversion error itself; the hash only needs a name.
        return f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}"


def _base_url(client: Any) -> str:
    host = str(client._client.base_url)
    return host if "://" in host else f"http://{host}"


def _call(session: Session, client: Any, endpoint: str, arguments: dict[str, Any]) -> Call:
    body = {key: _plain(value, key=key) for key, value in arguments.items()}
    return session.inference_call(base_url=_base_url(client), endpoint=endpoint, body=body)


# -- replaying --------------------------------------------------------------------------


def _rebuild_error(response: dict[str, Any]) -> ollama.ResponseError:
    data = response.get("exception_data") or {}
    status = data.get("status_code")
    status_code = status if isinstance(status, int) else -1
    body = data.get("body")
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        text = body["error"]
    else:
        # A message is .error in the reference's files (and ours), but str(exc), which ends
        # in the status code, in older ones of both.
        text = str(data.get("message") or response.get("exception_message") or "")
        text = text.removesuffix(f" (status code: {status_code})")
    # ResponseError unwraps a JSON body's "error", so any recorded text comes back verbatim.
    return ollama.ResponseError(json.dumps({"error": text}), status_code)


class _OllamaAdapter(SdkAdapter[Any]):
    """Every client method: one response object, or an iterator of chunks when streaming."""

    provider = PROVIDER
    call_errors = stream_errors = (ollama.ResponseError,)

    def builder(self) -> TypeBuilder:
        return _build

    def answer_types(self, call: Call) -> tuple[type[Any], ...]:
        # Chat and generate answers have their own classes (a stream's chunks too); for the
        # rest, any of the client's models.
        return _ANSWERS.get(call.endpoint, (ollama._types.SubscriptableBaseModel,))

    def rebuild_error(self, recording: Recording, call: Call) -> BaseException:
        return _rebuild_error(recording.response)

    def error_details(self, exc: BaseException) -> tuple[int | None, Any]:
        assert isinstance(exc, ollama.ResponseError)
        return exc.status_code, {"error": exc.error}

    def error_message(self, exc: BaseException) -> str:
        # The reference rebuilds ResponseError(error=message): str(exc) would carry the
        # " (status code: N)" suffix into .error, and str() would show it twice.
        assert isinstance(exc, ollama.ResponseError)
        return str(exc.error)

    # The client sends a streamed request on first read: the flow drains it inside its marker.
    def is_stream(self, result: Any) -> bool:
        return isinstance(result, Iterator)

    def is_async_stream(self, result: Any) -> bool:
        return isinstance(result, AsyncIterator)

    def close(self, result: Any) -> None:
        close = getattr(result, "close", None)
        if close is not None:
            close()

    async def aclose(self, result: Any) -> None:
        aclose = getattr(result, "aclose", None)
        if aclose is not None:
            await aclose()


_ANSWERS: dict[str, tuple[type[Any], ...]] = {
    "/api/chat": (ollama.ChatResponse,),
    "/api/generate": (ollama.GenerateResponse,),
}

_SYNC = _OllamaAdapter(is_async=False)
_ASYNC = _OllamaAdapter(is_async=True)


# -- the patched methods ----------------------------------------------------------------


@functools.cache  # one wrapper per original: install() runs every session
def _sync_method(original: Callable[..., Any], endpoint: str) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        session = active_session()
        arguments = _arguments(signature, args, kwargs) if session is not None else None
        if session is None or arguments is None:
            return original(self, *args, **kwargs)
        call = _call(session, self, endpoint, arguments)
        return replay_or_record(session, call, _SYNC, lambda: original(self, **arguments))

    return method


@functools.cache  # one wrapper per original: install() runs every session
def _async_method(original: Callable[..., Any], endpoint: str) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        session = active_session()
        arguments = _arguments(signature, args, kwargs) if session is not None else None
        if session is None or arguments is None:
            return await original(self, *args, **kwargs)
        call = _call(session, self, endpoint, arguments)
        return await areplay_or_record(session, call, _ASYNC, lambda: original(self, **arguments))

    return method
