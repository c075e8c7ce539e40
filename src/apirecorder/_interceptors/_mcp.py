"""The MCP client layer: every request an ``mcp.ClientSession`` sends, as a tool call.

Patches ``ClientSession.send_request``, the one path of ``initialize``, ``list_tools``,
``call_tool``, ``list_resources``/``read_resource``, ``list_prompts``/``get_prompt`` and the
rest, and ``send_discover``. The key is ``provider="mcp:<server>"``, the JSON-RPC method as the
tool name and the request's params as kwargs; results replay as ``mcp``'s own types (an
``isError`` result is a result) and protocol errors as ``MCPError``. The session's own logic
(negotiated version, tool schemas, result validation) runs on replay as it did live.

:func:`mcp_client` wraps a transport so that replay needs no server: in replay mode it hands
the session a pair of in-memory streams instead of starting the transport. It imports neither
``mcp`` nor ``anyio`` until it is used, so ``import apirecorder`` stays light. Everything that
touches ``mcp``'s internals lives in this module.
"""

from __future__ import annotations

import functools
import importlib
import math
import threading
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, ExitStack
from pathlib import PurePath
from types import TracebackType
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

from .._flow import areplay_or_record
from .._modes import Mode
from .._recorder import active_session, sdk_layer_call
from .._tools import ToolAdapter

__all__ = ["McpClient", "install", "mcp_client"]

#: Where protocol errors live; ``mcp.types``/``mcp_types`` are on the default allow-list.
_TRUSTED = ("mcp.shared.exceptions",)

_lock = threading.Lock()
#: id(read stream) -> server name, for the transports an ``mcp_client`` block holds open.
_servers: dict[int, str] = {}


def install(stack: ExitStack) -> None:
    """Patch ``ClientSession`` for as long as ``stack`` stays open."""
    session_module = importlib.import_module("mcp.client.session")
    exceptions = importlib.import_module("mcp.shared.exceptions")
    cls = session_module.ClientSession
    errors: tuple[type[BaseException], ...] = (exceptions.MCPError,)
    stack.enter_context(
        mock.patch.object(cls, "send_request", _send_request(cls.send_request, errors))
    )
    stack.enter_context(
        mock.patch.object(cls, "send_discover", _send_discover(cls.send_discover, errors))
    )
    # The rest of the session's traffic (notifications, the dispatcher's answers to server
    # requests, the event stream the "initialized" notification opens) belongs to this layer
    # too: a transport sends each message in its sender's context, so mark those senders.
    for name in ("__aenter__", "send_notification"):
        stack.enter_context(mock.patch.object(cls, name, _mcp_layer(getattr(cls, name))))


# -- which server a session talks to ----------------------------------------------------


def _provider(client_session: Any) -> str:
    dispatcher = getattr(client_session, "_dispatcher", None)
    read_stream = getattr(dispatcher, "_read_stream", None)
    with _lock:
        server = _servers.get(id(read_stream)) if read_stream is not None else None
    return f"mcp:{server}" if server else "mcp"


def server_name(transport: Any) -> str | None:
    """A stable name for the server behind ``transport``, or None when it cannot tell.

    ``stdio_client(params)`` gives the command's file name (any ``python*`` as ``python``)
    and its arguments; ``streamable_http_client(url)`` gives the URL path (ports change).
    """
    args = getattr(transport, "args", None)
    if not isinstance(args, tuple) or not args:
        return None
    first = args[0]
    command = getattr(first, "command", None)
    if isinstance(command, str):
        name = PurePath(command).name
        name = "python" if name.startswith("python") else name
        return " ".join([name, *(str(a) for a in getattr(first, "args", []) or [])])
    if isinstance(first, str) and "://" in first:
        return urlsplit(first).path or "/"
    return None


# -- the patched methods ----------------------------------------------------------------


