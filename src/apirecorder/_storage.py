"""Where recordings live on disk, and reading and writing them safely.

Two layouts: *flat* (every file directly in one folder) and *co-located* (next to the test
file that made them, in ``<test folder>/recordings/``, with ``<root>/recordings/`` for calls
made outside any test). Files are named by request hash, so a lookup is one file open.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from . import _hashing
from ._exceptions import ApiRecorderError, RecordingFormatError

__all__ = [
    "FORMAT_VERSION",
    "HASH_NAME",
    "MODELS_NAME",
    "SKIPPED_DIRS",
    "Recording",
    "RecordingWriteError",
    "Storage",
    "dump_recording",
    "expected_file_name",
    "is_model_list",
    "is_temp_file",
    "json_files_in",
    "load_recording",
    "merge_model_lists",
    "model_id",
    "model_ids",
    "model_list_digest",
    "model_list_items",
    "name_hash",
    "read_recording_bytes",
    "recording_file_name",
    "remove_orphan_temp_files",
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

    @property
    def test_id(self) -> str | None:
        """The test id it was made under: top level, else inside the request (tool, HTTP)."""
        value = self.data.get("test_id", self.request.get("test_id"))
        return value if isinstance(value, str) else None


# -- the file-name grammar -------------------------------------------------------------

#: ``<hash>.json``: one recording, named by the full request hash (DESIGN 5).
HASH_NAME = re.compile(r"(?P<hash>[0-9a-f]{64})\.json")
#: ``models-<hash>-<digest>.json``: one model set of a model-list endpoint.
MODELS_NAME = re.compile(r"models-(?P<hash>[0-9a-f]{64})-(?P<digest>[0-9a-f]{8})\.json")
_TEMP_PREFIX, _TEMP_SUFFIX = ".", ".tmp"


def recording_file_name(request_hash: str, model_ids: Sequence[str] | None = None) -> str:
    """The file name of a recording: ``<hash>.json``, or for a model list (its ids given)
    ``models-<hash>-<digest>.json``."""
    if model_ids is None:
        return f"{request_hash}.json"
    return f"models-{request_hash}-{model_list_digest(list(model_ids))}.json"


def name_hash(path: Path) -> str | None:
    """The request hash a file's name claims, or None for a name that is no hash."""
    match = HASH_NAME.fullmatch(path.name) or MODELS_NAME.fullmatch(path.name)
    return match.group("hash") if match else None


def is_temp_file(name: str) -> bool:
    """A temp file of :func:`write_atomic` (``.<name>.<random>.tmp``), live or orphaned."""
    return name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX) and ".json." in name


def is_model_list(request: Mapping[str, Any]) -> bool:
    """True for a recording of a model-list endpoint (``/v1/models``, ``/api/tags``)."""
    endpoint = request.get("endpoint") or urlparse(str(request.get("url", ""))).path
    return endpoint in _hashing.MODEL_LIST_ENDPOINTS


