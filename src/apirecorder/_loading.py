"""Reading one recording file safely: a regular UTF-8 JSON file, bounded, checked.

Every problem raises RecordingFormatError naming the file, promptly and in bounded memory
(a FIFO, a device, a huge file, an id mapping that would blow up, a UTF-16 file).
"""

from __future__ import annotations

import errno
import functools
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._exceptions import RecordingFormatError
from ._writing import pending_payload

__all__ = [
    "FORMAT_VERSION",
    "KNOWN_FORMAT_VERSIONS",
    "MAX_ID_MAPPING_ENTRIES",
    "MAX_ID_MAPPING_GROWTH",
    "MAX_ID_MAPPING_WORK",
    "MAX_RECORDING_BYTES",
    "Recording",
    "check_inside",
    "load_recording",
    "parse_recording",
    "read_recording_bytes",
]

#: Written as ``format_version``; files without it are reference recordings (version 1).
#: Version 2: a typed value's ``__data__`` holds only the fields its object carried (set),
#: where version 1 held every field; both read the same way.
FORMAT_VERSION = 2
#: Every version this release reads.
KNOWN_FORMAT_VERSIONS = (1, 2)


class Recording:
    """One recording file as read from disk: its path and its raw JSON content.

    ``location`` is the path as it was opened; ``path`` (a ``Path``) is made when first
    asked for: a replay reads a recording on every call, and mostly never asks.
    """

    __slots__ = ("_path", "data", "location")

    def __init__(self, path: str | Path, data: dict[str, Any]) -> None:
        self.location = os.fspath(path)
        self._path = path if isinstance(path, Path) else None
        self.data = data

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = Path(self.location)
        return self._path

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Recording):
            return NotImplemented
        return self.location == other.location and self.data == other.data

    __hash__ = None  # type: ignore[assignment]  # mutable data, as before

    def __repr__(self) -> str:
        return f"Recording(path={self.location!r}, data={self.data!r})"

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


MAX_RECORDING_BYTES = 256 * 1024 * 1024
#: An ``id_normalization_mapping`` may hold at most this many entries...
MAX_ID_MAPPING_ENTRIES = 10_000
#: ...and may make the recording at most this many times larger (plus 1 MiB).
MAX_ID_MAPPING_GROWTH = 4
#: ...and its entries times the recording's characters (each entry is a pass over the text)
#: may be at most this: about a second of scanning.
MAX_ID_MAPPING_WORK = 2**31

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

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


