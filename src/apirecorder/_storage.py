"""Where recordings live on disk, and reading and writing them safely.

Two layouts: *flat* (every file directly in one folder) and *co-located* (next to the test
file that made them, in ``<test folder>/recordings/``, with ``<root>/recordings/`` for calls
made outside any test). Files are named by request hash, so a lookup is one file open.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._exceptions import RecordingFormatError

__all__ = [
    "FORMAT_VERSION",
    "SKIPPED_DIRS",
    "Recording",
    "Storage",
    "dump_recording",
    "json_files_in",
    "load_recording",
    "model_list_digest",
    "safe_relative_dir",
]

#: Written as ``format_version``; files without it are reference recordings (version 1).
FORMAT_VERSION = 1

RECORDINGS_DIRNAME = "recordings"
_MAX_COMPONENT = 100
_MAX_RELATIVE = 200


@dataclass(frozen=True)
class Recording:
    """One recording file as read from disk: its path and its raw JSON content."""

    path: Path
    data: dict[str, Any]

    @property
    def request(self) -> dict[str, Any]:
        request: dict[str, Any] = self.data["request"]
        return request

    @property
    def response(self) -> dict[str, Any]:
        response: dict[str, Any] = self.data["response"]
        return response


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _shorten(text: str, limit: int) -> str:
    # Limits count UTF-8 bytes: file systems cap a name at 255 bytes, not characters.
    if _utf8_size(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    room = limit - 17
    kept: list[str] = []
    for char in text:
        room -= _utf8_size(char)
        if room < 0:
            break
        kept.append(char)
    return f"{''.join(kept)}-{digest}"


# Characters no folder name may hold on some system (Windows, or any: controls, surrogates).
_UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"|?*\ud800-\udfff]')


def safe_relative_dir(test_file: str) -> Path:
    """Turn the file part of a test id into a relative folder that cannot leave the root.

    Backslashes count as ``/``; NUL bytes are removed; empty, ``.`` and ``..`` parts and
    drive letters are dropped; control characters, surrogates and ``<>:"|?*`` become ``_``.
    A part over 100 UTF-8 bytes, or a path over 200, is cut and suffixed with ``-`` and 16
    hex of its sha256 (a path over 200 becomes one folder, its ``/`` turned into ``_``).
    """
    cleaned = test_file.replace("\x00", "").replace("\\", "/")
    parts: list[str] = []
    for part in cleaned.split("/"):
        if len(part) == 2 and part[1] == ":" and part[0].isalpha():
            continue  # a Windows drive letter
        part = _UNSAFE_CHARS.sub("_", part)
        if part in ("", ".", ".."):
            continue
        parts.append(_shorten(part, _MAX_COMPONENT))
    relative = "/".join(parts)
    if _utf8_size(relative) > _MAX_RELATIVE:
        return Path(_shorten(relative.replace("/", "_"), _MAX_COMPONENT))
    return Path(relative) if relative else Path()


#: Folders a recursive search for recordings never enters (besides hidden ones).
SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "venv"})


def json_files_in(folders: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The ``*.json`` files directly inside ``folders`` (hidden ones left out), sorted."""
    files: set[Path] = set()
    for folder in folders:
        try:
            with os.scandir(folder) as entries:
                files.update(
                    Path(entry.path)
                    for entry in entries
                    if entry.name.endswith(".json")
                    and not entry.name.startswith(".")
                    and entry.is_file()
                )
        except OSError:
            continue
    return sorted(files)


def model_list_digest(model_ids: list[str]) -> str:
    """The 8-hex digest of a set of model ids that names a model-list file."""
    return hashlib.sha256("|".join(sorted(set(model_ids))).encode("utf-8")).hexdigest()[:8]


