"""Record a scenario against the local upstream, stop it, and replay with the network blocked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import apirecorder
from tests.stable_ids import live_id_map, with_stable_ids
from tests.upstream import Upstream

T = TypeVar("T")


def record_then_replay(
    upstream: Upstream, folder: Path, scenario: Callable[[], T], test_id: str
) -> tuple[T, T]:
    """``scenario()`` recording, then again replaying with the upstream stopped.

    The live ids the record run saw are given as the stable ids replay hands out.
    """
    with apirecorder.recording("record", folder), apirecorder.test_context(test_id):
        recorded = with_stable_ids(scenario(), live_id_map())
    upstream.stop()
    with (
        apirecorder.recording("replay", folder, block_network=True),
        apirecorder.test_context(test_id),
    ):
        replayed = scenario()
    return recorded, replayed


def recordings(folder: Path) -> list[dict[str, Any]]:
    """Every recording in ``folder`` (and below), in file-name order."""
    return [json.loads(path.read_text("utf-8")) for path in sorted(folder.rglob("*.json"))]


def disk_bytes(folder: Path) -> bytes:
    """All the bytes written under ``folder``: what a secret must never be part of."""
    return b"".join(path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file())
