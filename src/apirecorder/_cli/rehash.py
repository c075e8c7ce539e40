"""``apirecorder rehash [PATH...]``: rename recordings named by the previous hash rules."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from .._hashing import Generation
from ._files import collect_recordings, existing_paths, progress
from ._verifying import name_generation
from ._views import display_path

__all__ = ["register", "run"]

DESCRIPTION = """\
Rename the recordings under PATH (default: the current folder) whose names were made by the
previous generation of the reference's hash rules (before 2026) to the names the current rules
give them. The current rules mask file-search metadata in strings (scores, attributes, document
ids, citations), drop project_id from extra_body and extra_query, and drop stream_options for
bedrock hosts; a file whose request none of that touches has the same name under both, and is
left alone. Replay finds either name, so renaming is tidying, not a fix.

A dry run by default: it lists the renames. --apply renames, in the same folder. A file already
holding the new name is never overwritten: when its bytes are the same, the old-named copy is
removed; when they differ, both are kept and the rename is reported as refused (exit 1).
"""
EPILOG = (
    "Exit codes: 0 success (dry run or renamed), 1 a rename was refused or a recording "
    "cannot be read, 2 usage error."
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rehash",
        help="rename recordings named by the previous hash rules (dry run unless --apply)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to rehash")
    parser.add_argument("--apply", action="store_true", help="rename the files (default: dry run)")
    parser.set_defaults(handler=run)


def _same_bytes(a: Path, b: Path) -> bool:
    try:
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def _rename_without_overwriting(old: Path, new: Path) -> bool:
    # A hard link fails when the target exists, so a file another process writes meanwhile
    # is never replaced; file systems without hard links get a plain rename.
    try:
        os.link(old, new)
    except FileExistsError:
        return False
    except OSError:
        os.rename(old, new)
        return True
    os.unlink(old)
    return True


def run(args: argparse.Namespace) -> int:
    """List, or make, the renames from previous-generation names to current ones."""
    paths = existing_paths("rehash", args.paths)
    if paths is None:
        return 2
    recordings, problems = collect_recordings(paths)
    for problem in problems:
        print(f"{display_path(problem.path)}: {problem.message}", file=sys.stderr)
    renamed = refused = 0
    for recording in progress(recordings, "rehashing"):
        try:
            generation, current = name_generation(recording)
        except (TypeError, ValueError):
            continue  # verify reports a request that cannot be hashed
        if generation is not Generation.PREVIOUS:
            continue
        old, new = recording.path, recording.path.with_name(current)
        shown = f"{display_path(old)} -> {new.name}"
        if new.exists() and not _same_bytes(old, new):
            refused += 1
            print(
                f"refused {shown}: {new.name} exists with other content; "
                "compare them (apirecorder diff) and delete one",
                file=sys.stderr,
            )
            continue
        renamed += 1
        duplicate = new.exists()
        if not args.apply:
            note = " (the same bytes exist under it: the old copy goes)" if duplicate else ""
            print(f"would rename {shown}{note}")
        elif duplicate:
            os.unlink(old)
            print(f"removed {display_path(old)}: the same bytes exist as {new.name}")
        elif _rename_without_overwriting(old, new):
            print(f"renamed {shown}")
        else:
            renamed -= 1
            refused += 1
            print(f"refused {shown}: {new.name} appeared meanwhile", file=sys.stderr)
    noun = "file" if renamed == 1 else "files"
    if args.apply:
        print(f"{renamed} {noun} renamed to current hash names.")
    elif renamed:
        print(f"{renamed} {noun} would be renamed; run with --apply to rename them.")
    else:
        print(f"{len(recordings)} recordings checked: all named by the current hash rules.")
    return 1 if refused or problems else 0
