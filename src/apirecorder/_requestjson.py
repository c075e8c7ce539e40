"""A request as it is hashed and written, in one walk over the caller's arguments.

Three steps used to walk the body one after the other before hashing (JSON conversion, stable
ids, secret masking); each node is now visited once and all three are applied to it:

- SDK objects, dataclasses, tuples, sets, iterables and bytes become plain JSON;
- a string equal to a live id this session recorded becomes the stable id written in its place;
- a string under a secret-named key (``api_key``, ``password``...) becomes the placeholder,
  by the rule of ``_redaction.is_secret_field`` (as ``mask_secret_fields`` applies it).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from ._exceptions import SerializationError
from ._hashing import may_change
from ._secrets import PLACEHOLDER, is_secret_field

__all__ = ["request_json", "request_json_for_hash"]

# Key name -> is it secret, cached: requests repeat the same few keys ("role", "content").
_secret_key = functools.lru_cache(maxsize=4096)(is_secret_field)


def request_json(value: Any, ids: Mapping[str, str] | None) -> Any:
    """``value`` as JSON with live ids replaced by their stable ids and secret fields masked."""
    return _walk(value, ids, None)


def request_json_for_hash(value: Any, ids: Mapping[str, str] | None) -> tuple[Any, bool]:
    """:func:`request_json`, and whether the reference's hash normalization could change the
    result (a float with more than 5 decimals, a string with a long decimal or a file-search
    marker, a key a rule drops). When it cannot, the JSON is hashed as it is: the same walk
    told, so the hash needs no walk of its own."""
    marks: list[bool] = []
    return _walk(value, ids, marks), bool(marks)


# Keys the normalization drops or edits below them (stream_options, project_id).
_RULE_KEYS = frozenset({"stream_options", "extra_body", "extra_query"})


def _walk(value: Any, ids: Mapping[str, str] | None, marks: list[bool] | None) -> Any:
    # This runs on every call: plain JSON (nearly every request) goes by its exact type, a
    # string without a call of _walk of its own; anything else takes the general road.
    kind = type(value)
    if kind is dict:
        return _walk_dict(value, ids, marks)
    if kind is str:
        return _string(value, ids, marks)
    if kind is list:
        return [
            _string(item, ids, marks) if type(item) is str else _walk(item, ids, marks)
            for item in value
        ]
    return _walk_other(value, ids, marks)


def _walk_dict(
    value: dict[Any, Any], ids: Mapping[str, str] | None, marks: list[bool] | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = key if type(key) is str else str(key)
        converted = _string(item, ids, marks) if type(item) is str else _walk(item, ids, marks)
        # Numbers, booleans and nulls are no credentials; nested objects are walked.
        if isinstance(converted, str) and converted != PLACEHOLDER and _secret_key(name):
            converted = PLACEHOLDER
        if marks is not None and not marks and name in _RULE_KEYS:
            marks.append(True)
        out[name] = converted
    return out


def _string(value: str, ids: Mapping[str, str] | None, marks: list[bool] | None) -> str:
    if ids:
        value = ids.get(value, value)
    if marks is not None and not marks and may_change(value):
        marks.append(True)
    return value


def _walk_other(value: Any, ids: Mapping[str, str] | None, marks: list[bool] | None) -> Any:
    if isinstance(value, str):  # a str subclass (a str enum)
        return _string(value, ids, marks)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if marks is not None and not marks and round(value, 5) != value:
            marks.append(True)
        return value
    if isinstance(value, dict):
        return _walk_dict(value, ids, marks)
    if isinstance(value, list | tuple | set | frozenset):
        return [_walk(item, ids, marks) for item in value]
    if hasattr(value, "model_dump"):
        return _walk(value.model_dump(mode="json", exclude_unset=True), ids, marks)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _walk(dataclasses.asdict(value), ids, marks)
    if isinstance(value, bytes):
        return _walk(value.decode("utf-8", "replace"), ids, marks)
    if hasattr(value, "__iter__"):
        return [_walk(item, ids, marks) for item in value]
    raise SerializationError(
        f"a request argument of type {type(value).__name__} cannot be stored in a recording"
    )
