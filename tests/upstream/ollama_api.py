"""The Ollama REST API (`/api/...`), streamed as NDJSON when `stream` is true or absent.

A model whose name starts with "missing" gets 404 `{"error": "model '<name>' not found"}`;
TRIGGER_500 in a prompt gives a 500, TRIGGER_STREAM_ERROR an error line mid-stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .openai_api import content_text, embedding
from .server import (
    Request,
    Response,
    Routes,
    count_tokens,
    dumps,
    failure_index,
    json_response,
    ndjson_response,
    reply_text,
    tool_arguments,
    words,
)

VERSION = "0.12.6"
FIXED_MODIFIED_AT = "2025-01-02T03:04:05.678901234Z"
DETAILS: dict[str, Any] = {
    "parent_model": "",
    "format": "gguf",
    "family": "llama",
    "families": ["llama"],
    "parameter_size": "3.2B",
    "quantization_level": "Q4_K_M",
}
LOCAL_MODELS: dict[str, tuple[int, str]] = {
    "llama3.2:3b": (
        2_019_393_189,
        "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
    ),
    "nomic-embed-text:latest": (
        274_302_450,
        "0a109f422b47e3a30ba2b10eca18548e944e8a23073ee3f3e947efcf3c45e59f",
    ),
}
STREAM_ERROR = "upstream exploded"


def _error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def _check(body: dict[str, Any], text: str = "") -> Response | None:
    model = str(body.get("model", ""))
    if model.startswith("missing"):
        return _error(404, f"model '{model}' not found")
    if "TRIGGER_500" in text:
        return _error(500, "llama runner process has terminated: exit status 2")
    return None


def _streaming(body: dict[str, Any]) -> bool:
    # The raw API streams unless told not to; the Python client always says which.
    return body.get("stream") is not False


def _timings(request: Request, prompt_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "total_duration": request.duration_ns(),
        "load_duration": request.duration_ns(),
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": request.duration_ns(),
        "eval_count": output_tokens,
        "eval_duration": request.duration_ns(),
    }


def _output(body: dict[str, Any], prompt: str) -> str:
    fmt = body.get("format")
    if fmt == "json":
        return dumps({"echo": prompt})
    if isinstance(fmt, dict):
        return dumps(tool_arguments(fmt, prompt))
    return reply_text(prompt)


def chat(request: Request) -> Response:
    body: dict[str, Any] = request.json()
    messages: list[dict[str, Any]] = body.get("messages") or []
    all_text = "\n".join(content_text(m.get("content")) for m in messages)
    error = _check(body, all_text)
    if error is not None:
        return error
    last = messages[-1] if messages else {}
    prompt = content_text(last.get("content"))
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    calls: list[dict[str, Any]] = []
    if tools and last.get("role") != "tool":
        function: dict[str, Any] = tools[0].get("function") or {}
        arguments = tool_arguments(function.get("parameters"), prompt)
        calls = [{"function": {"name": function.get("name", ""), "arguments": arguments}}]
    output = "" if calls else _output(body, prompt)
    thinking = f"The user wrote {len(prompt)} characters." if body.get("think") else None
    model, usage = body.get("model", ""), (count_tokens(all_text), count_tokens(output))
    if _streaming(body):
        return ndjson_response(_chat_lines(request, model, output, calls, thinking, usage))
    message: dict[str, Any] = {"role": "assistant", "content": output}
    if thinking:
        message["thinking"] = thinking
    if calls:
        message["tool_calls"] = calls
    return json_response(
        {
            "model": model,
            "created_at": request.iso_time(),
            "message": message,
            "done_reason": "stop",
            "done": True,
            **_timings(request, *usage),
        }
    )


def _chat_lines(
    request: Request,
    model: str,
    output: str,
    calls: list[dict[str, Any]],
    thinking: str | None,
    usage: tuple[int, int],
) -> Iterator[dict[str, Any]]:
    def line(message: dict[str, Any]) -> dict[str, Any]:
        message = {"role": "assistant", "content": "", **message}
        return {"model": model, "created_at": request.iso_time(), "message": message, "done": False}

    if thinking:
        yield line({"thinking": thinking})
    if calls:
        yield line({"tool_calls": calls})
    pieces = words(output) if output else []
    for number, piece in enumerate(pieces):
        if "TRIGGER_STREAM_ERROR" in output and number == failure_index(pieces):
            yield {"error": STREAM_ERROR}
            return
        yield line({"content": piece})
    final = line({})
    final.update(done=True, done_reason="stop", **_timings(request, *usage))
    yield final


def generate(request: Request) -> Response:
    body: dict[str, Any] = request.json()
    prompt = str(body.get("prompt") or "")
    error = _check(body, prompt)
    if error is not None:
        return error
    model = body.get("model", "")
    if not prompt:
        # Ollama answers an empty prompt by loading the model and reporting done.
        return json_response(
            {
                "model": model,
                "created_at": request.iso_time(),
                "response": "",
                "done": True,
                "done_reason": "load",
            }
        )
    output = _output(body, prompt)
    context = [sum(map(ord, word)) % 32_000 for word in (prompt + " " + output).split()]
    usage = (count_tokens(prompt), count_tokens(output))
    if _streaming(body):
        return ndjson_response(_generate_lines(request, model, output, context, usage))
    return json_response(
        {
            "model": model,
            "created_at": request.iso_time(),
            "response": output,
            "done": True,
            "done_reason": "stop",
            "context": context,
            **_timings(request, *usage),
        }
    )


def _generate_lines(
    request: Request, model: str, output: str, context: list[int], usage: tuple[int, int]
) -> Iterator[dict[str, Any]]:
    pieces = words(output)
    for number, piece in enumerate(pieces):
        if "TRIGGER_STREAM_ERROR" in output and number == failure_index(pieces):
            yield {"error": STREAM_ERROR}
            return
        yield {"model": model, "created_at": request.iso_time(), "response": piece, "done": False}
    yield {
        "model": model,
        "created_at": request.iso_time(),
        "response": "",
        "done": True,
        "done_reason": "stop",
        "context": context,
        **_timings(request, *usage),
    }


def embed(request: Request) -> Response:
    body: dict[str, Any] = request.json()
    raw = body.get("input", "")
    texts = [raw] if isinstance(raw, str) else [str(item) for item in raw]
    error = _check(body, "\n".join(texts))
    if error is not None:
        return error
    dimensions = int(body.get("dimensions") or 8)
    return json_response(
        {
            "model": body.get("model", ""),
            "embeddings": [embedding(text, dimensions) for text in texts],
            "total_duration": request.duration_ns(),
            "load_duration": request.duration_ns(),
            "prompt_eval_count": count_tokens(" ".join(texts)),
        }
    )


def embeddings_legacy(request: Request) -> Response:
    body: dict[str, Any] = request.json()
    error = _check(body)
    if error is not None:
        return error
    return json_response({"embedding": embedding(str(body.get("prompt") or ""), 8)})


def _model_entry(name: str) -> dict[str, Any]:
    size, digest = LOCAL_MODELS[name]
    details = DETAILS if "embed" not in name else {**DETAILS, "family": "nomic-bert"}
    return {"name": name, "model": name, "size": size, "digest": digest, "details": details}


def tags(request: Request) -> Response:
    models = [{**_model_entry(name), "modified_at": FIXED_MODIFIED_AT} for name in LOCAL_MODELS]
    return json_response({"models": models})


def ps(request: Request) -> Response:
    entry = _model_entry("llama3.2:3b")
    entry.update(expires_at=request.iso_time(300), size_vram=entry["size"], context_length=4096)
    return json_response({"models": [entry]})


def show(request: Request) -> Response:
    body: dict[str, Any] = request.json()
    error = _check(body)
    if error is not None:
        return error
    name = str(body.get("model", ""))
    return json_response(
        {
            "license": "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT",
            "modelfile": f'# Modelfile generated by "ollama show"\nFROM {name}\n',
            "parameters": 'stop                           "<|eot_id|>"',
            "template": "{{ .System }}\n{{ .Prompt }}",
            "details": DETAILS,
            "model_info": {
                "general.architecture": "llama",
                "general.parameter_count": 3_212_749_888,
                "llama.context_length": 131_072,
                "llama.embedding_length": 3072,
            },
            "capabilities": ["completion", "tools"],
            "modified_at": FIXED_MODIFIED_AT,
        }
    )


def pull(request: Request) -> Response:
    body: dict[str, Any] = request.json()
    name = str(body.get("model") or body.get("name") or "")
    missing = name.startswith("missing")
    if not _streaming(body):
        if missing:
            return _error(500, "pull model manifest: file does not exist")
        return json_response({"status": "success"})
    return ndjson_response(_pull_lines(missing))


def _pull_lines(missing: bool) -> Iterator[dict[str, Any]]:
    yield {"status": "pulling manifest"}
    if missing:
        yield {"error": "pull model manifest: file does not exist"}
        return
    digest = "sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff"
    for completed in (0, 1_000, 2_048):
        yield {
            "status": f"pulling {digest[7:19]}",
            "digest": digest,
            "total": 2_048,
            "completed": completed,
        }
    yield {"status": "verifying sha256 digest"}
    yield {"status": "writing manifest"}
    yield {"status": "success"}


def version(request: Request) -> Response:
    return json_response({"version": VERSION})


ROUTES: Routes = {
    ("POST", "/api/chat"): chat,
    ("POST", "/api/generate"): generate,
    ("POST", "/api/embed"): embed,
    ("POST", "/api/embeddings"): embeddings_legacy,
    ("GET", "/api/tags"): tags,
    ("GET", "/api/ps"): ps,
    ("POST", "/api/show"): show,
    ("POST", "/api/pull"): pull,
    ("GET", "/api/version"): version,
}
