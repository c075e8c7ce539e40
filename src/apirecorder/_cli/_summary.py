"""One line per recording (``ls``) and the counts over many (``stats``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .._diagnostics import recording_kind
from .._storage import Recording, name_hash
from ._readers import is_streamed, response_view

__all__ = ["Summary", "endpoint_label", "model_of", "stats", "summarize"]


@dataclass(frozen=True)
class Summary:
    """What ``ls`` and ``stats`` show of one recording."""

    path: Path
    hash: str | None
    kind: str
    test_id: str | None
    endpoint: str
    model: str
    streaming: bool
    exception: bool
    size: int
    input_tokens: int | None
    output_tokens: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path.resolve()),
            "hash": self.hash,
            "kind": self.kind,
            "test_id": self.test_id,
            "endpoint": self.endpoint,
            "model": self.model,
            "streaming": self.streaming,
            "exception": self.exception,
            "bytes": self.size,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


def endpoint_label(request: dict[str, Any]) -> str:
    """The endpoint as a person names it: ``/v1/chat/completions``, ``tavily.web_search``..."""
    kind = recording_kind(request)
    if kind == "tool":
        return f"{request.get('provider')}.{request.get('tool_name')}"
    if kind == "http":
        return f"{str(request.get('method', '')).upper()} {request.get('url', '')}"
    return str(request.get("endpoint") or urlparse(str(request.get("url", ""))).path)


def model_of(request: dict[str, Any]) -> str:
    """The model a request names, or "" when it names none."""
    model = request.get("model")
    if not model:
        body = request.get("body", request.get("payload"))
        model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else ""


def summarize(recording: Recording) -> Summary:
    """The one-line facts about a recording: kind, test, endpoint, model, size, tokens."""
    request = recording.request
    view = response_view(recording)
    try:
        size = recording.path.stat().st_size
    except OSError:
        size = 0
    return Summary(
        path=recording.path,
        hash=name_hash(recording.path),
        kind=recording_kind(request),
        test_id=recording.test_id,
        endpoint=endpoint_label(request),
        model=model_of(request),
        streaming=is_streamed(recording.response),
        exception=bool(recording.response.get("is_exception")),
        size=size,
        input_tokens=view.input_tokens,
        output_tokens=view.output_tokens,
    )


def stats(summaries: Sequence[Summary]) -> dict[str, Any]:
    """Counts by kind, endpoint, model and test; total bytes; tokens in and out per model."""
    tokens: dict[str, dict[str, int]] = {}
    for item in summaries:
        if item.input_tokens is None and item.output_tokens is None:
            continue
        entry = tokens.setdefault(item.model or "-", {"input_tokens": 0, "output_tokens": 0})
        entry["input_tokens"] += item.input_tokens or 0
        entry["output_tokens"] += item.output_tokens or 0

    def counted(values: Iterable[str]) -> dict[str, int]:
        return dict(sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0])))

    return {
        "files": len(summaries),
        "bytes": sum(item.size for item in summaries),
        "by_kind": counted(item.kind for item in summaries),
        "by_endpoint": counted(item.endpoint for item in summaries),
        "by_model": counted(item.model or "-" for item in summaries),
        "by_test": counted(item.test_id or "-" for item in summaries),
        "tokens": dict(sorted(tokens.items())),
    }
