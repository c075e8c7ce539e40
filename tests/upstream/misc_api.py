"""Plain HTTP routes under `/misc/` for the raw-client interceptors (requests, httpx, aiohttp)."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from typing import Any

from .server import (
    Request,
    Response,
    Routes,
    dumps,
    error_status,
    json_response,
    ndjson_response,
    sse_event,
    sse_response,
    text_response,
)

TEXT = "hello from upstream\nsecond line: café ✓\n"
# Bytes 0..255 repeated: 0x80-0xff make it invalid UTF-8 from the first high byte on.
BINARY = bytes((i * 7 + 3) % 256 for i in range(4096))
JSON_BODY: dict[str, Any] = {
    "message": "hello",
    "numbers": [1, 2, 3],
    "nested": {"pi": 3.141592653589793, "flag": True, "nothing": None},
    "unicode": "naïve ☃",
}
SSE_EVENTS: list[bytes] = [
    sse_event({"n": 0, "text": "start"}, event="start"),
    sse_event({"n": 1, "text": "hello"}),
    sse_event("plain text, not JSON"),
    sse_event("multi\nline", event="update", event_id="4"),
    sse_event("[DONE]", event="done"),
]
NDJSON_LINES: list[dict[str, Any]] = [
    {"n": n, "word": word} for n, word in enumerate(["alpha", "beta", "gamma", "delta", "epsilon"])
]


def get_json(request: Request) -> Response:
    return json_response({**JSON_BODY, "query": request.query})


def get_text(request: Request) -> Response:
    return text_response(TEXT)


def get_binary(request: Request) -> Response:
    return Response(200, [("Content-Type", "application/octet-stream")], BINARY)


def post_echo(request: Request) -> Response:
    content_type = request.headers.get("content-type", "application/json")
    return Response(200, [("Content-Type", content_type)], request.body)


def get_sse(request: Request) -> Response:
    return sse_response(iter(SSE_EVENTS))


def get_ndjson(request: Request) -> Response:
    return ndjson_response(iter(NDJSON_LINES))


def get_status(request: Request) -> Response:
    code = request.params["code"]
    status = int(code) if code.isdigit() else 0
    if not 200 <= status <= 599:
        return json_response({"error": {"code": 400, "message": f"bad status {code!r}"}}, 400)
    error = {"code": status, "message": error_status(status)}
    return json_response({"error": error}, status)


def get_headers(request: Request) -> Response:
    headers = [
        ("Set-Cookie", "session=abc123; Path=/; HttpOnly"),
        ("Set-Cookie", "theme=dark; Path=/"),
        ("X-Custom-Header", "custom-value"),
        ("X-Request-Id", request.new_id("req_", 16)),
        ("Cache-Control", "no-store"),
    ]
    return json_response({"ok": True}, headers=headers)


def get_gzip(request: Request) -> Response:
    body = gzip.compress(dumps(JSON_BODY).encode(), mtime=0)
    headers = [("Content-Type", "application/json"), ("Content-Encoding", "gzip")]
    return Response(200, headers, body)


def get_slow(request: Request) -> Response:
    time.sleep(min(float(request.query.get("delay", "0.2")), 5.0))
    return json_response({"slow": True})


def _stream_words(count: int) -> Iterator[bytes]:
    for n in range(count):
        yield f"part {n}\n".encode()


def get_chunks(request: Request) -> Response:
    count = min(int(request.query.get("count", "5")), 1000)
    return Response(
        200, [("Content-Type", "text/plain; charset=utf-8")], stream=_stream_words(count)
    )


ROUTES: Routes = {
    ("GET", "/misc/json"): get_json,
    ("GET", "/misc/text"): get_text,
    ("GET", "/misc/binary"): get_binary,
    ("POST", "/misc/echo"): post_echo,
    ("PUT", "/misc/echo"): post_echo,
    ("GET", "/misc/sse"): get_sse,
    ("GET", "/misc/ndjson"): get_ndjson,
    ("GET", "/misc/status/{code}"): get_status,
    ("GET", "/misc/headers"): get_headers,
    ("GET", "/misc/gzip"): get_gzip,
    ("GET", "/misc/slow"): get_slow,
    ("GET", "/misc/chunks"): get_chunks,
}
