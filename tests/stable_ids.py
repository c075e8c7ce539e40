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
        fields = type(value).model_fields
        update = {name: with_stable_ids(getattr(value, name), ids) for name in fields}
        return value.model_copy(update=update)
    if isinstance(value, dict):
        return {key: with_stable_ids(item, ids) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(with_stable_ids(item, ids) for item in value)
    if isinstance(value, str):
        for live in sorted(ids, key=len, reverse=True):
            value = value.replace(live, ids[live])
        return value
    if isinstance(value, bytes):
        return with_stable_ids(value.decode("utf-8", "surrogateescape"), ids).encode(
            "utf-8", "surrogateescape"
        )
    return value