def model_list_items(body: Any) -> list[Any]:
    """The recorded models of a model-list response: an OpenAI list of ``Model`` objects,
    an Ollama ``ListResponse`` (its ``models``), or a page's ``data``."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        data = body.get("__data__", body)
        for key in ("models", "data"):
            if isinstance(data, dict) and isinstance(data.get(key), list):
                items: list[Any] = data[key]
                return items
    return []


def model_id(item: Any) -> str:
    """The id of one recorded model (``id``, else Ollama's ``model``, else ``name``)."""
    data = item.get("__data__", item) if isinstance(item, dict) else {}
    if not isinstance(data, dict):
        return str(data)
    for key in ("id", "model", "name"):
        if isinstance(data.get(key), str):
            return str(data[key])
    return ""


def model_ids(body: Any) -> list[str]:
    """The ids of a model-list response, in recorded order (what names its file)."""
    return [model_id(item) for item in model_list_items(body)]


def merge_model_lists(records: Sequence[Recording]) -> Recording | None:
    """One recording holding the union (by id, sorted by id) of every model-list file read
    for one hash, as the reference's ``_combine_model_list_responses`` does (DESIGN 5)."""
    if not records:
        return None
    merged: dict[str, Any] = {}
    for record in records:
        for item in model_list_items(record.response.get("body")):
            merged[model_id(item)] = item
    ordered = [merged[key] for key in sorted(merged)]
    first = records[0]
    body = first.response.get("body")
    new_body: Any = ordered
    if isinstance(body, dict) and isinstance(body.get("__data__"), dict):
        # An Ollama ListResponse: one object whose "models" field holds the list.
        new_body = {**body, "__data__": {**body["__data__"], "models": ordered}}
    return Recording(first.path, {**first.data, "response": {**first.response, "body": new_body}})


def expected_file_name(
    recording: Recording,
    normalizers: Sequence[_hashing.BodyNormalizer] = (),
    *,
    generation: _hashing.Generation = _hashing.Generation.CURRENT,
) -> str:
    """The file name a recording must have under ``generation``: the hash of its own request
    (DESIGN 4 and 5). Raises TypeError or ValueError for a request JSON cannot hash."""
    request_hash = _hashing.recorded_request_hash(
        recording.test_id, recording.request, generation=generation, normalizers=normalizers
    )
    if is_model_list(recording.request):
        return recording_file_name(request_hash, model_ids(recording.response.get("body")))
    return recording_file_name(request_hash)


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

    Backslashes count as ``/``; NUL bytes are removed; control characters, surrogates and
    ``<>:"|?*`` become ``_``; trailing dots and spaces are stripped, and parts left empty (so
    ``.``, ``..``, ``.. ``, ``...``) and drive letters are dropped.
    A part over 100 UTF-8 bytes, or a path over 200, is cut and suffixed with ``-`` and 16
    hex of its sha256 (a path over 200 becomes one folder, its ``/`` turned into ``_``).
    """
    cleaned = test_file.replace("\x00", "").replace("\\", "/")
    parts: list[str] = []
    for part in cleaned.split("/"):
        if len(part) == 2 and part[1] == ":" and part[0].isalpha():
            continue  # a Windows drive letter
        # Windows drops a name's trailing dots and spaces, so ".. " and "... " would mean
        # ".." there: strip them everywhere, and drop what is left empty ("", ".", "..").
        part = _UNSAFE_CHARS.sub("_", part).rstrip(". ")
        if not part:
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


#: The largest recording file read (bytes): a bound on the memory one file can take.
MAX_RECORDING_BYTES = 256 * 1024 * 1024
#: An ``id_normalization_mapping`` may hold at most this many entries...
MAX_ID_MAPPING_ENTRIES = 10_000
#: ...and may make the recording at most this many times larger (plus 1 MiB).
MAX_ID_MAPPING_GROWTH = 4

_FILE_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def _not_regular(mode: int) -> str:
    for check, name in _FILE_KINDS:
        if check(mode):
            return name
    return "not a regular file"


def read_recording_bytes(path: Path, root: Path | None = None) -> bytes:
    """The bytes of a recording file, refusing what is not a regular file inside ``root``.

    Never blocks (a FIFO is opened non-blocking and refused), never reads more than
    ``MAX_RECORDING_BYTES``, and with ``root`` given refuses a symlink that leads outside it.
    FileNotFoundError and NotADirectoryError pass through (a miss); every other problem
    raises RecordingFormatError naming the file.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    nofollow = getattr(os, "O_NOFOLLOW", 0) if root is not None else 0
    try:
        try:
            fd = os.open(path, flags | nofollow)
        except OSError as exc:
            if not nofollow or exc.errno != errno.ELOOP:
                raise
            # The file is a symlink: follow it only when it stays inside the root (checked
            # only then, so the usual lookup costs one open).
            _check_inside(path, root or path.parent)
            fd = os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError):
        raise
    except OSError as exc:
        raise RecordingFormatError(path, f"cannot read the file: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RecordingFormatError(
                path,
                f"it is {_not_regular(info.st_mode)}, not a regular file: a recording is a "
                "plain JSON file; remove it or replace it with the real recording",
            )
        if info.st_size > MAX_RECORDING_BYTES:
            raise _too_large(path)
        try:
            raw = handle.read(MAX_RECORDING_BYTES + 1)  # a file growing while read stops here
        except OSError as exc:
            raise RecordingFormatError(
                path, f"cannot read the file: {exc.strerror or exc}"
            ) from exc
    if len(raw) > MAX_RECORDING_BYTES:
        raise _too_large(path)
    return raw


