"""``apirecorder verify [PATH...]``: every recording loads and is named by its own request."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from .._hashing import BodyNormalizer
from .._settings import ini_normalizers
from ._files import collect_recordings, existing_paths
from ._verifying import verify_recordings
from ._views import display_path

__all__ = ["register", "run"]

DESCRIPTION = """\
Check the recordings under PATH (default: the current folder):
  - every file loads (valid JSON, with "request" and "response", a known format version);
  - every __type__ it names is one replay would accept: in the allow-list of importable
    modules or --allow-type, or, in a tool recording, from a module its tool trusted (the
    tool's own module and return annotation, listed as "trusted_types"; not imported here);
    and, when that library is installed, names a class that exists;
  - its name is the hash of its own request and test id (DESIGN section 4): <hash>.json, or
    models-<hash>-<digest>.json for model lists, whose digest must match the models held;
  - no model list is stored twice, and no file sits where replay would never read it
    (a model list named like a plain recording, or the reverse).
A name made by the previous generation of the reference's hash rules (before 2026) is valid,
since replay finds it too; such files are listed as "named by the previous hash rules", and
`apirecorder rehash --apply` renames them.
Files that are recordings by name or by place (a "recordings" folder) but cannot be read
are problems too. Each problem is printed as "FILE: what is wrong".
"""
EPILOG = "Exit codes: 0 no problems, 1 problems found, 2 usage error."


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check that every recording loads and is named by the hash of its request",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to check")
    parser.add_argument(
        "--allow-type",
        action="append",
        default=[],
        metavar="PREFIX",
        help="also accept __type__s from this module prefix, as apirecorder.allow_types "
        "does in your tests (repeatable)",
    )
    parser.add_argument(
        "--normalizer",
        action="append",
        default=[],
        metavar="MODULE:FUNCTION",
        help="a body normalizer your tests hash with (imported; repeatable, in order)",
    )
    parser.add_argument("--json", action="store_true", help="print the problems as JSON")
    parser.set_defaults(handler=run)


def load_normalizers(specs: list[str]) -> list[BodyNormalizer]:
    """Import ``module:function`` normalizers; a bad spec raises ValueError saying why."""
    found: list[BodyNormalizer] = []
    for spec in specs:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise ValueError(f"--normalizer {spec!r}: write it as module:function")
        try:
            function = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"--normalizer {spec!r}: {exc}") from exc
        if not callable(function):
            raise ValueError(f"--normalizer {spec!r} is not callable")
        found.append(function)
    return found


def run(args: argparse.Namespace) -> int:
    """Check the recordings and print each problem."""
    paths = existing_paths("verify", args.paths)
    if paths is None:
        return 2
    try:
        # The ini file's ignore_fields first, as the tests hash with them.
        normalizers = [*ini_normalizers(Path.cwd()), *load_normalizers(args.normalizer)]
    except ValueError as exc:
        print(f"apirecorder verify: error: {exc}", file=sys.stderr)
        return 2
    recordings, unreadable = collect_recordings(paths, label="reading")
    verdict = verify_recordings(recordings, tuple(args.allow_type), normalizers)
    problems = sorted([*unreadable, *verdict.problems], key=lambda p: (str(p.path), p.message))
    unchecked, previous = verdict.unchecked, verdict.previous_names
    checked = len(recordings) + len(unreadable)
    if args.json:
        report = {
            "checked": checked,
            "problems": [problem.as_json() for problem in problems],
            "previous_generation": [str(path) for path in previous],
            "unchecked_types": sorted(unchecked),
        }
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 1 if problems else 0
    for problem in problems:
        print(f"{display_path(problem.path)}: {problem.message}")
    for path in previous:
        print(f"{display_path(path)}: named by the previous hash rules (valid; rehash renames it)")
    noun = "recording" if checked == 1 else "recordings"
    if problems:
        count = len(problems)
        summary = f"{checked} {noun} checked: {count} problem{'s' if count != 1 else ''}"
    else:
        summary = f"{checked} {noun} checked: no problems"
    if previous:
        summary += (
            f"; {len(previous)} named by the previous hash rules "
            "(apirecorder rehash --apply renames them)"
        )
    print(summary + ".")
    if unchecked:
        print(
            "Not checked, their library is not installed here: " + ", ".join(sorted(unchecked)),
            file=sys.stderr,
        )
    return 1 if problems else 0
