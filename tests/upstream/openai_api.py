"""The OpenAI REST API (`/v1/...`): chat completions, completions, embeddings, models, responses.

Prompts containing a trigger string make errors: TRIGGER_400, TRIGGER_429, TRIGGER_500
(error statuses with OpenAI's error body), TRIGGER_STREAM_ERROR (a stream that fails
midway) and TRIGGER_QUIRKS (a chat completion that breaks the SDK's declared types). A
model whose name starts with "missing" gets 404 model_not_found.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Iterator
from typing import Any

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

MODEL_CREATED = 1_715_367_049
MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1-nano", "text-embedding-3-small")
SYSTEM_FINGERPRINT = "fp_upstream01"
STREAM_ERROR = {"message": "upstream exploded", "type": "server_error", "param": None, "code": None}
DONE = b"data: [DONE]\n\n"


def error_response(
    status: int, message: str, kind: str, code: str | None = None, param: str | None = None
) -> Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    headers: list[tuple[str, str]] = [("x-request-id", "req_error")]
    if status == 429:
        # retry-after 0 is ignored by the SDK (it falls back to 0.5 s+ backoff); -ms is not.
        headers += [("retry-after", "0"), ("retry-after-ms", "1")]
        headers += [("x-ratelimit-limit-requests", "500"), ("x-ratelimit-remaining-requests", "0")]
    return json_response(body, status, headers)


def check_request(body: dict[str, Any], text: str) -> Response | None:
    """The error response that `body` (with message text `text`) asks for, if any."""
    model = str(body.get("model", ""))
    if model.startswith("missing"):
        message = f"The model `{model}` does not exist or you do not have access to it."
        return error_response(404, message, "invalid_request_error", "model_not_found")
    trigger = find_trigger(text, ("TRIGGER_400", "TRIGGER_429", "TRIGGER_500"))
    if trigger == "TRIGGER_400":
        message = "Invalid request: the prompt contains TRIGGER_400."
        return error_response(400, message, "invalid_request_error")
    if trigger == "TRIGGER_429":
        message = "Rate limit reached for requests. Please try again in 0s."
        return error_response(429, message, "requests", "rate_limit_exceeded")
    if trigger == "TRIGGER_500":
        return error_response(
            500, "The server had an error processing your request.", "server_error"
        )
    return None


def content_text(content: Any) -> str:
    """The text of a message `content`: a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [str(part.get("text", "")) for part in content if isinstance(part, dict)]
        return " ".join(text for text in texts if text)
    return ""


def with_headers(response: Response, request: Request) -> Response:
    response.headers += [
        ("x-request-id", request.new_id("req_", 32)),
        ("openai-version", "2020-10-01"),
    ]
    return response


def embedding(text: str, dimensions: int) -> list[float]:
    """A deterministic vector for `text` with many decimals, as real embeddings have."""
    seed = len(text) + sum(map(ord, text)) % 97
    return [math.sin(i + seed) for i in range(dimensions)]


