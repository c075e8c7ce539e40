"""IDs an application makes up itself (file ids, tool call ids) that must not change on replay.

Inside a test that records or replays, ``deterministic_id`` counts per test and per kind from a
start derived from the test id, as the reference recorder does, so a record run and a later
replay run (another process) hand out the same ids in the same order.
"""

from __future__ import annotations

import hashlib
import threading

from ._context import current_test_id
from ._modes import Mode
from ._recorder import active_session

__all__ = ["deterministic_id", "id_counter_start"]

_ID_SPACE = 10**12
_lock = threading.Lock()


def id_counter_start(test_id: str) -> int:
    """Where the counters of ``test_id`` start (its first id is this plus one)."""
    return int(hashlib.sha256(test_id.encode()).hexdigest(), 16) % _ID_SPACE


def deterministic_id(kind: str, prefix: str = "") -> str:
    """A new id of ``kind``: ``prefix`` + the test's next number, or ``prefix`` + a random hex.

    The id is deterministic while a test id is set and a ``recording()`` session records or
    replays; counters are kept per session (the pytest plugin opens one per test), per test id
    and per ``kind``. Anywhere else the id is random, so production code can call this freely.
    """
    session = active_session()
    test_id = current_test_id()
    if session is None or session.mode is Mode.LIVE or not test_id:
        import uuid  # here: uuid costs start-up time and only ids made outside a test use it

        return f"{prefix}{uuid.uuid4().hex}"
    key = (test_id, kind)
    with _lock:
        counter = session.id_counters.get(key)
        if counter is None:
            counter = id_counter_start(test_id)
        counter += 1
        session.id_counters[key] = counter
    return f"{prefix}{counter}"
