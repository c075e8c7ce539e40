"""The Anthropic SDK's check of a replayed answer: the class it asked for, or a refusal by name.

The Anthropic SDK is recorded and replayed at the HTTP layer (it rides on httpx2, see
``_httpx``): the recorded bytes enter the SDK at its transport and the SDK parses them as it
parses a live answer. It parses whatever JSON they hold: a recording whose body was edited to
``null``, a number or a list hands back None, an int or a list where ``messages.create``
returns a ``Message``, and a body that is no JSON at all raises ``json``'s own error from
inside the SDK. Nothing at the HTTP layer knows which class the call wants; the SDK does: it
passes ``cast_to`` to the response it parses.

So this module patches ``BaseAPIResponse._parse`` (the one parse of sync and async answers,
``.with_raw_response.parse()`` included) and ``Stream.__stream__``/``AsyncStream.__stream__``
(each event of a stream). For a response the HTTP layer replayed from a file, and only for
those (``_httpx.replayed_from``; a live answer, in any mode, is never touched), a parsed value
of another class than the one asked for, or an exception the SDK raises while parsing, becomes
:class:`~apirecorder.RecordingFormatError` naming the file, the field and the fix, chained
``from`` the SDK's exception. The SDK's own error classes (a recorded error status or error
event) are the faithful replay of a recorded error and pass as they are.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from typing import Any, get_args, get_origin

from .._exceptions import ApiRecorderError, RecordingFormatError
from ._httpx import replayed_from

__all__ = ["install"]

_FIX = "re-record it"


def install(stack: ExitStack) -> None:
    """Patch the Anthropic SDK's parse of a response and of a stream while ``stack`` is open."""
    from unittest import mock  # with the patching: unittest.mock imports asyncio

    response = importlib.import_module("anthropic._response").BaseAPIResponse
    streaming = importlib.import_module("anthropic._streaming")
    stack.enter_context(mock.patch.object(response, "_parse", _parse(response._parse)))
    for stream_class, checked in (
        (streaming.Stream, _checked_events),
        (streaming.AsyncStream, _achecked_events),
    ):
        original = stream_class.__stream__
        stack.enter_context(
            mock.patch.object(stream_class, "__stream__", _stream(original, checked))
        )


def _expected(cast_to: Any) -> tuple[type[Any], ...]:
    """The classes a value parsed to ``cast_to`` is one of; () when that cannot be told."""
    utils = importlib.import_module("anthropic._utils")
    if utils.is_type_alias_type(cast_to):
        cast_to = cast_to.__value__
    if utils.is_annotated_type(cast_to):
        cast_to = utils.extract_type_arg(cast_to, 0)
    if utils.is_union_type(cast_to):
        members = [_expected(member) for member in get_args(cast_to)]
        return () if not all(members) else tuple(c for classes in members for c in classes)
    origin = get_origin(cast_to) or cast_to
    model = importlib.import_module("anthropic").BaseModel
    if inspect.isclass(origin) and issubclass(origin, (model, dict, list)):
        return (origin,)
    return ()


def _checked(source: Any, value: Any, expected: tuple[type[Any], ...], what: str) -> Any:
    if expected and not isinstance(value, expected):
        names = " or ".join(f"{c.__module__}.{c.__qualname__}" for c in expected)
        found = type(value)
        raise RecordingFormatError(
            source,
            f"response.body holds {what} that the Anthropic SDK reads as a "
            f"{found.__module__}.{found.__qualname__} where this call returns {names}: it is "
            f"not a recording of this call; {_FIX}",
        )
    return value


def _refused(source: Any, exc: BaseException, what: str) -> RecordingFormatError:
    return RecordingFormatError(
        source,
        f"response.body holds {what} that the Anthropic SDK cannot parse "
        f"({type(exc).__name__}: {str(exc)[:300]}); {_FIX}",
    )


def _parse(original: Callable[..., Any]) -> Any:
    @functools.wraps(original)
    def parse(self: Any, *, to: Any = None) -> Any:
        source = replayed_from(self.http_response)
        if source is None:
            return original(self, to=to)
        try:
            value = original(self, to=to)
        except ApiRecorderError:
            raise
        except Exception as exc:  # json's error, the SDK's validation error: all from the body
            raise _refused(source, exc, "an answer") from exc
        if self._is_sse_stream:
            return value  # a stream: each event is checked as it is read (below)
        return _checked(source, value, _expected(to or self._cast_to), "an answer")

    return parse


def _faithful() -> tuple[type[BaseException], ...]:
    # What a stream raises for what its recording holds: an error event (the SDK's status
    # error), a transport error recorded midway (httpx2's own), or the recorder's error.
    anthropic = importlib.import_module("anthropic")
    return (ApiRecorderError, anthropic.APIStatusError, importlib.import_module("httpx2").HTTPError)


def _stream(original: Callable[..., Any], checked: Callable[..., Any]) -> Any:
    """``Stream.__stream__`` (``checked``: ``_checked_events``) or ``AsyncStream``'s
    (``_achecked_events``), checked event by event when the response was replayed."""

    @functools.wraps(original)
    def stream(self: Any) -> Any:
        source = replayed_from(self.response)
        if source is None:
            return original(self)  # a live stream is the SDK's own generator, untouched
        return checked(source, self._cast_to, original(self))

    return stream


def _checked_events(source: Any, cast_to: Any, events: Iterator[Any]) -> Iterator[Any]:
    expected, faithful = _expected(cast_to), _faithful()
    try:
        for event in events:
            yield _checked(source, event, expected, "a stream event")
    except faithful:
        raise
    except Exception as exc:
        raise _refused(source, exc, "a stream event") from exc
    finally:
        events.close()  # type: ignore[attr-defined]


async def _achecked_events(source: Any, cast_to: Any, events: Any) -> AsyncIterator[Any]:
    expected, faithful = _expected(cast_to), _faithful()
    try:
        async for event in events:
            yield _checked(source, event, expected, "a stream event")
    except faithful:
        raise
    except Exception as exc:
        raise _refused(source, exc, "a stream event") from exc
    finally:
        await events.aclose()
