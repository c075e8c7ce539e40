"""Errors raised by apirecorder.

Every error derives from one base class, so ``except ApiRecorderError`` catches them all::

    ApiRecorderError
     ├── RecordingNotFoundError    replay found no recording for a request
     ├── RecordingFormatError      a recording file is unreadable or malformed
     │    └── UnsafeTypeError      a recording names a type outside the allow-list
     ├── SerializationError        a value cannot be written to a recording
     └── NetworkBlockedError       a connection was attempted while the network is blocked

Below a client library (the HTTP layer), an error of the recorder travels as its
*interrupting* twin (:func:`interrupting`): an instance of a subclass of the error's own class
whose MRO leaves out ``Exception``. ``except RecordingNotFoundError`` and
``pytest.raises(RecordingNotFoundError)`` catch it as usual, but the ``except Exception``
of an SDK's retry loop or of its transport-error wrapping does not, so the miss reaches the
test at once, with its explanation, instead of ``APIConnectionError`` after retries.
``recording()`` and the pytest plugin hand back the plain error (:func:`surfaced`).

Errors of the client libraries themselves (``openai.BadRequestError`` and so on) are never
wrapped: a replayed error is raised as the library's own class, exactly as the live call did.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "ApiRecorderError",
    "NetworkBlockedError",
    "RecordingFormatError",
    "RecordingNotFoundError",
    "SerializationError",
    "UnsafeTypeError",
    "interrupting",
    "is_interrupting",
    "raise_surfaced",
    "surfaced",
]


class ApiRecorderError(Exception):
    """Base class of every error apirecorder raises."""


class RecordingNotFoundError(ApiRecorderError):
    """Replay mode met a request that has no recording."""

    def __init__(
        self,
        message: str,
        *,
        request_hash: str,
        test_id: str | None,
        endpoint: str = "",
        searched: Sequence[Path] = (),
        nearest: Path | None = None,
    ) -> None:
        super().__init__(message)
        self.request_hash = request_hash
        self.test_id = test_id
        #: The endpoint (or tool, or ``METHOD url``) the call was made to.
        self.endpoint = endpoint
        #: The folders searched, in the order they were tried.
        self.searched = tuple(searched)
        #: The recording nearest to the request (same test and endpoint first), or None.
        self.nearest = nearest


class RecordingFormatError(ApiRecorderError):
    """A recording file cannot be used; the message names the file and the problem."""

    def __init__(self, path: Path | str | None, problem: str) -> None:
        where = f"{path}: " if path is not None else ""
        super().__init__(f"{where}{problem}")
        self.path = path
        self.problem = problem


class UnsafeTypeError(RecordingFormatError):
    """A recording's ``__type__`` is outside the allow-list; nothing was imported."""


class SerializationError(ApiRecorderError):
    """A value passed to or returned by an intercepted call cannot be stored as JSON."""


class NetworkBlockedError(ApiRecorderError):
    """An outgoing connection was refused because the network is blocked during replay."""


# -- the interrupting twin (see the module docstring) ---------------------------------------

E = TypeVar("E", bound=ApiRecorderError)


class _InterruptingMeta(type):
    """Builds a twin whose MRO is its error's without ``Exception``: ``except`` matches by
    MRO, so handlers of the error's classes catch it and ``except Exception`` does not."""

    def mro(cls) -> list[type]:
        return [klass for klass in super().mro() if klass is not Exception]


_twins: dict[type[ApiRecorderError], type[ApiRecorderError]] = {}


def _twin_class(error_class: type[ApiRecorderError]) -> type[ApiRecorderError]:
    twin = _twins.get(error_class)
    if twin is None:
        made: Any = _InterruptingMeta(
            error_class.__name__, (error_class,), {"__module__": "apirecorder"}
        )
        made.__qualname__ = error_class.__qualname__
        made._apirecorder_interrupting = True
        twin = _twins.setdefault(error_class, made)
    return twin


def interrupting(error: E) -> E:
    """``error``'s interrupting twin: the same message and attributes, not an ``Exception``.

    Raised where client code below the test would retry or wrap a recorder error.
    """
    if is_interrupting(error):
        return error
    twin_class = _twin_class(type(error))
    twin = twin_class.__new__(twin_class)
    twin.args = error.args
    twin.__dict__.update(error.__dict__)
    twin.__dict__["error"] = error
    twin.__cause__, twin.__context__ = error.__cause__, error.__context__
    twin.__suppress_context__ = error.__suppress_context__
    twin.__traceback__ = error.__traceback__
    return twin  # type: ignore[return-value]


def is_interrupting(error: BaseException) -> bool:
    """True for an interrupting twin made by :func:`interrupting`."""
    return getattr(type(error), "_apirecorder_interrupting", False) is True


def surfaced(error: BaseException) -> BaseException | None:
    """The plain recorder error an exception stands for, or None when it is none of ours.

    An interrupting twin gives back its error; an exception group (anyio task groups,
    ``asyncio.TaskGroup``) that holds only twins gives back the first one's error.
    """
    if is_interrupting(error):
        original: Any = error.__dict__.get("error", error)
        return original if isinstance(original, BaseException) else error
    if isinstance(error, BaseExceptionGroup):
        leaves = _leaves(error)
        if leaves and all(is_interrupting(leaf) for leaf in leaves):
            return surfaced(leaves[0])
    return None


def raise_surfaced(error: BaseException) -> None:
    """Raise the plain error ``error`` stands for (its cause kept, its traceback the one it
    travelled with); return when it stands for none. Used at apirecorder's boundaries."""
    __tracebackhide__ = True
    plain = surfaced(error)
    if plain is not None:
        raise plain.with_traceback(error.__traceback__) from plain.__cause__


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for inner in group.exceptions:
        found.extend(_leaves(inner) if isinstance(inner, BaseExceptionGroup) else [inner])
    return found


# Tracebacks and reprs name the public path users import from: apirecorder.RecordingNotFoundError.
for _error in (
    ApiRecorderError,
    NetworkBlockedError,
    RecordingFormatError,
    RecordingNotFoundError,
    SerializationError,
    UnsafeTypeError,
):
    _error.__module__ = "apirecorder"
