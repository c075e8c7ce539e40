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
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack
from typing import Any
from unittest import mock

import aiohttp
from aiohttp.client_reqrep import ClientRequest, ClientResponse
from aiohttp.helpers import TimerNoop
from aiohttp.http_writer import HttpVersion11
from aiohttp.streams import StreamReader
from multidict import CIMultiDict, CIMultiDictProxy

from .._flow import areplay_or_record
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
from .._types import Call, ResponseRecord

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


class _AiohttpAdapter(HttpAdapter[ClientResponse]):
    """The innermost middleware's exchange: the body is read chunk by chunk as it arrives."""

    stream_errors = _READ_ERRORS

    def __init__(self, req: ClientRequest) -> None:
        self.req = req

    def response(self, replayed: ReplayedResponse) -> ClientResponse:
        return _response(self.req, replayed)

    def is_async_stream(self, result: ClientResponse) -> bool:
        return True

    def achunks(self, result: ClientResponse) -> AsyncIterator[bytes]:
        return result.content.iter_any().__aiter__()

    async def aclose(self, result: ClientResponse) -> None:
        result.release()

    def stream_response(
        self,
        session: Session,
        call: Call,
        result: ClientResponse,
        chunks: list[Any],
        error: BaseException | None,
    ) -> ResponseRecord:
        # Known only once the body is read: aiohttp counts compressed bytes when it decodes.
        decoded = (
            "content-encoding" in result.headers
            and result.content.total_compressed_bytes is not None
        )
        return response_record(
            call,
            status=result.status,
            reason=result.reason,
            headers=[
                (name.decode("utf-8", "replace"), value.decode("utf-8", "replace"))
                for name, value in result.raw_headers
            ],
            body=b"".join(chunks),
            decoded=decoded,
            error=error,
            library="aiohttp",
            ids=session.id_map,
        )


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
    response: ClientResponse = await areplay_or_record(
        session, call, _AiohttpAdapter(req), lambda: handler(req)
    )
    return response
