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
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._exceptions import ApiRecorderError

if TYPE_CHECKING:
    import queue

__all__ = [
    "ORPHAN_AGE_S",
    "PendingWrite",
    "RecordingWriteError",
    "dump_recording",
    "is_temp_file",
    "pending_payload",
    "remove_orphan_temp_files",
    "write_atomic",
    "write_behind",
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
    fd, tmp = _write_temp(path, payload)
    try:
        _sync_and_rename(fd, tmp, path)
    except OSError as exc:
        raise _write_error(path, exc) from exc


def _write_temp(path: Path, payload: bytes) -> tuple[int, str]:
    """``payload`` written to a new temp file next to ``path``: its open descriptor and name."""
    try:
        return _try_write_temp(path, payload)
    except FileNotFoundError:
        try:  # the folder went away between mkdir and the write (a clean-up mid-run)
            return _try_write_temp(path, payload)
        except OSError as exc:
            raise _write_error(path, exc) from exc
    except OSError as exc:
        raise _write_error(path, exc) from exc


def _try_write_temp(path: Path, payload: bytes) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_once(path.parent)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb", closefd=False) as handle:
            handle.write(payload)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return fd, tmp


def _sync_and_rename(fd: int, tmp: str, path: Path) -> None:
    # The rename comes only after the data is on disk: a crash at any point (a killed
    # process, or the machine losing power) leaves the old file or none, never a short one.
    try:
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# -- writing off the call's path ------------------------------------------------------------


class PendingWrite:
    """One recording handed to the writer thread: its temp file is written, the fsync and
    the rename into place are to come. :meth:`wait` raises what went wrong."""

    __slots__ = ("_done", "error", "path", "payload")

    def __init__(self, path: Path, payload: bytes) -> None:
        self.path = path
        self.payload = payload
        self.error: RecordingWriteError | None = None
        self._done = threading.Event()

    def wait(self) -> None:
        self._done.wait()
        if self.error is not None:
            raise self.error


#: path -> its latest write not yet renamed into place: what a lookup of this process reads
#: meanwhile, so a recording is found the moment its call returns.
_pending: dict[Path, PendingWrite] = {}
_pending_lock = threading.Lock()
_jobs: queue.SimpleQueue[tuple[PendingWrite, int, str]] | None = None
_writer: threading.Thread | None = None


def pending_payload(path: str | Path) -> bytes | None:
    """The bytes of a recording this process is still writing to ``path``, if any."""
    if not _pending:  # the replay hot path: nothing is being written
        return None
    write = _pending.get(Path(path))
    return None if write is None else write.payload


def write_behind(path: Path, payload: bytes) -> PendingWrite:
    """Write ``payload`` to a temp file now and leave the fsync and the rename to the writer
    thread, so the call does not wait for the disk; the caller waits for the result later
    (``recording()`` does when its block ends).

    A temp-file fault raises here, like :func:`write_atomic`; a fault of the fsync or the
    rename raises from :meth:`PendingWrite.wait`. Either way the old file stays.
    """
    global _jobs, _writer
    fd, tmp = _write_temp(path, payload)
    write = PendingWrite(path, payload)
    with _pending_lock:
        _pending[path] = write
        if _jobs is None:
            import queue  # with the first recording written, not at start-up

            _jobs = queue.SimpleQueue()
        if _writer is None or not _writer.is_alive():
            _writer = threading.Thread(
                target=_write_jobs, args=(_jobs,), name="apirecorder-writer", daemon=True
            )
            _writer.start()
        jobs = _jobs
    jobs.put((write, fd, tmp))
    return write


def _write_jobs(jobs: queue.SimpleQueue[tuple[PendingWrite, int, str]]) -> None:
    # One thread for the process: writes of one path land in the order they were made.
    while True:
        write, fd, tmp = jobs.get()
        try:
            _sync_and_rename(fd, tmp, write.path)
        except FileNotFoundError:
            # The folder was removed after the call (a test's clean-up) and the temp file
            # with it: as if the file had been written, then removed with its folder.
            pass
        except OSError as exc:
            write.error = _write_error(write.path, exc)
        except BaseException as exc:  # never let the writer die with writes queued
            write.error = RecordingWriteError(write.path, f"cannot write the recording ({exc})")
        finally:
            with _pending_lock:
                if _pending.get(write.path) is write:
                    del _pending[write.path]
            write._done.set()


# folder -> (its mtime in ns, the names of the model-list files in it). A model-list lookup
