"""Reading many recordings at once, for the CLI: find, summarize, reassemble, verify, normalize.

Everything here works on recording files alone and knows no client library: responses are
read by their JSON shape (OpenAI chunks and objects, Responses events, Ollama chunks,
Anthropic SSE events), never by importing an SDK.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar
from urllib.parse import urlparse

from . import _hashing
from ._diagnostics import (
    Difference,
    diff_requests,
    diff_values,
    recording_kind,
    recording_test_id,
    render_value,
)
from ._exceptions import ApiRecorderError, RecordingFormatError, RecordingNotFoundError
from ._hashing import BodyNormalizer
from ._redaction import contains_placeholder
from ._serialization import is_allowed, normalize_response_data, resolve_type
from ._storage import (
    SKIPPED_DIRS,
    Recording,
    dump_recording,
    load_recording,
    model_list_digest,
)

__all__ = [
    "Problem",
    "ResponseView",
    "Summary",
    "collect_recordings",
    "diff_recordings",
    "find_by_hash",
    "is_model_list",
    "iter_json_files",
    "model_ids",
    "normalize_recording",
    "progress",
    "response_view",
    "stats",
    "summarize",
    "verify_recording",
    "verify_recordings",
]

T = TypeVar("T")

_HASH_NAME = re.compile(r"(?P<hash>[0-9a-f]{64})\.json")
_MODELS_NAME = re.compile(r"models-(?P<hash>[0-9a-f]{64})-(?P<digest>[0-9a-f]{8})\.json")
_SSE_FIELDS = frozenset({"event", "data", "id", "retry"})


# -- finding files -----------------------------------------------------------------------


def iter_json_files(paths: Iterable[Path]) -> list[Path]:
    """Every ``*.json`` file under ``paths`` (files given are kept), hidden folders skipped."""
    found: set[Path] = set()
    for path in paths:
        if path.is_file():
            found.add(path)
            continue
        for folder, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
            found.update(
                Path(folder) / name
                for name in files
                if name.endswith(".json") and not name.startswith(".")
            )
    return sorted(found)


def looks_like_recording(path: Path) -> bool:
    """A file named by a request hash, or kept in a ``recordings`` folder."""
    name = path.name
    return bool(
        _HASH_NAME.fullmatch(name)
        or _MODELS_NAME.fullmatch(name)
        or path.parent.name == "recordings"
    )


def collect_recordings(
    paths: Sequence[Path], *, label: str = "reading"
) -> tuple[list[Recording], list[Problem]]:
    """Load the recordings under ``paths``; other JSON files are skipped silently.

    A file that is a recording by name or place but cannot be read comes back as a problem.
    """
    recordings: list[Recording] = []
    problems: list[Problem] = []
    files = iter_json_files(paths)
    explicit = {p for p in paths if p.is_file()}
    for path in progress(files, label):
        try:
            recordings.append(load_recording(path))
        except RecordingFormatError as exc:
            if path in explicit or looks_like_recording(path):
                problems.append(Problem(path, exc.problem))
    return recordings, problems


def find_by_hash(prefix: str, root: Path) -> list[Path]:
    """Recording files under ``root`` whose request hash starts with ``prefix``."""
    prefix = prefix.lower()
    matches = []
    for path in iter_json_files([root]):
        match = _HASH_NAME.fullmatch(path.name) or _MODELS_NAME.fullmatch(path.name)
        if match and match.group("hash").startswith(prefix):
            matches.append(path)
    return matches


def progress(items: Sequence[T], label: str, stream: TextIO | None = None) -> Iterator[T]:
    """Yield ``items``, drawing a progress bar on ``stream`` (stderr) when it is a terminal."""
    out = stream if stream is not None else sys.stderr
    total = len(items)
    show = total >= 200 and out.isatty()
    step = max(1, total // 100)
    width = 30
    for done, item in enumerate(items, 1):
        yield item
        if show and (done % step == 0 or done == total):
            filled = width * done // total
            out.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            out.flush()
    if show:
        out.write("\r" + " " * (len(label) + width + 30) + "\r")
        out.flush()


# -- one recording at a glance -----------------------------------------------------------


def is_model_list(request: dict[str, Any]) -> bool:
    """True for a recording of a model-list endpoint (``/v1/models``, ``/api/tags``)."""
    endpoint = request.get("endpoint") or urlparse(str(request.get("url", ""))).path
    return endpoint in _hashing.MODEL_LIST_ENDPOINTS


def name_hash(path: Path) -> str | None:
    """The request hash a file's name claims, or None for a name that is no hash."""
    match = _HASH_NAME.fullmatch(path.name) or _MODELS_NAME.fullmatch(path.name)
    return match.group("hash") if match else None


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
        test_id=recording_test_id(recording),
        endpoint=endpoint_label(request),
        model=model_of(request),
        streaming=is_streamed(recording.response),
        exception=bool(recording.response.get("is_exception")),
        size=size,
        input_tokens=view.input_tokens,
        output_tokens=view.output_tokens,
    )