def _too_large(path: Path) -> RecordingFormatError:
    return RecordingFormatError(
        path,
        f"the file is over {MAX_RECORDING_BYTES // (1024 * 1024)} MiB, more than any recording "
        "apirecorder reads; re-record it (or split the test)",
    )


def _check_inside(path: Path, root: Path) -> None:
    # A symlink committed inside the root (a file, a test folder or its recordings/) must not
    # make a lookup read, or a record write, somewhere else on the machine.
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise RecordingFormatError(
            path,
            f"it resolves to {real}, outside the storage root {real_root} (a symlink): "
            "replace the link with a real file or folder",
        )


def load_recording(path: Path, root: Path | None = None) -> Recording:
    """Read and check one recording file; any problem raises RecordingFormatError naming it."""
    try:
        raw = read_recording_bytes(path, root)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise RecordingFormatError(path, f"cannot read the file: {exc.strerror or exc}") from exc
    return parse_recording(raw, path)


# Byte-order marks, longest first: UTF-32 LE starts like UTF-16 LE.
_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xef\xbb\xbf", "UTF-8 with a byte-order mark"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
)


def _check_encoding(raw: bytes, path: Path) -> None:
    # json.loads(bytes) decodes UTF-16 and UTF-32 silently; the format is UTF-8 only, so a
    # file another tool re-encoded is named rather than half-accepted.
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            raise RecordingFormatError(
                path,
                f"the file is {encoding} text; recordings are UTF-8 without a byte-order "
                "mark: re-save it as UTF-8 or re-record it",
            )
    if b"\x00" in raw[:4]:
        raise RecordingFormatError(
            path,
            "the file looks like UTF-16 or UTF-32 text (NUL bytes); recordings are UTF-8: "
            "re-save it as UTF-8 or re-record it",
        )


