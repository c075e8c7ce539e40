"""Recordings that hold every field of an object still replay a loop that sends objects back.

Before format 2, and in the reference recorder's files, a typed value's ``__data__`` holds
every field, nulls included, so the object rebuilt from it has every field set. Sent back
(``messages.append(completion.choices[0].message)``, ``input += response.output``), it
serializes keys the live object never sent (``"audio": null``), and the next request misses
its exact hash. Such a file cannot tell a null the wire sent from a default, so the fix sits on
the lookup side: after an exact miss of an SDK call, a legacy recording of the same test,
method and endpoint is accepted when its body equals the new one but for keys that are null in
the new body and absent from the recorded one, at any depth. The rule is one way on purpose: a
null the recording holds must still be sent. Files of format 2 or later never match loosely.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ._exceptions import ApiRecorderError
from ._hashing import BodyNormalizer, apply_normalizers, normalize_for_hash
from ._loading import parse_recording
from ._storage import json_files_in, name_hash
from ._types import Call

__all__ = ["extra_nulls", "legacy_request_hash"]

#: The first format whose typed values hold only the fields their objects carried.
_SET_FIELDS_FORMAT = 2


def extra_nulls(new: Any, recorded: Any) -> int | None:
    """How many null keys ``new`` has that ``recorded`` lacks, when that is all that differs.

    None when the two differ in any other way (a value, a missing key, a recorded null).
    """
    if isinstance(new, dict) and isinstance(recorded, dict):
        extra = new.keys() - recorded.keys()
        if any(new[key] is not None for key in extra) or recorded.keys() - new.keys():
            return None
        total = len(extra)
        for key, value in recorded.items():
            inner = extra_nulls(new[key], value)
            if inner is None:
                return None
            total += inner
        return total
    if isinstance(new, list) and isinstance(recorded, list):
        if len(new) != len(recorded):
            return None
        total = 0
        for item, value in zip(new, recorded, strict=True):
            inner = extra_nulls(item, value)
            if inner is None:
                return None
            total += inner
        return total
    return 0 if new == recorded and type(new) is type(recorded) else None


def _hashed(body: Any, normalizers: Sequence[BodyNormalizer]) -> Any:
    # Compared as they are hashed, so the rule never tells apart what the hash treats as equal.
    return normalize_for_hash(apply_normalizers(normalizers, body))


def _signature(request: Mapping[str, Any]) -> tuple[str, str]:
    return str(request.get("method", "POST")).upper(), urlparse(str(request.get("url", ""))).path


def legacy_request_hash(
    call: Call, folders: Iterable[Path], normalizers: Sequence[BodyNormalizer] = ()
) -> str | None:
    """The name hash of the legacy recording ``call`` replays after an exact miss, or None.

    Of several that fit, the one whose body is nearest (fewest extra nulls) wins, then the
    first by path, so the choice is the same on every run.
    """
    if call.kind != "inference" or call.is_model_list or call.test_id is None:
        return None
    body = call.request.get("body")
    if not isinstance(body, dict):
        return None
    wanted = _signature(call.request)
    new = _hashed(body, normalizers)
    # How the test id and endpoint appear in a file's bytes: files without them are skipped
    # unparsed, since this runs on the miss path of every test.
    needles = [json.dumps(call.test_id)[1:-1].encode(), json.dumps(wanted[1])[1:-1].encode()]
    best: tuple[int, str, str] | None = None
    for path in json_files_in(folders):
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        if not all(needle in raw for needle in needles):
            continue
        try:
            candidate = parse_recording(raw, path)
        except ApiRecorderError:
            continue
        version = candidate.data.get("format_version", 1)
        if isinstance(version, int) and version >= _SET_FIELDS_FORMAT:
            continue
        request = candidate.request
        recorded_body = request.get("body")
        if (
            candidate.data.get("test_id") != call.test_id
            or not isinstance(recorded_body, dict)
            or _signature(request) != wanted
        ):
            continue
        nulls = extra_nulls(new, _hashed(recorded_body, normalizers))
        request_hash = name_hash(path)
        if not nulls or request_hash is None:
            continue  # no extra null at all would have been an exact hit: a renamed file
        key = (nulls, str(path), request_hash)
        if best is None or key < best:
            best = key
    return best[2] if best is not None else None
