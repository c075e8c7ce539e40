"""The MCP client layer: every request an ``mcp.ClientSession`` sends, as a tool call.

Patches ``ClientSession.send_request``, the one path of ``initialize``, ``list_tools``,
``call_tool``, ``list_resources``/``read_resource``, ``list_prompts``/``get_prompt`` and the
rest, and ``send_discover``. The key is ``provider="mcp:<server>"``, the JSON-RPC method as the
tool name and the request's params as kwargs; results replay as ``mcp``'s own types (an
``isError`` result is a result) and protocol errors as ``MCPError``. The session's own logic
(negotiated version, tool schemas, result validation) runs on replay as it did live.

Transports opened as they are, without the wrapper, start no server on replay either:
``stdio_client`` gets a stand-in process (``_create_platform_compatible_process`` is patched),
and a streamable HTTP transport sends nothing (its ``post_writer`` drains the messages still
sent, ``terminate_session`` does nothing); while recording, their HTTP traffic is marked as
this layer's. Such a session is keyed by its URL path over HTTP, as the wrapper keys it, and
"mcp" over stdio, where a command has no stable name.

:func:`mcp_client` wraps a transport so that replay needs no server: in replay mode it hands
the session a pair of in-memory streams instead of starting the transport, and it names the
server in the key (``server=``). It imports neither ``mcp`` nor ``anyio`` until it is used, so
``import apirecorder`` stays light. Everything that touches ``mcp``'s internals lives here.

A replayed answer the SDK itself refuses (an output that breaks the tool's output schema, a
claimed result where ``call_tool`` wants a ``CallToolResult``, a pydantic ``ValidationError``)
is raised as :class:`~apirecorder.RecordingFormatError` naming the files replayed for that
method, chained ``from`` the SDK's exception (:func:`_refusing`); a recorded protocol error
still replays as ``MCPError``.
"""

from __future__ import annotations

import functools
import importlib
import math
import threading
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, ExitStack
from contextvars import ContextVar
from pathlib import Path, PurePath
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from .._exceptions import ApiRecorderError, RecordingFormatError
from .._flow import areplay_or_record
from .._modes import Mode
from .._recorder import Call, Session, active_session, sdk_layer_call
from .._storage import Recording
from .._tools import ToolAdapter

__all__ = ["McpClient", "install", "mcp_client"]

#: Where protocol errors live; ``mcp.types``/``mcp_types`` are on the default allow-list.
_TRUSTED = ("mcp.shared.exceptions",)

_lock = threading.Lock()
#: id(read stream) -> server name, for the transports an ``mcp_client`` block holds open.
_servers: dict[int, str] = {}


def install(stack: ExitStack) -> None:
    """Patch ``ClientSession`` for as long as ``stack`` stays open."""
    from unittest import mock  # with the patching: unittest.mock imports asyncio

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
    stack.enter_context(mock.patch.object(cls, "__aenter__", _session_enter(cls.__aenter__)))
    stack.enter_context(
        mock.patch.object(cls, "send_notification", _mcp_layer(cls.send_notification))
    )
    for name in _CHECKED:
        method = getattr(cls, name, None)
        if method is not None:
            stack.enter_context(mock.patch.object(cls, name, _refusing(method, errors)))
    _install_transports(stack)


def _install_transports(stack: ExitStack) -> None:
    """Transports opened without :func:`mcp_client`: on replay, none reaches a server."""
    from unittest import mock

    stdio = importlib.import_module("mcp.client.stdio")
    # A module global looked up at call time: it covers ``stdio_client`` however imported,
    # and the high-level ``Client`` that opens one itself.
    create = stdio._create_platform_compatible_process
    stack.enter_context(
        mock.patch.object(stdio, "_create_platform_compatible_process", _create_process(create))
    )
    transport = importlib.import_module("mcp.client.streamable_http").StreamableHTTPTransport
    stack.enter_context(
        mock.patch.object(transport, "__init__", _http_transport_init(transport.__init__))
    )
    stack.enter_context(
        mock.patch.object(transport, "post_writer", _post_writer(transport.post_writer))
    )
    stack.enter_context(
        mock.patch.object(
            transport, "terminate_session", _terminate_session(transport.terminate_session)
        )
    )


# -- which server a session talks to ----------------------------------------------------


#: The server of the transport this context opened last without ``mcp_client`` (a
#: streamable HTTP transport's URL path), until a ``ClientSession`` takes it.
_opened_server: ContextVar[str | None] = ContextVar("apirecorder_mcp_server", default=None)
_SERVER_ATTRIBUTE = "_apirecorder_server"


def _provider(client_session: Any) -> str:
    dispatcher = getattr(client_session, "_dispatcher", None)
    read_stream = getattr(dispatcher, "_read_stream", None)
    with _lock:
        server = _servers.get(id(read_stream)) if read_stream is not None else None
    if server is None:
        server = getattr(client_session, _SERVER_ATTRIBUTE, None)
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
        # The class the session asks for is what a replay must hand back (CallToolResult...).
        answers = (result_type,) if isinstance(result_type, type) else ()
        adapter = _McpAdapter(provider, _TRUSTED, errors, async_items=True, answers=answers)
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
        adapter = _McpAdapter(provider, _TRUSTED, errors, async_items=True)
        return await areplay_or_record(session, call, adapter, lambda: original(self, version))

    return send_discover


# -- what the SDK refuses in a replayed answer --------------------------------------------

