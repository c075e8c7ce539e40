"""Finding recording files for the CLI: walk folders, load what is a recording, name by hash."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeVar

from .._exceptions import RecordingFormatError
from .._storage import (
    HASH_NAME,
    MODELS_NAME,
    SKIPPED_DIRS,
    Recording,
    load_recording,
)
from ._views import display_path

__all__ = [
    "Problem",
    "collect_recordings",
    "existing_paths",
    "find_by_hash",
    "iter_json_files",
    "looks_like_recording",
    "progress",
    "resolve_recording_arg",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """Something wrong with one file: its path and what is wrong."""

    path: Path
    message: str

    def as_json(self) -> dict[str, str]:
        return {"path": str(self.path), "problem": self.message}


def iter_json_files(paths: Iterable[Path]) -> list[Path]:
    """Every ``*.json`` file under ``paths`` (files given are kept), hidden folders skipped."""
    found: set[Path] = set()
    for path in paths:
        if not path.is_dir():  # a file given by name, even a FIFO: the loader names what it is
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
        HASH_NAME.fullmatch(name) or MODELS_NAME.fullmatch(name) or path.parent.name == "recordings"
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
    explicit = {p for p in paths if not p.is_dir()}
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
        match = HASH_NAME.fullmatch(path.name) or MODELS_NAME.fullmatch(path.name)
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


def resolve_recording_arg(target: str, root: Path) -> tuple[Path | None, str]:
    """A recording given as a file or as a hash prefix under ``root``, or None and why not."""
    path = Path(target)
    if path.exists() and not path.is_dir():
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


def existing_paths(command: str, given: Sequence[str]) -> list[Path] | None:
    """The PATH arguments of ``command`` (default: the current folder), or None after printing
    the usage error naming the ones that do not exist."""
    paths = [Path(p) for p in (given or ["."])]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(
            f"apirecorder {command}: error: no such file or folder: {', '.join(missing)}",
            file=sys.stderr,
        )
        return None
    return paths
