"""The Anthropic Messages API (`/v1/messages`), plain and as its SSE event stream.

Triggers in a prompt: TRIGGER_400, TRIGGER_429, TRIGGER_500, TRIGGER_529 (overloaded)
answer with Anthropic's error body; TRIGGER_STREAM_ERROR sends an `error` event midway.
A model whose name starts with "missing" gets 404 not_found_error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .openai_api import split_json
from .server import (
    Request,
    Response,
    Routes,
    count_tokens,
    dumps,
    failure_index,
    find_trigger,
    json_response,
    reply_text,
    sse_event,
    sse_response,
    tool_arguments,
    words,
)

ERRORS: dict[str, tuple[int, str, str]] = {
    "TRIGGER_400": (
        400,
        "invalid_request_error",
        "Invalid request: the prompt contains TRIGGER_400.",
    ),
    "TRIGGER_429": (
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your rate limit.",
    ),
    "TRIGGER_500": (500, "api_error", "Internal server error"),
    "TRIGGER_529": (529, "overloaded_error", "Overloaded"),
}


def error_response(status: int, kind: str, message: str) -> Response:
    headers: list[tuple[str, str]] = [("request-id", "req_error")]
    if status in (429, 529):
        headers += [("retry-after", "0"), ("retry-after-ms", "1")]
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return json_response(body, status, headers)


def block_text(content: Any) -> str:
    """The text of a content: a string, or blocks of text and tool results."""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for block in content or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_result":
            texts.append(block_text(block.get("content")))
    return " ".join(text for text in texts if text)


def _ends_with_tool_result(messages: list[dict[str, Any]]) -> bool:
    content = messages[-1].get("content") if messages else None
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content
    )


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _chosen_tool(body: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and "name" in t]
    choice = body.get("tool_choice") or {}
    if not tools or choice.get("type") == "none" or _ends_with_tool_result(messages):
        return None
    if choice.get("type") == "tool":
        tools = [t for t in tools if t["name"] == choice.get("name")] or tools
    return tools[0]


def messages_create(request: Request) -> Response:
    body: dict[str, Any] = request.json()
    messages: list[dict[str, Any]] = body.get("messages") or []
    all_text = "\n".join(block_text(m.get("content")) for m in messages)
    model = str(body.get("model", ""))
    if model.startswith("missing"):
        return error_response(404, "not_found_error", f"model: {model}")
    trigger = find_trigger(all_text, ERRORS)
    if trigger is not None:
        return error_response(*ERRORS[trigger])
    prompt = block_text(messages[-1].get("content")) if messages else ""
    tool = _chosen_tool(body, messages)
    content: list[dict[str, Any]] = []
    if tool is not None:
        content.append({"type": "text", "text": f"I'll use the {tool['name']} tool."})
        content.append(
            {
                "type": "tool_use",
                "id": request.new_id("toolu_01", 22),
                "name": tool["name"],
                "input": tool_arguments(tool.get("input_schema"), prompt),
            }
        )
    else:
        content.append({"type": "text", "text": reply_text(prompt)})
    output_tokens = sum(
        count_tokens(block.get("text") or dumps(block.get("input"))) for block in content
    )
    message: dict[str, Any] = {
        "id": request.new_id("msg_01", 22),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if tool is not None else "end_turn",
        "stop_sequence": None,
        "usage": _usage(count_tokens(all_text), output_tokens),
    }
    headers = [("request-id", request.new_id("req_011", 24))]
    if body.get("stream"):
        fail = "TRIGGER_STREAM_ERROR" in all_text
        return sse_response(_events(message, fail), headers)
    return json_response(message, headers=headers)


def _events(message: dict[str, Any], fail: bool) -> Iterator[bytes]:
    def event(kind: str, **fields: Any) -> bytes:
        return sse_event({"type": kind, **fields}, event=kind)

    usage = message["usage"]
    started = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**usage, "output_tokens": 1},
    }
    yield event("message_start", message=started)
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield event(
                "content_block_start", index=index, content_block={"type": "text", "text": ""}
            )
            if index == 0:
                yield event("ping")
            pieces = words(block["text"])
            for number, piece in enumerate(pieces):
                if fail and number == failure_index(pieces):
                    error = {"type": "overloaded_error", "message": "Overloaded"}
                    yield event("error", error=error)
                    return
                yield event(
                    "content_block_delta", index=index, delta={"type": "text_delta", "text": piece}
                )
        else:
            yield event("content_block_start", index=index, content_block={**block, "input": {}})
            for piece in ["", *split_json(dumps(block["input"]))]:
                json_delta = {"type": "input_json_delta", "partial_json": piece}
                yield event("content_block_delta", index=index, delta=json_delta)
        yield event("content_block_stop", index=index)
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    yield event("message_delta", delta=stop, usage={"output_tokens": usage["output_tokens"]})
    yield event("message_stop")


def count_message_tokens(request: Request) -> Response:
    body: dict[str, Any] = request.json()
    messages: list[dict[str, Any]] = body.get("messages") or []
    text = "\n".join(block_text(m.get("content")) for m in messages)
    return json_response({"input_tokens": count_tokens(text)})


ROUTES: Routes = {
    ("POST", "/v1/messages"): messages_create,
    ("POST", "/v1/messages/count_tokens"): count_message_tokens,
}
