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
from collections.abc import Mapping
from typing import Any

from ._exceptions import SerializationError
from ._redaction import PLACEHOLDER, is_secret_field

__all__ = ["request_json"]

# Key name -> is it secret. Requests repeat the same few keys ("role", "content") endlessly.
_secret_keys: dict[str, bool] = {}
_MAX_KEYS = 4096


def _secret_key(name: str) -> bool:
    known = _secret_keys.get(name)
    if known is None:
        if len(_secret_keys) >= _MAX_KEYS:
            _secret_keys.clear()
        known = _secret_keys[name] = is_secret_field(name)
    return known


def request_json(value: Any, ids: Mapping[str, str] | None) -> Any:
    """``value`` as JSON with live ids replaced by their stable ids and secret fields masked."""
    if isinstance(value, str):
        return ids.get(value, value) if ids else value
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = key if isinstance(key, str) else str(key)
            converted = request_json(item, ids)
            # Numbers, booleans and nulls are no credentials; nested objects are walked.
            if isinstance(converted, str) and converted != PLACEHOLDER and _secret_key(name):
                converted = PLACEHOLDER
            out[name] = converted
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [request_json(item, ids) for item in value]
    if hasattr(value, "model_dump"):
        return request_json(value.model_dump(mode="json", exclude_unset=True), ids)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return request_json(dataclasses.asdict(value), ids)
    if isinstance(value, bytes):
        return request_json(value.decode("utf-8", "replace"), ids)
    if hasattr(value, "__iter__"):
        return [request_json(item, ids) for item in value]
    raise SerializationError(
        f"a request argument of type {type(value).__name__} cannot be stored in a recording"
    )
