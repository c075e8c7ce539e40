"""The HTTP layer's steps, for every HTTP client: which requests it records, and how.

Knows no client library. The interceptors for httpx, requests and aiohttp share what is here:
which hosts pass through, how a request becomes a :class:`~apirecorder._types.Call`, how a
response is written and rebuilt, and :class:`HttpAdapter`, their base for the record/replay
flow. How bodies are written is ``_httpbody``'s business.
"""

from __future__ import annotations

import base64
import json
import re
import string
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from http import HTTPStatus
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit

from ._context import TEST_ID_HEADER, current_test_id
from ._exceptions import RecordingFormatError, SerializationError
from ._flow import Adapter, R
from ._httpbody import (
    CONNECTION_HEADERS,
    brotli_blocked,
    check_brotli,
    decode_body,
    default_response_headers,
    encode_body,
    header_pairs,
    is_json_type,
    media_type,
    multipart_parts,
    recorded_response_headers,
    replayed_headers,
    without_boundary,
)
from ._httpids import is_provider_path, live_ids, normalize_http_body, stable_url
from ._recorder import Session, handled_above
from ._redaction import PLACEHOLDER, is_secret_field, mask_url_secrets
from ._storage import Recording, load_recording
from ._tokens import fake_tokens, shift_expiries, token_lifetimes, token_request_payload
from ._types import Call, ResponseRecord

__all__ = [
    "HttpAdapter",
    "ReplayedResponse",
    "Route",
    "decode_test_id",
    "describe_request",
    "encode_test_id",
    "exception_record",
    "host_matches",
    "replay_recording",
    "replayed_response",
    "request_payload",
    "response_record",
    "route_for",
    "test_id_header",
]

# -- hosts ----------------------------------------------------------------------------------


class Route(Enum):
    """What the HTTP layer does with one request."""

    PASS = "pass"  # live, untouched, unrecorded (ignored host, or an SDK layer records it)
    UNDER_TEST = "under_test"  # live, unrecorded, with the test id header added
    RECORD = "record"  # the record/replay decision applies


def _split_host(pattern: str) -> tuple[str, int | None]:
    text = pattern.strip()
    parts = urlsplit(text if "://" in text else f"//{text}")
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname or text).lower(), port


def host_matches(url: str, patterns: Iterable[str]) -> bool:
    """True when ``url``'s host is one of ``patterns``.

    A pattern is a host (any port), ``host:port``, a URL (its host and port count), or
    ``*.example.com`` (any subdomain).
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        port = None
    for pattern in patterns:
        if not pattern or not pattern.strip():
            continue
        want_host, want_port = _split_host(pattern)
        if want_port is not None and want_port != port:
            continue
        if want_host.startswith("*."):
            if host.endswith(want_host[1:]):
                return True
        elif host == want_host:
            return True
    return False


def route_for(session: Session, url: str) -> Route:
    """Decide how the HTTP layer treats a request to ``url`` inside ``session``.

    Ignored hosts and hosts under test are never recorded, in any mode: the first are
    other services the test talks to, the second is the test driving its own server.
    """
    if host_matches(url, session.ignore_hosts):
        return Route.PASS
    if host_matches(url, session.hosts_under_test):
        return Route.UNDER_TEST
    if handled_above():
        return Route.PASS
    return Route.RECORD


# Everything printable in ASCII except "%", which escapes the rest.
_HEADER_SAFE = "".join(c for c in string.printable if c not in "%\t\n\r\x0b\x0c")


def encode_test_id(test_id: str) -> str:
    """A test id as an HTTP header value: ASCII only, reversible with :func:`decode_test_id`."""
    return quote(test_id, safe=_HEADER_SAFE)


def decode_test_id(value: str) -> str:
    """The test id an :func:`encode_test_id` header value carries."""
    return unquote(value)


def test_id_header() -> tuple[str, str] | None:
    """The ``X-Apirecorder-Test-Id`` header for the current test, or None outside a test."""
    test_id = current_test_id()
    return None if test_id is None else (TEST_ID_HEADER, encode_test_id(test_id))


test_id_header.__test__ = False  # type: ignore[attr-defined]

# -- requests -------------------------------------------------------------------------------

#: Request headers left out of recordings: connection framing, and values that change with
#: the machine, the library version or the attempt without changing what is asked.
_UNRECORDED_REQUEST_HEADERS = CONNECTION_HEADERS | frozenset(
    {
        "content-length",
        "host",
        "accept-encoding",
        "user-agent",
        "idempotency-key",
        "traceparent",
        "tracestate",
        # AWS SigV4 signing time, the per-call invocation id and the attempt counter.
        "x-amz-date",
        "amz-sdk-invocation-id",
        "amz-sdk-request",
        TEST_ID_HEADER.lower(),
    }
)


def recorded_request_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Request headers as they are written: lower-case names, noise left out.

    Credentials are masked later, by the redaction every recording goes through.
    """
    recorded: dict[str, str] = {}
    for raw_name, value in headers:
        name = raw_name.lower()
        if name in _UNRECORDED_REQUEST_HEADERS or name.startswith("x-stainless-"):
            continue
        if name == "content-type":
            value = without_boundary(value)  # random per request; the parts are the payload
        recorded[name] = f"{recorded[name]}, {value}" if name in recorded else value
    return recorded


