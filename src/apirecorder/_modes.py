"""The four recording modes."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Mode", "parse_mode"]


class Mode(StrEnum):
    """What intercepted calls do: pass through, record, replay, or replay-else-record."""

    LIVE = "live"
    RECORD = "record"
    REPLAY = "replay"
    RECORD_IF_MISSING = "record-if-missing"


_BY_VALUE = {mode.value: mode for mode in Mode}


def parse_mode(value: Mode | str) -> Mode:
    """Return the Mode for ``value``; an unknown value raises ValueError listing the valid ones."""
    if isinstance(value, Mode):
        return value
    known = _BY_VALUE.get(value) if type(value) is str else None
    if known is not None:
        return known  # a mode spelled as it is written: no Enum lookup (once per block)
    try:
        return Mode(str(value).strip().lower())
    except ValueError:
        valid = ", ".join(repr(m.value) for m in Mode)
        raise ValueError(f"unknown apirecorder mode {value!r}; valid modes are {valid}") from None
