"""Reading a recorded response as a person reads it, by its JSON shape alone.

OpenAI chunks and objects, Responses events, Ollama chunks and Anthropic SSE events are
reassembled into text, tool calls, usage and errors without importing any SDK.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .._httpbody import is_sse_lines, sse_as_events
from .._storage import Recording, is_model_list, model_ids

__all__ = [
    "ResponseView",
    "ToolCall",
    "arguments_text",
    "is_streamed",
    "response_view",
    "unwrap",
]

_SSE_FIELDS = frozenset({"event", "data", "id", "retry"})


@dataclass
class ToolCall:
    """A tool call the model asked for, reassembled from its pieces."""

    name: str = ""
    arguments: str = ""
    id: str = ""

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "arguments": self.arguments, "id": self.id}


@dataclass
class ResponseView:
    """A recorded response as a person reads it: text, tool calls, usage, error, notes."""

    texts: dict[int, str] = field(default_factory=dict)
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    chunks: int = 0
    status: int | None = None
    raw: Any = None  # the recorded body, for responses that are not text (tools, plain JSON)

    @property
    def value(self) -> Any:
        """The recorded body with its type wrappers removed."""
        return unwrap(self.raw)

    @property
    def text(self) -> str:
        return "\n\n".join(self.texts[index] for index in sorted(self.texts))

    def add_text(self, index: int, piece: Any) -> None:
        if isinstance(piece, str) and piece:
            self.texts[index] = self.texts.get(index, "") + piece

    def as_json(self) -> dict[str, Any]:
        return {
            "text": {str(k): v for k, v in sorted(self.texts.items())},
            "tool_calls": [call.as_json() for call in self.tool_calls],
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
            "error": self.error,
            "notes": self.notes,
            "chunks": self.chunks,
            "status": self.status,
        }


def unwrap(value: Any) -> Any:
    """A recorded value with every ``{"__type__", "__data__"}`` wrapper replaced by its data."""
    if isinstance(value, dict):
        if "__type__" in value and "__data__" in value:
            return unwrap(value["__data__"])
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


def _payloads(body: Any) -> list[dict[str, Any]]:
    # Streams are lists; an SSE event is {"event", "data"}; NDJSON lines may be text.
    items = body if isinstance(body, list) else [body]
    found: list[dict[str, Any]] = []
    for item in items:
        value = item
        if isinstance(value, dict) and "__type__" in value and "__data__" in value:
            value = value["__data__"]  # what it holds is plain JSON: model_dump(mode="json")
        if isinstance(value, dict) and "data" in value and set(value) <= _SSE_FIELDS:
            value = value["data"]
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                continue
        if isinstance(value, dict):
            found.append(value)
    return found


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _take_usage(view: ResponseView, payload: dict[str, Any]) -> None:
    holders: list[Any] = [payload.get("usage")]
    for key in ("message", "response"):
        inner = payload.get(key)
        if isinstance(inner, dict):
            holders.append(inner.get("usage"))
    holders.append(payload)  # Ollama counts sit at the top level
    for usage in holders:
        if not isinstance(usage, dict):
            continue
        for key in ("prompt_tokens", "input_tokens", "prompt_eval_count"):
            if _int(usage.get(key)) is not None:
                view.input_tokens = usage[key]
        for key in ("completion_tokens", "output_tokens", "eval_count"):
            if _int(usage.get(key)) is not None:
                view.output_tokens = usage[key]


def _tool_call_slot(view: ResponseView, slots: dict[Any, ToolCall], key: Any) -> ToolCall:
    if key not in slots:
        slots[key] = ToolCall()
        view.tool_calls.append(slots[key])
    return slots[key]


def arguments_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False) if value is not None else ""


def _read_openai_choices(
    view: ResponseView, payload: dict[str, Any], slots: dict[Any, ToolCall]
) -> None:
    for choice in payload.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        index = choice.get("index", 0) if isinstance(choice.get("index"), int) else 0
        delta = choice.get("delta")
        message = choice.get("message")
        part = delta if isinstance(delta, dict) else message if isinstance(message, dict) else None
        if part is None:
            view.add_text(index, choice.get("text"))
            continue
        view.add_text(index, part.get("content"))
        for position, call in enumerate(part.get("tool_calls") or []):
            if not isinstance(call, dict):
                continue
            slot_index = call.get("index", position) if delta is not None else position
            slot = _tool_call_slot(view, slots, ("openai", index, slot_index))
            function = call.get("function") or {}
            slot.id = call.get("id") or slot.id
            slot.name = function.get("name") or slot.name
            slot.arguments += arguments_text(function.get("arguments"))


def _read_anthropic(
    view: ResponseView, payload: dict[str, Any], slots: dict[Any, ToolCall]
) -> bool:
    kind = payload.get("type")
    if kind == "message" and isinstance(payload.get("content"), list):
        for position, block in enumerate(payload["content"]):
            _anthropic_block(view, slots, position, block)
        return True
    if kind == "content_block_start":
        _anthropic_block(view, slots, payload.get("index", 0), payload.get("content_block"))
        return True
    if kind == "content_block_delta":
        delta = payload.get("delta") or {}
        if delta.get("type") == "text_delta":
            view.add_text(0, delta.get("text"))
        elif delta.get("type") == "input_json_delta":
            slot = _tool_call_slot(view, slots, ("anthropic", payload.get("index", 0)))
            slot.arguments += str(delta.get("partial_json") or "")
        return True
    if kind == "error" and isinstance(payload.get("error"), dict):
        error = payload["error"]
        view.error = f"{error.get('type', 'error')}: {error.get('message', '')}"
        return True
    return kind in ("message_start", "message_delta", "message_stop", "content_block_stop", "ping")


def _anthropic_block(
    view: ResponseView, slots: dict[Any, ToolCall], index: Any, block: Any
) -> None:
    if not isinstance(block, dict):
        return
    if block.get("type") == "text":
        view.add_text(0, block.get("text"))
    elif block.get("type") in ("tool_use", "server_tool_use"):
        slot = _tool_call_slot(view, slots, ("anthropic", index))
        slot.id, slot.name = str(block.get("id") or ""), str(block.get("name") or "")
        if block.get("input"):
            slot.arguments = arguments_text(block.get("input"))


def _read_responses(
    view: ResponseView, payload: dict[str, Any], slots: dict[Any, ToolCall]
) -> bool:
    kind = payload.get("type")
    if isinstance(kind, str) and kind.startswith("response."):
        if kind == "response.output_text.delta":
            view.add_text(0, payload.get("delta"))
        elif kind == "response.output_item.done":
            _responses_item(view, slots, payload.get("item"))
        elif kind in ("response.failed", "response.error", "error"):
            error = (payload.get("response") or {}).get("error") or payload.get("error") or {}
            if isinstance(error, dict):
                view.error = f"{error.get('code', 'error')}: {error.get('message', '')}"
        return True
    if payload.get("object") == "response" and isinstance(payload.get("output"), list):
        for item in payload["output"]:
            if isinstance(item, dict) and item.get("type") == "message":
                for part in item.get("content") or []:
                    if isinstance(part, dict) and part.get("type") == "output_text":
                        view.add_text(0, part.get("text"))
            _responses_item(view, slots, item)
        return True
    return False


def _responses_item(view: ResponseView, slots: dict[Any, ToolCall], item: Any) -> None:
    if isinstance(item, dict) and item.get("type") == "function_call":
        slot = _tool_call_slot(view, slots, ("responses", item.get("call_id") or item.get("id")))
        slot.id = str(item.get("call_id") or item.get("id") or "")
        slot.name = str(item.get("name") or "")
        slot.arguments = arguments_text(item.get("arguments"))


def _read_ollama(view: ResponseView, payload: dict[str, Any], slots: dict[Any, ToolCall]) -> bool:
    message = payload.get("message")
    if isinstance(message, dict) and "role" in message:
        view.add_text(0, message.get("content"))
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                slot = _tool_call_slot(view, slots, ("ollama", len(slots)))
                slot.name = str(function.get("name") or "")
                slot.arguments = arguments_text(function.get("arguments"))
        return True
    if isinstance(payload.get("response"), str):
        view.add_text(0, payload["response"])
        return True
    return False


def _embedding_note(payloads: list[dict[str, Any]]) -> str | None:
    for payload in payloads:
        vectors: list[Any] = []
        if isinstance(payload.get("embeddings"), list):
            vectors = payload["embeddings"]
        elif isinstance(payload.get("data"), list):
            vectors = [
                item.get("embedding")
                for item in payload["data"]
                if isinstance(item, dict) and "embedding" in item
            ]
        if vectors and isinstance(vectors[0], list):
            return f"{len(vectors)} embedding(s) of dimension {len(vectors[0])}"
    return None


def is_streamed(response: dict[str, Any]) -> bool:
    """A stream of an SDK (``is_streaming``) or of the HTTP layer (SSE or NDJSON events)."""
    return bool(response.get("is_streaming")) or response.get("body_format") in (
        "sse_lines",
        "sse",
        "ndjson",
    )


def response_view(recording: Recording) -> ResponseView:
    """Reassemble a recorded response: streamed text, tool calls, token usage and errors."""
    response = recording.response
    raw = response.get("body")
    if is_sse_lines(response):  # a stream's lines read as its events, whose data is JSON
        response = sse_as_events(response)
    body = response.get("body")
    view = ResponseView(raw=raw)
    status = response.get("status")
    view.status = status if isinstance(status, int) else None
    if is_streamed(response) and isinstance(body, list):
        view.chunks = len(body)
    payloads = _payloads(body)
    slots: dict[Any, ToolCall] = {}
    for payload in payloads:
        _take_usage(view, payload)
        if "choices" in payload:
            _read_openai_choices(view, payload, slots)
        elif not (
            _read_anthropic(view, payload, slots)
            or _read_responses(view, payload, slots)
            or _read_ollama(view, payload, slots)
        ):
            continue
    note = _embedding_note(payloads)
    if note:
        view.notes.append(note)
    if is_model_list(recording.request):
        ids = model_ids(body)
        view.notes.append(f"{len(ids)} model(s): {', '.join(sorted(ids))}")
    if response.get("is_exception"):
        data = response.get("exception_data") or {}
        kind = data.get("type") or "error"
        status_code = data.get("status_code")
        message = data.get("message") or response.get("exception_message") or ""
        where = f", status {status_code}" if status_code is not None else ""
        view.error = f"{kind}{where}: {message}"
    elif view.status is not None and view.status >= 400 and view.error is None:
        view.error = f"HTTP status {view.status}"
    return view
