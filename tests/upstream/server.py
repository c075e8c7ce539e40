"""A local stand-in for the AI providers' HTTP APIs, for tests on loopback.

One `Upstream` serves every provider module's routes at once, streams with chunked
encoding (one chunk per SSE event or NDJSON line), and records every request it gets.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

# What a non-volatile upstream answers for "now": 2023-11-14T22:13:20Z.
FIXED_TIME = 1_700_000_000
FIXED_DURATION_NS = 123_456_789

_POLL_INTERVAL = 0.01
_STOP_GRACE = 2.0
STREAM_GATE_TIMEOUT = 3.0


@dataclass(frozen=True)
class Request:
    """One request as it reached the server; `params` holds `{name}` path segments."""

    method: str
    path: str
    query: dict[str, str]
    query_string: str
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    volatile: bool = True
    #: The upstream's own state, for handlers that remember (jobs that advance, uploads).
    state: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        """The body parsed as JSON ({} for an empty body)."""
        return json.loads(self.body) if self.body else {}

    def new_id(self, prefix: str, length: int = 24) -> str:
        """A fresh id per call when volatile, else one derived from the request."""
        if self.volatile:
            return prefix + uuid.uuid4().hex[:length]
        digest = hashlib.sha256(self.method.encode() + self.path.encode() + self.body)
        return prefix + digest.hexdigest()[:length]

    def unix_time(self) -> int:
        """Seconds since the epoch: now when volatile, else `FIXED_TIME`."""
        return int(time.time()) if self.volatile else FIXED_TIME

    def iso_time(self, offset_seconds: float = 0.0) -> str:
        """An RFC 3339 timestamp with nanosecond-looking precision, as Ollama writes."""
        stamp = (time.time() if self.volatile else FIXED_TIME) + offset_seconds
        text = datetime.fromtimestamp(stamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        return text + "123Z"

    def duration_ns(self) -> int:
        """A duration in nanoseconds: random when volatile, else `FIXED_DURATION_NS`."""
        if self.volatile:
            return 1_000_000 + uuid.uuid4().int % 900_000_000
        return FIXED_DURATION_NS

    def seconds(self) -> float:
        """A short elapsed time in seconds (random when volatile)."""
        return round(self.duration_ns() / 1e9, 2)


@dataclass
class Response:
    """What a handler returns: a whole `body`, or a `stream` of parts sent as chunks."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: Iterable[bytes] | None = None


Handler = Callable[[Request], Response]
Routes = dict[tuple[str, str], Handler]


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 kept as is, as the providers send it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def json_response(
    value: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()
) -> Response:
    body = dumps(value).encode()
    return Response(status, [("Content-Type", "application/json"), *headers], body)


def text_response(
    text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8"
) -> Response:
    return Response(status, [("Content-Type", content_type)], text.encode())


