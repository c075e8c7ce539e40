"""The google-genai SDK layer: ``generate_content``, its stream, and ``embed_content``.

Patches the public methods of ``google.genai.models.Models`` and ``AsyncModels`` (what
``client.models`` and ``client.aio.models`` are), so the SDK's own loops (automatic function
calling, stream continuation) are one call, as in the reference recorder, whose format this
module writes and reads: the request is hashed as ``POST vertexai:///<endpoint>`` with the
keyword arguments dumped by the reference's rules (:func:`reference_body`), the response is
stored as the SDK object's ``model_dump(mode="json", exclude_none=True)`` with no ``__type__``
(a stream as the list of its chunks' dumps) and rebuilt with ``model_validate``. The sync
stream is a generator function and the async one an ``async def`` returning an async
generator, as the SDK has them. Errors replay as ``google.genai.errors.ClientError`` and
``ServerError``. The HTTP the SDK sends while recording (httpx2 for sync, aiohttp or httpx2 for
async) runs inside the flow's mark, so the HTTP layer never records it a second time.
Everything that touches ``google.genai`` lives in this module.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast
from unittest import mock

from google.genai import errors, models, types

from .._flow import Adapter, areplay_items, areplay_or_record, replay_items, replay_or_record
from .._recorder import Session, active_session
from .._storage import Recording
from .._types import Call, ResponseRecord

__all__ = ["install", "reference_body"]

PROVIDER = "vertexai"
#: The reference recorder's base URL for every genai call.
_BASE_URL = "vertexai://"

#: (method, logical endpoint, the response class it returns)
_METHODS: tuple[tuple[str, str, type[Any]], ...] = (
    ("generate_content", "/generate_content", types.GenerateContentResponse),
    ("generate_content_stream", "/generate_content_stream", types.GenerateContentResponse),
    ("embed_content", "/embed_content", types.EmbedContentResponse),
)


def install(stack: ExitStack) -> None:
    """Patch ``Models`` and ``AsyncModels`` for as long as ``stack`` stays open."""
    for name, endpoint, response_cls in _METHODS:
        sync_method = getattr(models.Models, name)
        async_method = getattr(models.AsyncModels, name)
        streams = name == "generate_content_stream"
        sync_patch = _sync_stream if streams else _sync_call
        async_patch = _async_stream if streams else _async_call
        stack.enter_context(
            mock.patch.object(models.Models, name, sync_patch(sync_method, endpoint, response_cls))
        )
        stack.enter_context(
            mock.patch.object(
                models.AsyncModels, name, async_patch(async_method, endpoint, response_cls)
            )
        )


# -- describing a call ------------------------------------------------------------------------


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json", exclude_none=True)


def reference_body(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The hashed body of a genai call, by the reference recorder's rules.

    A pydantic value is dumped without its nulls; a list item by item (a pydantic item dumped,
    a JSON scalar or dict kept, anything else as ``str``, so ``None`` becomes ``"None"``); a
    dict or a JSON scalar is kept as it is; anything else becomes ``str(value)``.
    """
    body: dict[str, Any] = {}
    for key, value in kwargs.items():
        if hasattr(value, "model_dump"):
            body[key] = _dump(value)
        elif isinstance(value, list):
            body[key] = [
                _dump(item)
                if hasattr(item, "model_dump")
                else item
                if isinstance(item, dict | str | int | float | bool)
                else str(item)
                for item in value
            ]
        elif value is None or isinstance(value, dict | str | int | float | bool):
            body[key] = value
        else:
            body[key] = str(value)
    return body


def _call(session: Session, endpoint: str, kwargs: dict[str, Any]) -> Call:
    call = session.inference_call(
        base_url=_BASE_URL, endpoint=endpoint, body=reference_body(kwargs)
    )
    # The reference writes "vertexai://" + endpoint, which a base URL joined with its trailing
    # slashes stripped cannot spell; the hash reads only the path, the same either way.
    request = cast(dict[str, Any], call.request)
    request["url"] = _BASE_URL + endpoint
    request["provider_metadata"] = {"provider": PROVIDER}
    return call


# -- errors -----------------------------------------------------------------------------------

#: The reference recorder keeps only ``str(exc)``: "404 NOT_FOUND. {'error': {...}}".
_MESSAGE = re.compile(r"^(\d{3}) (\S+)\. (.*)$", re.DOTALL)


def _error_from_message(message: str) -> tuple[int | None, Any]:
    match = _MESSAGE.match(message)
    if match is None:
        return None, {"error": {"message": message}}
    code, status, details = int(match.group(1)), match.group(2), match.group(3)
    try:
        # The details are the repr of the response JSON: Python literals, never code.
        body = ast.literal_eval(details)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        body = {"error": {"code": code, "message": details, "status": status}}
    return code, body


