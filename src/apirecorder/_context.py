"""The test identity: which test is making a call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["TEST_ID_HEADER", "current_test_id", "test_context"]

#: HTTP header that carries the test id from a test to a server under test.
TEST_ID_HEADER = "X-Apirecorder-Test-Id"

_test_id: ContextVar[str | None] = ContextVar("apirecorder_test_id", default=None)


def current_test_id() -> str | None:
    """Return the test id of the calls made here, or None outside any test."""
    return _test_id.get()


@contextmanager
def test_context(test_id: str | None) -> Iterator[None]:
    """Set the test id for every call made inside the block (async tasks included)."""
    token = _test_id.set(test_id)
    try:
        yield
    finally:
        _test_id.reset(token)


# pytest would otherwise try to collect the public name as a test.
test_context.__test__ = False  # type: ignore[attr-defined]
