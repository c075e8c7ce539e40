"""``apirecorder serve``: the providers' HTTP APIs answered from recordings, for any language.

A request that comes in is made again, in this process, through the Python client that the
in-process recorder intercepts for that API (the OpenAI SDK for OpenAI-compatible paths, the
Ollama SDK for Ollama's, httpx for everything else), inside a ``recording()`` block under the
request's test id. So a call from the npm ``openai`` package hashes, records and replays
exactly as the same call from the Python SDK in a test does: the same adapters, the same
file. What comes back (SDK objects, a stream, a provider error, a miss) is written back on
the wire in the provider's own format, a stream event by event as it is read.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import inspect
import json
import re
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

from .. import ApiRecorderError, RecordingNotFoundError, recording, test_context
from .._context import TEST_ID_HEADER

__all__ = ["DEFAULT_UPSTREAMS", "ServeConfig", "Server", "make_server"]

#: Where record mode sends each provider's calls unless ``--upstream NAME=URL`` says otherwise.
DEFAULT_UPSTREAMS: dict[str, str] = {
    "openai": "https://api.openai.com",
    "anthropic": "https://api.anthropic.com",
    "ollama": "http://localhost:11434",
    "gemini": "https://generativelanguage.googleapis.com",
}

#: OpenAI-compatible paths, by the end of the path: (method, SDK resource, logical endpoint).
_OPENAI_PATHS: tuple[tuple[str, str, str, str], ...] = (
    ("/chat/completions", "POST", "chat.completions", "/v1/chat/completions"),
    ("/completions", "POST", "completions", "/v1/completions"),
    ("/embeddings", "POST", "embeddings", "/v1/embeddings"),
    ("/responses", "POST", "responses", "/v1/responses"),
    ("/models", "GET", "models", "/v1/models"),
)
_OLLAMA_PATHS = {"/api/chat": "chat", "/api/generate": "generate", "/api/embed": "embed"}
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "content-encoding",
        "host",
    }
)
_GEMINI_METHOD = re.compile(r"/models/[^/]+:[A-Za-z]+\Z")
#: The test id travels in this header, or as a path prefix ``/t/<url-encoded test id>/``.
_TEST_PREFIX = "/t/"


class BadRequest(Exception):
    """A request the server cannot take; answered with ``status`` and the message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ServeConfig:
    """What ``apirecorder serve`` was asked to do."""

    mode: str = "replay"
    storage_dir: Path | None = None
    root: Path = field(default_factory=Path.cwd)
    upstreams: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_UPSTREAMS))
    max_body: int = 32 * 1024 * 1024
    log: TextIO = sys.stderr


@dataclass
class Incoming:
    """One request as the client sent it, with the test id taken out of the path."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    test_id: str | None

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"{}")
        except ValueError as exc:
            raise BadRequest(400, f"the request body is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise BadRequest(400, "the request body must be a JSON object")
        return value


@dataclass
class Answer:
    """What goes back: a status, headers, and the body whole or as chunks to flush one by one."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    chunks: Iterable[bytes] | None = None


def _json_answer(status: int, value: Any) -> Answer:
    return Answer(status, [("Content-Type", "application/json")], json.dumps(value).encode())


def _error_answer(status: int, kind: str, message: str) -> Answer:
    return _json_answer(status, {"error": {"type": kind, "message": message, "code": kind}})


def _wire(value: Any) -> Any:
    """An SDK object as the JSON its API sends: the fields it carries, under their wire names."""
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump(mode="json", by_alias=True, exclude_unset=True)
    if isinstance(value, list):
        return [_wire(item) for item in value]
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    return value


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


# -- OpenAI-compatible paths --------------------------------------------------------------------


def _openai_route(path: str) -> tuple[str, str, str, str] | None:
    # "/chat/completions" comes before "/completions", so the first match is the right one.
    for suffix, method, resource, endpoint in _OPENAI_PATHS:
        if path.endswith(suffix):
            return path[: -len(suffix)], method, resource, endpoint
    return None


def _bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "")
    return value[7:].strip() if value.lower().startswith("bearer ") else None


@functools.lru_cache(maxsize=64)
def _openai_client(
    base_url: str, api_key: str, organization: str | None, project: str | None
) -> Any:
    """One client per base URL and credentials: building one costs far more than a replay."""
    import openai

    return openai.OpenAI(
        base_url=base_url,
        api_key=api_key,
        organization=organization,
        project=project,
        max_retries=0,
    )


