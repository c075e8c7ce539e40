"""Messages that explain a replay miss, and the field-level request diff they share with the CLI.

On a miss the recorder scans the searched folders once (never on a hit) for the recording
nearest to the call: same test and endpoint first, else same endpoint in any test. Its request
is compared field by field with the call, so the message says what changed since it was recorded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlparse

from ._exceptions import ApiRecorderError
from ._hashing import MODEL_LIST_ENDPOINTS, BodyNormalizer, apply_normalizers, normalize_for_hash
from ._settings import record_command
from ._storage import Recording, json_files_in, parse_recording
from ._types import Call

if TYPE_CHECKING:
    from difflib import SequenceMatcher


def _matcher(a: Sequence[Any], b: Sequence[Any], *, autojunk: bool = True) -> SequenceMatcher[Any]:
    # difflib is imported when a difference is explained: the pytest plugin loads this module
    # at start-up (the ledger reads a recording's kind), and most runs explain nothing.
    from difflib import SequenceMatcher

    return SequenceMatcher(None, a, b, autojunk=autojunk)


__all__ = [
    "Difference",
    "NearestRecording",
    "diff_requests",
    "diff_values",
    "endpoint_key",
    "explain_miss",
    "find_nearest",
    "format_differences",
    "nearest_section",
    "recording_kind",
    "recording_test_id",
    "render_value",
    "word_diff",
]

#: How many differences a message lists before it says "and N more".
MAX_DIFFERENCES = 12
#: Strings up to this length are shown whole on their ``-``/``+`` lines.
MAX_WHOLE_TEXT = 200
#: Lines of a multi-line text diff shown before the rest is cut.
MAX_TEXT_DIFF_LINES = 30
#: Tokens of unchanged text kept on each side of a change in a word diff.
WORD_CONTEXT = 10
_MAX_RENDERED = 80

_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")


@dataclass(frozen=True)
class Difference:
    """One field that differs: ``old`` is the recorded value, ``new`` the one asked now."""

    path: str
    change: str  # "changed", "added", "removed" or "text"
    old: Any = None
    new: Any = None


@dataclass(frozen=True)
class NearestRecording:
    """The recording most like a call, how it was found, and what differs."""

    recording: Recording
    same_test: bool
    differences: tuple[Difference, ...]


# -- describing recordings ---------------------------------------------------------------


def recording_kind(request: dict[str, Any]) -> str:
    """``inference``, ``tool`` or ``http``, from the shape of a recorded request."""
    if "tool_name" in request:
        return "tool"
    if "payload" in request and "body" not in request:
        return "http"
    return "inference"


def recording_test_id(recording: Recording) -> str | None:
    """The test id a recording was made under (top level, else inside the request)."""
    value = recording.data.get("test_id", recording.request.get("test_id"))
    return value if isinstance(value, str) else None


def endpoint_key(kind: str, request: dict[str, Any]) -> tuple[str, ...]:
    """What "the same endpoint" means for a request of ``kind``; hosts and ports never count."""
    if kind == "tool":
        return ("tool", str(request.get("provider")), str(request.get("tool_name")))
    path = urlparse(str(request.get("url", ""))).path
    if kind == "http":
        return ("http", str(request.get("method", "")).upper(), path)
    return ("inference", str(request.get("endpoint") or path))


# -- field-level differences -------------------------------------------------------------


def _key_path(parent: str, key: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{json.dumps(key, ensure_ascii=False)}]"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _is_text(old: Any, new: Any) -> bool:
    if not isinstance(old, str) or not isinstance(new, str):
        return False
    return any(ch.isspace() for ch in old + new) or max(len(old), len(new)) > 30


def diff_values(old: Any, new: Any, path: str = "") -> list[Difference]:
    """The differences between two JSON values, field by field (lists aligned by content)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[Difference] = []
        for key, value in old.items():
            sub = _key_path(path, str(key))
            if key not in new:
                found.append(Difference(sub, "removed", old=value))
            else:
                found.extend(diff_values(value, new[key], sub))
        for key, value in new.items():
            if key not in old:
                found.append(Difference(_key_path(path, str(key)), "added", new=value))
        return found
    if isinstance(old, list) and isinstance(new, list):
        return _diff_lists(old, new, path)
    if type(old) is type(new) and old == new:
        return []
    if _is_text(old, new):
        return [Difference(path, "text", old, new)]
    return [Difference(path, "changed", old, new)]


def _diff_lists(old: list[Any], new: list[Any], path: str) -> list[Difference]:
    if len(old) == len(new):
        found: list[Difference] = []
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            found.extend(diff_values(a, b, f"{path}[{index}]"))
        return found
    # Lists of different lengths are aligned by content, so one inserted message shows as one
    # added item rather than as every later item changed.
    matcher = _matcher([_canonical(x) for x in old], [_canonical(x) for x in new])
    found = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        common = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for offset in range(common):
            found.extend(diff_values(old[i1 + offset], new[j1 + offset], f"{path}[{j1 + offset}]"))
        for index in range(i1 + common, i2):
            found.append(Difference(f"{path}[{index}]", "removed", old=old[index]))
        for index in range(j1 + common, j2):
            found.append(Difference(f"{path}[{index}]", "added", new=new[index]))
    return found