# -- reassembling a response -------------------------------------------------------------


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


def _arguments(value: Any) -> str:
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
            slot.arguments += _arguments(function.get("arguments"))


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
            slot.arguments = _arguments(block.get("input"))


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
        slot.arguments = _arguments(item.get("arguments"))


def _read_ollama(view: ResponseView, payload: dict[str, Any], slots: dict[Any, ToolCall]) -> bool:
    message = payload.get("message")
    if isinstance(message, dict) and "role" in message:
        view.add_text(0, message.get("content"))
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                slot = _tool_call_slot(view, slots, ("ollama", len(slots)))
                slot.name = str(function.get("name") or "")
                slot.arguments = _arguments(function.get("arguments"))
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


def model_ids(body: Any) -> list[str]:
    """The model ids of a model-list response (OpenAI ``Model`` list or Ollama ``models``)."""
    value = unwrap(body)
    if isinstance(value, dict) and isinstance(value.get("models"), list):
        value = value["models"]
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        value = value["data"]
    ids: list[str] = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict):
            for key in ("id", "model", "name"):
                if isinstance(item.get(key), str):
                    ids.append(item[key])
                    break
    return ids


def is_streamed(response: dict[str, Any]) -> bool:
    """A stream of an SDK (``is_streaming``) or of the HTTP layer (SSE or NDJSON events)."""
    return bool(response.get("is_streaming")) or response.get("body_format") in ("sse", "ndjson")


def response_view(recording: Recording) -> ResponseView:
    """Reassemble a recorded response: streamed text, tool calls, token usage and errors."""
    response = recording.response
    body = response.get("body")
    view = ResponseView(raw=body)
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


# -- verify ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """Something wrong with one file: its path and what is wrong."""

    path: Path
    message: str

    def as_json(self) -> dict[str, str]:
        return {"path": str(self.path), "problem": self.message}