def read_recording_bytes(path: str | Path, root: Path | None = None) -> bytes:
    """The bytes of a recording file, refusing what is not a regular file inside ``root``.

    Never blocks (a FIFO is opened non-blocking and refused), never reads more than
    ``MAX_RECORDING_BYTES``, and with ``root`` given refuses a symlink that leads outside it.
    FileNotFoundError and NotADirectoryError pass through (a miss); every other problem
    raises RecordingFormatError naming the file.
    """
    nofollow = _NOFOLLOW if root is not None else 0
    try:
        try:
            fd = os.open(path, _READ_FLAGS | nofollow)
        except OSError as exc:
            if not nofollow or exc.errno != errno.ELOOP:
                raise
            # The file is a symlink: follow it only when it stays inside the root (checked
            # only then, so the usual lookup costs one open).
            check_inside(Path(path), root or Path(path).parent)
            fd = os.open(path, _READ_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        raise
    except OSError as exc:
        raise RecordingFormatError(path, f"cannot read the file: {exc.strerror or exc}") from exc
    # Plain os calls, not a file object: this runs once per replayed call, and a buffered
    # reader (open, fdopen, Path.read_bytes) costs several times the read itself. The kind
    # is checked on the descriptor (a folder opens too, and is refused here by name).
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RecordingFormatError(
                path,
                f"it is {_not_regular(info.st_mode)}, not a regular file: a recording is a "
                "plain JSON file; remove it or replace it with the real recording",
            )
        if info.st_size > MAX_RECORDING_BYTES:
            raise _too_large(path)
        return _read_all(fd, info.st_size, path)
    except OSError as exc:
        raise RecordingFormatError(path, f"cannot read the file: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def _read_all(fd: int, size: int, path: str | Path) -> bytes:
    # Read by the size the file has: read(n) allocates n bytes before it reads, so asking
    # for the limit would cost every replay a 256 MiB allocation. One read gives the whole
    # file; a short read, or a file that grew since fstat, is read on up to the limit (one
    # byte over it says "too large").
    raw = os.read(fd, size + 1)
    if len(raw) != size:
        chunks, total = [raw], len(raw)
        while raw and total <= MAX_RECORDING_BYTES:
            raw = os.read(fd, min(1 << 20, MAX_RECORDING_BYTES + 1 - total))
            chunks.append(raw)
            total += len(raw)
        raw = b"".join(chunks)
    if len(raw) > MAX_RECORDING_BYTES:
        raise _too_large(path)
    return raw


def _too_large(path: str | Path) -> RecordingFormatError:
    return RecordingFormatError(
        path,
        f"the file is over {MAX_RECORDING_BYTES // (1024 * 1024)} MiB, more than any recording "
        "apirecorder reads; re-record it (or split the test)",
    )


def check_inside(path: Path, root: Path) -> None:
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


def recording_bytes(path: str | Path, root: Path | None = None) -> bytes:
    """The bytes of a recording: from memory while this process is still writing it (its
    rename comes off the call's path, so it exists from the moment its call returned), else
    from the file (:func:`read_recording_bytes`; a missing file raises FileNotFoundError)."""
    raw = pending_payload(path)
    return raw if raw is not None else read_recording_bytes(path, root)


def load_recording(path: str | Path, root: Path | None = None) -> Recording:
    """Read and check one recording file; any problem raises RecordingFormatError naming it."""
    try:
        raw = recording_bytes(path, root)
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


def _check_encoding(raw: bytes, path: str | Path) -> None:
    # json.loads(bytes) decodes UTF-16 and UTF-32 silently; the format is UTF-8 only, so a
    # file another tool re-encoded is named rather than half-accepted.
    if raw[:1] == b"{" and b"\x00" not in raw[1:4]:
        return  # what every recording starts with: no byte-order mark, no UTF-16 or UTF-32
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


def parse_recording(raw: bytes, path: str | Path) -> Recording:
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
    version = data.get("format_version", 1)
    if type(version) is not int or version not in KNOWN_FORMAT_VERSIONS:
        raise RecordingFormatError(
            path,
            f"format_version {version!r} is not known to this apirecorder release "
            f"(it reads versions {', '.join(map(str, KNOWN_FORMAT_VERSIONS))}); "
            "upgrade apirecorder or re-record the file",
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


def _check_response(request: dict[str, Any], response: dict[str, Any], path: str | Path) -> None:
    # Cheap top-level checks, so a replay never hands a test an empty stream, a single object
    # for a stream, or a half-built error because a file was hand-edited; typed values are
    # checked as they are rebuilt.
    streaming, exception = response.get("is_streaming"), response.get("is_exception")
    for flag, value in (("is_streaming", streaming), ("is_exception", exception)):
        if value not in (None, True, False):
            raise RecordingFormatError(
                path, f"response.{flag} must be true or false, found {value!r}"
            )
    body = request.get("body")
    asked_stream = isinstance(body, dict) and body.get("stream") is True
    if asked_stream and not streaming and not exception:
        raise RecordingFormatError(
            path,
            "request.body.stream is true but response.is_streaming is not; the recorded "
            "response is not a stream: re-record this file",
        )
    # The reference writes a stream that failed before its first chunk with body null.
    failed_early = exception and response.get("body") is None
    if streaming and not isinstance(response.get("body"), list) and not failed_early:
        raise RecordingFormatError(
            path,
            "response.body must be a list of chunks when is_streaming is true, found "
            f"{type(response.get('body')).__name__}; re-record this file",
        )
    data = response.get("exception_data")
    if data is None and response.get("status") is None:
        return  # what a replayed SDK call's answer is: nothing more to check
    if exception and data is not None and not isinstance(data, dict):
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


def _apply_id_mapping(data: dict[str, Any], mapping: Any, path: str | Path) -> dict[str, Any]:
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
    # Each entry is a scan of the whole text: bound the work, so 10,000 entries over a large
    # recording are refused at once rather than read for minutes.
    if len(mapping) * len(text) > MAX_ID_MAPPING_WORK:
        raise RecordingFormatError(
            path,
            f'"id_normalization_mapping" has {len(mapping)} entries over {len(text)} '
            "characters, more than apirecorder applies; re-record this file",
        )
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
