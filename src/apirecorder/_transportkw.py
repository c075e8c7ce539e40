"""The names the reference recorder gives SDK calls made with transport keyword arguments.

apirecorder leaves ``timeout=`` and ``extra_headers=`` out of a call's hash and recorded body:
they shape how a request travels, not what it asks, so a recording survives a changed timeout.
The reference recorder hashes every keyword argument as passed. To still find its files, a
lookup that misses tries the hash of the body with those arguments put back, under each
generation of hash rules; our own recordings never carry them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import _hashing
from ._hashing import BodyNormalizer
from ._types import Call

__all__ = ["is_plain_json", "plain_transport_kwargs", "transport_hashes"]


def is_plain_json(value: Any) -> bool:
    """True for a value JSON writes as it is: None, str, bool, numbers, lists and str-keyed
    objects of those."""
    if value is None or isinstance(value, str | bool | int | float):
        return True
    if isinstance(value, list | tuple):
        return all(is_plain_json(item) for item in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and is_plain_json(v) for k, v in value.items())
    return False


def plain_transport_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The transport arguments the reference could have hashed: those JSON can write (an
    ``httpx.Timeout`` object made the reference's ``json.dumps`` raise, so no file has it)."""
    return {key: value for key, value in kwargs.items() if is_plain_json(value)}


def transport_hashes(
    call: Call, transport: Mapping[str, Any], normalizers: Sequence[BodyNormalizer] = ()
) -> list[str]:
    """The hashes the reference recorder gives ``call`` made with ``transport`` keyword
    arguments, current rules first; empty when there are none."""
    body = call.request.get("body")
    if not transport or not isinstance(body, Mapping):
        return []
    request = {**call.request, "body": {**body, **transport}}
    hashes: list[str] = []
    for generation in _hashing.GENERATIONS:
        candidate = _hashing.recorded_request_hash(
            call.test_id, request, generation=generation, normalizers=normalizers
        )
        if candidate != call.request_hash and candidate not in hashes:
            hashes.append(candidate)
    return hashes
