"""Writing one recording file: atomically, with the recorder's own error on a fault.

Temp files carry the writing process's pid, so the orphans of a killed run are told from the
files other live processes are writing, and removed on the next write to their folder.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from ._exceptions import ApiRecorderError

__all__ = [
    "ORPHAN_AGE_S",
    "RecordingWriteError",
    "dump_recording",
    "is_temp_file",
    "remove_orphan_temp_files",
    "write_atomic",
]

_TEMP_PREFIX, _TEMP_SUFFIX = ".", ".tmp"


def is_temp_file(name: str) -> bool:
    """A temp file of :func:`write_atomic` (``.<name>.<random>.tmp``), live or orphaned."""
    return name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX) and ".json." in name


def dump_recording(data: dict[str, Any]) -> bytes:
    """Serialize a recording the one way it is always written: 2-space indent, newline."""
    # A lone surrogate (a provider that cut an emoji in two) cannot be UTF-8; written as its
    # JSON escape it reads back as the same string.
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode(
        "utf-8", "backslashreplace"
    )


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, which is not thread-safe.
_UMASK = _current_umask()


class RecordingWriteError(ApiRecorderError):
    """A recording could not be written (full disk, read-only folder...); the old file stays."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


_WRITE_FIXES = {
    errno.ENOSPC: "the disk is full: free some space and record again",
    getattr(
        errno, "EDQUOT", errno.ENOSPC
    ): "the disk quota is used up: free some space and record again",
    errno.EROFS: "the folder is on a read-only file system: record where you can write "
    "(storage_dir=, APIRECORDER_DIR or --apirecorder-dir)",
    errno.EACCES: "the folder is not writable by this user: fix its permissions "
    "(chmod u+w) or record elsewhere",
    errno.EPERM: "the folder is not writable by this user: fix its permissions "
    "(chmod u+w) or record elsewhere",
}


def _write_error(path: Path, exc: OSError) -> RecordingWriteError:
    reason = exc.strerror or str(exc)
    fix = _WRITE_FIXES.get(exc.errno or 0, "check the folder and record again")
    return RecordingWriteError(
        path,
        f"cannot write the recording ({reason}); {fix}. "
        "Any earlier recording of this call was left as it was.",
    )


# A temp file's name holds the writing process's pid, so a later run can tell the orphan
# of a killed run from the file another live process is writing right now.
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp")
#: A temp file this old is an orphan whatever its pid says (the pid may be reused).
ORPHAN_AGE_S = 3600.0
_cleaned_folders: set[Path] = set()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, but someone else's
        return True
    return True


def remove_orphan_temp_files(folder: Path) -> list[Path]:
    """Delete the temp files that killed runs left in ``folder``; the paths removed.

    A temp file is an orphan when the process that made it is gone, or it is older than
    ``ORPHAN_AGE_S`` (older names without a pid count by age alone).
    """
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not is_temp_file(entry.name):
            continue
        match = _TEMP_NAME.fullmatch(entry.name)
        try:
            old = now - entry.stat(follow_symlinks=False).st_mtime > ORPHAN_AGE_S
        except OSError:
            continue
        if old or (match is not None and not _pid_alive(int(match.group("pid")))):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _clean_once(folder: Path) -> None:
    # Once per folder and process: a folder of 100,000 recordings is listed once, not per write.
    if folder in _cleaned_folders:
        return
    _cleaned_folders.add(folder)
    remove_orphan_temp_files(folder)


def _create_temp(path: Path) -> tuple[int, str]:
    """A new temp file next to ``path``, created exclusively, and its name.

    What ``tempfile.mkstemp`` does, without importing tempfile (and its random module) at
    start-up; the mode is an ordinary file's (0666 less the umask), not mkstemp's 0600.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(
            path.parent,
            f"{_TEMP_PREFIX}{path.name}.{os.getpid()}.{os.urandom(6).hex()}{_TEMP_SUFFIX}",
        )
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temp file name", str(path.parent))


def write_atomic(path: Path, payload: bytes) -> None:
    """Write ``payload`` so readers see the old file or the new one, never a partial one.

    Any OSError (full disk, read-only folder) raises RecordingWriteError naming the file and
    the fix; a folder deleted meanwhile is made again.
    """
    try:
        _write_atomic(path, payload)
    except FileNotFoundError:
        try:  # the folder went away between mkdir and the write (a clean-up mid-run)
            _write_atomic(path, payload)
        except OSError as exc:
            raise _write_error(path, exc) from exc
    except OSError as exc:
        raise _write_error(path, exc) from exc


def _write_atomic(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_once(path.parent)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# folder -> (its mtime in ns, the names of the model-list files in it). A model-list lookup