def _send_request(
    original: Callable[..., Any], errors: tuple[type[BaseException], ...]
) -> Callable[..., Any]:
    @functools.wraps(original)
    async def send_request(
        self: Any, request: Any, result_type: Any, *args: Any, **kwargs: Any
    ) -> Any:
        session = active_session()
        if session is None or session.mode is Mode.LIVE:
            return await original(self, request, result_type, *args, **kwargs)
        data = request.model_dump(by_alias=True, mode="json", exclude_none=True)
        provider = _provider(self)
        call = session.tool_call(provider, str(data["method"]), data.get("params") or {})
        adapter = ToolAdapter(provider, _TRUSTED, errors, async_items=True)
        return await areplay_or_record(
            session, call, adapter, lambda: original(self, request, result_type, *args, **kwargs)
        )

    return send_request


def _send_discover(
    original: Callable[..., Any], errors: tuple[type[BaseException], ...]
) -> Callable[..., Any]:
    @functools.wraps(original)
    async def send_discover(self: Any, version: str) -> Any:
        session = active_session()
        if session is None or session.mode is Mode.LIVE:
            return await original(self, version)
        provider = _provider(self)
        call = session.tool_call(provider, "server/discover", {"version": version})
        adapter = ToolAdapter(provider, _TRUSTED, errors, async_items=True)
        return await areplay_or_record(session, call, adapter, lambda: original(self, version))

    return send_discover


def _mcp_layer(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def marked(self: Any, *args: Any, **kwargs: Any) -> Any:
        if active_session() is None:
            return await original(self, *args, **kwargs)
        with sdk_layer_call():
            return await original(self, *args, **kwargs)

    return marked


# -- a transport that replay does not start -----------------------------------------------


class McpClient(AbstractAsyncContextManager[tuple[Any, Any]]):
    """``mcp_client``'s context manager: the transport's streams, or stand-ins on replay."""

    def __init__(self, transport: AbstractAsyncContextManager[Any], server: str | None) -> None:
        self._transport = transport
        self._server = server if server is not None else server_name(transport)
        self._stand_ins: tuple[Any, ...] = ()
        self._read_id: int | None = None

    async def __aenter__(self) -> tuple[Any, Any]:
        session = active_session()
        if session is not None and session.mode is Mode.REPLAY:
            import anyio  # local: only replay needs it, and only mcp users have it

            feed, read_stream = anyio.create_memory_object_stream[Any](0)
            # Unbounded, so notifications the session sends (say "initialized") never block.
            write_stream, sink = anyio.create_memory_object_stream[Any](math.inf)
            self._stand_ins = (feed, read_stream, write_stream, sink)
            streams: tuple[Any, Any] = (read_stream, write_stream)
        else:
            # Tasks the transport starts inherit this mark: its HTTP traffic (notifications,
            # the event stream) belongs to the MCP layer, not to the HTTP layer below.
            with sdk_layer_call():
                streams = await self._transport.__aenter__()
        if self._server:
            self._read_id = id(streams[0])
            with _lock:
                _servers[self._read_id] = self._server
        return streams

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._read_id is not None:
            with _lock:
                _servers.pop(self._read_id, None)
            self._read_id = None
        if self._stand_ins:
            for stream in self._stand_ins:
                stream.close()
            self._stand_ins = ()
            return None
        with sdk_layer_call():
            result: bool | None = await self._transport.__aexit__(exc_type, exc, tb)
        return result


def mcp_client(transport: AbstractAsyncContextManager[Any], server: str | None = None) -> McpClient:
    """Open an MCP transport, or, in replay mode, stand-in streams with no server behind them.

    Use it where the transport is opened::

        async with apirecorder.mcp_client(stdio_client(params)) as (read, write):
            async with ClientSession(read, write) as session: ...

    ``server`` names the server in the recordings' key (default: derived from the transport,
    see :func:`server_name`); give it when two servers would get the same name.
    """
    return McpClient(transport, server)
