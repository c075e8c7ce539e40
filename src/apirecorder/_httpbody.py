"""Raw HTTP bodies and headers in readable recorded form, and back to the exact bytes.

Knows no client library and no session. A body is recorded as JSON when it is JSON, as a list
of lines for server-sent events (the reference recorder's own form, so each recorder replays
the other's streams), as a list of objects for NDJSON, as text when it is text, and
as base64 only when it is truly binary; every form turns back into the exact bytes that came
over the wire (a JSON body remembers its layout, and anything that would not round-trip falls
back to a form that does). The record/replay steps of the HTTP layer are in ``_httpexchange``;
multipart request bodies are read in ``_multipart``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ._eventstream import EVENT_STREAM, decode_frame, encode_frames
from ._exceptions import RecordingFormatError
from ._multipart import MAX_INLINE_FILE as MAX_INLINE_FILE
from ._multipart import multipart_parts, without_boundary

__all__ = [
    "BODY_FORMATS",
    "CONNECTION_HEADERS",
    "check_brotli",
    "decode_body",
    "default_response_headers",
    "encode_body",
    "header_pairs",
    "is_json_type",
    "is_sse_lines",
    "media_type",
    "multipart_parts",
    "recorded_response_headers",
    "replayed_headers",
    "sse_as_events",
    "sse_as_lines",
    "without_boundary",
]

#: The recorded forms of a response body.
BODY_FORMATS = ("json", "sse_lines", "sse", "ndjson", "text", "base64", "eventstream")


def brotli_blocked(codings: list[str]) -> bool:
    """Whether ``codings`` (innermost first) stack br with another coding and no brotli
    decoder is installed: no client can decode such a body, live or replayed."""
    import importlib.util

    if "br" not in codings or len(codings) < 2:
        return False
    return not any(importlib.util.find_spec(name) for name in ("brotli", "brotlicffi"))


def check_brotli(codings: list[str], source: Path | str | None) -> None:
    """Refuse a br body stacked with other content codings when no brotli decoder is installed.

    ``codings`` are the response's content codings, innermost first. A br body alone is
    passed on as recorded, its bytes raw: httpx, urllib3 and aiohttp leave a coding they
    cannot decode as it is, live or replayed. Stacked with gzip or deflate, they decode the
    other codings around the br layer they skip and fail with their own errors.
    """
    if not brotli_blocked(codings):
        return
    raise RecordingFormatError(
        source,
        f"the response says content-encoding {', '.join(codings)}: br cannot be decoded here "
        "(neither brotli nor brotlicffi is installed), so no client can decode this body; "
        "install brotli, or re-record the file",
    )


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_type(media: str) -> bool:
    return media == "application/json" or media.endswith("+json") or media.endswith("/json")


# -- JSON layouts -----------------------------------------------------------------------------

_LAYOUT_BASES: dict[str, dict[str, Any]] = {
    "compact": {"separators": (",", ":")},
    "spaced": {"separators": (", ", ": ")},
    "indent2": {"indent": 2, "separators": (",", ": ")},
    "indent4": {"indent": 4, "separators": (",", ": ")},
}
_DEFAULT_LAYOUT = "compact"


def dumps_layout(value: Any, layout: str) -> str:
    """``value`` as JSON text in a named layout, such as ``"compact"`` or ``"indent2+ascii"``."""
    base, *flags = layout.split("+")
    options = _LAYOUT_BASES.get(base)
    if options is None or any(flag not in ("ascii", "newline") for flag in flags):
        raise ValueError(f"unknown JSON layout {layout!r}")
    text = json.dumps(value, ensure_ascii="ascii" in flags, **options)
    return text + "\n" if "newline" in flags else text


def find_layout(text: str, value: Any, preferred: str | None = None) -> str | None:
    """The layout that writes ``value`` back as exactly ``text``, or None when none does."""
    core, newline = (text[:-1], "+newline") if text.endswith("\n") else (text, "")
    multiline = "\n" in core
    bases = ("indent2", "indent4") if multiline else ("compact", "spaced")
    candidates = [preferred] if preferred else []
    for base in bases:
        candidates += [base + newline, base + "+ascii" + newline]
    for layout in candidates:
        if layout is not None and _writes(value, layout, text):
            return layout
    return None


def _writes(value: Any, layout: str | None, text: str) -> bool:
    if layout is None:
        return False
    try:
        return dumps_layout(value, layout) == text
    except (ValueError, TypeError):
        return False


def _parse_json(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        return False, None


# -- response bodies --------------------------------------------------------------------------

_BINARY_TYPES = ("image/", "audio/", "video/", "font/")
_BINARY_MEDIA = frozenset(
    {
        "application/octet-stream",
        "application/pdf",
        "application/zip",
        "application/gzip",
        "application/x-tar",
        "application/protobuf",
        "application/x-protobuf",
        "application/grpc",
    }
)
_NDJSON_MEDIA = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-lines"}
)


def encode_body(data: bytes, content_type: str | None) -> dict[str, Any]:
    """A response body in its readable recorded form.

    Returns the keys ``body_format``, ``body`` and, for JSON forms not written compactly,
    ``json_layout``; plus ``is_streaming`` (true for event and line streams).
    """
    media = media_type(content_type)
    text: str | None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if media == EVENT_STREAM:
        frames = encode_frames(data)
        if frames is not None:
            return _encoded("eventstream", frames, streaming=True)
    binary_type = media in _BINARY_MEDIA or media.startswith(_BINARY_TYPES)
    if text is None or (binary_type and data) or "\x00" in text:
        return _encoded("base64", base64.b64encode(data).decode("ascii"))
    if media == "text/event-stream":
        return _encode_sse(text)
    if media in _NDJSON_MEDIA:
        return _encode_ndjson(text) or _encoded("text", text)
    if text.strip() and (is_json_type(media) or not media):
        return _encode_json(text) or _encode_ndjson(text) or _encoded("text", text)
    return _encoded("text", text)


def _encoded(
    body_format: str, body: Any, layout: str | None = None, streaming: bool = False
) -> dict[str, Any]:
    encoded: dict[str, Any] = {"body_format": body_format, "body": body}
    if layout is not None and layout != _DEFAULT_LAYOUT:
        encoded["json_layout"] = layout
    encoded["is_streaming"] = streaming
    return encoded


def _encode_json(text: str) -> dict[str, Any] | None:
    ok, value = _parse_json(text)
    if not ok:
        return None
    layout = find_layout(text, value)
    return None if layout is None else _encoded("json", value, layout)


def _encode_ndjson(text: str) -> dict[str, Any] | None:
    if not text.endswith("\n") or "\r" in text:
        return None
    items: list[Any] = []
    layout: str | None = None
    for line in text[:-1].split("\n"):
        ok, value = _parse_json(line)
        if not ok or not isinstance(value, dict | list):
            return None
        layout = find_layout(line, value, layout)
        if layout is None or "newline" in layout:
            return None
        items.append(value)
    return _encoded("ndjson", items, layout, streaming=True)


# -- server-sent events -----------------------------------------------------------------------

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
#: Keys of a recorded event that are not SSE fields.
_RAW_KEY = "raw"
_COMMENT_KEY = "comment"


def _sse_blocks(text: str) -> list[str]:
    """Split a stream into events, each with the blank line that ends it (the last may lack it)."""
    blocks: list[str] = []
    current: list[str] = []
    for match in _LINE.finditer(text):
        line = match.group(0)
        current.append(line)
        if line in ("\n", "\r\n", "\r"):
            blocks.append("".join(current))
            current = []
    if current:
        blocks.append("".join(current))
    return blocks


def _line_ending(text: str) -> str:
    match = re.search(r"\r\n|\r|\n", text)
    return match.group(0) if match else "\n"


def _parse_event(block: str, newline: str, layout: str | None) -> tuple[dict[str, Any], str | None]:
    """One event block as ``{"event", "data", ...}`` in wire order, or ``{"raw": block}``."""
    raw = {_RAW_KEY: block}
    if not block.endswith(newline + newline):
        return raw, layout
    fields: dict[str, Any] = {}
    data_lines: list[str] = []
    for line in block[: -2 * len(newline)].split(newline):
        name, colon, value = line.partition(":")
        if not colon or not value.startswith(" "):
            return raw, layout
        value = value[1:]
        name = name or _COMMENT_KEY
        if name == "data":
            data_lines.append(value)
            fields["data"] = None
        elif name in fields or name == _RAW_KEY:
            return raw, layout
        else:
            fields[name] = int(value) if name == "retry" and value.isdigit() else value
    if data_lines:
        data_text = "\n".join(data_lines)
        ok, value = _parse_json(data_text)
        fields["data"] = data_text
        if ok and isinstance(value, dict | list):
            # One layout serves the whole stream; data written otherwise stays a string.
            if layout is None:
                candidate = find_layout(data_text, value)
                if candidate is not None and "newline" not in candidate:
                    layout = candidate
            if _writes(value, layout, data_text):
                fields["data"] = value
    if _event_text(fields, newline, layout) != block:
        return raw, layout
    return fields, layout


def _event_text(event: Mapping[str, Any], newline: str, layout: str | None) -> str:
    if _RAW_KEY in event:
        return str(event[_RAW_KEY])
    lines: list[str] = []
    for name, value in event.items():
        if name == "data":
            text = value if isinstance(value, str) else dumps_layout(value, layout or "compact")
            lines.extend(f"data: {part}" for part in text.split("\n"))
        elif name == _COMMENT_KEY:
            lines.append(f": {value}")
        else:
            lines.append(f"{name}: {value}")
    return newline.join(lines) + newline + newline if lines else newline


def _encode_sse(text: str) -> dict[str, Any]:
    return _encode_sse_lines(text) or _encode_sse_events(text)


def _encode_sse_events(text: str) -> dict[str, Any]:
    """The stream as a list of events: the form of streams whose lines end in mixed ways."""
    newline = _line_ending(text)
    events: list[dict[str, Any]] = []
    layout: str | None = None
    for block in _sse_blocks(text):
        event, layout = _parse_event(block, newline, layout)
        events.append(event)
    encoded = _encoded("sse", events, layout, streaming=True)
    if newline != "\n":
        encoded["sse_line_ending"] = newline
    return encoded


def _encode_sse_lines(text: str) -> dict[str, Any] | None:
    """The stream as its text lines, without line endings, or None when its lines end in
    more than one way (one ending is stored for all).

    This is the reference recorder's form (its replay hands each item to a reader of lines);
    the keys it does not read (``body_format``, ``sse_line_ending``, ``sse_final_newline``)
    keep the exact bytes.
    """
    newline = _line_ending(text)
    rest = text.replace(newline, "")
    if "\r" in rest or "\n" in rest:
        return None
    lines = text.split(newline)
    final_newline = lines[-1] == ""
    if final_newline:
        lines.pop()
    encoded = _encoded("sse_lines", lines, streaming=True)
    if newline != "\n":
        encoded["sse_line_ending"] = newline
    if not final_newline:
        encoded["sse_final_newline"] = False
    return encoded


def is_sse_lines(response: Mapping[str, Any]) -> bool:
    """True for an event stream apirecorder wrote as text lines (``body_format: sse_lines``)."""
    body = response.get("body")
    return (
        response.get("body_format") == "sse_lines"
        and isinstance(body, list)
        and all(isinstance(line, str) for line in body)
    )


def _is_reference_stream(response: Mapping[str, Any]) -> bool:
    # The reference recorder writes a raw-HTTP stream as a list of lines with no body_format.
    # Only the HTTP layer may read it so: an SDK or tool stream of strings looks the same.
    body = response.get("body")
    return (
        "body_format" not in response
        and bool(response.get("is_streaming"))
        and isinstance(body, list)
        and all(isinstance(line, str) for line in body)
    )


def _sse_lines_text(response: Mapping[str, Any]) -> str:
    lines = _list_body(response.get("body"), None, "sse_lines")
    if not lines:
        return ""
    newline = str(response.get("sse_line_ending") or "\n")
    final = newline if response.get("sse_final_newline", True) else ""
    return newline.join(str(line) for line in lines) + final


def _sse_line_chunks(response: Mapping[str, Any], source: Path | str | None) -> list[bytes]:
    lines = _list_body(response.get("body"), source, "sse_lines")
    if not all(isinstance(line, str) for line in lines):
        raise ValueError("each line of a server-sent event stream must be a string")
    newline = str(response.get("sse_line_ending") or "\n")
    chunks: list[bytes] = []
    current: list[str] = []
    for index, line in enumerate(lines):
        last = index == len(lines) - 1
        ending = "" if last and response.get("sse_final_newline") is False else newline
        current.append(line + ending)
        if line == "":  # a blank line ends an event: one chunk per event, as it came
            chunks.append("".join(current).encode("utf-8"))
            current = []
    if current:
        chunks.append("".join(current).encode("utf-8"))
    return chunks


def sse_as_events(response: Mapping[str, Any]) -> dict[str, Any]:
    """A line-list stream response in the event form, whose ``data`` is JSON to walk (for
    redaction by JSON path and across chunks); :func:`sse_as_lines` turns it back."""
    out = {k: v for k, v in response.items() if k not in _SSE_FORM_KEYS}
    out.update(_encode_sse_events(_sse_lines_text(response)))
    return out


def sse_as_lines(response: Mapping[str, Any]) -> dict[str, Any]:
    """An event-form stream response back in the line form it was recorded in."""
    text = b"".join(decode_body(response)).decode("utf-8")
    out = {k: v for k, v in response.items() if k not in _SSE_FORM_KEYS}
    out.update(_encode_sse_lines(text) or _encode_sse_events(text))
    return out


_SSE_FORM_KEYS = frozenset(
    {"body_format", "body", "json_layout", "is_streaming", "sse_line_ending", "sse_final_newline"}
)


def default_response_headers(response: Mapping[str, Any]) -> dict[str, str] | None:
    """The headers of a response recorded without any: a line-list stream is an event stream
    (the reference recorder writes neither status nor headers for one)."""
    return {"content-type": "text/event-stream"} if _is_reference_stream(response) else None


# -- decoding recorded bodies ---------------------------------------------------------------


def decode_body(response: Mapping[str, Any], source: Path | str | None = None) -> list[bytes]:
    """The exact body bytes of a recorded response, one item per chunk it is delivered in.

    An event stream is one chunk per event, NDJSON one per line, anything else one chunk.
    """
    body_format = response.get("body_format") or (
        "sse_lines" if _is_reference_stream(response) else "json"
    )
    body = response.get("body")
    layout = str(response.get("json_layout") or _DEFAULT_LAYOUT)
    try:
        if body_format == "json":
            return [dumps_layout(body, layout).encode("utf-8")]
        if body_format in ("text", "base64") and body is not None and not isinstance(body, str):
            raise TypeError(f"a {body_format} body is a string, found {type(body).__name__}")
        if body_format == "text":
            return [str(body or "").encode("utf-8")] if body else []
        if body_format == "base64":
            return [base64.b64decode(str(body or ""), validate=True)] if body else []
        if body_format == "ndjson":
            items = _list_body(body, source, body_format)
            return [(dumps_layout(item, layout) + "\n").encode("utf-8") for item in items]
        if body_format == "sse_lines":
            return _sse_line_chunks(response, source)
        if body_format == "sse":
            newline = str(response.get("sse_line_ending") or "\n")
            events = _list_body(body, source, body_format)
            return [_sse_chunk(event, newline, layout, source) for event in events]
        if body_format == "eventstream":
            return [decode_frame(item) for item in _list_body(body, source, body_format)]
    except (ValueError, TypeError) as exc:
        raise RecordingFormatError(
            source,
            f'response "body" cannot be written back as {body_format}: {exc}; '
            "fix the body by hand or re-record the file",
        ) from exc
    raise RecordingFormatError(
        source,
        f'response "body_format" is {body_format!r}; expected one of {", ".join(BODY_FORMATS)}',
    )


def _list_body(body: Any, source: Path | str | None, body_format: str) -> list[Any]:
    if not isinstance(body, list):
        raise RecordingFormatError(
            source,
            f'response "body" must be a list for body_format {body_format!r}, '
            f"found {type(body).__name__}; fix it by hand or re-record the file",
        )
    return body


def _sse_chunk(event: Any, newline: str, layout: str, source: Path | str | None) -> bytes:
    if not isinstance(event, dict):
        raise RecordingFormatError(
            source,
            f"each server-sent event must be an object, found {type(event).__name__}; "
            "fix it by hand or re-record the file",
        )
    return _event_text(event, newline, layout).encode("utf-8")


# -- response headers -----------------------------------------------------------------------

#: Connection framing, which belongs to one hop and not to what was asked or answered.
CONNECTION_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
    }
)
#: Response headers left out of recordings: the ones that describe the socket (kept alive or
#: not), not the response. Everything else is written as received, framing included.
_UNRECORDED_RESPONSE_HEADERS = frozenset({"connection", "keep-alive", "proxy-connection"})
#: Volatile response headers written with a fixed value, so a re-recording diffs cleanly.
_FIXED_DATE = "Thu, 01 Jan 1970 00:00:00 GMT"
_ID_HEADERS = frozenset(
    {
        "x-request-id",
        "request-id",
        "cf-ray",
        "x-amzn-requestid",
        "x-amz-request-id",
        "apim-request-id",
        "x-trace-id",
        "x-cloud-trace-context",
    }
)
_TIMING_HEADERS = frozenset(
    {"openai-processing-ms", "x-envoy-upstream-service-time", "x-response-time"}
)


def recorded_response_headers(
    headers: Iterable[tuple[str, str]], request_hash: str
) -> dict[str, Any]:
    """Response headers as written: lower-case names, repeated ones as a list, volatile fixed.

    ``content-length``, ``transfer-encoding`` and ``content-encoding`` are kept as received,
    even for a body stored decoded; replay makes them describe the bytes it sends
    (:func:`replayed_headers`).
    """
    recorded: dict[str, Any] = {}
    for raw_name, value in headers:
        name = raw_name.lower()
        if name in _UNRECORDED_RESPONSE_HEADERS:
            continue
        if name == "date":
            value = _FIXED_DATE
        elif name in _ID_HEADERS:
            value = f"rec-{request_hash[:12]}"
        elif name in _TIMING_HEADERS:
            value = "0"
        if name in recorded:
            previous = recorded[name]
            recorded[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            recorded[name] = value
    return recorded


def replayed_headers(
    pairs: list[tuple[str, str]], size: int, *, decoded: bool, head: bool = False
) -> list[tuple[str, str]]:
    """Recorded headers made true of the replayed body of ``size`` bytes.

    A body stored decoded (``decoded``: the client decoded its content-encoding when it was
    recorded) is sent decoded, so its ``content-encoding`` is not sent and ``content-length``
    counts the decoded bytes; so does any length, since the body may have been edited by hand.
    A HEAD response keeps the length it announced.
    """
    replayed: list[tuple[str, str]] = []
    for name, value in pairs:
        lower = name.lower()
        if decoded and lower == "content-encoding":
            continue
        if lower == "content-length" and not (head and not size):
            value = str(size)
        replayed.append((name, value))
    return replayed


def header_pairs(headers: Any, source: Path | str | None = None) -> list[tuple[str, str]]:
    """Recorded response headers back as (name, value) pairs, repeated names kept."""
    if headers is None:
        return []
    if not isinstance(headers, dict):
        raise RecordingFormatError(
            source, f'response "headers" must be an object, found {type(headers).__name__}'
        )
    pairs: list[tuple[str, str]] = []
    for name, value in headers.items():
        values = value if isinstance(value, list) else [value]
        pairs.extend((str(name), str(item)) for item in values)
    return pairs
