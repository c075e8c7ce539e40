"""What a recording run saw, with the live ids the recorder rewrote named by their stable ids.

A record run hands the application the live ids (its next live request must name the real
object); replay hands out the stable ones. A test that compares the two runs maps one onto
the other with the session's id map, and so checks everything else is the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from apirecorder._recorder import active_session


def live_id_map() -> dict[str, str]:
    """The id map of the block running here: live id -> the stable id written for it."""
    session = active_session()
    assert session is not None, "live_id_map() is for inside a recording() block"
    return session.id_map


def with_stable_ids(value: Any, ids: Mapping[str, str]) -> Any:
    """``value`` (SDK objects, JSON, text or bytes) with each live id in ``ids`` made stable."""
    if isinstance(value, BaseModel):
        update = {}
        for name in type(value).model_fields:
            item = getattr(value, name)
            mapped = with_stable_ids(item, ids)
            if mapped is not item:
                update[name] = mapped
        copy = value.model_copy(update=update)
        # The copy carries the fields the original carried, no more (an update marks them set).
        object.__setattr__(copy, "__pydantic_fields_set__", set(value.model_fields_set))
        return copy
    if isinstance(value, dict):
        return {key: with_stable_ids(item, ids) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(with_stable_ids(item, ids) for item in value)
    if isinstance(value, str):
        mapped = value
        for live in sorted(ids, key=len, reverse=True):
            mapped = mapped.replace(live, ids[live])
        return value if mapped == value else mapped
    if isinstance(value, bytes):
        return with_stable_ids(value.decode("utf-8", "surrogateescape"), ids).encode(
            "utf-8", "surrogateescape"
        )
    return value