def _types(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        type_path = value.get("__type__")
        if "__data__" in value and type_path is not None:
            yield str(type_path)
        for item in value.values():
            yield from _types(item)
    elif isinstance(value, list):
        for item in value:
            yield from _types(item)


def _installed(type_path: str) -> bool:
    top = type_path.split(".", 1)[0]
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def expected_name(recording: Recording, normalizers: Sequence[BodyNormalizer] = ()) -> str:
    """The file name a recording must have: the hash of its own request (DESIGN 4 and 5)."""
    request = recording.request
    kind = recording_kind(request)
    test_id = recording_test_id(recording)
    if kind == "tool":
        kwargs = request.get("kwargs")
        request_hash = _hashing.tool_request_hash(
            str(request.get("provider")),
            str(request.get("tool_name")),
            kwargs if isinstance(kwargs, dict) else {},
        )
    elif kind == "http":
        request_hash = _hashing.http_request_hash(
            str(request.get("url", "")),
            str(request.get("method", "")),
            request.get("payload"),
            test_id,
            normalizers,
        )
    else:
        request_hash = _hashing.inference_request_hash(
            str(request.get("method", "POST")),
            str(request.get("url", "")),
            request.get("body"),
            test_id,
            normalizers,
        )
    if is_model_list(request):
        digest = model_list_digest(model_ids(recording.response.get("body")))
        return f"models-{request_hash}-{digest}.json"
    return f"{request_hash}.json"


def verify_recording(
    recording: Recording,
    allowed: Sequence[str] = (),
    normalizers: Sequence[BodyNormalizer] = (),
) -> tuple[list[Problem], set[str]]:
    """The problems of one loaded recording, and the types left unchecked (library absent)."""
    problems: list[Problem] = []
    unchecked: set[str] = set()
    path = recording.path
    for type_path in sorted(set(_types(recording.data))):
        if not is_allowed(type_path, allowed):
            problems.append(
                Problem(
                    path,
                    f"__type__ {type_path!r} is not in the allow-list; replay would refuse it "
                    "(if your tests call apirecorder.allow_types for it, pass --allow-type "
                    f"{type_path.split('.', 1)[0]})",
                )
            )
        elif not _installed(type_path):
            unchecked.add(type_path)
        else:
            try:
                resolve_type(type_path, source=path, extra=allowed)
            except ApiRecorderError as exc:
                problems.append(Problem(path, str(exc).removeprefix(f"{path}: ")))
    try:
        expected = expected_name(recording, normalizers)
    except (TypeError, ValueError) as exc:
        problems.append(Problem(path, f"the request cannot be hashed: {exc}"))
        return problems, unchecked
    actual = path.name
    hashed = {key: value for key, value in recording.request.items() if key != "headers"}
    if actual != expected and contains_placeholder(hashed):
        # Secrets were redacted after the hash was taken: the name cannot be re-derived.
        return problems, unchecked
    if actual != expected:
        if is_model_list(recording.request) and _HASH_NAME.fullmatch(actual):
            why = "a model-list recording named like a plain one: replay never reads it"
        elif _MODELS_NAME.fullmatch(actual) and not is_model_list(recording.request):
            why = "named like a model list, but its endpoint is not one: replay never reads it"
        elif _MODELS_NAME.fullmatch(actual) and expected.startswith(actual[:72]):
            why = "the model-list digest does not match the models it holds"
        else:
            why = "the name is not the hash of its request (renamed, or the request was edited)"
        problems.append(Problem(path, f"{why}; expected the name {expected}"))
    return problems, unchecked


def _duplicate_model_lists(recordings: Sequence[Recording]) -> list[Problem]:
    groups: dict[tuple[Path, str, frozenset[str]], list[Path]] = {}
    for recording in recordings:
        match = _MODELS_NAME.fullmatch(recording.path.name)
        if match is None:
            continue
        ids = frozenset(model_ids(recording.response.get("body")))
        key = (recording.path.parent, match.group("hash"), ids)
        groups.setdefault(key, []).append(recording.path)
    problems: list[Problem] = []
    for (_, _, ids), paths in groups.items():
        # The file whose digest matches its models is the original; the others repeat it.
        suffix = f"-{model_list_digest(list(ids))}.json"
        first, *others = sorted(paths, key=lambda p: (not p.name.endswith(suffix), p))
        problems.extend(
            Problem(path, f"duplicate model list: the same models as {first.name}")
            for path in others
        )
    return problems


def verify_recordings(
    recordings: Sequence[Recording],
    allowed: Sequence[str] = (),
    normalizers: Sequence[BodyNormalizer] = (),
) -> tuple[list[Problem], set[str]]:
    """Every problem of ``recordings`` (names, types, duplicate model lists), in file order."""
    problems: list[Problem] = []
    unchecked: set[str] = set()
    for recording in progress(recordings, "verifying"):
        found, skipped = verify_recording(recording, allowed, normalizers)
        problems.extend(found)
        unchecked |= skipped
    problems.extend(_duplicate_model_lists(recordings))
    return sorted(problems, key=lambda p: (str(p.path), p.message)), unchecked


# -- stats -------------------------------------------------------------------------------


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


# -- diff --------------------------------------------------------------------------------


def _response_facts(recording: Recording) -> dict[str, Any]:
    view = response_view(recording)
    facts: dict[str, Any] = {
        "streaming": is_streamed(recording.response),
        "chunks": view.chunks,
        "text": view.text,
        "tool calls": [call.as_json() for call in view.tool_calls],
        "usage": {"input_tokens": view.input_tokens, "output_tokens": view.output_tokens},
        "error": view.error,
    }
    if view.status is not None:
        facts["status"] = view.status
    if not view.texts and not view.tool_calls:
        facts["body"] = view.value
    return facts


def diff_recordings(old: Recording, new: Recording) -> tuple[list[Difference], list[Difference]]:
    """Field-level differences of two recordings: the requests, then the responses."""
    request_differences = diff_requests(
        old.request, recording_test_id(old), new.request, recording_test_id(new)
    )
    if recording_kind(old.request) != recording_kind(new.request):
        request_differences.insert(
            0,
            Difference("kind", "changed", recording_kind(old.request), recording_kind(new.request)),
        )
    response_differences = diff_values(_response_facts(old), _response_facts(new))
    return request_differences, response_differences


# -- normalize ---------------------------------------------------------------------------


def normalize_recording(recording: Recording) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The recording with response normalization re-applied (DESIGN 6), how many top-level
    values changed, and the ids it replaced (old -> new)."""
    request_hash = name_hash(recording.path) or name_hash(Path(expected_name(recording))) or ""
    data: dict[str, Any] = json.loads(json.dumps(recording.data))
    body = data["response"].get("body")
    items = body if isinstance(body, list) else [body]
    changed = 0
    ids: dict[str, str] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("__data__"), dict):
            before = json.loads(json.dumps(item["__data__"]))
            after = normalize_response_data(item["__data__"], request_hash, ids)
            changed += sum(1 for key in after if before.get(key) != after[key])
    replaced = {old: new for old, new in ids.items() if old != new}
    return data, changed, replaced


def referenced_ids(ids: Iterable[str], recordings: Sequence[Recording]) -> dict[str, Path]:
    """Which of ``ids`` a recorded request sends back, and in which file (a hash depends on it)."""
    wanted = set(ids)
    found: dict[str, Path] = {}
    for recording in recordings:
        text = json.dumps(recording.request, ensure_ascii=False)
        for value in wanted - set(found):
            if value in text:
                found[value] = recording.path
    return found


def serialized(data: dict[str, Any]) -> bytes:
    """The bytes a recording is written as."""
    return dump_recording(data)


# -- explain -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Explanation:
    """What a replay would do with one request: the hash, and the file read or why it misses."""

    request_hash: str
    test_id: str | None
    endpoint: str
    path: Path | None
    message: str


def explain_request(
    *,
    storage_dir: Path | None,
    root: Path | None,
    kind: str,
    test_id: str | None,
    body: Any,
    endpoint: str | None = None,
    url: str | None = None,
    method: str = "POST",
    tool: str | None = None,
    normalizers: Sequence[BodyNormalizer] = (),
) -> Explanation:
    """Describe ``body`` as the interceptors would and ask the replay lookup about it."""
    from ._context import test_context
    from ._modes import Mode
    from ._recorder import Session
    from ._storage import Storage

    storage = (
        Storage(storage_dir, flat=True)
        if storage_dir is not None
        else Storage(root if root is not None else Path.cwd(), flat=False)
    )
    session = Session(mode=Mode.REPLAY, storage=storage, normalizers=normalizers)
    with test_context(test_id):
        if kind == "tool":
            provider, _, tool_name = (tool or "").partition(".")
            call = session.tool_call(provider, tool_name, body if isinstance(body, dict) else {})
        elif kind == "http":
            call = session.http_call(method=method, url=url or "", headers={}, payload=body)
        else:
            if not isinstance(body, dict):
                raise ValueError("an inference request body must be a JSON object")
            label = endpoint or _logical_endpoint(url or "")
            base_url = url if url else _default_base(label)
            call = session.inference_call(
                base_url=base_url,
                endpoint="" if url else label,
                body=body,
                method=method,
                label=label,
            )
        try:
            found = session.lookup(call)
        except RecordingNotFoundError as exc:
            return Explanation(call.request_hash, test_id, call.endpoint, None, str(exc))
    path = found.path if found is not None else None
    return Explanation(call.request_hash, test_id, call.endpoint, path, "")


def _default_base(endpoint: str) -> str:
    # OpenAI clients have base URLs ending in /v1 and their endpoints start with /v1 too, which
    # is why recorded paths read /v1/v1/...; Ollama clients use the bare host.
    return "http://localhost/v1" if endpoint.startswith("/v1/") else "http://localhost"


def _logical_endpoint(url: str) -> str:
    path = urlparse(url).path
    return "/v1/" + path[len("/v1/v1/") :] if path.startswith("/v1/v1/") else path


# -- terminal output ---------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """ANSI colour for a terminal; plain text when ``enabled`` is False."""

    enabled: bool

    @classmethod
    def for_stream(cls, stream: TextIO) -> Style:
        """Colour only on a terminal, and never when ``NO_COLOR`` is set."""
        return cls(stream.isatty() and not os.environ.get("NO_COLOR"))

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled and text else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def diff_line(self, line: str) -> str:
        """Colour one line of a text diff by its first character."""
        stripped = line.lstrip()
        if stripped.startswith("- "):
            return self.red(line)
        if stripped.startswith("+ "):
            return self.green(line)
        return line


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows in left-aligned columns two spaces apart; the last column is never padded."""
    widths = [len(h) for h in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    lines = []
    for row in [list(headers), *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


def display_path(path: Path) -> str:
    """A path relative to the current folder when it lies below it, else absolute."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)


def resolve_recording_arg(target: str, root: Path) -> tuple[Path | None, str]:
    """A recording given as a file or as a hash prefix under ``root``, or None and why not."""
    path = Path(target)
    if path.is_file():
        return path, ""
    if not re.fullmatch(r"[0-9a-fA-F]{4,64}", target):
        return None, f"no such file, and {target!r} is not a hash (4 to 64 hex digits)"
    matches = find_by_hash(target, root)
    if not matches:
        return None, f"no recording under {root} has a hash starting with {target}"
    if len(matches) > 1:
        names = ", ".join(display_path(p) for p in matches[:5])
        return None, f"{len(matches)} recordings match {target}: {names}; give more digits"
    return matches[0], ""


# -- a request, summarized ---------------------------------------------------------------


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return render_value(content, 200) if content is not None else ""
    parts: list[str] = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict):
            kind = str(part.get("type", ""))
            if isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif kind == "tool_use":
                parts.append(f"<tool use {part.get('name')} {_arguments(part.get('input'))}>")
            elif kind == "tool_result":
                parts.append(f"<tool result: {_content_text(part.get('content'))}>")
            elif "image" in kind:
                parts.append("<image>")
            else:
                parts.append(f"<{kind or 'part'}>")
    return " ".join(parts)


def _message_lines(message: Any) -> list[str]:
    if not isinstance(message, dict):
        return [render_value(message, 200)]
    role = str(message.get("role") or message.get("type") or "?")
    if message.get("tool_call_id"):
        role = f"{role} {message['tool_call_id']}"
    text = _content_text(message.get("content"))
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            text += f"{' ' if text else ''}-> {function.get('name')}"
            text += f"({_arguments(function.get('arguments'))})"
    if message.get("type") == "function_call_output":
        text = _content_text(message.get("output"))
    elif message.get("type") == "function_call":
        text = f"-> {message.get('name')}({_arguments(message.get('arguments'))})"
    head = f"[{role}] "
    lines = text.splitlines() or [""]
    return [head + lines[0], *(" " * len(head) + line for line in lines[1:])]


def request_lines(request: dict[str, Any]) -> list[str]:
    """A request as lines a person reads: messages by role, prompt or input, then parameters."""
    kind = recording_kind(request)
    if kind == "tool":
        kwargs = request.get("kwargs")
        items = kwargs.items() if isinstance(kwargs, dict) else []
        return [f"{key}: {render_value(value, 200)}" for key, value in items]
    body = request.get("body", request.get("payload"))
    lines: list[str] = []
    if kind == "http":
        lines.append(f"{str(request.get('method', '')).upper()} {request.get('url', '')}")
    if not isinstance(body, dict):
        if body is not None:
            lines += [str(line) for line in _content_text(body).splitlines()]
        return lines
    shown = {"messages", "prompt", "input", "system", "instructions", "tools"}
    for key in ("system", "instructions"):
        if body.get(key):
            lines += _message_lines({"role": key, "content": body[key]})
    for message in body.get("messages") or []:
        lines += _message_lines(message)
    for key in ("prompt", "input"):
        value = body.get(key)
        values = value if isinstance(value, list) else [value] if value is not None else []
        for item in values:
            lines += (
                _message_lines(item)
                if isinstance(item, dict)
                else _message_lines({"role": key, "content": item})
            )
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        names = []
        for tool in tools:
            if isinstance(tool, dict):
                function = tool.get("function")
                name = function.get("name") if isinstance(function, dict) else tool.get("name")
                names.append(str(name or tool.get("type", "?")))
        lines.append(f"tools: {', '.join(names)}")
    for key, value in body.items():
        if key not in shown:
            lines.append(f"{key}: {render_value(value, 200)}")
    return lines
