"""The HTTP layer for requests.

The seam is the transport adapter, ``HTTPAdapter.send``: the prepared request is final (each
redirect hop is a send of its own) and the response it returns is built by the adapter's own
``build_response`` from a urllib3 response. A replay builds that urllib3 response from the
recording, so ``Session.send`` (redirects, cookies, hooks, ``stream=True``, ``iter_lines``,
``iter_content``) works on it unchanged; that response is ``_urllib3``'s, whose layer lets
the calls this one records pass. Everything that touches requests' internals lives here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any
from unittest import mock

import requests
import requests.adapters

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
from ._httpclient import body_bytes
from ._urllib3 import ReplayHTTPResponse, decodes

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


def _response(adapter: Any, request: Any, replay: ReplayedResponse) -> requests.Response:
    raw = ReplayHTTPResponse(replay, str(request.method), str(request.url))
    response: requests.Response = adapter.build_response(request, raw)
    return response


# -- record -----------------------------------------------------------------------------------


def _body_bytes(request: Any) -> bytes:
    """The request body as bytes; a one-shot body (file, generator) is read once and kept."""
    data = body_bytes(request.body)
    if request.body is not None and not isinstance(request.body, bytes):
        request.body = data
    return data


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
            decoded=decodes(result.headers),
            error=error,
            library="requests",
            ids=session.id_map,
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
