"""Servers under test: calls a server makes are recorded under the test that drove it.

The test side needs nothing but a host under test (``hosts_under_test=`` of ``recording()``,
the ini key ``apirecorder_hosts_under_test`` or ``$APIRECORDER_HOSTS_UNDER_TEST``): the HTTP
layer then sends the current test id in the ``X-Apirecorder-Test-Id`` header. The server side
is this module. :class:`TestIdMiddleware` wraps an ASGI app (Starlette, FastAPI, Quart...);
other frameworks call :func:`request_context` around a request. Both turn recording on for
the whole server process from ``$APIRECORDER_MODE`` and ``$APIRECORDER_DIR`` (nothing happens
when ``APIRECORDER_MODE`` is unset) and run the request with the header's test id.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import ExitStack, contextmanager
from typing import Any

from ._context import TEST_ID_HEADER, test_context
from ._exceptions import raise_surfaced
from ._httpexchange import decode_test_id
from ._recording import Session, recording
from ._settings import HOSTS_UNDER_TEST_ENV, IGNORE_HOSTS_ENV, MODE_ENV

__all__ = [
    "IGNORE_HOSTS_ENV",
    "TEST_ID_HEADER",
    "TestIdMiddleware",
    "recording_from_environment",
    "request_context",
    "start_recording_from_environment",
    "stop_recording_from_environment",
    "test_id_from_headers",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_HEADER = TEST_ID_HEADER.lower()
_WSGI_KEY = "HTTP_" + TEST_ID_HEADER.upper().replace("-", "_")


def test_id_from_headers(headers: Any) -> str | None:
    """The test id a request carries, or None.

    ``headers`` may be a mapping of header names (any case) to values, a WSGI ``environ``,
    or an ASGI header list of ``(name, value)`` byte pairs.
    """
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            key = name.decode("latin-1") if isinstance(name, bytes) else str(name)
            if key.lower() == _HEADER or key == _WSGI_KEY:
                return _decoded(value)
        return None
    for pair in headers:
        name, value = pair
        key = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        if key.lower() == _HEADER:
            return _decoded(value)
    return None


test_id_from_headers.__test__ = False  # type: ignore[attr-defined]


def _decoded(value: Any) -> str | None:
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return decode_test_id(text) if text else None


def _hosts(variable: str) -> tuple[str, ...]:
    return tuple(host for host in re.split(r"[,\s]+", os.environ.get(variable, "")) if host)


@contextmanager
def recording_from_environment() -> Iterator[Session | None]:
    """``recording()`` as the environment asks, or nothing when ``APIRECORDER_MODE`` is unset.

    ``APIRECORDER_DIR`` is the flat storage folder; without it recordings sit next to each
    test file under the current folder, as the pytest plugin writes them when run from the
    same folder. ``APIRECORDER_IGNORE_HOSTS`` and ``APIRECORDER_HOSTS_UNDER_TEST`` apply too.
    """
    if not os.environ.get(MODE_ENV):
        yield None
        return
    # Process-wide: the server handles each request in a thread or task of its own, none of
    # them inside this block.
    with recording(
        ignore_hosts=_hosts(IGNORE_HOSTS_ENV),
        hosts_under_test=_hosts(HOSTS_UNDER_TEST_ENV),
        process_wide=True,
    ) as session:
        yield session


_process_lock = threading.Lock()
_process_stack: ExitStack | None = None
_process_session: Session | None = None


def start_recording_from_environment() -> Session | None:
    """Turn recording on for the whole process, as the environment asks; at most once.

    Returns the process's session (None when ``APIRECORDER_MODE`` is unset).
    """
    global _process_stack, _process_session
    with _process_lock:
        if _process_stack is None:
            stack = ExitStack()
            _process_session = stack.enter_context(recording_from_environment())
            _process_stack = stack
        return _process_session


def stop_recording_from_environment() -> None:
    """Undo :func:`start_recording_from_environment` (the next request starts it again)."""
    global _process_stack, _process_session
    with _process_lock:
        stack, _process_stack, _process_session = _process_stack, None, None
    if stack is not None:
        stack.close()


@contextmanager
def request_context(headers: Any, *, record_from_environment: bool = True) -> Iterator[str | None]:
    """Handle one request of any framework: recording on from the environment, test id set.

    Yields the request's test id. Without the header the current test id is left as it is.
    """
    if record_from_environment:
        start_recording_from_environment()
    test_id = test_id_from_headers(headers)
    if test_id is None:
        yield None
        return
    with test_context(test_id):
        yield test_id


class TestIdMiddleware:
    """ASGI middleware: each request runs under the test id its header carries.

    With ``record_from_environment`` (the default) it also turns recording on from the
    environment, at lifespan start-up (and off at shutdown) or at the first request when the
    server runs no lifespan.
    """

    __test__ = False

    def __init__(self, app: ASGIApp, *, record_from_environment: bool = True) -> None:
        self.app = app
        self.record_from_environment = record_from_environment

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            if self.record_from_environment:
                start_recording_from_environment()
            try:
                await self.app(scope, receive, send)
            finally:
                if self.record_from_environment:
                    stop_recording_from_environment()
            return
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers: Iterable[tuple[bytes, bytes]] = scope.get("headers") or ()
        with request_context(headers, record_from_environment=self.record_from_environment):
            try:
                await self.app(scope, receive, send)
            except BaseException as exc:
                # A miss below a client travels as its interrupting twin, which the app's
                # own error handling lets pass; the server gets the plain error.
                raise_surfaced(exc)
                raise
