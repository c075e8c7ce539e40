"""Record a scenario against the local upstream, stop it, and replay with the network blocked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import apirecorder
from tests.upstream import Upstream

T = TypeVar("T")


def record_then_replay(
    upstream: Upstream, folder: Path, scenario: Callable[[], T], test_id: str
) -> tuple[T, T]:
    """``scenario()`` recording, then again replaying with the upstream stopped."""
    with apirecorder.recording("record", folder), apirecorder.test_context(test_id):
        recorded = scenario()
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
