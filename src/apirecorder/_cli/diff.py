"""``apirecorder diff A B``: what differs between two recordings, field by field."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .._diagnostics import format_differences, recording_test_id
from .._exceptions import RecordingFormatError
from .._inspect import Style, diff_recordings, display_path, resolve_recording_arg
from .._storage import load_recording

__all__ = ["register", "run"]

DESCRIPTION = """\
Compare two recordings, A (before) and B (after), with the same field-level diff a replay miss
shows: changed parameters as "temperature: 0.2 -> 0.7", added and removed fields, changed
text as - and + lines with a word diff (~). The requests are compared on what their hash
covers (method, URL path, body, test id); the responses on their reassembled text, tool
calls, usage, error and, for responses that are not text, their whole value. A and B are
files or hash prefixes looked up under --dir.
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
    request, response = diff_recordings(old, new)
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