def sse_event(data: Any, event: str | None = None, event_id: str | None = None) -> bytes:
    """One server-sent event; `data` is JSON-encoded unless it is already a string."""
    text = data if isinstance(data, str) else dumps(data)
    lines: list[str] = []
    if event is not None:
        lines.append(f"event: {event}")
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.extend(f"data: {line}" for line in text.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def sse_response(events: Iterable[bytes], headers: Iterable[tuple[str, str]] = ()) -> Response:
    base = [("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache")]
    return Response(200, [*base, *headers], stream=events)


def ndjson_response(items: Iterable[Any], status: int = 200) -> Response:
    lines = ((dumps(item) + "\n").encode() for item in items)
    return Response(status, [("Content-Type", "application/x-ndjson")], stream=lines)


def words(text: str) -> list[str]:
    """`text` cut into stream pieces: each word keeps the space before it."""
    pieces = re.findall(r"\s*\S+", text)
    return pieces or [text]


def count_tokens(text: str) -> int:
    """A stand-in token count: the number of words, at least 1."""
    return max(1, len(text.split()))


def default_routes() -> Routes:
    """The routes of every provider module, merged."""
    # Imported here: the provider modules import this module's helpers.
    from . import (
        anthropic_api,
        auth_api,
        aws_api,
        gemini_api,
        jobs_api,
        misc_api,
        ollama_api,
        openai_api,
        tavily_api,
    )

    routes: Routes = {}
    # jobs_api after openai_api: it serves POST /v1/responses for background requests too.
    modules = (
        *(openai_api, jobs_api, ollama_api, anthropic_api, gemini_api),
        *(aws_api, auth_api, tavily_api, misc_api),
    )
    for module in modules:
        routes.update(module.ROUTES)
    return routes


def _compile(path: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(pattern + r"\Z")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a burst of clients (load tests) is queued, not refused
    block_on_close = False  # stop() waits for handlers itself, with a time limit

    def __init__(self, address: tuple[str, int], upstream: Upstream) -> None:
        self.upstream = upstream
        self.connections: set[socket.socket] = set()
        self.connections_changed = threading.Condition()
        super().__init__(address, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_changed:
            self.connections.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients reset idle pooled connections when they close; that is no server error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self.connections_changed:
            self.connections.discard(request)
            self.connections_changed.notify_all()


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, delayed ACKs cost 40 ms.
    disable_nagle_algorithm = True
    server_version = "upstream/1.0"
    sys_version = ""
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        upstream = self.server.upstream
        split = urlsplit(self.path)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        handler, params = upstream.find_route(self.command, split.path)
        request = Request(
            method=self.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            query_string=split.query,
            headers=headers,
            body=self._read_body(),
            params=params,
            volatile=upstream.volatile,
            state=upstream.state,
        )
        upstream.requests.append(request)
        try:
            if handler is None:
                message = f"no route for {request.method} {request.path}"
                response = json_response({"error": {"message": message, "type": "not_found"}}, 404)
            else:
                response = handler(request)
        except Exception:
            error = {"message": traceback.format_exc(), "type": "upstream_handler_error"}
            response = json_response({"error": error}, 500)
        try:
            self._send(response, upstream)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send(self, response: Response, upstream: Upstream) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        no_body = response.status in (204, 304) or response.status < 200
        if response.stream is None or no_body or self.command == "HEAD":
            if not no_body:
                self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if not no_body and self.command != "HEAD":
                self.wfile.write(response.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        for part in response.stream:
            if not part:
                continue  # an empty chunk would end the body
            if sent and upstream.stream_delay:
                time.sleep(upstream.stream_delay)
            gate = upstream.stream_gate
            if sent == 1 and gate is not None and not gate.wait(STREAM_GATE_TIMEOUT):
                upstream.gate_timeouts += 1
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.flush()
            sent += 1
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class Upstream:
    """Fake provider APIs on 127.0.0.1, served from a daemon thread.

    `volatile=False` makes ids, timestamps and durations depend on the request alone;
    `stream_delay` (seconds) is slept between the parts of a streamed body. With
    `stream_gate` set, every stream sends its first part and then waits for that event
    (at most `STREAM_GATE_TIMEOUT` s) before the rest; `gate_timeouts` counts the waits
    that ran out, so a test proves a client yields the first part before the body ends.
    """

    def __init__(
        self,
        *,
        volatile: bool = True,
        stream_delay: float = 0.0,
        stream_gate: threading.Event | None = None,
        routes: Mapping[tuple[str, str], Handler] | None = None,
        port: int = 0,
    ) -> None:
        self.volatile = volatile
        self.stream_delay = stream_delay
        self.stream_gate = stream_gate
        self.gate_timeouts = 0
        self.requests: list[Request] = []
        self.state: dict[str, Any] = {}
        self._routes: dict[tuple[str, str], Handler] = {}
        self._patterns: list[tuple[str, re.Pattern[str], Handler]] = []
        for (method, path), handler in (default_routes() if routes is None else routes).items():
            self.add_route(method, path, handler)
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Serve `method path` with `handler`; `{name}` in `path` matches one segment."""
        method = method.upper()
        if "{" in path:
            pattern = _compile(path)
            self._patterns = [p for p in self._patterns if p[:2] != (method, pattern)]
            self._patterns.append((method, pattern, handler))
        else:
            self._routes[(method, path)] = handler

    def find_route(self, method: str, path: str) -> tuple[Handler | None, dict[str, str]]:
        handler = self._routes.get((method, path))
        if handler is not None:
            return handler, {}
        for route_method, pattern, pattern_handler in self._patterns:
            match = pattern.match(path)
            if route_method == method and match:
                return pattern_handler, match.groupdict()
        return None, {}

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("Upstream is not running")
        return self._port

    @property
    def url(self) -> str:
        """The base URL, such as "http://127.0.0.1:54321" (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        """Listen and serve; after a stop() it listens again on the same port."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self._port), self)
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name=f"upstream:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        thread.join()
        # Pooled keep-alive connections would otherwise still be answered.
        with server.connections_changed:
            for connection in list(server.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            server.connections_changed.wait_for(lambda: not server.connections, _STOP_GRACE)

    def reset(self) -> None:
        """Forget the requests received so far."""
        self.requests.clear()

    def requests_to(self, path: str, method: str | None = None) -> list[Request]:
        """The received requests for `path` (and `method`, when given)."""
        return [
            r for r in self.requests if r.path == path and (method is None or r.method == method)
        ]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def error_status(status: int) -> str:
    """The reason phrase of `status`, or "Unknown" for codes http.HTTPStatus lacks."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def reply_text(prompt: str) -> str:
    """The fake model's whole answer to `prompt`."""
    return f"Echo: {prompt}"


def tool_arguments(schema: Mapping[str, Any] | None, prompt: str) -> dict[str, Any]:
    """Arguments for a tool call, one per required property of its JSON schema."""
    properties: Mapping[str, Any] = (schema or {}).get("properties") or {}
    names: list[str] = list((schema or {}).get("required") or properties)
    arguments: dict[str, Any] = {}
    for name in names:
        spec: Mapping[str, Any] = properties.get(name) or {}
        kind = spec.get("type", "string")
        if spec.get("enum"):
            arguments[name] = spec["enum"][0]
        elif kind == "integer":
            arguments[name] = len(prompt)
        elif kind == "number":
            arguments[name] = len(prompt) / 4
        elif kind == "boolean":
            arguments[name] = True
        elif kind == "array":
            arguments[name] = [prompt]
        elif kind == "object":
            arguments[name] = {}
        else:
            arguments[name] = prompt
    return arguments


def find_trigger(text: str, triggers: Iterable[str]) -> str | None:
    """The first of `triggers` that occurs in `text`."""
    return next((trigger for trigger in triggers if trigger in text), None)


def failure_index(pieces: list[str]) -> int:
    """Where a failing stream breaks off: after two pieces, and always before the last."""
    return min(2, len(pieces) - 1)