def request_payload(body: bytes, content_type: str | None) -> Any:
    """The hashed ``payload`` of a request body: its JSON, its form parts, else its text.

    A multipart body is its parts (``{"multipart": [...]}``, see ``multipart_parts``), so the
    random boundary never reaches the hash; bytes that are not UTF-8 become
    ``"base64:<data>"``; an empty body is None.
    """
    if not body:
        return None
    media = media_type(content_type)
    if media.startswith("multipart/"):
        parts = multipart_parts(body, content_type)
        if parts is not None:
            for part in parts:
                # A form field named like a credential is masked as a JSON field would be.
                if "value" in part and is_secret_field(str(part.get("name", ""))):
                    part["value"] = PLACEHOLDER
            return {"multipart": parts}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(body).decode("ascii")
    if is_json_type(media) or (not media and text.lstrip()[:1] in ("{", "[")):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def describe_request(
    session: Session,
    *,
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
) -> Call:
    """The :class:`Call` of one raw HTTP request: its URL's secret parameters masked, and the
    live ids this session rewrote named by their stable ids, in the URL as in the body."""
    header_list = list(headers)
    url = stable_url(mask_url_secrets(url), session.id_map)
    content_type = next((v for k, v in header_list if k.lower() == "content-type"), None)
    # A token request hashes its stable fields only: its signed assertion changes every run.
    payload = token_request_payload(body, content_type)
    return session.http_call(
        method=method,
        url=url,
        headers=recorded_request_headers(header_list),
        payload=request_payload(body, content_type) if payload is None else payload,
    )


# -- writing and rebuilding exchanges -------------------------------------------------------