def _rebuild_error(recording: Recording) -> errors.APIError:
    response = recording.response
    data = response.get("exception_data") or {}
    code, body = data.get("status_code"), data.get("body")
    if code is None or body is None:
        message = str(data.get("message") or response.get("exception_message") or "")
        parsed_code, parsed_body = _error_from_message(message)
        code = code if code is not None else parsed_code
        body = body if body is not None else parsed_body
    found = getattr(errors, str(data.get("type")), None)
    cls: type[errors.APIError]
    if isinstance(found, type) and issubclass(found, errors.APIError):
        cls = found
    elif isinstance(code, int) and 400 <= code < 500:
        cls = errors.ClientError
    elif isinstance(code, int) and code >= 500:
        cls = errors.ServerError
    else:
        cls = errors.APIError
    return cls(int(code or 0), body)


# -- the adapter ------------------------------------------------------------------------------


class _GenaiAdapter(Adapter[Any]):
    """One genai call: a response object, or a stream of them (sync or async)."""

    call_errors = stream_errors = (errors.APIError,)

    def __init__(self, response_cls: type[Any], *, is_async: bool) -> None:
        self.response_cls = response_cls
        self.is_async = is_async

    def _stream(self, items: list[Any], error: BaseException | None) -> Any:
        return areplay_items(items, error) if self.is_async else replay_items(items, error)

    def replay(self, session: Session, recording: Recording, call: Call) -> Any:
        response = recording.response
        error = _rebuild_error(recording) if response.get("is_exception") else None
        body = response.get("body")
        if response.get("is_streaming"):
            # The reference writes a stream that failed before its first chunk as body null.
            chunks = body if isinstance(body, list) else []
            return self._stream([self.response_cls.model_validate(c) for c in chunks], error)
        if error is not None:
            raise error
        return self.response_cls.model_validate(body)

    def is_stream(self, result: Any) -> bool:
        return isinstance(result, Iterator)

    def is_async_stream(self, result: Any) -> bool:
        return isinstance(result, AsyncIterator)

    def result_response(self, session: Session, call: Call, result: Any) -> ResponseRecord:
        return {"body": _dump(result), "is_streaming": False}

    def stream_response(
        self,
        session: Session,
        call: Call,
        result: Any,
        chunks: list[Any],
        error: BaseException | None,
    ) -> ResponseRecord:
        record: ResponseRecord = {"body": [_dump(c) for c in chunks], "is_streaming": True}
        if error is not None:
            _mark_error(record, error)
        return record

    def error_response(self, session: Session, call: Call, exc: BaseException) -> ResponseRecord:
        record: ResponseRecord = {"body": None, "is_streaming": False}
        _mark_error(record, exc)
        return record

    def drained(
        self,
        session: Session,
        call: Call,
        result: Any,
        chunks: list[Any],
        error: BaseException | None,
        path: Path,
    ) -> Any:
        return self._stream(chunks, error)


def _mark_error(record: ResponseRecord, exc: BaseException) -> None:
    record["is_exception"] = True
    record["exception_data"] = {
        "category": "provider_sdk",
        "provider": PROVIDER,
        "type": type(exc).__name__,
        "message": str(exc),
        "status_code": getattr(exc, "code", None),
        "body": getattr(exc, "details", None),
    }
    record["exception_message"] = str(exc)


# -- the patched methods ----------------------------------------------------------------------


def _sync_call(
    original: Callable[..., Any], endpoint: str, response_cls: type[Any]
) -> Callable[..., Any]:
    adapter = _GenaiAdapter(response_cls, is_async=False)

    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        session = active_session()
        if session is None or args:
            return original(self, *args, **kwargs)
        call = _call(session, endpoint, kwargs)
        return replay_or_record(session, call, adapter, lambda: original(self, **kwargs))

    return method


def _sync_stream(
    original: Callable[..., Any], endpoint: str, response_cls: type[Any]
) -> Callable[..., Any]:
    adapter = _GenaiAdapter(response_cls, is_async=False)

    # A generator function, as the SDK's: nothing is looked up or sent until it is iterated.
    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        __tracebackhide__ = True
        session = active_session()
        if session is None or args:
            yield from original(self, *args, **kwargs)
            return
        call = _call(session, endpoint, kwargs)
        yield from replay_or_record(session, call, adapter, lambda: original(self, **kwargs))

    return method


def _async_call(
    original: Callable[..., Any], endpoint: str, response_cls: type[Any]
) -> Callable[..., Any]:
    adapter = _GenaiAdapter(response_cls, is_async=True)

    # The async stream is an ``async def`` returning an async generator, so one wrapper
    # serves both: the flow awaits the call, then drains what it returned when it is a stream.
    @functools.wraps(original)
    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        session = active_session()
        if session is None or args:
            return await original(self, *args, **kwargs)
        call = _call(session, endpoint, kwargs)
        return await areplay_or_record(session, call, adapter, lambda: original(self, **kwargs))

    return method


_async_stream = _async_call