def _hashed_body(body: Any, normalizers: Sequence[BodyNormalizer]) -> Any:
    # Compare what the hash sees: user normalizers first, then the DESIGN section 4 rules.
    return normalize_for_hash(apply_normalizers(normalizers, body))


def diff_requests(
    recorded: dict[str, Any],
    recorded_test_id: str | None,
    asked: dict[str, Any],
    asked_test_id: str | None,
    normalizers: Sequence[BodyNormalizer] = (),
) -> list[Difference]:
    """The hashed fields that differ between a recorded request and another one of that kind."""
    kind = recording_kind(asked)
    found: list[Difference] = []
    if kind == "tool":
        for key, label in (("provider", "provider"), ("tool_name", "tool name")):
            if recorded.get(key) != asked.get(key):
                found.append(Difference(label, "changed", recorded.get(key), asked.get(key)))
        found.extend(diff_values(recorded.get("kwargs"), asked.get("kwargs")))
        return found
    old_method = str(recorded.get("method", "")).upper()
    new_method = str(asked.get("method", "")).upper()
    if old_method != new_method:
        found.append(Difference("http method", "changed", old_method, new_method))
    if kind == "http":
        if recorded.get("url") != asked.get("url"):
            found.append(Difference("url", "changed", recorded.get("url"), asked.get("url")))
        body_key = "payload"
        with_test_id = True
    else:
        old_path = urlparse(str(recorded.get("url", ""))).path
        new_path = urlparse(str(asked.get("url", ""))).path
        if old_path != new_path:
            found.append(Difference("url path", "changed", old_path, new_path))
        body_key = "body"
        with_test_id = new_path not in MODEL_LIST_ENDPOINTS
    if with_test_id and recorded_test_id != asked_test_id:
        found.append(Difference("test id", "changed", recorded_test_id, asked_test_id))
    found.extend(
        diff_values(
            _hashed_body(recorded.get(body_key), normalizers),
            _hashed_body(asked.get(body_key), normalizers),
        )
    )
    return found


# -- rendering differences ---------------------------------------------------------------


def render_value(value: Any, limit: int = _MAX_RENDERED) -> str:
    """A value as compact JSON on one line, cut to ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, str):
        limit = max(limit, MAX_WHOLE_TEXT)  # identifiers and URLs differ at their ends
    return text if len(text) <= limit else text[: limit - 3] + "..."


def word_diff(old: str, new: str, context: int = WORD_CONTEXT) -> str:
    """One line marking removed words ``[-so-]`` and added ones ``{+so+}``, as ``git diff``."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    opcodes = _matcher(a, b, autojunk=False).get_opcodes()
    parts: list[str] = []
    for position, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            parts.append(_trim_equal(a[i1:i2], context, position, len(opcodes)))
            continue
        if i2 > i1:
            parts.append("[-" + "".join(a[i1:i2]) + "-]")
        if j2 > j1:
            parts.append("{+" + "".join(b[j1:j2]) + "+}")
    return "".join(parts).replace("\n", "\\n")


def _trim_equal(tokens: list[str], context: int, position: int, total: int) -> str:
    first, last = position == 0, position == total - 1
    keep_head = 0 if first else context
    keep_tail = 0 if last else context
    if len(tokens) <= keep_head + keep_tail + 1 or (first and last):
        return "".join(tokens)
    head = "".join(tokens[:keep_head])
    tail = "".join(tokens[len(tokens) - keep_tail :]) if keep_tail else ""
    return f"{head}...{tail}"


def _text_lines(old: str, new: str) -> list[str]:
    if "\n" in old or "\n" in new:
        from difflib import unified_diff

        lines = [
            line
            for line in unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1)
            if not line.startswith(("---", "+++"))
        ]
        if len(lines) > MAX_TEXT_DIFF_LINES:
            more = len(lines) - MAX_TEXT_DIFF_LINES
            lines = [*lines[:MAX_TEXT_DIFF_LINES], f"... ({more} more lines)"]
        return lines
    if max(len(old), len(new)) > MAX_WHOLE_TEXT:
        return [f"~ {word_diff(old, new)}"]
    lines = [f"- {old}", f"+ {new}"]
    similar = _matcher(_TOKEN.findall(old), _TOKEN.findall(new), autojunk=False)
    if similar.ratio() >= 0.5:  # a word diff of two unrelated texts is only noise
        lines.append(f"~ {word_diff(old, new)}")
    return lines


def format_differences(
    differences: Sequence[Difference], limit: int | None = MAX_DIFFERENCES
) -> list[str]:
    """Readable lines for ``differences`` (recorded -> now), without indentation."""
    shown = differences if limit is None else differences[:limit]
    lines: list[str] = []
    for item in shown:
        label = item.path or "(whole value)"
        if item.change == "text":
            lines.append(f"{label}:")
            lines.extend(f"  {line}" for line in _text_lines(item.old, item.new))
        elif item.change == "added":
            lines.append(f"{label}: added {render_value(item.new)}")
        elif item.change == "removed":
            lines.append(f"{label}: removed (was {render_value(item.old)})")
        else:
            lines.append(f"{label}: {render_value(item.old)} -> {render_value(item.new)}")
    if len(differences) > len(shown):
        lines.append(f"... and {len(differences) - len(shown)} more differences")
    return lines