def standard_reason(status: int) -> str:
    """The standard reason phrase of ``status`` ("" when it has none)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def response_record(
    call: Call,
    *,
    status: int,
    reason: str | None,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    decoded: bool,
    error: BaseException | None = None,
    library: str = "",
    ids: dict[str, str] | None = None,
) -> ResponseRecord:
    """The ``response`` object of a recording, from what the live server answered.

    ``error`` is what stopped the body early (recorded per DESIGN 3, with ``library``). A
    provider API's body gets stable ids, which join ``ids`` (the session's id map).
    """
    codings = _codings(headers)
    if brotli_blocked(codings):
        # The file would be refused on replay (check_brotli): say so now, write nothing.
        raise SerializationError(
            f"the response of {call.request.get('method', '')} {call.request.get('url', '')} "
            f"says content-encoding {', '.join(codings)}: a br layer stacked with another "
            "coding cannot be decoded here (neither brotli nor brotlicffi is installed), so "
            "its recording could not be replayed; nothing was written. Install brotli "
            "(pip install brotli) and record again"
        )
    content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
    record: ResponseRecord = {"status": status}
    if reason is not None and reason != standard_reason(status):
        record["reason"] = reason
    record["headers"] = recorded_response_headers(headers, call.request_hash)
    if decoded and any(name.lower() == "content-encoding" for name, _ in headers):
        # The headers say what was received; this says the body is stored decoded.
        record["body_decoded"] = True
    written = fake_tokens(body, content_type, call.request_hash)
    record.update(encode_body(written, content_type))  # type: ignore[typeddict-item]
    url = str(call.request.get("url", ""))
    normalize_http_body(record, url, call.request_hash, {} if ids is None else ids)
    lifetimes = token_lifetimes(body, time.time())
    if lifetimes is not None:
        cast(dict[str, Any], record)["token_lifetimes"] = lifetimes
    if error is not None:
        exception_record(record, error, library)
    return record


def exception_record(record: ResponseRecord, exc: BaseException, library: str) -> None:
    """Mark ``record`` as a response whose body stopped early with ``exc`` (DESIGN 3)."""
    record["is_streaming"] = True
    record["is_exception"] = True
    record["exception_data"] = {
        "category": "http",
        "provider": library,
        "type": type(exc).__name__,
        "message": str(exc),
        "status_code": record.get("status"),
        "body": None,
    }
    record["exception_message"] = str(exc)


@dataclass(frozen=True)
class ReplayedResponse:
    """A recorded response ready for a client library: status, headers and body chunks."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    chunks: list[bytes]
    error_type: str | None = None
    error_message: str = ""

    @property
    def content(self) -> bytes:
        return b"".join(self.chunks)


def replayed_response(
    response: Mapping[str, Any], source: Path | str | None = None, *, method: str = "GET"
) -> ReplayedResponse:
    """Rebuild a recorded response: the same status, headers and bytes, chunk by chunk."""
    # The reference recorder writes no status for a stream, and replays it as 200.
    status = response.get("status", 200)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise RecordingFormatError(
            source,
            f'response "status" must be an integer HTTP status (100 to 599), found {status!r}; '
            "this does not look like a raw HTTP recording",
        )
    chunks = decode_body(response, source)
    if "token_lifetimes" in response:  # a token's absolute expiry lies ahead of the replay
        chunks = [shift_expiries(b"".join(chunks), response["token_lifetimes"], time.time())]
    # A redacted cookie is no cookie: replaying "Set-Cookie: <redacted>" would plant garbage.
    headers = [
        (name, value)
        for name, value in header_pairs(
            response.get("headers", default_response_headers(response)), source
        )
        if not (name.lower() == "set-cookie" and value == PLACEHOLDER)
    ]
    _check_headers(headers, source)
    if not response.get("body_decoded"):
        _check_encoding(headers, b"".join(chunks), source)
    headers = replayed_headers(
        headers,
        sum(len(chunk) for chunk in chunks),
        decoded=bool(response.get("body_decoded")),
        head=method.upper() == "HEAD",
    )
    reason = response.get("reason")
    error: Any = response.get("exception_data") if response.get("is_exception") else None
    return ReplayedResponse(
        status=status,
        reason=str(reason) if reason is not None else standard_reason(status),
        headers=headers,
        chunks=[chunk for chunk in chunks if chunk],
        error_type=str(error.get("type")) if isinstance(error, dict) else None,
        error_message=str(error.get("message", "")) if isinstance(error, dict) else "",
    )


# A header name is an RFC 9110 token; a value is latin-1 text without CR, LF or NUL.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]|[^\x00-\xff]")


def _check_headers(headers: list[tuple[str, str]], source: Path | str | None) -> None:
    # What no HTTP response can carry would fail inside the client library, as its own error
    # (or as a connection error after retries): refuse it here, by the file's name.
    for name, value in headers:
        if not _HEADER_NAME.fullmatch(name) or _BAD_VALUE.search(value):
            raise RecordingFormatError(
                source,
                f"response header {name!r}: {value[:80]!r} cannot be sent in an HTTP response "
                "(a header name is a token; a value is latin-1 text without CR, LF or NUL); "
                "fix the header or re-record the file",
            )


