"""The HTTP layer for httpx and httpx2 (the fork the OpenAI and Anthropic SDKs use).

Both libraries have the same shape, so one module serves them. The seam is the transport:
``HTTPTransport.handle_request`` and ``AsyncHTTPTransport.handle_async_request``. There the
request is final (auth, cookies and default headers applied, the body in bytes, each redirect
hop a request of its own), and the response is still raw: status, headers and a byte stream,
before decoding. A replayed response enters the client at that same point, so everything the
client does after the transport (content decoding, cookies, redirects, event hooks,
``raise_for_status``, the SDKs' retries and error classes) runs on it as on a live one. The
client's ``send`` would be the wrong seam: it would skip that work, and a user's own transport
(``MockTransport``, ``ASGITransport``) never touches the network, so it is rightly left alone.
Everything that touches httpx internals lives in this module.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from types import ModuleType
from typing import Any
from unittest import mock

from .._flow import areplay_items, areplay_or_record, replay_items, replay_or_record
from .._httpexchange import (
    HttpAdapter,
    ReplayedResponse,
    Route,
    describe_request,
    response_record,
    route_for,
    test_id_header,
)
from .._recorder import Session, active_session
from .._storage import Recording
from .._types import Call, ResponseRecord

__all__ = ["REPLAYED_FROM", "install", "replayed_from"]

_LIBRARIES = ("httpx", "httpx2")
_PATCHED = "__apirecorder_http_layer__"
#: The ``extensions`` key of a response replayed from a file: the file's path. An SDK layer
#: above (``_anthropic``) reads it to name the file when the SDK cannot parse what it holds.
REPLAYED_FROM = "apirecorder_recording"


def replayed_from(response: Any) -> Any:
    """The recording ``response`` was replayed from, or None (a live response, or no httpx)."""
    extensions = getattr(response, "extensions", None)
    return extensions.get(REPLAYED_FROM) if isinstance(extensions, dict) else None


def install(stack: ExitStack) -> None:
    """Patch the transports of httpx and httpx2 (those imported) while ``stack`` is open.

    Registered once per library (the lazy installer calls this again when the other one is
    imported); a library whose transports are already patched is skipped, and one not yet
    imported is left to that later call: importing it here would cost what it costs.
    """
    for name in _LIBRARIES:
        lib = sys.modules.get(name)
        if lib is None:
            continue
        sync_cls, async_cls = lib.HTTPTransport, lib.AsyncHTTPTransport
        if getattr(sync_cls.handle_request, _PATCHED, False):
            continue
        stack.enter_context(
            mock.patch.object(
                sync_cls, "handle_request", _sync_handler(lib, sync_cls.handle_request)
            )
        )
        stack.enter_context(
            mock.patch.object(
                async_cls,
                "handle_async_request",
                _async_handler(lib, async_cls.handle_async_request),
            )
        )


# -- replay -----------------------------------------------------------------------------------


def _error(lib: ModuleType, replay: ReplayedResponse) -> BaseException | None:
    if replay.error_type is None:
        return None
    found = getattr(lib, replay.error_type, None)
    if isinstance(found, type) and issubclass(found, lib.RequestError):
        return found(replay.error_message)  # type: ignore[no-any-return]
    error: BaseException = lib.ReadError(replay.error_message)
    return error


@functools.cache
def _stream_class(lib: ModuleType) -> type[Any]:
    class ReplayByteStream(lib.SyncByteStream, lib.AsyncByteStream):  # type: ignore[name-defined,misc]
        """The recorded body, chunk by chunk (event by event), then any recorded error."""

        def __init__(self, chunks: list[bytes], error: BaseException | None) -> None:
            self._chunks = chunks
            self._error = error

        def __iter__(self) -> Iterator[bytes]:
            return replay_items(self._chunks, self._error)

        def __aiter__(self) -> AsyncIterator[bytes]:
            return areplay_items(self._chunks, self._error)

    return ReplayByteStream


def _response(lib: ModuleType, replay: ReplayedResponse) -> Any:
    stream = _stream_class(lib)(replay.chunks, _error(lib, replay))
    return lib.Response(
        replay.status,
        headers=replay.headers,
        stream=stream,
        extensions={
            "http_version": b"HTTP/1.1",
            "reason_phrase": replay.reason.encode("ascii", "replace"),
        },
    )


# -- record -----------------------------------------------------------------------------------


def _decodes(lib: ModuleType, live: Any) -> bool:
    """True when the client would decode this body, so it is stored decoded."""
    encodings = [e.strip().lower() for e in live.headers.get("content-encoding", "").split(",")]
    encodings = [e for e in encodings if e and e != "identity"]
    supported = importlib.import_module(f"{lib.__name__}._decoders").SUPPORTED_DECODERS
    return bool(encodings) and all(e in supported for e in encodings)


class _HttpxAdapter(HttpAdapter[Any]):
    """A transport's exchange: the raw response is read (decoded when the client would)."""

    def __init__(self, lib: ModuleType) -> None:
        self.lib = lib
        self.stream_errors = (lib.RequestError,)

    def response(self, replayed: ReplayedResponse) -> Any:
        return _response(self.lib, replayed)

    def replay(self, session: Session, recording: Recording, call: Call) -> Any:
        # Only a response read from a file says where it came from; one rebuilt from a
        # recording just written (record mode) is the live answer, and stays unmarked.
        response = super().replay(session, recording, call)
        response.extensions[REPLAYED_FROM] = recording.path
        return response

    def is_stream(self, result: Any) -> bool:
        return True

    is_async_stream = is_stream

    def chunks(self, result: Any) -> Iterator[bytes]:
        chunks: Iterator[bytes] = (
            result.iter_bytes() if _decodes(self.lib, result) else result.iter_raw()
        )
        return chunks

    def achunks(self, result: Any) -> AsyncIterator[bytes]:
        decoded = _decodes(self.lib, result)
        chunks: AsyncIterator[bytes] = result.aiter_bytes() if decoded else result.aiter_raw()
        return chunks

    def close(self, result: Any) -> None:
        result.close()

    async def aclose(self, result: Any) -> None:
        await result.aclose()

    def stream_response(
        self,
        session: Session,
        call: Call,
        result: Any,
        chunks: list[Any],
        error: BaseException | None,
    ) -> ResponseRecord:
        reason = result.extensions.get("reason_phrase", b"")
        return response_record(
            call,
            status=result.status_code,
            reason=reason.decode("ascii", "replace") if isinstance(reason, bytes) else None,
            headers=result.headers.multi_items(),
            body=b"".join(chunks),
            decoded=_decodes(self.lib, result),
            error=error,
            library=self.lib.__name__,
            ids=session.id_map,
        )


