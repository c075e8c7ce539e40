"""``apirecorder ls [PATH...]``: a table of recordings, filtered by test, endpoint, model, kind."""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path
from typing import Any

from .._storage import name_ordinal
from ._files import collect_recordings, existing_paths
from ._summary import Summary, summarize
from ._views import display_path, table

__all__ = ["register", "run"]

DESCRIPTION = """\
List the recordings under PATH (default: the current folder), one line each: hash (first 12
hex), kind, endpoint, model, flags (stream, error) and the test that made it. A filter matches
when its text occurs in the field, or, with * ? [ in it, when the whole field matches it as a
glob pattern. Folders are searched recursively for recordings (JSON files with "request" and
"response"); other JSON files are skipped.
"""
EPILOG = (
    "Exit codes: 0 success (also when nothing matches), 1 unreadable recordings, 2 usage error."
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ls",
        help="list recordings as a table, with filters",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to list")
    parser.add_argument("--test", metavar="TEXT", help="only recordings of tests matching TEXT")
    parser.add_argument("--endpoint", metavar="TEXT", help="only endpoints matching TEXT")
    parser.add_argument("--model", metavar="TEXT", help="only models matching TEXT")
    parser.add_argument(
        "--kind", choices=["inference", "tool", "http"], help="only recordings of this kind"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead")
    parser.set_defaults(handler=run)


def matches(value: str | None, pattern: str | None) -> bool:
    """Substring match, or a whole-field glob match when the pattern has * ? or [."""
    if pattern is None:
        return True
    text = value or ""
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(text, pattern)
    return pattern in text


def _selected(items: list[Summary], args: argparse.Namespace) -> list[Summary]:
    return [
        item
        for item in items
        if matches(item.test_id, args.test)
        and matches(item.endpoint, args.endpoint)
        and matches(item.model, args.model)
        and (args.kind is None or item.kind == args.kind)
    ]


def _flags(item: Summary) -> str:
    flags = [name for name, on in (("stream", item.streaming), ("error", item.exception)) if on]
    return ",".join(flags) or "-"


def run(args: argparse.Namespace) -> int:
    """List the recordings that pass the filters."""
    paths = existing_paths("ls", args.paths)
    if paths is None:
        return 2
    recordings, problems = collect_recordings(paths)
    for problem in problems:
        print(
            f"apirecorder ls: skipped {display_path(problem.path)}: {problem.message}",
            file=sys.stderr,
        )
    items = _selected(sorted((summarize(r) for r in recordings), key=_order), args)
    if args.json:
        print(json.dumps([item.as_json() for item in items], indent=2, ensure_ascii=False))
        return 1 if problems else 0
    rows = [
        [
            _short_name(item.hash, item.path),
            item.kind,
            item.endpoint,
            item.model or "-",
            _flags(item),
            item.test_id or "-",
        ]
        for item in items
    ]
    if rows:
        for line in table(["HASH", "KIND", "ENDPOINT", "MODEL", "FLAGS", "TEST"], rows):
            print(line)
    noun = "recording" if len(items) == 1 else "recordings"
    print(f"{len(items)} {noun}")
    return 1 if problems else 0


def _order(item: Summary) -> tuple[str, str, str]:
    return (item.test_id or "", item.endpoint, str(item.path))


def _short_name(request_hash: str | None, path: Path) -> str:
    # The n-th identical call of a test shares its hash: "-<n>" tells the files apart.
    ordinal = name_ordinal(path)
    short = (request_hash or path.stem)[:12]
    return f"{short}-{ordinal}" if ordinal > 1 else short
