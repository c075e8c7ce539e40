"""Multipart request bodies in readable recorded form (the parts, without the boundary).

Knows no client library and no session; ``_httpbody`` re-exports what it offers.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
from typing import Any

__all__ = ["MAX_INLINE_FILE", "multipart_parts", "without_boundary"]

_BOUNDARY = re.compile(r'boundary="?([^";,]+)"?', re.IGNORECASE)
_DISPOSITION_PARAM = re.compile(r';\s*([\w*]+)=("(?:[^"\\]|\\.)*"|[^;]*)')
_PART_KEYS = ("name", "filename", "content_type", "headers")
#: File content kept in the recording as base64 up to this size; a digest beyond it.
MAX_INLINE_FILE = 64 * 1024


def multipart_parts(body: bytes, content_type: str | None) -> list[dict[str, Any]] | None:
    """The parts of a multipart body, in order, readable; None when it is not well formed.

    The boundary (random per request) is what the body is split on, and is kept nowhere.
    Each part keeps its ``name``, ``filename``, ``content_type`` and any other header, and its
    content as ``value`` (a field's text), ``text`` (a file that is text), ``base64``, or for a
    file over :data:`MAX_INLINE_FILE` its ``sha256`` and ``size``. A file's content type that
    is only what its name suggests (``mimetypes``, which differs between machines) is left out.
    """
    match = _BOUNDARY.search(content_type or "")
    if match is None:
        return None
    delimiter = b"\r\n--" + match.group(1).encode("latin-1")
    if not body.startswith(delimiter[2:]):
        return None
    pieces = (b"\r\n" + body).split(delimiter)
    parts: list[dict[str, Any]] = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            return parts  # the closing delimiter; what follows is an epilogue
        part = _multipart_part(piece)
        if part is None:
            return None
        parts.append(part)
    return None  # no closing delimiter: truncated


def _multipart_part(piece: bytes) -> dict[str, Any] | None:
    if not piece.startswith(b"\r\n"):
        return None
    head, separator, content = piece[2:].partition(b"\r\n\r\n")
    if piece[2:4] == b"\r\n":  # a part without headers
        head, separator, content = b"", b"\r\n", piece[4:]
    if not separator:
        return None
    part: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for line in head.decode("utf-8", "replace").split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon:
            return None
        name, value = name.strip().lower(), value.strip()
        if name == "content-disposition":
            for key, raw in _DISPOSITION_PARAM.findall(value):
                text = raw[1:-1].replace('\\"', '"') if raw.startswith('"') else raw.strip()
                if key.lower() in ("name", "filename"):
                    part[key.lower()] = text
                else:
                    extra[f"disposition {key}"] = text
        elif name == "content-type":
            part["content_type"] = value
        else:
            extra[name] = value
    if extra:
        part["headers"] = extra
    # One key order whatever the client's header order, for readable, stable recordings.
    ordered = {key: part[key] for key in _PART_KEYS if key in part}
    _part_content(ordered, content)
    return ordered


def _part_content(part: dict[str, Any], content: bytes) -> None:
    try:
        text: str | None = content.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if "filename" not in part:
        if text is not None:
            part["value"] = text
            return
    elif part.get("content_type") == _guessed_type(part["filename"]):
        del part["content_type"]
    if text is not None and "\x00" not in text:
        part["text"] = text
    elif len(content) <= MAX_INLINE_FILE:
        part["base64"] = base64.b64encode(content).decode("ascii")
    else:
        part["sha256"] = hashlib.sha256(content).hexdigest()
        part["size"] = len(content)


def _guessed_type(filename: str) -> str:
    # What httpx, aiohttp and urllib3 put on a file whose type the caller did not give.
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def without_boundary(content_type: str) -> str:
    """A multipart content type without its (random) boundary parameter."""
    return re.sub(r';\s*boundary="?[^";,]+"?', "", content_type, flags=re.IGNORECASE)
