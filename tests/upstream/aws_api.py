"""AWS Bedrock Runtime's Converse API, plain and as AWS event-stream frames, for botocore.

`POST /model/{model_id}/converse` answers JSON; `/converse-stream` answers
`application/vnd.amazon.eventstream`, one binary frame per event (messageStart,
contentBlockDelta per word, contentBlockStop, messageStop, metadata), each frame one chunk.
TRIGGER_400 in the prompt answers a ValidationException.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Iterator
from typing import Any

from .server import Request, Response, Routes, count_tokens, dumps, json_response, reply_text, words

EVENT_STREAM = "application/vnd.amazon.eventstream"


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    # type 7: a string, with a 2-byte length.
    return (
        struct.pack("!B", len(raw_name))
        + raw_name
        + b"\x07"
        + struct.pack("!H", len(raw_value))
        + raw_value
    )


def event_frame(event_type: str, payload: dict[str, Any]) -> bytes:
    """One AWS event-stream message: prelude, its CRC, headers, payload, message CRC."""
    headers = (
        _header(":event-type", event_type)
        + _header(":content-type", "application/json")
        + _header(":message-type", "event")
    )
    body = dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack("!II", total, len(headers))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + headers + body
    return message + struct.pack("!I", binascii.crc32(message) & 0xFFFFFFFF)


def _prompt(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return " ".join(
                str(block.get("text", ""))
                for block in message.get("content") or []
                if isinstance(block, dict)
            )
    return ""


def _usage(prompt: str, answer: str) -> dict[str, int]:
    used_in, used_out = count_tokens(prompt), count_tokens(answer)
    return {"inputTokens": used_in, "outputTokens": used_out, "totalTokens": used_in + used_out}


def _check(prompt: str) -> Response | None:
    if "TRIGGER_400" in prompt:
        body = {"message": "The prompt contains TRIGGER_400."}
        return json_response(
            body,
            400,
            [
                (
                    "x-amzn-ErrorType",
                    "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
                )
            ],
        )
    return None


def converse(request: Request) -> Response:
    body = request.json()
    prompt = _prompt(body)
    failed = _check(prompt)
    if failed is not None:
        return failed
    answer = reply_text(prompt)
    return json_response(
        {
            "output": {"message": {"role": "assistant", "content": [{"text": answer}]}},
            "stopReason": "end_turn",
            "usage": _usage(prompt, answer),
            "metrics": {"latencyMs": 42},
        },
        headers=[("x-amzn-RequestId", request.new_id("", 32))],
    )


def converse_stream(request: Request) -> Response:
    body = request.json()
    prompt = _prompt(body)
    failed = _check(prompt)
    if failed is not None:
        return failed
    answer = reply_text(prompt)

    def frames() -> Iterator[bytes]:
        yield event_frame("messageStart", {"role": "assistant"})
        for piece in words(answer):
            yield event_frame(
                "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}
            )
        yield event_frame("contentBlockStop", {"contentBlockIndex": 0})
        yield event_frame("messageStop", {"stopReason": "end_turn"})
        yield event_frame(
            "metadata", {"usage": _usage(prompt, answer), "metrics": {"latencyMs": 42}}
        )

    headers = [("Content-Type", EVENT_STREAM), ("x-amzn-RequestId", request.new_id("", 32))]
    return Response(200, headers, stream=frames())


ROUTES: Routes = {
    ("POST", "/model/{model_id}/converse"): converse,
    ("POST", "/model/{model_id}/converse-stream"): converse_stream,
}
