"""Errors raised by apirecorder.

Every error derives from one base class, so ``except ApiRecorderError`` catches them all::

    ApiRecorderError
     ├── RecordingNotFoundError    replay found no recording for a request
     ├── RecordingFormatError      a recording file is unreadable or malformed
     │    └── UnsafeTypeError      a recording names a type outside the allow-list
     ├── SerializationError        a value cannot be written to a recording
     └── NetworkBlockedError       a connection was attempted while the network is blocked

Errors of the client libraries themselves (``openai.BadRequestError`` and so on) are never
wrapped: a replayed error is raised as the library's own class, exactly as the live call did.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "ApiRecorderError",
    "NetworkBlockedError",
    "RecordingFormatError",
    "RecordingNotFoundError",
    "SerializationError",
    "UnsafeTypeError",
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
