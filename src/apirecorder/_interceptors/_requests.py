"""The HTTP layer for requests.

The seam is the transport adapter, ``HTTPAdapter.send``: the prepared request is final (each
redirect hop is a send of its own) and the response it returns is built by the adapter's own
``build_response`` from a urllib3 response. A replay builds that urllib3 response from the
recording, so ``Session.send`` (redirects, cookies, hooks, ``stream=True``, ``iter_lines``,
``iter_content``) works on it unchanged. Everything that touches requests' and urllib3's
internals lives in this module.
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

import requests
import requests.adapters
import urllib3
from urllib3.exceptions import ProtocolError

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

__all__ = ["install"]

#: Errors met while reading a live body that are recorded and raised again on replay.
_READ_ERRORS = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    requests.exceptions.ConnectionError,
)


def install(stack: ExitStack) -> None:
    """Patch ``HTTPAdapter.send`` for as long as ``stack`` stays open."""
    adapter = requests.adapters.HTTPAdapter
    stack.enter_context(mock.patch.object(adapter, "send", _send(adapter.send)))


# -- replay -----------------------------------------------------------------------------------


class _OriginalResponse:
    """Stands for the ``http.client`` response requests reads cookies from."""

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

    ``stream(amt)`` yields each recorded chunk (one server-sent event, one NDJSON line) in
    pieces of at most ``amt`` bytes and never joins two chunks, as urllib3 does for a live
    chunked response; ``read()`` reads the same bytes as one body.
    """

    def __init__(self, replay: ReplayedResponse, request_method: str, request_url: str) -> None:
        headers = urllib3.HTTPHeaderDict()
        for name, value in replay.headers:
            headers.add(name, value)
        super().__init__(
            body=io.BytesIO(replay.content),
            headers=headers,
            status=replay.status,
            version=11,
            version_string="HTTP/1.1",
            reason=replay.reason,
            preload_content=False,
            decode_content=False,
            original_response=_OriginalResponse(replay.headers),  # type: ignore[arg-type]
            request_method=request_method,
            request_url=request_url,
        )
        self._replay_sizes = [len(chunk) for chunk in replay.chunks]
        self._replay_error = (
            ProtocolError(replay.error_message) if replay.error_type is not None else None
        )

    def stream(
        self, amt: int | None = 2**16, decode_content: bool | None = None
    ) -> Generator[bytes]:
        for size in self._replay_sizes:
            data = self.read(size)
            if not data:
                break
            step = amt or len(data)
            for start in range(0, len(data), step):
                yield data[start : start + step]
        rest = self.read()
        if rest:
            yield rest
        if self._replay_error is not None:
            raise self._replay_error


def _response(adapter: Any, request: Any, replay: ReplayedResponse) -> requests.Response:
    raw = ReplayHTTPResponse(replay, str(request.method), str(request.url))
    response: requests.Response = adapter.build_response(request, raw)
    return response


# -- record -----------------------------------------------------------------------------------


def _body_bytes(request: Any) -> bytes:
    """The request body as bytes; a one-shot body (file, generator) is read once and kept."""
    body = request.body
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
    data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    request.body = data
    return data


def _decodes(live: requests.Response) -> bool:
    encodings = [e.strip().lower() for e in live.headers.get("content-encoding", "").split(",")]
    encodings = [e for e in encodings if e and e != "identity"]
    supported = urllib3.HTTPResponse.CONTENT_DECODERS
    return bool(encodings) and all(e in supported for e in encodings)


class _RequestsAdapter(HttpAdapter[requests.Response]):
    """An adapter's send: the body is read as ``iter_content`` reads it."""

    stream_errors = _READ_ERRORS

    def __init__(self, adapter: Any, request: Any) -> None:
        self.adapter = adapter
        self.request = request

    def response(self, replayed: ReplayedResponse) -> requests.Response:
        return _response(self.adapter, self.request, replayed)

    def is_stream(self, result: requests.Response) -> bool:
        return True

    def chunks(self, result: requests.Response) -> Iterator[bytes]:
        # urllib3 leaves an encoding it cannot decode as it is; _decodes() says which it did.
        return result.iter_content(chunk_size=None)

    def close(self, result: requests.Response) -> None:
        result.close()

    def stream_response(
        self,
        session: Session,
        call: Call,
        result: requests.Response,
        chunks: list[Any],
        error: BaseException | None,
    ) -> ResponseRecord:
        raw_headers = result.raw.headers
        return response_record(
            call,
            status=result.status_code,
            reason=result.reason,
            headers=list(raw_headers.items()) if raw_headers is not None else [],
            body=b"".join(chunks),
            decoded=_decodes(result),
            error=error,
            library="requests",
        )


def _send(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        session = active_session()
        if session is None:
            return original(self, request, *args, **kwargs)
        url = str(request.url)
        route = route_for(session, url)
        if route is Route.UNDER_TEST:
            header = test_id_header()
            if header is not None:
                request.headers[header[0]] = header[1]
        if route is not Route.RECORD:
            return original(self, request, *args, **kwargs)
        call = describe_request(
            session,
            method=str(request.method),
            url=url,
            headers=list(request.headers.items()),
            body=_body_bytes(request),
        )
        return replay_or_record(
            session,
            call,
            _RequestsAdapter(self, request),
            lambda: original(self, request, *args, **kwargs),
        )

    return send
