"""Shared fixtures: a local upstream that speaks the providers' wire formats."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.upstream import Upstream


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A started local upstream on 127.0.0.1; call ``.stop()`` to prove a replay is offline."""
    server = Upstream().start()
    try:
        yield server
    finally:
        server.stop()
