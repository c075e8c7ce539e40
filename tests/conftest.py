"""Shared fixtures: a local upstream that speaks the providers' wire formats."""

from __future__ import annotations

from collections.abc import Iterator

import hypothesis  # noqa: F401
import pytest

from tests.upstream import Upstream

# Imported here, at a shallow stack, on purpose: pytest rewrites the modules of plugin
# packages (hypothesis, apirecorder) when they are first imported, and CPython 3.11.7 can fail
# that compile deep in a stack ("AST constructor recursion depth mismatch", gh-106905).


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A started local upstream on 127.0.0.1; call ``.stop()`` to prove a replay is offline."""
    server = Upstream().start()
    try:
        yield server
    finally:
        server.stop()
