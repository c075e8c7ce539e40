"""Shared fixtures: a local upstream that speaks the providers' wire formats."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import hypothesis  # noqa: F401
import pytest

import apirecorder
from tests.upstream import Upstream

# Imported here, at a shallow stack and in the main thread, on purpose: pytest rewrites the
# modules of plugin packages (hypothesis, apirecorder) when they are first imported, and
# CPython 3.11's AST constructor keeps its recursion count in interpreter-wide state, so that
# compile can fail deep in a stack or while another thread compiles ("AST constructor
# recursion depth mismatch", gh-106905; seen in tests/test_cli.py, whose first `ls` imports
# the CLI's modules while test servers run in threads). apirecorder imports most of its
# modules on first use, so every one is imported now, before any test starts a thread. Tests
# of what a run imports run in fresh interpreters (test_lazy_imports, test_deferred_patching).
for _module in pkgutil.walk_packages(apirecorder.__path__, "apirecorder."):
    if not _module.name.endswith("__main__"):
        importlib.import_module(_module.name)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A started local upstream on 127.0.0.1; call ``.stop()`` to prove a replay is offline."""
    server = Upstream().start()
    try:
        yield server
    finally:
        server.stop()
