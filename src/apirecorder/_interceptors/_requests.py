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
from collections.abc import Callable, Generator
from contextlib import ExitStack
from email.message import Message
from http.client import HTTPMessage
from typing import Any
from unittest import mock

import requests
import requests.adapters
import urllib3
from urllib3.exceptions import ProtocolError

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


def _read_live(call: Call, live: requests.Response) -> dict[str, Any]:
    chunks: list[bytes] = []
    error: BaseException | None = None
    decoded = _decodes(live)
    try:
        # urllib3 leaves an encoding it cannot decode as it is; _decodes() says which it did.
        chunks.extend(live.iter_content(chunk_size=None))
    except _READ_ERRORS as exc:
        error = exc
    finally:
        live.close()
    raw_headers = live.raw.headers
    record = response_record(
        call,
        status=live.status_code,
        reason=live.reason,
        headers=list(raw_headers.items()) if raw_headers is not None else [],
        body=b"".join(chunks),
        decoded=decoded,
    )
    if error is not None:
        exception_record(record, error, "requests")
    return record


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
        found = session.lookup(call)
        if found is not None:
            return _response(self, request, replay_recording(found, call))
        if not session.records:
            return original(self, request, *args, **kwargs)
        with sdk_layer_call():
            live = original(self, request, *args, **kwargs)
            record = _read_live(call, live)
        return _response(self, request, save_exchange(session, call, record))

    return send
