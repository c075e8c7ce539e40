"""Where recordings live on disk: the file-name grammar, the layouts, the lookups.

Two layouts: *flat* (every file directly in one folder) and *co-located* (next to the test
file that made them, in ``<test folder>/recordings/``, with ``<root>/recordings/`` for calls
made outside any test, unless a shared folder is configured for those). Files are named by
request hash, so a lookup is one file open.
Reading one file safely is ``_loading``'s job and writing one ``_writing``'s; their public
names are re-exported here, where the rest of the package has always found them.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import stat
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from . import _hashing
from ._loading import FORMAT_VERSION as FORMAT_VERSION
from ._loading import MAX_RECORDING_BYTES as MAX_RECORDING_BYTES
from ._loading import Recording as Recording
from ._loading import _fast_json_parser as _fast_json_parser
from ._loading import _loads as _loads
from ._loading import check_inside, recording_bytes
from ._loading import load_recording as load_recording
from ._loading import parse_recording as parse_recording
from ._loading import read_recording_bytes as read_recording_bytes
from ._writing import PendingWrite, write_behind
from ._writing import RecordingWriteError as RecordingWriteError
from ._writing import dump_recording as dump_recording
from ._writing import is_temp_file as is_temp_file
from ._writing import remove_orphan_temp_files as remove_orphan_temp_files
from ._writing import write_atomic as write_atomic

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
    "name_ordinal",
    "read_recording_bytes",
    "recording_file_name",
    "remove_orphan_temp_files",
    "safe_relative_dir",
]

RECORDINGS_DIRNAME = "recordings"
_MAX_COMPONENT = 100
_MAX_RELATIVE = 200


# -- the file-name grammar -------------------------------------------------------------

#: ``<hash>.json``: one recording, named by the full request hash (DESIGN 5); the n-th
#: identical call of one test (n >= 2: polling, "list, create, list again") is
#: ``<hash>-<n>.json``, so the first keeps the name the reference recorder reads.
HASH_NAME = re.compile(r"(?P<hash>[0-9a-f]{64})(?:-(?P<ordinal>[2-9]|[1-9][0-9]+))?\.json")
#: ``models-<hash>-<digest>.json``: one model set of a model-list endpoint.
MODELS_NAME = re.compile(r"models-(?P<hash>[0-9a-f]{64})-(?P<digest>[0-9a-f]{8})\.json")


def recording_file_name(
    request_hash: str, model_ids: Sequence[str] | None = None, *, ordinal: int = 1
) -> str:
    """The file name of a recording: ``<hash>.json`` (``<hash>-<n>.json`` for the n-th
    identical call of a test), or for a model list (its ids given)
    ``models-<hash>-<digest>.json``."""
    if model_ids is None:
        return f"{request_hash}.json" if ordinal <= 1 else f"{request_hash}-{ordinal}.json"
    return f"models-{request_hash}-{model_list_digest(list(model_ids))}.json"


def name_ordinal(path: Path) -> int:
    """Which identical call of its test a file answers: n for ``<hash>-<n>.json``, else 1."""
    match = HASH_NAME.fullmatch(path.name)
    return int(match.group("ordinal")) if match and match.group("ordinal") else 1


def is_model_list_name(name: str) -> bool:
    """True for the file name of a model-list recording (``models-<hash>-<digest>.json``)."""
    return name.startswith("models-") and name.endswith(".json")


def name_hash(path: Path) -> str | None:
    """The request hash a file's name claims, or None for a name that is no hash."""
    match = HASH_NAME.fullmatch(path.name) or MODELS_NAME.fullmatch(path.name)
    return match.group("hash") if match else None


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
    for one hash, as the reference's ``_combine_model_list_responses`` does (DESIGN 5); a
    single file is returned as it is, in recorded order."""
    if not records:
        return None
    if len(records) == 1:
        return records[0]  # one file: the list as the provider sent it, in its order
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
    sort_query: bool = True,
) -> str:
    """The file name a recording must have under ``generation``: the hash of its own request
    (DESIGN 4 and 5; ``sort_query=False``: the reference's name of a raw HTTP request).
    Raises TypeError or ValueError for a request JSON cannot hash."""
    request_hash = _hashing.recorded_request_hash(
        recording.test_id,
        recording.request,
        generation=generation,
        normalizers=normalizers,
        sort_query=sort_query,
    )
    if is_model_list(recording.request):
        return recording_file_name(request_hash, model_ids(recording.response.get("body")))
    # The ordinal is no part of the request: a file keeps the one its name holds.
    return recording_file_name(request_hash, ordinal=name_ordinal(recording.path))


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
# then costs one stat instead of a listing of a folder that may hold 100,000 recordings.
_model_list_index: dict[Path, tuple[int, tuple[str, ...]]] = {}
_index_lock = threading.Lock()
# A folder changed this recently may change again within the same mtime tick: don't cache.
_SETTLE_NS = 2_000_000_000


@functools.lru_cache(maxsize=256)
def _child(folder: Path, name: str) -> Path:
    return folder / name


@functools.lru_cache(maxsize=4096)  # a storage is made per test; its folders repeat all run
def _test_dirs(root: Path, shared: Path, folder: str) -> tuple[Path, ...]:
    """The folders of a test in the test file folder ``folder``: its own, then the shared."""
    candidate = Path(os.path.normpath(root / safe_relative_dir(folder) / RECORDINGS_DIRNAME))
    if not candidate.is_relative_to(root) or candidate == shared:
        return (shared,)
    return (candidate, shared)


def _check_folder_inside(folder: Path, root: Path) -> None:
    # The folders below the root are looked at one by one (an lstat each, as a storage is
    # made for every test): only when one is a symlink is the costlier resolved-path check
    # made. What is not there yet will be made by this process, as a real folder.
    for current in _steps_below(str(folder), str(root)):
        try:
            info = os.lstat(current)
        except OSError:
            return
        if stat.S_ISLNK(info.st_mode):
            check_inside(folder, root)  # raises when the link leads out of the root
            return


@functools.lru_cache(maxsize=4096)
def _steps_below(folder: str, root: str) -> tuple[str, ...]:
    """Each folder from just below ``root`` down to ``folder``."""
    steps: list[str] = []
    current = root
    for part in os.path.relpath(folder, root).split(os.sep):
        if part not in ("", "."):
            current = os.path.join(current, part)
            steps.append(current)
    return tuple(steps)


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


def _absolute(path: Path) -> Path:
    # The pytest plugin opens a Storage per test, with a root that is absolute already:
    # building a second Path of it costs more than the rest of the set-up.
    text = os.fspath(path)
    absolute = os.path.abspath(text)
    return path if absolute == text and isinstance(path, Path) else Path(absolute)


@dataclass
class Storage:
    """Maps request hashes and test ids to recording files, in one of the two layouts."""

    root: Path
    flat: bool
    #: The folder for calls with no test id, when configured (``apirecorder_shared_dir``):
    #: the reference keeps them in ``tests/integration/common/recordings``.
    shared: Path | None = None
    #: The recordings read or written, as the paths they were opened by (see ``used``).
    _used: set[str] = field(default_factory=set, repr=False)
    _dirs: dict[str | None, tuple[Path, ...]] = field(default_factory=dict, repr=False)
    #: ``dirs_for`` as text, each ending in a separator: a lookup's file path is one join.
    _dir_prefixes: dict[str | None, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _shared_dir: Path = field(init=False, repr=False)
    #: Writes handed to the writer thread that :meth:`flush` has not waited for yet.
    _writes: list[PendingWrite] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        # A storage is made for every test: its shared folder is worked out once, here.
        self.root = _absolute(self.root)
        if self.shared is not None:
            self.shared = _absolute(self.shared)
        self._shared_dir = (
            self.shared
            if self.shared is not None
            else self.root
            if self.flat
            else _child(self.root, RECORDINGS_DIRNAME)
        )

    @property
    def shared_dir(self) -> Path:
        """The folder for calls with no test id (and the fallback of every lookup)."""
        return self._shared_dir

    def dirs_for(self, test_id: str | None) -> tuple[Path, ...]:
        """The folders a lookup for ``test_id`` searches, in order; the first is written to."""
        cached = self._dirs.get(test_id)
        if cached is not None:
            return cached
        if self.flat:
            # One folder for everything; a configured shared folder holds what has no test id.
            dirs = tuple(
                dict.fromkeys((self.root, self.shared_dir) if test_id else (self.shared_dir,))
            )
        else:
            dirs = self._colocated_dirs(test_id)
        with self._lock:
            self._dirs[test_id] = dirs
        return dirs

    def _colocated_dirs(self, test_id: str | None) -> tuple[Path, ...]:
        dirs = self._candidate_dirs(test_id)
        # A symlink committed inside the root (a test folder, a recordings/ folder) must not
        # send reads or writes outside it: checked once per test id, as dirs_for caches.
        for folder in dirs:
            # A configured shared folder may sit anywhere: it was named, not found.
            if folder != self.shared:
                _check_folder_inside(folder, self.root)
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
        return _test_dirs(self.root, shared, folder)

    def path_for(self, file_name: str, test_id: str | None) -> Path:
        """Where a new recording named ``file_name`` for ``test_id`` is written."""
        return self.dirs_for(test_id)[0] / file_name

    def find(
        self,
        request_hash: str,
        test_id: str | None,
        *,
        also: Sequence[str] = (),
        ordinal: int = 1,
    ) -> Recording | None:
        """Load the recording for a hash, trying the test's folder and then the shared one.

        ``also`` are hashes tried after it, in order (the previous generation's name of the
        same request): a file with the current name anywhere wins over an old name.
        ``ordinal`` picks the n-th identical call's file (``<hash>-<n>.json``).
        """
        if not also:  # the hot path: one name, one open per folder
            return self._find_one(recording_file_name(request_hash, ordinal=ordinal), test_id)
        for candidate in dict.fromkeys((request_hash, *also)):
            found = self._find_one(recording_file_name(candidate, ordinal=ordinal), test_id)
            if found is not None:
                return found
        return None

    def _find_one(self, name: str, test_id: str | None) -> Recording | None:
        prefixes = self._dir_prefixes.get(test_id)
        if prefixes is None:
            prefixes = tuple(os.path.join(folder, "") for folder in self.dirs_for(test_id))
            with self._lock:
                self._dir_prefixes[test_id] = prefixes
        for prefix in prefixes:
            # A str path for the read: a miss in the test's folder (the usual first look for
            # a shared recording) then costs no Path object.
            where = prefix + name
            try:
                raw = recording_bytes(where, self.root)
            except (FileNotFoundError, NotADirectoryError):
                continue
            recording = parse_recording(raw, where)
            self.mark_used(where)
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

    def reload(self, path: str | Path) -> Recording:
        """Read a recording found before again (a replay asking for it once more)."""
        recording = load_recording(path, self.root)
        self.mark_used(path)
        return recording

    def write(self, path: Path, data: dict[str, Any]) -> None:
        """Write a recording atomically and count it as used by this run.

        The file is made durable and renamed into place off the call's path (the fsync is
        most of a write's cost on a disk); lookups of this process find it meanwhile, and
        :meth:`flush` waits for it. A model-list file is written at once, as its lookup
        lists the folder.
        """
        payload = dump_recording(data)
        if is_model_list_name(path.name):
            write_atomic(path, payload)
        else:
            pending = write_behind(path, payload)
            with self._lock:
                self._writes.append(pending)
        self.mark_used(path)

    def flush(self) -> None:
        """Wait until every recording written through this storage is in place; raise the
        first write that failed (RecordingWriteError)."""
        with self._lock:
            writes, self._writes = self._writes, []
        failed: RecordingWriteError | None = None
        for write in writes:
            try:
                write.wait()
            except RecordingWriteError as exc:
                failed = failed or exc
        if failed is not None:
            raise failed

    def mark_used(self, path: str | Path) -> None:
        # Kept as str: this runs on every replayed call, and a Path costs more to make and hash.
        where = os.fspath(path)
        with self._lock:
            self._used.add(where)

    @property
    def used(self) -> set[Path]:
        """Every recording this storage read or wrote."""
        with self._lock:
            return {Path(where) for where in self._used}
