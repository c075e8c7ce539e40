"""The HTTP layer for urllib3, and so for botocore (boto3) and anything else built on it.

The seam is ``HTTPConnectionPool._make_request``: one call per exchange on the wire (urllib3
handles a retry or a redirect by calling ``urlopen`` again, so each hop is an exchange of its
own), after the pool picked a connection and before that connection connects, so a replay opens
no socket. ``HTTPSConnectionPool`` and ``PoolManager`` go through it. A replay hands urllib3 a
:class:`ReplayHTTPResponse`, a real ``urllib3.HTTPResponse`` that streams the recorded chunks
(one per event-stream frame, server-sent event or NDJSON line), so botocore's event-stream
parser, ``.data``, ``.stream()`` and ``.read()`` work on it unchanged. ``requests`` is recorded
one layer up, at its adapter, which marks the call so this layer lets it pass. Everything that
touches urllib3's internals lives in this module (the requests layer reuses its response).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from email.message import Message
from http.client import HTTPMessage
from typing import Any
from unittest import mock

import urllib3
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import HTTPError, ProtocolError

from .._flow import replay_or_record
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
from ._httpclient import body_bytes, full_url

__all__ = ["ReplayHTTPResponse", "decodes", "install"]


def install(stack: ExitStack) -> None:
    """Patch ``HTTPConnectionPool._make_request`` for as long as ``stack`` stays open."""
    pool = HTTPConnectionPool
    stack.enter_context(mock.patch.object(pool, "_make_request", _make_request(pool._make_request)))


# -- replay -----------------------------------------------------------------------------------


class _OriginalResponse:
    """Stands for the ``http.client`` response that requests reads cookies from."""

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self.msg: Message = HTTPMessage()
        for name, value in headers:
            self.msg[name] = value
        self._closed = False

    def close(self) -> None:
        self._closed = True

    def isclosed(self) -> bool:
        return self._closed


class ReplayHTTPResponse(urllib3.HTTPResponse):
    """A urllib3 response that streams the recorded chunks as a live one streams its chunks.

    ``stream(amt)`` yields each recorded chunk (one event-stream frame, one server-sent event)
    in pieces of at most ``amt`` bytes and never joins two chunks, as urllib3 does for a live
    chunked response; ``read()`` reads the same bytes as one body.
    """

    def __init__(
        self,
        replay: ReplayedResponse,
        request_method: str,
        request_url: str,
        *,
        preload_content: bool = False,
        decode_content: bool = False,
        **extra: Any,
    ) -> None:
        headers = urllib3.HTTPHeaderDict()
        for name, value in replay.headers:
            headers.add(name, value)
        self._replay_sizes = [len(chunk) for chunk in replay.chunks]
        self._replay_error = (
            ProtocolError(replay.error_message) if replay.error_type is not None else None
        )
        super().__init__(
            body=io.BytesIO(replay.content),
            headers=headers,
            status=replay.status,
            version=11,
            version_string="HTTP/1.1",
            reason=replay.reason,
            preload_content=preload_content,
            decode_content=decode_content,
            original_response=_OriginalResponse(replay.headers),  # type: ignore[arg-type]
            request_method=request_method,
            request_url=request_url,
            **extra,
        )

    def stream(
        self, amt: int | None = 2**16, decode_content: bool | None = None
    ) -> Generator[bytes]:
        for size in self._replay_sizes:
            data = self.read(size, decode_content=decode_content)
            if not data:
                break
            step = amt or len(data)
            for start in range(0, len(data), step):
                yield data[start : start + step]
        rest = self.read(decode_content=decode_content)
        if rest:
            yield rest
        if self._replay_error is not None:
            raise self._replay_error


# -- record -----------------------------------------------------------------------------------


def decodes(headers: Any) -> bool:
    """True when urllib3 decodes a body with these headers, so it is stored decoded."""
    encodings = [e.strip().lower() for e in headers.get("content-encoding", "").split(",")]
    encodings = [e for e in encodings if e and e != "identity"]
    supported = urllib3.HTTPResponse.CONTENT_DECODERS
    return bool(encodings) and all(e in supported for e in encodings)


def _header_value(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


class _Urllib3Adapter(HttpAdapter[Any]):
    """One exchange of a pool: the live body is read whole, then handed back as recorded."""

    stream_errors = (HTTPError,)

    def __init__(self, pool: Any, method: str, url: str, options: dict[str, Any]) -> None:
        self.pool = pool
        self.method = method
        self.url = url
        self.options = options  # the caller's preload/decode choices, retries, response_conn

    def replay(self, session: Session, recording: Recording, call: Call) -> Any:
        # The connection the pool lent for this exchange never connected: hand it back.
        lent = self.options.get("response_conn")
        if lent is not None:
            self.pool._put_conn(lent)
        return super().replay(session, recording, call)

    def response(self, replayed: ReplayedResponse) -> ReplayHTTPResponse:
        response = ReplayHTTPResponse(
            replayed,
            self.method,
            self.url,
            preload_content=self.options.get("preload_content", True),
            decode_content=self.options.get("decode_content", True),
            enforce_content_length=self.options.get("enforce_content_length", True),
            retries=self.options.get("retries"),
        )
        response._pool = self.pool
        return response

    def is_stream(self, result: Any) -> bool:
        return True

    def chunks(self, result: Any) -> Iterator[bytes]:
        chunks: Iterator[bytes] = result.stream(2**16, decode_content=decodes(result.headers))
        return chunks

    def close(self, result: Any) -> None:
        result.release_conn()

    def stream_response(
        self,
        session: Session,
        call: Call,
        result: Any,
        chunks: list[Any],
        error: BaseException | None,
    ) -> ResponseRecord:
        return response_record(
            call,
            status=result.status,
            reason=result.reason,
            headers=list(result.headers.items()),
            body=b"".join(chunks),
            decoded=decodes(result.headers),
            error=error,
            library="urllib3",
            ids=session.id_map,
        )


def _make_request(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def make_request(
        self: Any,
        conn: Any,
        method: str,
        url: str,
        body: Any = None,
        headers: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        session = active_session()
        if session is None or args:
            return original(self, conn, method, url, body, headers, *args, **kwargs)
        url_sent = full_url(self.scheme, self.host, self.port, url)
        route = route_for(session, url_sent)
        if route is Route.UNDER_TEST:
            header = test_id_header()
            if header is not None:
                headers = {**(headers or {}), header[0]: header[1]}
        if route is not Route.RECORD:
            return original(self, conn, method, url, body, headers, **kwargs)
        data = body_bytes(body)
        call = describe_request(
            session,
            method=method,
            url=url_sent,
            headers=[(str(k), _header_value(v)) for k, v in (headers or {}).items()],
            body=data,
        )
        live_kwargs = {**kwargs, "preload_content": False, "decode_content": False}
        return replay_or_record(
            session,
            call,
            _Urllib3Adapter(self, method, url_sent, kwargs),
            lambda: original(self, conn, method, url, data, headers, **live_kwargs),
        )

    return make_request