def _check_encoding(headers: list[tuple[str, str]], body: bytes, source: Path | str | None) -> None:
    # A body that says gzip (or deflate) but is not would make the client fail to decode it.
    codings = _codings(headers)
    check_brotli(codings, source)
    for coding in reversed(codings):
        if coding == "zstd":
            if body.startswith(_ZSTD_MAGIC):
                return  # a zstd frame: the client decodes it, with the library it has
            decoded = None
        elif coding in ("gzip", "x-gzip", "deflate"):
            decoded = _decoded_start(coding, body)
        else:
            return  # another coding: passed on as recorded, the client decides
        if decoded is None:
            raise RecordingFormatError(
                source,
                f"the response says content-encoding {coding} but its body is not {coding} "
                "data; fix the header or re-record the file",
            )
        body = decoded


#: Every zstd frame starts with these bytes (RFC 8878).
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _codings(headers: Iterable[tuple[str, str]]) -> list[str]:
    """The response's content codings, innermost first, ``identity`` left out."""
    return [
        c
        for name, value in headers
        if name.lower() == "content-encoding"
        for c in (part.strip().lower() for part in value.split(","))
        if c and c != "identity"
    ]


def _decoded_start(coding: str, body: bytes) -> bytes | None:
    # Only the start is decoded (what tells gzip from plain text): bounded, so a compression
    # bomb costs nothing here. Deflate comes zlib-wrapped or raw; clients read both.
    wbits = (zlib.MAX_WBITS, -zlib.MAX_WBITS) if coding == "deflate" else (16 + zlib.MAX_WBITS,)
    for bits in wbits:
        try:
            return zlib.decompressobj(bits).decompress(body, 64 * 1024)
        except zlib.error:
            continue
    return None


def replay_recording(recording: Recording, call: Call) -> ReplayedResponse:
    """The response a found recording replays."""
    method = str(call.request.get("method", "GET"))
    return replayed_response(recording.response, recording.path, method=method)


class HttpAdapter(Adapter[R]):
    """The flow's view of a raw HTTP exchange: the live response is a stream of body bytes,
    and the client gets the written recording back (redacted and normalized), not the live
    response, so a test sees the same thing when it records as when it replays. It sits
    below the client (and any SDK on it), so a recorder error leaves it interrupting.
    """

    below_clients = True

    def response(self, replayed: ReplayedResponse) -> Any:
        """The client library's response for a recorded one."""
        raise NotImplementedError

    def replay(self, session: Session, recording: Recording, call: Call) -> Any:
        return self.response(replay_recording(recording, call))

    def drained(
        self,
        session: Session,
        call: Call,
        result: R,
        chunks: list[Any],
        error: BaseException | None,
        path: Path,
    ) -> Any:
        replayed = replay_recording(load_recording(path), call)
        live = b"".join(chunks)
        content_type = next((v for k, v in replayed.headers if k.lower() == "content-type"), None)
        if fake_tokens(live, content_type, call.request_hash) != live:
            # Fakes were written for live tokens: the caller needs the live ones, for the
            # real requests that follow.
            replayed = _with_chunks(replayed, [live] if live else [])
        elif is_provider_path(str(call.request.get("url", ""))):
            # Likewise the live ids of a provider's objects, which stable ids replaced.
            chunks = [live_ids(chunk, session.id_map) for chunk in replayed.chunks]
            if chunks != replayed.chunks:
                replayed = _with_chunks(replayed, chunks)
        return self.response(replayed)


def _with_chunks(replayed: ReplayedResponse, chunks: list[bytes]) -> ReplayedResponse:
    size = str(sum(len(chunk) for chunk in chunks))
    headers = [
        (name, size) if name.lower() == "content-length" else (name, value)
        for name, value in replayed.headers
    ]
    return replace(replayed, headers=headers, chunks=chunks)