def load_recording(path: Path) -> Recording:
    """Read and check one recording file; any problem raises RecordingFormatError naming it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RecordingFormatError(path, f"cannot read the file: {exc.strerror or exc}") from exc
    return parse_recording(raw, path)


def parse_recording(raw: bytes, path: Path) -> Recording:
    """Parse and check the bytes of a recording file."""
    try:
        data = _loads(raw)
    except UnicodeDecodeError as exc:
        raise RecordingFormatError(path, f"the file is not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise RecordingFormatError(
            path,
            f"the file is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "it may be truncated or hand-edited: re-record it",
        ) from exc
    except ValueError as exc:  # such as an integer literal over Python's digit limit
        raise RecordingFormatError(path, f"the file is not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise RecordingFormatError(path, "the JSON is nested too deeply to read") from exc
    if not isinstance(data, dict):
        raise RecordingFormatError(
            path, f"a recording must be a JSON object, found {type(data).__name__}"
        )
    for key in ("request", "response"):
        if key not in data:
            raise RecordingFormatError(path, f'the "{key}" field is missing; re-record this file')
        if not isinstance(data[key], dict):
            raise RecordingFormatError(
                path, f'the "{key}" field must be an object, found {type(data[key]).__name__}'
            )
    version = data.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise RecordingFormatError(
            path,
            f"format_version {version!r} is not known to this apirecorder release "
            f"(it reads version {FORMAT_VERSION}); upgrade apirecorder or re-record the file",
        )
    _check_response(data["request"], data["response"], path)
    mapping = data.get("id_normalization_mapping")
    if mapping:
        data = _apply_id_mapping(data, mapping, path)
    return Recording(path, data)


def _loads(raw: bytes) -> Any:
    # pydantic-core's parser (jiter) reads recordings 1.4x (text) to 4.5x (numbers, such as
    # embeddings) faster than json.loads and returns the same values for every document it
    # accepts. Whatever it refuses (invalid JSON, lone surrogates, a BOM, deep nesting) goes
    # to json.loads, which gives the value or the error it always gave.
    fast = _fast_json_parser()
    if fast is not None:
        try:
            return fast(raw)
        except Exception:
            pass
    return json.loads(raw)


@functools.cache
def _fast_json_parser() -> Callable[[bytes], Any] | None:
    try:  # it comes with every SDK apirecorder supports; without it, json alone
        from pydantic_core import from_json
    except ImportError:
        return None
    return from_json


def _check_response(request: dict[str, Any], response: dict[str, Any], path: Path) -> None:
    # Cheap top-level checks, so a replay never hands a test an empty stream, a single object
    # for a stream, or a half-built error because a file was hand-edited; typed values are
    # checked as they are rebuilt.
    for flag in ("is_streaming", "is_exception"):
        if response.get(flag) not in (None, True, False):
            raise RecordingFormatError(
                path, f"response.{flag} must be true or false, found {response[flag]!r}"
            )
    body = request.get("body")
    asked_stream = isinstance(body, dict) and body.get("stream") is True
    if asked_stream and not response.get("is_streaming") and not response.get("is_exception"):
        raise RecordingFormatError(
            path,
            "request.body.stream is true but response.is_streaming is not; the recorded "
            "response is not a stream: re-record this file",
        )
    # The reference writes a stream that failed before its first chunk with body null.
    failed_early = response.get("is_exception") and response.get("body") is None
    if (
        response.get("is_streaming")
        and not isinstance(response.get("body"), list)
        and not failed_early
    ):
        raise RecordingFormatError(
            path,
            "response.body must be a list of chunks when is_streaming is true, found "
            f"{type(response.get('body')).__name__}; re-record this file",
        )
    data = response.get("exception_data")
    if response.get("is_exception") and data is not None and not isinstance(data, dict):
        raise RecordingFormatError(
            path, f"response.exception_data must be an object, found {type(data).__name__}"
        )
    for holder, key in ((data, "status_code"), (response, "status")):
        value = holder.get(key) if isinstance(holder, dict) else None
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            where = "response.exception_data" if holder is data else "response"
            raise RecordingFormatError(
                path, f"{where}.{key} must be a whole number or null, found {value!r}"
            )


def _apply_id_mapping(data: dict[str, Any], mapping: Any, path: Path) -> dict[str, Any]:
    # The reference recorder stores original ids in a mapping and replaces them on load.
    if not isinstance(mapping, dict):
        raise RecordingFormatError(path, '"id_normalization_mapping" must be an object')
    text = json.dumps(data)
    for normalized, original in mapping.items():
        text = text.replace(str(original), str(normalized))
    try:
        result = json.loads(text)
    except ValueError as exc:
        raise RecordingFormatError(
            path, f'"id_normalization_mapping" turns the recording into invalid JSON ({exc})'
        ) from exc
    if not isinstance(result, dict) or not all(
        isinstance(result.get(k), dict) for k in ("request", "response")
    ):
        raise RecordingFormatError(
            path, '"id_normalization_mapping" breaks the "request" or "response" field'
        )
    result["id_normalization_mapping"] = {}
    return result


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


def write_atomic(path: Path, payload: bytes) -> None:
    """Write ``payload`` so readers see the old file or the new one, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            # mkstemp makes the file private (0600); a recording is an ordinary file.
            os.fchmod(handle.fileno(), 0o666 & ~_UMASK)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# folder -> (its mtime in ns, the names of the model-list files in it). A model-list lookup