def _sdk_kwargs(method: Callable[..., Any], body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as keyword arguments of ``method``; what it does not name goes in extra_body."""
    params = inspect.signature(method).parameters
    known = {k: v for k, v in body.items() if k in params and k != "extra_body"}
    extra = {k: v for k, v in body.items() if k not in known}
    if extra:
        known["extra_body"] = extra
    return known


def _openai_answer(
    config: ServeConfig, incoming: Incoming, route: tuple[str, str, str, str]
) -> Answer:
    import openai

    prefix, method, resource, _endpoint = route
    if incoming.method != method:
        raise BadRequest(405, f"{incoming.method} {incoming.path}: this path takes {method}")
    headers = incoming.headers
    client = _openai_client(
        config.upstreams["openai"].rstrip("/") + prefix,
        _bearer(headers) or headers.get("api-key") or "apirecorder-serve",
        headers.get("openai-organization"),
        headers.get("openai-project"),
    )
    target: Any = client
    for name in resource.split("."):
        target = getattr(target, name)
    try:
        if resource == "models":
            page = target.list()
            return _json_answer(200, {"object": "list", "data": _wire(list(page))})
        body = incoming.json()
        # The npm and other SDKs ask for base64 embeddings by default and decode them; the
        # Python SDK does the same without the argument. Asked the Python way, the call hashes
        # as the same call from Python, and the answer is encoded back as the client asked.
        as_base64 = resource == "embeddings" and body.get("encoding_format") == "base64"
        if as_base64:
            body = {k: v for k, v in body.items() if k != "encoding_format"}
        result = target.create(**_sdk_kwargs(target.create, body))
    except openai.APIStatusError as exc:
        return _json_answer(exc.status_code, {"error": exc.body} if exc.body is not None else {})
    if isinstance(result, openai.Stream):
        events = _openai_events(result, resource)
        return Answer(200, [("Content-Type", "text/event-stream")], chunks=events)
    wire = _wire(result)
    if as_base64:
        for item in wire.get("data") or []:
            item["embedding"] = _float32_base64(item.get("embedding") or [])
    return _json_answer(200, wire)


def _float32_base64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def _openai_events(stream: Any, resource: str) -> Iterator[bytes]:
    import openai

    try:
        for chunk in stream:
            data = _wire(chunk)
            # The Responses API names each event; chat and completions send bare data lines.
            yield _sse(data, data.get("type") if resource == "responses" else None)
    except openai.APIError as exc:
        body = getattr(exc, "body", None)
        yield _sse({"error": body if body is not None else {"message": str(exc)}})
        return
    if resource != "responses":
        yield b"data: [DONE]\n\n"


# -- Ollama --------------------------------------------------------------------------------------


def _ollama_answer(config: ServeConfig, incoming: Incoming, method: str) -> Answer:
    import ollama

    client = ollama.Client(host=config.upstreams["ollama"])
    body = incoming.json()
    call = getattr(client, method)
    kwargs = {k: v for k, v in body.items() if k in inspect.signature(call).parameters}
    try:
        result = call(**kwargs)
    except ollama.ResponseError as exc:
        return _json_answer(exc.status_code, {"error": exc.error})
    if kwargs.get("stream"):
        return Answer(200, [("Content-Type", "application/x-ndjson")], chunks=_ndjson(result))
    return _json_answer(200, _wire(result))


def _ndjson(items: Iterable[Any]) -> Iterator[bytes]:
    import ollama

    try:
        for item in items:
            yield (json.dumps(_wire(item)) + "\n").encode()
    except ollama.ResponseError as exc:
        yield (json.dumps({"error": exc.error}) + "\n").encode()


# -- everything else: raw HTTP -------------------------------------------------------------------


def _provider_of(path: str) -> str:
    if path.startswith("/v1/messages") or path.startswith("/v1/complete"):
        return "anthropic"
    if path.startswith("/api/"):
        return "ollama"
    # Gemini names the method after the model: /v1/models/gemini-2.0-flash:generateContent.
    if path.startswith(("/v1beta/", "/v1alpha/", "/upload/v1beta/")) or _GEMINI_METHOD.search(path):
        return "gemini"
    return "http"


@functools.cache
def _relay_transport() -> Any:
    import httpx

    return httpx.HTTPTransport()


def _http_answer(config: ServeConfig, incoming: Incoming) -> Answer:
    import httpx

    provider = _provider_of(incoming.path)
    base = config.upstreams.get(provider)
    if base is None:
        raise BadRequest(
            404,
            f"no upstream for {incoming.method} {incoming.path}: start the server with "
            f"--upstream {provider}=URL",
        )
    url = base.rstrip("/") + incoming.path + (f"?{incoming.query}" if incoming.query else "")
    headers = {k: v for k, v in incoming.headers.items() if k not in _HOP_BY_HOP}
    headers.pop(TEST_ID_HEADER.lower(), None)
    # A client per request (no cookie carried from one test's request to the next) over one
    # transport: building a transport loads the CA certificates, tens of milliseconds.
    client = httpx.Client(transport=_relay_transport(), timeout=httpx.Timeout(600.0, connect=10.0))
    request = client.build_request(incoming.method, url, headers=headers, content=incoming.body)
    response = client.send(request, stream=True)
    out = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _HOP_BY_HOP]

    def relay() -> Iterator[bytes]:
        try:
            yield from response.iter_bytes()
        finally:
            response.close()  # the client is not closed: that would close the shared transport

    return Answer(response.status_code, out, chunks=relay())


# -- the server ------------------------------------------------------------------------------------


def answer(config: ServeConfig, incoming: Incoming) -> Answer:
    """Answer one request from the recordings (or, recording, from the upstream)."""
    if incoming.path in ("/health", "/_apirecorder/health"):
        return _json_answer(200, {"status": "ok", "mode": config.mode})
    route = _openai_route(incoming.path)
    ollama_method = _OLLAMA_PATHS.get(incoming.path)
    if route is not None:
        return _openai_answer(config, incoming, route)
    if ollama_method is not None and incoming.method == "POST":
        return _ollama_answer(config, incoming, ollama_method)
    return _http_answer(config, incoming)


def split_test_id(path: str, headers: Mapping[str, str]) -> tuple[str, str | None]:
    """The path without a ``/t/<test id>`` prefix, and the test id from it or the header."""
    if path.startswith(_TEST_PREFIX):
        encoded, _, rest = path[len(_TEST_PREFIX) :].partition("/")
        return "/" + rest, unquote(encoded) or None
    value = headers.get(TEST_ID_HEADER.lower())
    return path, unquote(value) if value else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "apirecorder-serve"
    sys_version = ""
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    raise BadRequest(400, "malformed chunked body") from None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > limit:
                    raise BadRequest(413, f"the request body is over {limit} bytes")
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadRequest(400, "Content-Length is not a number") from None
        if length > limit:
            raise BadRequest(413, f"the request body is over {limit} bytes")
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        self._started = False  # one handler answers every request of a keep-alive connection
        with self.server.in_flight():
            self._answer()

    def _answer(self) -> None:
        config = self.server.config
        split = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            body = self._read_body(config.max_body)
            path, test_id = split_test_id(split.path, headers)
            incoming = Incoming(self.command, path, split.query, headers, body, test_id)
            with _session(config), test_context(test_id):
                result = answer(config, incoming)
                self._send(result)
        except BadRequest as exc:
            self.close_connection = True
            self._send_safely(_error_answer(exc.status, "bad_request", str(exc)))
        except RecordingNotFoundError as exc:
            self.server.log(f"apirecorder serve: miss: {self.command} {self.path}\n{exc}\n")
            self._send_safely(_error_answer(404, "apirecorder_recording_not_found", str(exc)))
        except ApiRecorderError as exc:
            self.server.log(f"apirecorder serve: {self.command} {self.path}: {exc}\n")
            self._send_safely(_error_answer(422, "apirecorder_error", str(exc)))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # an upstream down, a client library's own error
            self.server.log(f"apirecorder serve: {self.command} {self.path}: {exc!r}\n")
            self._send_safely(_error_answer(502, "upstream_error", f"{type(exc).__name__}: {exc}"))

    def _send_safely(self, result: Answer) -> None:
        if self._started:
            # A response is under way: a second one would land inside its body as garbage.
            self.close_connection = True
            return
        with contextlib.suppress(OSError):
            self._send(result)

    _started = False

    def _send(self, result: Answer) -> None:
        if self.wfile.closed:
            return
        self._started = True
        self.send_response(result.status)
        for name, value in result.headers:
            self.send_header(name, value)
        if result.chunks is None:
            self.send_header("Content-Length", str(len(result.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(result.body)
            self.wfile.flush()
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        try:
            for chunk in result.chunks:
                self._chunk(chunk)
        except (BrokenPipeError, ConnectionResetError):
            raise
        except Exception as exc:
            self._end_broken_stream(result, exc)
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, chunk: bytes) -> None:
        if chunk:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()

    def _end_broken_stream(self, result: Answer, exc: Exception) -> None:
        """A stream that fails once its status is sent: an event stream ends with an error
        event (what the providers send, and what their SDKs raise as an error), naming the
        file for a recorder error; any other body is cut short, as a connection that broke."""
        self.server.log(f"apirecorder serve: {self.command} {self.path}: {exc}\n")
        self.close_connection = True
        content_type = next((v for k, v in result.headers if k.lower() == "content-type"), "")
        if "text/event-stream" in content_type.lower() and isinstance(exc, ApiRecorderError):
            error = {"type": "apirecorder_error", "message": str(exc), "code": "apirecorder_error"}
            self._chunk(_sse({"error": error}))
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


@contextlib.contextmanager
def _session(config: ServeConfig) -> Iterator[None]:
    with recording(config.mode, config.storage_dir, root=config.root):
        yield


class Server(ThreadingHTTPServer):
    """The HTTP server; ``serve_forever()`` answers until ``shutdown()``."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], config: ServeConfig) -> None:
        self.config = config
        self._log_lock = threading.Lock()
        self._busy = 0
        self._idle = threading.Condition()
        super().__init__(address, _Handler)

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        """Count a request from its first byte until its recording block has ended."""
        with self._idle:
            self._busy += 1
        try:
            yield
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait for the requests under way (their recordings are written when each ends);
        idle keep-alive connections do not count. False when ``timeout`` ran out."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{name}]" if ":" in name else name
        return f"http://{shown}:{port}"

    def log(self, text: str) -> None:
        with self._log_lock:
            self.config.log.write(text)
            self.config.log.flush()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def make_server(host: str, port: int, config: ServeConfig) -> Server:
    """A bound server; the caller runs ``serve_forever()``."""
    return Server((host, port), config)
