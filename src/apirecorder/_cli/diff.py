"""``apirecorder diff A B``: what differs between two recordings, field by field."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .._diagnostics import (
    Difference,
    diff_requests,
    diff_values,
    format_differences,
    recording_kind,
    recording_test_id,
)
from .._exceptions import RecordingFormatError
from .._storage import Recording, expected_file_name, load_recording, name_hash
from ._files import resolve_recording_arg
from ._readers import is_streamed, response_view
from ._views import Style, display_path

__all__ = ["register", "run"]

DESCRIPTION = """\
Compare two recordings, A (before) and B (after), with the same field-level diff a replay miss
shows: changed parameters as "temperature: 0.2 -> 0.7", added and removed fields, changed
text as - and + lines with a word diff (~). The requests are compared on what their hash
covers (method, URL path, body, test id); the responses on their reassembled text, tool
calls, usage, error and, for responses that are not text, their whole value. When those
agree, any other difference (a nested field, a header) is shown field by field, so "the
same" means the same. A and B are files or hash prefixes looked up under --dir.
"""
EPILOG = "Exit codes: 0 the same, 1 different, 2 usage error or unreadable file (as diff(1))."


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "diff",
        help="field-level diff of two recordings",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("old", metavar="A", help="the recording before (file or hash prefix)")
    parser.add_argument("new", metavar="B", help="the recording after (file or hash prefix)")
    parser.add_argument(
        "--dir", default=".", metavar="PATH", help="where to look hashes up (default: .)"
    )
    parser.add_argument("--json", action="store_true", help="print the differences as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the differences of two recordings."""
    paths = []
    for target in (args.old, args.new):
        path, error = resolve_recording_arg(target, Path(args.dir))
        if path is None:
            print(f"apirecorder diff: error: {error}", file=sys.stderr)
            return 2
        paths.append(path)
    try:
        old, new = load_recording(paths[0]), load_recording(paths[1])
    except RecordingFormatError as exc:
        print(f"apirecorder diff: {exc}", file=sys.stderr)
        return 2
    try:
        request, response = diff_recordings(old, new)
    except RecursionError:
        # The loader reads what the parser reads; the diff walks both again, recursively.
        print(
            f"apirecorder diff: {paths[0]} or {paths[1]}: nested too deeply to compare",
            file=sys.stderr,
        )
        return 2
    if args.json:
        report = {
            "a": str(old.path),
            "b": str(new.path),
            "request": [asdict(item) for item in request],
            "response": [asdict(item) for item in response],
        }
        print(json.dumps(report, indent=2, ensure_ascii=False, default=str))
        return 1 if request or response else 0
    style = Style.for_stream(sys.stdout)
    lines = [
        style.red(f"--- {display_path(old.path)}  ({recording_test_id(old) or 'no test id'})"),
        style.green(f"+++ {display_path(new.path)}  ({recording_test_id(new) or 'no test id'})"),
    ]
    if not request and not response:
        lines.append("The recordings are the same.")
    for title, differences in (("Request", request), ("Response", response)):
        if differences:
            lines.append(style.bold(f"{title} (A -> B):"))
            lines += [
                f"  {style.diff_line(line)}" for line in format_differences(differences, None)
            ]
    print("\n".join(lines))
    return 1 if request or response else 0


# -- comparing two recordings ------------------------------------------------------------


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
    # The views above say what matters first; whatever else differs is still a difference
    # (an id deep in a body, a header), so two files are "the same" only when they are.
    if not request_differences:
        request_differences = diff_values(old.request, new.request)
    if not response_differences:
        response_differences = diff_values(_own_ids_named(old), _own_ids_named(new))
    return request_differences, response_differences


def _own_ids_named(recording: Recording) -> Any:
    """The response with the stable ids named after its own hash (DESIGN 6) written alike:
    two recordings of different requests differ there by construction, not in substance."""
    request_hash = name_hash(recording.path) or name_hash(Path(expected_file_name(recording)))
    text = json.dumps(recording.response)
    if request_hash:
        text = text.replace(f"rec-{request_hash[:12]}", "rec-<this recording>")
    return json.loads(text)