# then costs one stat instead of a listing of a folder that may hold 100,000 recordings.
_model_list_index: dict[Path, tuple[int, tuple[str, ...]]] = {}
_index_lock = threading.Lock()
# A folder changed this recently may change again within the same mtime tick: don't cache.
_SETTLE_NS = 2_000_000_000


def _model_list_names(folder: Path) -> tuple[str, ...]:
    try:
        mtime = os.stat(folder).st_mtime_ns
    except (FileNotFoundError, NotADirectoryError):
        return ()
    cached = _model_list_index.get(folder)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    with os.scandir(folder) as entries:
        names = tuple(
            sorted(
                e.name for e in entries if e.name.startswith("models-") and e.name.endswith(".json")
            )
        )
    if time.time_ns() - mtime > _SETTLE_NS:
        with _index_lock:
            _model_list_index[folder] = (mtime, names)
    return names


@dataclass
class Storage:
    """Maps request hashes and test ids to recording files, in one of the two layouts."""

    root: Path
    flat: bool
    used: set[Path] = field(default_factory=set)
    _dirs: dict[str | None, tuple[Path, ...]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(os.path.abspath(self.root))

    @property
    def shared_dir(self) -> Path:
        """The folder for calls with no test id (and the fallback of every lookup)."""
        return self.root if self.flat else self.root / RECORDINGS_DIRNAME

    def dirs_for(self, test_id: str | None) -> tuple[Path, ...]:
        """The folders a lookup for ``test_id`` searches, in order; the first is written to."""
        cached = self._dirs.get(test_id)
        if cached is not None:
            return cached
        dirs = (self.shared_dir,) if self.flat else self._colocated_dirs(test_id)
        with self._lock:
            self._dirs[test_id] = dirs
        return dirs

    def _colocated_dirs(self, test_id: str | None) -> tuple[Path, ...]:
        shared = self.shared_dir
        if not test_id:
            return (shared,)
        test_file = test_id.split("::", 1)[0]
        if ".py" not in test_file:
            return (shared,)
        relative = safe_relative_dir(test_file).parent
        candidate = Path(os.path.normpath(self.root / relative / RECORDINGS_DIRNAME))
        if not candidate.is_relative_to(self.root) or candidate == shared:
            return (shared,)
        return (candidate, shared)

    def path_for(self, file_name: str, test_id: str | None) -> Path:
        """Where a new recording named ``file_name`` for ``test_id`` is written."""
        return self.dirs_for(test_id)[0] / file_name

    def find(self, request_hash: str, test_id: str | None) -> Recording | None:
        """Load the recording for a hash, trying the test's folder and then the shared one."""
        name = f"{request_hash}.json"
        for folder in self.dirs_for(test_id):
            path = folder / name
            try:
                raw = path.read_bytes()
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise RecordingFormatError(path, f"cannot read the file: {exc}") from exc
            recording = parse_recording(raw, path)
            self.mark_used(path)
            return recording
        return None

    def find_model_lists(self, request_hash: str, test_id: str | None) -> list[Recording]:
        """Load every model-list file for a hash (one per recorded model set)."""
        found: list[Recording] = []
        seen: set[Path] = set()
        for folder in self.dirs_for(test_id):
            for path in sorted(self._glob(folder, f"models-{request_hash}-")):
                if path in seen:
                    continue
                seen.add(path)
                found.append(load_recording(path))
                self.mark_used(path)
        return found

    @staticmethod
    def _glob(folder: Path, prefix: str) -> Iterator[Path]:
        for name in _model_list_names(folder):
            if name.startswith(prefix):
                yield folder / name

    def write(self, path: Path, data: dict[str, Any]) -> None:
        """Write a recording atomically and count it as used by this run."""
        write_atomic(path, dump_recording(data))
        self.mark_used(path)

    def mark_used(self, path: Path) -> None:
        with self._lock:
            self.used.add(path)
