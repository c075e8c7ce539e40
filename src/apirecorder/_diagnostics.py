"""Messages that explain a replay miss."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._recorder import Call, Session

__all__ = ["explain_miss"]


def explain_miss(session: Session, call: Call) -> str:
    """Say what was asked, where the recorder looked, and the command that records it."""
    from ._recorder import record_command

    folders = session.storage.dirs_for(call.test_id)
    lines = [
        f"No recording for this {call.kind} call (mode: {session.mode.value}).",
        f"  test id:  {call.test_id}",
        f"  endpoint: {call.endpoint}",
        f"  model:    {call.model or '-'}",
        f"  hash:     {call.request_hash}",
        f"  searched: {folders[0]}",
        *(f"            {folder}" for folder in folders[1:]),
        "To record it, run:",
        f"  {record_command(call.test_id)}",
    ]
    return "\n".join(lines)