# -- the nearest recording ---------------------------------------------------------------


def _weight(differences: Sequence[Difference]) -> int:
    total = 0
    for item in differences:
        if item.change == "text":
            a, b = _TOKEN.findall(item.old), _TOKEN.findall(item.new)
            matcher = _matcher(a, b, autojunk=False)
            opcodes = matcher.get_opcodes()
            total += sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in opcodes if tag != "equal")
        else:
            total += len(render_value(item.old, 10_000)) + len(render_value(item.new, 10_000))
    return total


def _needle(value: str | None) -> bytes | None:
    # How a string appears inside a recording file, when that is certain (ASCII text).
    if not value or not value.isascii():
        return None
    return json.dumps(value)[1:-1].encode()


def find_nearest(
    folders: Iterable[Path],
    request: dict[str, Any],
    test_id: str | None,
    normalizers: Sequence[BodyNormalizer] = (),
    exclude: Path | None = None,
) -> NearestRecording | None:
    """The recording in ``folders`` most like ``request``: same test and endpoint, else endpoint.

    Files are parsed only when their bytes hold the endpoint, and those of the same test first:
    the others are parsed only when the test has no recording of that endpoint.
    """
    kind = recording_kind(request)
    wanted = endpoint_key(kind, request)
    endpoint_needle = _needle(wanted[-1])
    test_needle = _needle(test_id)
    best: tuple[tuple[int, int, int, str], NearestRecording] | None = None

    def consider(path: Path, raw: bytes) -> None:
        nonlocal best
        try:
            candidate = parse_recording(raw, path)
        except ApiRecorderError:
            return  # an unreadable file is never the nearest; `apirecorder verify` names it
        recorded = candidate.request
        if recording_kind(recorded) != kind or endpoint_key(kind, recorded) != wanted:
            return
        recorded_test_id = recording_test_id(candidate)
        same_test = recorded_test_id == test_id
        differences = tuple(
            diff_requests(recorded, recorded_test_id, request, test_id, normalizers)
        )
        score = (0 if same_test else 1, len(differences), _weight(differences), str(path))
        if best is None or score < best[0]:
            best = (score, NearestRecording(candidate, same_test, differences))

    later: list[Path] = []
    for path in json_files_in(folders):
        if exclude is not None and path == exclude:
            continue
        raw = _read(path)
        if raw is None or (endpoint_needle is not None and endpoint_needle not in raw):
            continue
        if test_needle is None or test_needle in raw:
            consider(path, raw)
        else:
            later.append(path)
    if best is None or not best[1].same_test:
        for path in later:
            raw = _read(path)
            if raw is not None:
                consider(path, raw)
    return best[1] if best else None


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def nearest_section(nearest: NearestRecording | None, endpoint: str) -> list[str]:
    """The lines of a miss message that show the nearest recording and what changed."""
    if nearest is None:
        return [f"Nearest recording: none for {endpoint} in the searched folders."]
    path = nearest.recording.path
    if nearest.same_test:
        lines = [f"Nearest recording (same test and endpoint): {path}"]
    else:
        other = recording_test_id(nearest.recording)
        lines = [f"Nearest recording (same endpoint, recorded by {other}): {path}"]
    differences = nearest.differences
    if not differences:
        lines.append(
            "  the request is the same; the file name does not match its request, or a body "
            "normalizer changed (check with `apirecorder verify`)."
        )
    elif all(item.path == "test id" for item in differences):
        lines.append("  the test id changed; the request is otherwise the same.")
    else:
        lines.append("  changes since it was recorded (recorded -> now):")
        lines.extend(f"    {line}" for line in format_differences(differences))
    return lines


def explain_miss(
    call: Call, *, mode: str, folders: Sequence[Path], normalizers: Sequence[BodyNormalizer]
) -> tuple[str, Path | None]:
    """Say what was asked, where the recorder looked, what is nearest, and how to record it.

    Returns the message and the nearest recording's path (None when there is none).
    """
    found: Path | None = None
    try:
        near = find_nearest(folders, cast(dict[str, Any], call.request), call.test_id, normalizers)
        found = near.recording.path if near is not None else None
        nearest = nearest_section(near, call.endpoint)
    except Exception as exc:  # the explanation must never hide the miss itself
        nearest = [f"Nearest recording: the search failed ({type(exc).__name__}: {exc})."]
    lines = [
        f"No recording for this {call.kind} call (mode: {mode}).",
        f"  test id:  {call.test_id}",
        f"  endpoint: {call.endpoint}",
        f"  model:    {call.model or '-'}",
        f"  hash:     {call.request_hash}",
        f"  searched: {folders[0]}",
        *(f"            {folder}" for folder in folders[1:]),
        *nearest,
        "To record it, run:",
        f"  {record_command(call.test_id)}",
    ]
    return "\n".join(lines), found