@functools.cache
def _adapter(lib: ModuleType) -> _HttpxAdapter:
    return _HttpxAdapter(lib)


def _under_test(request: Any) -> None:
    header = test_id_header()
    if header is not None:
        request.headers[header[0]] = header[1]


def _sync_handler(lib: ModuleType, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def handle_request(self: Any, request: Any) -> Any:
        session = active_session()
        if session is None:
            return original(self, request)
        route = route_for(session, str(request.url))
        if route is Route.UNDER_TEST:
            _under_test(request)
        if route is not Route.RECORD:
            return original(self, request)
        call = describe_request(
            session,
            method=request.method,
            url=str(request.url),
            headers=request.headers.multi_items(),
            body=request.read(),
        )
        return replay_or_record(session, call, _adapter(lib), lambda: original(self, request))

    setattr(handle_request, _PATCHED, True)
    return handle_request


def _async_handler(lib: ModuleType, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def handle_async_request(self: Any, request: Any) -> Any:
        session = active_session()
        if session is None:
            return await original(self, request)
        route = route_for(session, str(request.url))
        if route is Route.UNDER_TEST:
            _under_test(request)
        if route is not Route.RECORD:
            return await original(self, request)
        call = describe_request(
            session,
            method=request.method,
            url=str(request.url),
            headers=request.headers.multi_items(),
            body=await request.aread(),
        )
        return await areplay_or_record(
            session, call, _adapter(lib), lambda: original(self, request)
        )

    setattr(handle_async_request, _PATCHED, True)
    return handle_async_request
