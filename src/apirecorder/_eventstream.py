"""AWS event-stream bodies (``application/vnd.amazon.eventstream``) as readable frames.

Knows no client library. Bedrock's streaming answers are binary frames: a prelude (total and
header lengths, CRC), typed headers, a payload and a CRC of the whole. A recording keeps each
frame as ``{"headers": {...}, "payload": <JSON>}`` (or ``"text"``/``"base64"`` when the
payload is not compact JSON) so a diff or a redaction rule reads the events; the CRCs follow
from the rest, so the exact bytes come back. A frame with a header that is not a string is
kept whole, as ``{"raw": <base64>}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any

__all__ = ["EVENT_STREAM", "decode_frame", "encode_frames"]

EVENT_STREAM = "application/vnd.amazon.eventstream"

_PRELUDE = 12  # total length, headers length, prelude CRC: three big-endian u32
_STRING = 7  # the header value type of a string, with a u16 length


def _crc(data: bytes) -> int:
    return binascii.crc32(data) & 0xFFFFFFFF


def _split(data: bytes) -> list[bytes] | None:
    """The frames of ``data``, or None when it is not a whole, well-formed event stream."""
    frames: list[bytes] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _PRELUDE + 4:
            return None
        total, _, prelude_crc = struct.unpack_from("!III", data, offset)
        frame = data[offset : offset + total]
        if (
            total < _PRELUDE + 4
            or len(frame) != total
            or _crc(frame[:8]) != prelude_crc
            or _crc(frame[:-4]) != struct.unpack("!I", frame[-4:])[0]
        ):
            return None
        frames.append(frame)
        offset += total
    return frames


def _string_headers(raw: bytes) -> dict[str, str] | None:
    headers: dict[str, str] = {}
    offset = 0
    try:
        while offset < len(raw):
            name_length = raw[offset]
            name = raw[offset + 1 : offset + 1 + name_length].decode("utf-8")
            offset += 1 + name_length
            if raw[offset] != _STRING or name in headers:
                return None
            (value_length,) = struct.unpack_from("!H", raw, offset + 1)
            headers[name] = raw[offset + 3 : offset + 3 + value_length].decode("utf-8")
            offset += 3 + value_length
    except (IndexError, struct.error, UnicodeDecodeError):
        return None
    return headers


def _encode_payload(payload: bytes) -> dict[str, Any]:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(payload).decode("ascii")}
    try:
        value = json.loads(text)
    except ValueError:
        return {"text": text}
    # Only a payload that compact JSON writes back byte for byte is stored as JSON.
    if json.dumps(value, separators=(",", ":"), ensure_ascii=False) == text:
        return {"payload": value}
    return {"text": text}


def encode_frames(data: bytes) -> list[dict[str, Any]] | None:
    """The frames of an event-stream body in readable form, or None when it is not one."""
    frames = _split(data) if data else None
    if frames is None:
        return None
    encoded: list[dict[str, Any]] = []
    for frame in frames:
        headers_length = struct.unpack_from("!I", frame, 4)[0]
        headers = _string_headers(frame[_PRELUDE : _PRELUDE + headers_length])
        if headers is None:
            encoded.append({"raw": base64.b64encode(frame).decode("ascii")})
            continue
        encoded.append(
            {"headers": headers, **_encode_payload(frame[_PRELUDE + headers_length : -4])}
        )
    return encoded


def decode_frame(item: Any) -> bytes:
    """The exact bytes of one recorded frame (its CRCs computed again)."""
    if not isinstance(item, dict):
        raise ValueError(f"each event-stream frame must be an object, found {type(item).__name__}")
    if "raw" in item:
        return base64.b64decode(str(item["raw"]), validate=True)
    headers = b""
    for name, value in dict(item.get("headers") or {}).items():
        raw_name, raw_value = str(name).encode("utf-8"), str(value).encode("utf-8")
        headers += struct.pack("!B", len(raw_name)) + raw_name
        headers += struct.pack("!BH", _STRING, len(raw_value)) + raw_value
    if "payload" in item:
        payload = json.dumps(item["payload"], separators=(",", ":"), ensure_ascii=False).encode()
    elif "text" in item:
        payload = str(item["text"]).encode("utf-8")
    else:
        payload = base64.b64decode(str(item.get("base64") or ""), validate=True)
    prelude = struct.pack("!II", _PRELUDE + len(headers) + len(payload) + 4, len(headers))
    message = prelude + struct.pack("!I", _crc(prelude)) + headers + payload
    return message + struct.pack("!I", _crc(message))