def parse_recording(raw: bytes, path: Path) -> Recording:
    """Parse and check the bytes of a recording file."""
    _check_encoding(raw, path)
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
    # accepts. Whatever it refuses (invalid JSON, lone surrogates, deep nesting) goes to
    # json.loads, which gives the value or the error it always gave. The bytes are decoded
    # first, as strict UTF-8: json.loads would guess UTF-16 and UTF-32 from bytes.
    fast = _fast_json_parser()
    if fast is not None:
        try:
            return fast(raw)
        except Exception:
            pass
    return json.loads(raw.decode("utf-8"))


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
    if response.get("is_streaming") and not isinstance(response.get("body"), list):
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
    if isinstance(data, dict) and data.get("body") is not None:
        try:
            # What replay does with it: the body of an HTTP error response, strict JSON.
            json.dumps(data["body"], ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (ValueError, TypeError) as exc:  # UnicodeEncodeError is a ValueError
            raise RecordingFormatError(
                path,
                "response.exception_data.body holds NaN, Infinity or a lone surrogate, which "
                f"no HTTP error body can carry ({exc}); re-record this file",
            ) from exc
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
    if len(mapping) > MAX_ID_MAPPING_ENTRIES:
        raise RecordingFormatError(
            path,
            f'"id_normalization_mapping" has {len(mapping)} entries, over the '
            f"{MAX_ID_MAPPING_ENTRIES} apirecorder applies; re-record this file",
        )
    text = json.dumps(data)
    # The replacements chain (each applies to the result of the ones before), so a small
    # mapping can double the text at every step: bound the size before each one is made.
    limit = min(MAX_RECORDING_BYTES, MAX_ID_MAPPING_GROWTH * len(text) + 1024 * 1024)
    for normalized, original in mapping.items():
        old, new = str(original), str(normalized)
        if not old:
            raise RecordingFormatError(
                path, '"id_normalization_mapping" maps an empty string; re-record this file'
            )
        count = text.count(old)
        if not count:
            continue
        if len(text) + count * (len(new) - len(old)) > limit:
            raise RecordingFormatError(
                path,
                '"id_normalization_mapping" would make the recording over '
                f"{limit} characters; re-record this file",
            )
        text = text.replace(old, new)
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
    fd, tmp = tempfile.mkstemp(
        prefix=f"{_TEMP_PREFIX}{path.name}.{os.getpid()}.", suffix=_TEMP_SUFFIX, dir=path.parent
    )
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
        dirs = self._candidate_dirs(test_id)
        # A symlink committed inside the root (a test folder, a recordings/ folder) must not
        # send reads or writes outside it: checked once per test id, as dirs_for caches.
        for folder in dirs:
            _check_inside(folder, self.root)
        return dirs

    def _candidate_dirs(self, test_id: str | None) -> tuple[Path, ...]:
        shared = self.shared_dir
        if not test_id:
            return (shared,)
        test_file = test_id.split("::", 1)[0]
        if ".py" not in test_file:
            return (shared,)
        # Only the folder part is sanitized (and shortened): a long file name must not push
        # a short folder over the limit and so send its recordings to the shared folder.
        folder = test_file.replace("\\", "/").rpartition("/")[0]
        relative = safe_relative_dir(folder)
        candidate = Path(os.path.normpath(self.root / relative / RECORDINGS_DIRNAME))
        if not candidate.is_relative_to(self.root) or candidate == shared:
            return (shared,)
        return (candidate, shared)

    def path_for(self, file_name: str, test_id: str | None) -> Path:
        """Where a new recording named ``file_name`` for ``test_id`` is written."""
        return self.dirs_for(test_id)[0] / file_name

    def find(
        self, request_hash: str, test_id: str | None, *, also: Sequence[str] = ()
    ) -> Recording | None:
        """Load the recording for a hash, trying the test's folder and then the shared one.

        ``also`` are hashes tried after it, in order (the previous generation's name of the
        same request): a file with the current name anywhere wins over an old name.
        """
        if not also:  # the hot path: one name, one open per folder
            return self._find_one(f"{request_hash}.json", test_id)
        for candidate in dict.fromkeys((request_hash, *also)):
            found = self._find_one(f"{candidate}.json", test_id)
            if found is not None:
                return found
        return None

    def _find_one(self, name: str, test_id: str | None) -> Recording | None:
        for folder in self.dirs_for(test_id):
            path = folder / name
            try:
                raw = read_recording_bytes(path, self.root)
            except (FileNotFoundError, NotADirectoryError):
                continue
            recording = parse_recording(raw, path)
            self.mark_used(path)
            return recording
        return None

    def find_model_lists(
        self, request_hash: str, test_id: str | None, *, also: Sequence[str] = ()
    ) -> list[Recording]:
        """Load every model-list file for a hash (one per recorded model set); the files of
        the ``also`` hashes only when the first has none."""
        for candidate in dict.fromkeys((request_hash, *also)):
            found = self._model_lists_of(candidate, test_id)
            if found:
                return found
        return []

    def _model_lists_of(self, request_hash: str, test_id: str | None) -> list[Recording]:
        found: list[Recording] = []
        seen: set[Path] = set()
        for folder in self.dirs_for(test_id):
            for path in sorted(self._glob(folder, f"models-{request_hash}-")):
                if path in seen:
                    continue
                seen.add(path)
                found.append(load_recording(path, self.root))
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
