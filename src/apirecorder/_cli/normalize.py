"""``apirecorder normalize [PATH...]``: re-apply response normalization to recordings."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .._httpids import normalize_http_body
from .._serialization import normalize_response_data
from .._storage import (
    Recording,
    dump_recording,
    expected_file_name,
    name_hash,
    write_atomic,
)
from ._files import collect_recordings, existing_paths, progress
from ._views import display_path

__all__ = ["register", "run"]

DESCRIPTION = """\
Re-apply response normalization (DESIGN section 6) to the recordings under PATH (default: the
current folder), so that re-recording gives clean diffs: in each top-level __data__ (each
chunk of a stream), "id" becomes rec-<hash[:12]> and "created" 0 unless object is "model",
"created_at" becomes 1970-01-01T00:00:00.000000Z, Ollama's durations 0, and nested ids
(tool call ids and the like) stable ids; raw HTTP answers of provider APIs (OpenAI,
Anthropic, Gemini, Ollama paths) get the same rules in their JSON body, events or lines. A
file whose ids a recorded request sends back (a tool call id in a later turn) is skipped:
rewriting them would break that request's hash.
A dry run by default: it lists the files it would change. --yes rewrites them, atomically.
"""
EPILOG = (
    "Exit codes: 0 success (dry run or written), 1 with --check when some file would change, "
    "or when a recording cannot be read, 2 usage error."
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "normalize",
        help="re-apply response normalization in place (dry run unless --yes)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to normalize")
    parser.add_argument("--yes", action="store_true", help="write the changes (default: dry run)")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when some file is not normalized (for CI)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """List, or rewrite, the recordings normalization changes."""
    paths = existing_paths("normalize", args.paths)
    if paths is None:
        return 2
    recordings, problems = collect_recordings(paths)
    for problem in problems:
        print(f"{display_path(problem.path)}: {problem.message}", file=sys.stderr)
    changed = 0
    for recording in progress(recordings, "normalizing"):
        data, count, replaced = normalize_recording(recording)
        if not count:
            continue
        sent_back = referenced_ids(replaced, recordings)
        if sent_back:
            old_id, where = sorted(sent_back.items())[0]
            print(
                f"skipped {display_path(recording.path)}: the request of "
                f"{display_path(where)} sends its id {old_id} back, so rewriting it would "
                "break that recording's hash; re-record both instead",
                file=sys.stderr,
            )
            continue
        changed += 1
        values = f"{count} value{'s' if count != 1 else ''}"
        if args.yes:
            write_atomic(recording.path, dump_recording(data))
            print(f"normalized {display_path(recording.path)} ({values})")
        else:
            print(f"would normalize {display_path(recording.path)} ({values})")
    total = len(recordings)
    if args.yes:
        print(f"{changed} of {total} recordings normalized.")
    elif changed:
        print(f"{changed} of {total} recordings would change; run with --yes to write them.")
    else:
        print(f"{total} recordings checked: all normalized.")
    if problems:
        return 1
    return 1 if args.check and changed and not args.yes else 0


# -- re-applying normalization ------------------------------------------------------------


def normalize_recording(recording: Recording) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The recording with response normalization re-applied (DESIGN 6), how many top-level
    values changed, and the ids it replaced (old -> new)."""
    request_hash = name_hash(recording.path) or name_hash(Path(expected_file_name(recording))) or ""
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
    if "payload" in data["request"] and "body_format" in data["response"]:
        # A raw HTTP exchange: a provider API's JSON, events or lines, as the recorder does.
        url = str(data["request"].get("url", ""))
        changed += normalize_http_body(data["response"], url, request_hash, ids)
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