def split_json(text: str, pieces: int = 3) -> list[str]:
    size = max(1, math.ceil(len(text) / pieces))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chosen_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    """The function tool the fake model calls, or None when it answers in text."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    messages = body.get("messages") or []
    choice = body.get("tool_choice")
    if not tools or choice == "none" or (messages and messages[-1].get("role") == "tool"):
        return None
    if isinstance(choice, dict) and "function" in choice:
        named = [
            t for t in tools if t.get("function", {}).get("name") == choice["function"]["name"]
        ]
        tools = named or tools
    function: dict[str, Any] = tools[0].get("function") or {}
    return function


# --- /v1/chat/completions ---------------------------------------------------------


def chat_completions(request: Request) -> Response:
    body: dict[str, Any] = request.json()
    messages: list[dict[str, Any]] = body.get("messages") or []
    all_text = "\n".join(content_text(m.get("content")) for m in messages)
    error = check_request(body, all_text)
    if error is not None:
        return with_headers(error, request)
    prompt = content_text(messages[-1].get("content")) if messages else ""
    for earlier in reversed(messages):
        if earlier.get("role") in ("user", "tool"):
            prompt = content_text(earlier.get("content"))
            break
    tool = _chosen_tool(body)
    if body.get("stream"):
        return with_headers(sse_response(_chat_chunks(request, body, prompt, tool)), request)
    model = body.get("model", "")
    if tool is not None:
        arguments = dumps(tool_arguments(tool.get("parameters"), prompt))
        call = {
            "id": request.new_id("call_"),
            "type": "function",
            "function": {"name": tool.get("name", ""), "arguments": arguments},
        }
        message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish_reason, output = "tool_calls", arguments
    else:
        output = reply_text(prompt)
        message = {"role": "assistant", "content": output}
        finish_reason = "stop"
    message.update(refusal=None, annotations=[])
    choices = [
        {"index": i, "message": message, "logprobs": None, "finish_reason": finish_reason}
        for i in range(int(body.get("n") or 1))
    ]
    completion: dict[str, Any] = {
        "id": request.new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": request.unix_time(),
        "model": model,
        "choices": choices,
        "usage": _usage(count_tokens(all_text), count_tokens(output)),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if "TRIGGER_QUIRKS" in all_text:
        # As some OpenAI-compatible servers do: wrong literals, nulls, unknown fields.
        completion.update(object="", created=None, provider_extra={"quirk": True})
        del completion["system_fingerprint"]
    return with_headers(json_response(completion), request)


def _chat_chunks(
    request: Request, body: dict[str, Any], prompt: str, tool: dict[str, Any] | None
) -> Iterator[bytes]:
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base: dict[str, Any] = {
        "id": request.new_id("chatcmpl-"),
        "object": "chat.completion.chunk",
        "created": request.unix_time(),
        "model": body.get("model", ""),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return sse_event({**base, "choices": [choice]})

    if tool is not None:
        arguments = dumps(tool_arguments(tool.get("parameters"), prompt))
        call = {
            "index": 0,
            "id": request.new_id("call_"),
            "type": "function",
            "function": {"name": tool.get("name", ""), "arguments": ""},
        }
        yield chunk({"role": "assistant", "content": None, "tool_calls": [call], "refusal": None})
        for piece in split_json(arguments):
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        yield chunk({}, "tool_calls")
        output = arguments
    else:
        output = reply_text(prompt)
        yield chunk({"role": "assistant", "content": "", "refusal": None})
        pieces = words(output)
        for number, piece in enumerate(pieces):
            if "TRIGGER_STREAM_ERROR" in prompt and number == failure_index(pieces):
                yield sse_event({"error": STREAM_ERROR})
                return
            yield chunk({"content": piece})
        yield chunk({}, "stop")
    if include_usage:
        usage = _usage(count_tokens(prompt), count_tokens(output))
        yield sse_event({**base, "choices": [], "usage": usage})
    yield DONE


# --- /v1/completions --------------------------------------------------------------


def completions(request: Request) -> Response:
    body: dict[str, Any] = request.json()
    raw_prompt = body.get("prompt", "")
    prompts = [raw_prompt] if isinstance(raw_prompt, str) else list(raw_prompt) or [""]
    if prompts and isinstance(prompts[0], int):
        prompts = [prompts]
    texts = [p if isinstance(p, str) else " ".join(map(str, p)) for p in prompts]
    error = check_request(body, "\n".join(texts))
    if error is not None:
        return with_headers(error, request)
    base: dict[str, Any] = {
        "id": request.new_id("cmpl-"),
        "object": "text_completion",
        "created": request.unix_time(),
        "model": body.get("model", ""),
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    outputs = [reply_text(text) for text in texts]
    usage = _usage(count_tokens(" ".join(texts)), count_tokens(" ".join(outputs)))
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return with_headers(
            sse_response(_completion_chunks(base, outputs, usage, include_usage)), request
        )
    choices = [
        {"text": output, "index": i, "logprobs": None, "finish_reason": "stop"}
        for i, output in enumerate(outputs)
    ]
    return with_headers(json_response({**base, "choices": choices, "usage": usage}), request)


def _completion_chunks(
    base: dict[str, Any], outputs: list[str], usage: dict[str, Any], include_usage: bool
) -> Iterator[bytes]:
    for index, output in enumerate(outputs):
        for piece in words(output):
            choice = {"text": piece, "index": index, "logprobs": None, "finish_reason": None}
            yield sse_event({**base, "choices": [choice]})
        choice = {"text": "", "index": index, "logprobs": None, "finish_reason": "stop"}
        yield sse_event({**base, "choices": [choice]})
    if include_usage:
        yield sse_event({**base, "choices": [], "usage": usage})
    yield DONE


# --- /v1/embeddings ---------------------------------------------------------------


def embeddings(request: Request) -> Response:
    body: dict[str, Any] = request.json()
    raw_input = body.get("input", "")
    items = [raw_input] if isinstance(raw_input, str) else list(raw_input)
    if items and isinstance(items[0], int):
        items = [items]
    texts = [item if isinstance(item, str) else " ".join(map(str, item)) for item in items]
    error = check_request(body, "\n".join(texts))
    if error is not None:
        return with_headers(error, request)
    dimensions = int(body.get("dimensions") or 8)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector: Any = embedding(text, dimensions)
        if as_base64:
            vector = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = count_tokens(" ".join(texts))
    result = {
        "object": "list",
        "data": data,
        "model": body.get("model", ""),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return with_headers(json_response(result), request)


# --- /v1/models -------------------------------------------------------------------


def model_object(model_id: str) -> dict[str, Any]:
    owner = "openai" if model_id.startswith("text-") else "system"
    return {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": owner}


def list_models(request: Request) -> Response:
    data = [model_object(model_id) for model_id in MODELS]
    return with_headers(json_response({"object": "list", "data": data}), request)


def retrieve_model(request: Request) -> Response:
    model_id = request.params["model"]
    error = check_request({"model": model_id}, "")
    return with_headers(error or json_response(model_object(model_id)), request)


# --- /v1/responses ----------------------------------------------------------------


def _input_prompt(body: dict[str, Any]) -> tuple[str, str, bool]:
    """(prompt, all input text, whether the input ends with a tool's output)."""
    raw = body.get("input", "")
    if isinstance(raw, str):
        return raw, raw, False
    texts: list[str] = []
    prompt, after_tool = "", False
    for item in raw:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else content_text(output)
            prompt, after_tool = text, True
        elif "content" in item:
            text = content_text(item.get("content"))
            if item.get("role") == "user":
                prompt, after_tool = text, False
        else:
            continue
        texts.append(text)
    return prompt, "\n".join(texts), after_tool


def _response_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "function":
            tools.append({"strict": True, "description": None, **tool})
        elif isinstance(tool, dict):
            tools.append(tool)
    return tools


def _response_object(
    body: dict[str, Any],
    response_id: str,
    created: int,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    choice = body.get("tool_choice")
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "completed_at": created if status == "completed" else None,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": body.get("model", ""),
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": choice if isinstance(choice, str) else "auto",
        "tools": _response_tools(body),
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def _response_usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def responses(request: Request) -> Response:
    body: dict[str, Any] = request.json()
    prompt, all_text, after_tool = _input_prompt(body)
    instructions = body.get("instructions")
    error = check_request(
        body, all_text + "\n" + (instructions if isinstance(instructions, str) else "")
    )
    if error is not None:
        return with_headers(error, request)
    tools = [
        t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"
    ]
    call: dict[str, Any] | None = None
    if tools and not after_tool and body.get("tool_choice") != "none":
        arguments = dumps(tool_arguments(tools[0].get("parameters"), prompt))
        call = {
            "id": request.new_id("fc_"),
            "type": "function_call",
            "status": "completed",
            "arguments": arguments,
            "call_id": request.new_id("call_"),
            "name": tools[0].get("name", ""),
        }
        output_text = arguments
        item: dict[str, Any] = call
    else:
        output_text = reply_text(prompt)
        part = {"type": "output_text", "text": output_text, "annotations": [], "logprobs": []}
        item = {
            "id": request.new_id("msg_"),
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [part],
        }
    response_id, created = request.new_id("resp_", 48), request.unix_time()
    usage = _response_usage(count_tokens(all_text), count_tokens(output_text))
    if body.get("stream"):
        final = _response_object(body, response_id, created, "completed", [item], usage)
        fail = "TRIGGER_STREAM_ERROR" in all_text
        return with_headers(sse_response(_response_events(final, item, fail)), request)
    result = _response_object(body, response_id, created, "completed", [item], usage)
    return with_headers(json_response(result), request)


def _response_events(final: dict[str, Any], item: dict[str, Any], fail: bool) -> Iterator[bytes]:
    sequence = 0

    def event(kind: str, **fields: Any) -> bytes:
        nonlocal sequence
        data = {"type": kind, **fields, "sequence_number": sequence}
        sequence += 1
        return sse_event(data, event=kind)

    started = {**final, "status": "in_progress", "completed_at": None, "output": [], "usage": None}
    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    item_id = item["id"]
    if item["type"] == "function_call":
        yield event(
            "response.output_item.added",
            output_index=0,
            item={**item, "status": "in_progress", "arguments": ""},
        )
        for piece in split_json(item["arguments"]):
            yield event(
                "response.function_call_arguments.delta",
                item_id=item_id,
                output_index=0,
                delta=piece,
            )
        yield event(
            "response.function_call_arguments.done",
            item_id=item_id,
            output_index=0,
            name=item["name"],
            arguments=item["arguments"],
        )
    else:
        text: str = item["content"][0]["text"]
        empty_part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        yield event(
            "response.output_item.added",
            output_index=0,
            item={**item, "status": "in_progress", "content": []},
        )
        yield event(
            "response.content_part.added",
            item_id=item_id,
            output_index=0,
            content_index=0,
            part=empty_part,
        )
        pieces = words(text)
        for number, piece in enumerate(pieces):
            if fail and number == failure_index(pieces):
                yield event(
                    "error", code="server_error", message=STREAM_ERROR["message"], param=None
                )
                return
            yield event(
                "response.output_text.delta",
                item_id=item_id,
                output_index=0,
                content_index=0,
                delta=piece,
                logprobs=[],
            )
        yield event(
            "response.output_text.done",
            item_id=item_id,
            output_index=0,
            content_index=0,
            text=text,
            logprobs=[],
        )
        yield event(
            "response.content_part.done",
            item_id=item_id,
            output_index=0,
            content_index=0,
            part=item["content"][0],
        )
    yield event("response.output_item.done", output_index=0, item=item)
    yield event("response.completed", response=final)


ROUTES: Routes = {
    ("POST", "/v1/chat/completions"): chat_completions,
    ("POST", "/v1/completions"): completions,
    ("POST", "/v1/embeddings"): embeddings,
    ("GET", "/v1/models"): list_models,
    ("GET", "/v1/models/{model}"): retrieve_model,
    ("POST", "/v1/responses"): responses,
}