#: The session's methods whose checks of an answer run after ``send_request`` hands it back.
_CHECKED = (
    *("initialize", "call_tool", "list_tools", "list_resources", "list_resource_templates"),
    *("read_resource", "list_prompts", "get_prompt", "complete", "discover", "send_ping"),
    *("set_logging_level", "subscribe_resource", "unsubscribe_resource"),
)
#: The recordings replayed for the outermost checked method running in this context.
_replayed: ContextVar[list[Path] | None] = ContextVar("apirecorder_mcp_replayed", default=None)


class _McpAdapter(ToolAdapter):
    """A session request as a tool call, that notes which file each replay read."""

    def replay(self, session: Session, recording: Recording, call: Call) -> Any:
        paths = _replayed.get()
        if paths is not None:
            paths.append(recording.path)
        return super().replay(session, recording, call)


def _refusing(
    original: Callable[..., Any], errors: tuple[type[BaseException], ...]
) -> Callable[..., Any]:
    """``original``, whose exceptions raised over a replayed answer name the recordings."""

    @functools.wraps(original)
    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _replayed.get() is not None or not _replaying():  # live, or inside another one
            return await original(self, *args, **kwargs)
        paths: list[Path] = []
        token = _replayed.set(paths)
        faithful: tuple[type[BaseException], ...] = (ApiRecorderError, *errors)
        try:
            return await original(self, *args, **kwargs)
        except faithful:
            raise
        except Exception as exc:
            if not paths:
                raise
            raise _refused(original.__name__, paths, exc) from exc
        finally:
            _replayed.reset(token)

    return method


def _refused(method: str, paths: list[Path], exc: BaseException) -> RecordingFormatError:
    also = "".join(f" (together with {path})" for path in paths[1:])
    return RecordingFormatError(
        paths[0],
        f"response.body: the MCP SDK refuses what this recording answers to {method}{also}: "
        f"{type(exc).__module__}.{type(exc).__qualname__}: {str(exc)[:300]}; re-record it",
    )


def _session_enter(original: Callable[..., Any]) -> Callable[..., Any]:
    marked = _mcp_layer(original)

    @functools.wraps(original)
    async def enter(self: Any) -> Any:
        server = _opened_server.get()
        if server is not None:
            _opened_server.set(None)  # one transport, one session
            setattr(self, _SERVER_ATTRIBUTE, server)
        return await marked(self)

    return enter


def _mcp_layer(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def marked(self: Any, *args: Any, **kwargs: Any) -> Any:
        if active_session() is None:
            return await original(self, *args, **kwargs)
        with sdk_layer_call():
            return await original(self, *args, **kwargs)

    return marked


# -- transports opened without the wrapper ------------------------------------------------


def _replaying() -> bool:
    session = active_session()
    return session is not None and session.mode is Mode.REPLAY


class _Pipe:
    """One pipe of :class:`_ReplayProcess`: writes vanish, reads wait until it is closed."""

    def __init__(self, process: _ReplayProcess) -> None:
        import anyio  # local: only replay needs it, and only mcp users have it

        self._process = process
        self._closed = anyio.Event()
        self._end_of_stream = anyio.EndOfStream

    async def send(self, data: bytes) -> None:
        pass

    async def receive(self, max_bytes: int = 65536) -> bytes:
        await self._closed.wait()
        raise self._end_of_stream

    async def aclose(self) -> None:
        self._closed.set()
        self._process.returncode = 0  # closing its stdin is how the transport stops a server


class _ReplayProcess:
    """What ``stdio_client`` gets on replay instead of a server process: nothing runs."""

    pid = 0

    def __init__(self) -> None:
        self.returncode: int | None = None
        self.stdin = _Pipe(self)
        self.stdout = _Pipe(self)

    async def wait(self) -> int:
        return 0

    def terminate(self) -> None:
        self.returncode = 0

    kill = terminate


def _create_process(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def create(*args: Any, **kwargs: Any) -> Any:
        # A command has no stable name (its path differs between machines, and is absent
        # where recordings replay): these sessions are keyed "mcp" unless mcp_client names them.
        _opened_server.set(None)
        if _replaying():
            return _ReplayProcess()
        return await original(*args, **kwargs)

    return create


def _http_transport_init(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def init(self: Any, url: str, *args: Any, **kwargs: Any) -> None:
        original(self, url, *args, **kwargs)
        if active_session() is not None:
            _opened_server.set(urlsplit(str(url)).path or "/")  # ports change, paths do not

    return init


def _post_writer(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def post_writer(self: Any, client: Any, write_stream_reader: Any, *args: Any) -> None:
        if active_session() is None:
            return await original(self, client, write_stream_reader, *args)  # type: ignore[no-any-return]
        if _replaying():
            # Requests are answered by the session layer; what is still sent (notifications,
            # answers to server requests) has no server to go to.
            async with write_stream_reader:
                async for _message in write_stream_reader:
                    pass
            return None
        # Its POSTs and the event stream it opens belong to the MCP layer, not the HTTP one.
        with sdk_layer_call():
            return await original(self, client, write_stream_reader, *args)  # type: ignore[no-any-return]

    return post_writer


def _terminate_session(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def terminate_session(self: Any, client: Any) -> None:
        if _replaying():
            return None
        with sdk_layer_call():
            return await original(self, client)  # type: ignore[no-any-return]

    return terminate_session


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
