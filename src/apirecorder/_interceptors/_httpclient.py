"""The HTTP layer for ``http.client``, and so for ``urllib.request.urlopen``.

The seam is ``HTTPConnection.request`` and ``getresponse`` (``HTTPSConnection`` only overrides
``connect``). ``request`` only notes what is asked; ``getresponse`` replays it, or sends it then
and records the answer. A connection that replays never connects. The response handed back is a
real ``http.client.HTTPResponse`` parsed from the recorded message, so ``read``, ``readline``,
iteration, ``.headers`` and urllib's wrapping work on it as on a live one; a body recorded in
several chunks comes back chunked, one HTTP chunk per recorded chunk. urllib3 (and so requests
and botocore) sends through its own ``request`` and has a layer of its own: its connections
never reach the noted path here. Everything that touches ``http.client`` internals lives here.
"""

from __future__ import annotations

import functools
import http.client
import io
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from unittest import mock

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
from .._types import Call, ResponseRecord

__all__ = ["body_bytes", "full_url", "install"]

_PENDING = "_apirecorder_pending"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def install(stack: ExitStack) -> None:
    """Patch ``HTTPConnection.request`` and ``getresponse`` while ``stack`` stays open."""
    cls = http.client.HTTPConnection
    stack.enter_context(mock.patch.object(cls, "request", _request(cls.request)))
    stack.enter_context(
        mock.patch.object(cls, "getresponse", _getresponse(cls.getresponse, cls.request))
    )


def body_bytes(body: Any) -> bytes:
    """A request body as bytes; the caller sends these bytes in place of a one-shot body."""
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if hasattr(body, "read"):
        data = body.read()
    else:
        data = b"".join(part.encode("utf-8") if isinstance(part, str) else part for part in body)
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


# -- replay -----------------------------------------------------------------------------------


class _RecordedSocket:
    """What ``HTTPResponse`` reads a message from: the recorded bytes, nothing on the wire."""

    def __init__(self, raw: bytes) -> None:
        self._raw = raw

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BufferedReader:
        # Buffered, as a socket's file is: chunked reads and readline peek at it.
        return io.BufferedReader(io.BytesIO(self._raw))


def _message(replayed: ReplayedResponse) -> bytes:
    """The recorded response as an HTTP/1.1 message."""
    headers = list(replayed.headers)
    sized = any(name.lower() == "content-length" for name, _ in headers)
    # Recordings keep the transfer-encoding received; older ones have none.
    was_chunked = any(
        name.lower() == "transfer-encoding" and "chunked" in value.lower()
        for name, value in headers
    )
    many = len(replayed.chunks) > 1 or replayed.error_type is not None
    chunked = not sized and (was_chunked or many)
    if chunked:
        if not was_chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in replayed.chunks)
        # A body that stopped early stops here too: the reader meets the same IncompleteRead.
        body += b"" if replayed.error_type is not None else b"0\r\n\r\n"
    else:
        body = replayed.content
        if not sized:
            headers.append(("Content-Length", str(len(body))))
    head = f"HTTP/1.1 {replayed.status} {replayed.reason}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    return (head + "\r\n").encode("latin-1") + body


@dataclass
class _Pending:
    """A request ``request`` noted, for ``getresponse`` to replay or send."""

    call: Call
    url: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class _HttpClientAdapter(HttpAdapter[http.client.HTTPResponse]):
    """One exchange of a connection: the live body is read whole, then handed back as recorded."""

    stream_errors = (http.client.HTTPException, OSError)

    def __init__(self, method: str, url: str) -> None:
        self.method = method
        self.url = url

    def response(self, replayed: ReplayedResponse) -> http.client.HTTPResponse:
        sock: Any = _RecordedSocket(_message(replayed))
        response = http.client.HTTPResponse(sock, method=self.method, url=self.url)
        response.begin()
        return response

    def is_stream(self, result: http.client.HTTPResponse) -> bool:
        return True

    def chunks(self, result: http.client.HTTPResponse) -> Iterator[bytes]:
        try:
            yield result.read()
        except http.client.IncompleteRead as exc:
            yield exc.partial
            raise

    def close(self, result: http.client.HTTPResponse) -> None:
        result.close()

    def stream_response(
        self,
        session: Session,
        call: Call,
        result: http.client.HTTPResponse,
        chunks: list[Any],
        error: BaseException | None,
    ) -> ResponseRecord:
        return response_record(
            call,
            status=result.status,
            reason=result.reason,
            headers=result.getheaders(),
            body=b"".join(chunks),
            decoded=False,  # http.client never decodes a content-encoding
            error=error,
            library="http.client",
            ids=session.id_map,
        )


# -- the patched methods ----------------------------------------------------------------------


def full_url(scheme: str, host: str, port: int | None, target: str) -> str:
    """The URL of a request line's ``target`` sent to ``host:port`` (default ports left out)."""
    if "://" in target:  # a request through a plain proxy names the whole URL
        return target
    shown = f"[{host}]" if ":" in host else host
    suffix = "" if port in (None, _DEFAULT_PORTS.get(scheme)) else f":{port}"
    return f"{scheme}://{shown}{suffix}{target}"


def _full_url(conn: Any, url: str) -> str:
    scheme = "https" if isinstance(conn, http.client.HTTPSConnection) else "http"
    host, port = conn.host, conn.port
    if getattr(conn, "_tunnel_host", None):  # CONNECT through a proxy: the tunnel's end
        host, port = conn._tunnel_host, conn._tunnel_port
    return full_url(scheme, host, port, url)


def _request(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def request(
        self: Any, method: str, url: str, body: Any = None, headers: Any = None, **kwargs: Any
    ) -> Any:
        headers = dict(headers or {})
        session = active_session()
        if session is None:
            return original(self, method, url, body, headers, **kwargs)
        full_url = _full_url(self, url)
        route = route_for(session, full_url)
        if route is Route.UNDER_TEST:
            header = test_id_header()
            if header is not None:
                headers[header[0]] = header[1]
        if route is not Route.RECORD:
            return original(self, method, url, body, headers, **kwargs)
        data = body_bytes(body)
        call = describe_request(
            session,
            method=method,
            url=full_url,
            headers=[(str(k), str(v)) for k, v in headers.items()],
            body=data,
        )
        # Nothing is sent yet: getresponse replays the call, or sends it then.
        setattr(self, _PENDING, _Pending(call, full_url, (method, url, data, headers), kwargs))
        return None

    return request


def _getresponse(
    original: Callable[..., Any], original_request: Callable[..., Any]
) -> Callable[..., Any]:
    @functools.wraps(original)
    def getresponse(self: Any) -> Any:
        pending: _Pending | None = getattr(self, _PENDING, None)
        session = active_session()
        if pending is None or session is None:
            return original(self)
        delattr(self, _PENDING)

        def send() -> http.client.HTTPResponse:
            original_request(self, *pending.args, **pending.kwargs)
            live: http.client.HTTPResponse = original(self)
            return live

        adapter = _HttpClientAdapter(str(pending.args[0]), pending.url)
        return replay_or_record(session, pending.call, adapter, send)

    return getresponse
