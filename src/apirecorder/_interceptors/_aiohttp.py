"""The HTTP layer for aiohttp's client.

The seam is aiohttp's client middleware chain (aiohttp 3.12 and later): ``ClientSession._request``
is patched only to append one middleware, innermost, next to the connection. There the request
is final (URL with its query, default headers, cookies and auth applied, each redirect hop a
request of its own), and a replayed ``ClientResponse`` goes back through the session's own
code: cookies, redirects, ``raise_for_status``, the user's middlewares, ``async with``. Its
body is a ``StreamReader`` that hands out the recorded chunks one at a time, so
``resp.content`` iterates event by event as it does live. Everything that touches aiohttp's
internals lives in this module.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from typing import Any
from unittest import mock

import aiohttp
from aiohttp.client_reqrep import ClientRequest, ClientResponse
from aiohttp.helpers import TimerNoop
from aiohttp.http_writer import HttpVersion11
from aiohttp.streams import StreamReader
from multidict import CIMultiDict, CIMultiDictProxy

from .._httpbody import (
    ReplayedResponse,
    Route,
    describe_request,
    exception_record,
    replay_recording,
    response_record,
    route_for,
    save_exchange,
    test_id_header,
)
from .._recorder import Call, active_session, sdk_layer_call

__all__ = ["install"]

logger = logging.getLogger("apirecorder")

Handler = Callable[[ClientRequest], Awaitable[ClientResponse]]

#: Errors met while reading a live body that are recorded and raised again on replay.
_READ_ERRORS = (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)


def install(stack: ExitStack) -> None:
    """Patch ``ClientSession._request`` for as long as ``stack`` stays open."""
    session_cls = aiohttp.ClientSession
    if "middlewares" not in inspect.signature(session_cls._request).parameters:
        logger.warning(
            "apirecorder: aiohttp %s has no client middlewares (3.12 and later do); "
            "aiohttp calls are not recorded",
            aiohttp.__version__,
        )
        return
    stack.enter_context(mock.patch.object(session_cls, "_request", _request(session_cls._request)))


def _request(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def request(self: Any, method: str, str_or_url: Any, **kwargs: Any) -> Any:
        if active_session() is not None:
            given = kwargs.get("middlewares")
            chain = self._middlewares if given is None else given
            kwargs["middlewares"] = (*chain, _recorder_middleware)
        return await original(self, method, str_or_url, **kwargs)

    return request


# -- replay -----------------------------------------------------------------------------------


class _NoProtocol:
    """The connection a replayed body never had: always open, nothing to pause."""

    connected = True
    upgraded = False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, resume_parser: bool = True) -> None:
        pass


class ReplayStreamReader(StreamReader):
    """A body that receives the next recorded chunk each time a reader waits for data."""

    __slots__ = ("_pending", "_replay_error")

    def __init__(
        self, chunks: list[bytes], error: BaseException | None, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(_NoProtocol(), 2**16, loop=loop)  # type: ignore[arg-type]
        self._pending = deque(chunks)
        self._replay_error = error

    async def _wait(self, func_name: str) -> None:
        if self._pending:
            self.feed_data(self._pending.popleft())
        elif self._replay_error is not None:
            error, self._replay_error = self._replay_error, None
            self.set_exception(error)
            raise error
        else:
            self.feed_eof()


class _NoWriter:
    output_size = 0


def _error(replay: ReplayedResponse) -> BaseException | None:
    if replay.error_type is None:
        return None
    found = getattr(aiohttp, replay.error_type, None)
    if isinstance(found, type) and issubclass(found, aiohttp.ClientPayloadError):
        return found(replay.error_message)
    return aiohttp.ClientPayloadError(replay.error_message)


def _response(req: ClientRequest, replay: ReplayedResponse) -> ClientResponse:
    options: dict[str, Any] = {
        "writer": None,
        "continue100": None,
        "timer": TimerNoop(),
        "request_info": req.request_info,
        "traces": [],
        "loop": req.loop,
        "session": req.session,
        "stream_writer": _NoWriter(),
    }
    accepted = inspect.signature(req.response_class).parameters
    response = req.response_class(
        req.method,
        req.original_url,
        **{key: value for key, value in options.items() if key in accepted},
    )
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in replay.headers:
        headers.add(name, value)
    response.version = HttpVersion11
    response.status = replay.status
    response.reason = replay.reason
    response._headers = CIMultiDictProxy(headers)
    response._raw_headers = tuple(
        (name.encode("utf-8"), value.encode("utf-8")) for name, value in replay.headers
    )
    cookies = headers.getall("set-cookie", [])
    if cookies:
        response._raw_cookie_headers = tuple(cookies)
    content = ReplayStreamReader(replay.chunks, _error(replay), req.loop)
    response.content = content
    response._closed = False
    content.on_eof(response._response_eof)
    return response


# -- record -----------------------------------------------------------------------------------


async def _body_bytes(req: ClientRequest) -> bytes:
    body = req.body
    if isinstance(body, bytes):
        return body
    data: bytes = await body.as_bytes()
    return data


async def _read_live(call: Call, live: ClientResponse) -> dict[str, Any]:
    chunks: list[bytes] = []
    error: BaseException | None = None
    try:
        async for chunk in live.content.iter_any():
            chunks.append(chunk)
    except _READ_ERRORS as exc:
        error = exc
    finally:
        live.release()
    decoded = "content-encoding" in live.headers and live.content.total_compressed_bytes is not None
    record = response_record(
        call,
        status=live.status,
        reason=live.reason,
        headers=[
            (name.decode("utf-8", "replace"), value.decode("utf-8", "replace"))
            for name, value in live.raw_headers
        ],
        body=b"".join(chunks),
        decoded=decoded,
    )
    if error is not None:
        exception_record(record, error, "aiohttp")
    return record


async def _recorder_middleware(req: ClientRequest, handler: Handler) -> ClientResponse:
    session = active_session()
    if session is None:
        return await handler(req)
    url = str(req.url)
    route = route_for(session, url)
    if route is Route.UNDER_TEST:
        header = test_id_header()
        if header is not None:
            req.headers[header[0]] = header[1]
    if route is not Route.RECORD:
        return await handler(req)
    call = describe_request(
        session,
        method=req.method,
        url=url,
        headers=req.headers.items(),
        body=await _body_bytes(req),
    )
    found = session.lookup(call)
    if found is not None:
        return _response(req, replay_recording(found, call))
    if not session.records:
        return await handler(req)
    with sdk_layer_call():
        live = await handler(req)
        record = await _read_live(call, live)
    return _response(req, save_exchange(session, call, record))
