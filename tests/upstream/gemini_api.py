"""The Gemini API (`/v1beta/models/{model}:{method}`) and its Vertex twin, as google-genai calls it.

`generateContent`, `streamGenerateContent?alt=sse` (one SSE event per piece, CRLF framed as
Google sends it), `embedContent` and `batchEmbedContents`. Triggers in the prompt:
TRIGGER_400 and TRIGGER_429 answer with Google's error body (`{"error": {"code", "message",
"status"}}`), so the SDK raises `ClientError`; TRIGGER_500 gives `ServerError`. A model whose
name starts with "missing" gets 404 NOT_FOUND.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from .server import (
    Request,
    Response,
    Routes,
    count_tokens,
    dumps,
    find_trigger,
    json_response,
    reply_text,
    sse_response,
    words,
)

MODEL_VERSION = "gemini-2.0-flash-001"
ERRORS: dict[str, tuple[int, str, str]] = {
    "TRIGGER_400": (400, "INVALID_ARGUMENT", "Invalid request: the prompt contains TRIGGER_400."),
    "TRIGGER_429": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    "TRIGGER_500": (500, "INTERNAL", "An internal error has occurred."),
}


def error_response(status: int, kind: str, message: str) -> Response:
    return json_response({"error": {"code": status, "message": message, "status": kind}}, status)


def contents_text(contents: Any) -> str:
    """The text of every part of every content, joined with spaces."""
    texts: list[str] = []
    for content in contents if isinstance(contents, list) else [contents]:
        if isinstance(content, dict):
            for part in content.get("parts") or []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    texts.append(part["text"])
        elif isinstance(content, str):
            texts.append(content)
    return " ".join(texts)


def _last_user_text(contents: Any) -> str:
    if isinstance(contents, list):
        for content in reversed(contents):
            if isinstance(content, dict) and content.get("role", "user") == "user":
                return contents_text([content])
    return contents_text(contents)


def _check(model: str, text: str) -> Response | None:
    if model.startswith("missing"):
        return error_response(
            404, "NOT_FOUND", f"models/{model} is not found for API version v1beta"
        )
    trigger = find_trigger(text, tuple(ERRORS))
    if trigger is not None:
        return error_response(*ERRORS[trigger])
    return None


def _usage(prompt: str, answer: str) -> dict[str, Any]:
    prompt_tokens, answer_tokens = count_tokens(prompt), count_tokens(answer)
    return {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": answer_tokens,
        "totalTokenCount": prompt_tokens + answer_tokens,
    }


def _candidate(text: str, finish: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
    if finish:
        candidate["finishReason"] = "STOP"
    candidate["index"] = 0
    return candidate


def generate_content(request: Request, model: str) -> Response:
    body = request.json()
    prompt = _last_user_text(body.get("contents"))
    failed = _check(model, prompt)
    if failed is not None:
        return failed
    answer = reply_text(prompt)
    return json_response(
        {
            "candidates": [_candidate(answer, finish=True)],
            "usageMetadata": _usage(prompt, answer),
            "modelVersion": MODEL_VERSION,
            "responseId": request.new_id("resp-", 16),
        }
    )


def stream_generate_content(request: Request, model: str) -> Response:
    body = request.json()
    prompt = _last_user_text(body.get("contents"))
    failed = _check(model, prompt)
    if failed is not None:
        return failed
    answer = reply_text(prompt)
    pieces = words(answer)
    response_id = request.new_id("resp-", 16)

    def events() -> Iterator[bytes]:
        for index, piece in enumerate(pieces):
            chunk: dict[str, Any] = {
                "candidates": [_candidate(piece, finish=index == len(pieces) - 1)],
                "modelVersion": MODEL_VERSION,
                "responseId": response_id,
            }
            if index == len(pieces) - 1:
                chunk["usageMetadata"] = _usage(prompt, answer)
            yield f"data: {dumps(chunk)}\r\n\r\n".encode()

    return sse_response(events())


def _vector(text: str, dimensions: int = 8) -> list[float]:
    raw = [math.sin(len(text) + i + sum(map(ord, text)) % 97) for i in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [round(v / norm, 6) for v in raw]


def embed_content(request: Request, model: str) -> Response:
    body = request.json()
    text = contents_text(body.get("content"))
    failed = _check(model, text)
    if failed is not None:
        return failed
    return json_response({"embedding": {"values": _vector(text)}})


def batch_embed_contents(request: Request, model: str) -> Response:
    body = request.json()
    texts = [contents_text(item.get("content")) for item in body.get("requests") or []]
    failed = _check(model, " ".join(texts))
    if failed is not None:
        return failed
    return json_response({"embeddings": [{"values": _vector(text)} for text in texts]})


_METHODS = {
    "generateContent": generate_content,
    "streamGenerateContent": stream_generate_content,
    "embedContent": embed_content,
    "batchEmbedContents": batch_embed_contents,
}


def model_method(request: Request) -> Response:
    """`{model}:{method}`: one path segment names both the model and the method."""
    model, _, method = request.params["call"].partition(":")
    handler = _METHODS.get(method)
    if handler is None:
        return error_response(404, "NOT_FOUND", f"unknown method {method!r}")
    return handler(request, model)


ROUTES: Routes = {
    ("POST", "/v1beta/models/{call}"): model_method,
    ("POST", "/v1/models/{call}"): model_method,
    # Vertex AI: the same bodies under a project, a location and a publisher.
    (
        "POST",
        "/v1beta1/projects/{project}/locations/{location}/publishers/google/models/{call}",
    ): model_method,
}
