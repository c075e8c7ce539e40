"""``apirecorder rekey OLD NEW [PATH...]``: give a renamed or moved test its recordings back."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .._diagnostics import recording_test_id
from .._settings import ini_normalizers
from .._storage import (
    RECORDINGS_DIRNAME,
    Recording,
    dump_recording,
    expected_file_name,
    write_atomic,
)
from ._files import collect_recordings
from ._views import display_path

__all__ = ["register", "run"]

DESCRIPTION = """\
Rewrite the test id inside every recording of test OLD to NEW and rename each file to the
hash of its request under the new id, without calling any API. OLD and NEW are test ids
(tests/test_chat.py::test_saturn) or, to follow a moved or renamed test file, file paths
(tests/test_chat.py): every test of that file moves, and so do its fixtures' recordings.
When the file part changes, files kept next to the old test file (its recordings/ folder)
move to the new test file's recordings/ folder; files of a flat layout stay in their folder.
A file that would overwrite a different existing one is refused. Hashes use the ini file's
apirecorder_ignore_fields, as the tests do. A dry run by default: --apply writes.
"""
EPILOG = "Exit codes: 0 success (dry run or applied), 1 nothing to rekey or a file refused."


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rekey",
        help="move a renamed or moved test's recordings to its new test id (dry run unless "
        "--apply)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("old", metavar="OLD_TEST_ID", help="the test id the recordings hold")
    parser.add_argument("new", metavar="NEW_TEST_ID", help="the test id to give them")
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or folders to search (default: .)"
    )
    parser.add_argument("--apply", action="store_true", help="write (default: only list)")
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class Move:
    """One recording rekeyed: where it is, where it goes, and what it will hold."""

    source: Path
    target: Path
    data: dict[str, Any]
    problem: str = ""


def renamed(test_id: str, old: str, new: str) -> str | None:
    """``test_id`` under its new name, or None when it is not one of OLD's."""
    if test_id == old:
        return new
    if "::" not in old and test_id.startswith(f"{old}::"):
        return new + test_id[len(old) :]
    return None


def _target_folder(folder: Path, old_file: str, new_file: str) -> Path:
    # Co-located layout: <root>/<dir of the test file>/recordings. Anything else (a flat
    # folder) keeps its place, since the test id does not choose it.
    if old_file == new_file or folder.name != RECORDINGS_DIRNAME:
        return folder
    old_dir = PurePosixPath(old_file).parent.parts
    base = folder.parent
    if old_dir and base.parts[-len(old_dir) :] != old_dir:
        return folder
    root = Path(*base.parts[: len(base.parts) - len(old_dir)]) if old_dir else base
    return root.joinpath(*PurePosixPath(new_file).parent.parts, RECORDINGS_DIRNAME)


def plan(recording: Recording, new_id: str, normalizers: list[Any]) -> Move:
    """How one recording is rekeyed to ``new_id``."""
    path = recording.path
    old_id = recording_test_id(recording) or ""
    raw = json.loads(path.read_text(encoding="utf-8"))
    data = dict(raw, test_id=new_id)
    if isinstance(raw.get("request"), dict) and "test_id" in raw["request"]:
        data["request"] = dict(raw["request"], test_id=new_id)
    moved = Recording(path, dict(recording.data, test_id=new_id, request=data["request"]))
    old_name = expected_file_name(recording, normalizers)
    new_name = expected_file_name(moved, normalizers)
    old_stem, new_stem = old_name.removesuffix(".json"), new_name.removesuffix(".json")
    folder = _target_folder(path.parent, old_id.split("::", 1)[0], new_id.split("::", 1)[0])
    if path.name == old_name:
        name = new_name
    elif old_stem in path.name:
        # A name derived from the hash (a repeated call's file): the same form, new hash.
        name = path.name.replace(old_stem, new_stem)
    else:
        return Move(
            path,
            path,
            data,
            "its name is not the hash of its request (redacted "
            "values, or normalizers the ini file does not list); left alone",
        )
    return Move(path, folder / name, data)


def run(args: argparse.Namespace) -> int:
    """List, or apply, the moves that rekey OLD's recordings to NEW."""
    paths = [Path(p) for p in (args.paths or ["."])]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(
            f"apirecorder rekey: error: no such file or folder: {', '.join(missing)}",
            file=sys.stderr,
        )
        return 2
    normalizers = ini_normalizers(Path.cwd())
    recordings, _unreadable = collect_recordings(paths, label="reading")
    moves: list[Move] = []
    for recording in recordings:
        new_id = renamed(recording_test_id(recording) or "", args.old, args.new)
        if new_id is not None:
            moves.append(plan(recording, new_id, normalizers))
    if not moves:
        print(
            f"apirecorder rekey: no recording under {', '.join(map(str, paths))} has the "
            f"test id {args.old}",
            file=sys.stderr,
        )
        return 1
    refused = 0
    done = 0
    for move in sorted(moves, key=lambda m: str(m.source)):
        payload = dump_recording(move.data)
        problem = move.problem
        clash = move.target != move.source and move.target.exists()
        if not problem and clash and move.target.read_bytes() != payload:
            problem = f"{display_path(move.target)} exists with other content; left alone"
        if problem:
            refused += 1
            print(f"  {display_path(move.source)}: {problem}")
            continue
        print(f"  {display_path(move.source)} -> {display_path(move.target)}")
        if args.apply:
            write_atomic(move.target, payload)
            if move.target != move.source:
                os.unlink(move.source)
        done += 1
    noun = "recording" if done == 1 else "recordings"
    if args.apply:
        print(f"{done} {noun} rekeyed to {args.new}.")
    else:
        print(f"{done} {noun} would be rekeyed to {args.new}; run again with --apply to write.")
    return 1 if refused else 0
