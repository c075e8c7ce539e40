"""The one record/replay flow, sync and async; every interceptor is an adapter it drives.

:func:`replay_or_record` and :func:`areplay_or_record` hold the whole control flow of an
intercepted call: look the call up and hand back the recorded answer, or make the call live
(marked, so the HTTP layer below lets it pass), record the error it raised, drain the stream it
returned, write the recording and hand back the result. An :class:`Adapter` knows one client
library and only converts: it rebuilds a recorded answer as the library's own objects, says
what a live stream is and how to read it, and encodes what it read. Behaviour that concerns
every library belongs in the flow or the session, once:

- which recording answers a call (ordered playback of identical requests): ``Session.lookup``;
- what a replay miss does: ``Session.lookup`` / ``Session.miss``, raised from the flow before
  ``invoke``. An SDK layer sits above the SDK's retries and raises the error itself; an
  adapter ``below_clients`` (the HTTP layer) raises its interrupting twin
  (``_exceptions.interrupting``), which no ``except Exception`` retry or wrapping loop of the
  client above catches; so does a recorder error met while recording (a failed write), so a
  billed call is never repeated;
- how live ids map to stable ones across layers: ``Session.id_map``, filled when a response is
  serialized and applied when the next request is described (``_requestjson``).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from ._exceptions import ApiRecorderError, RecordingFormatError, interrupting
from ._recorder import Session, recorded_above, sdk_layer_call
from ._serialization import TypeBuilder
from ._storage import Recording
from ._types import Call, ResponseRecord

__all__ = [
    "Adapter",
    "SdkAdapter",
    "areplay_items",
    "areplay_or_record",
    "checked_answer",
    "replay_items",
    "replay_or_record",
]

R = TypeVar("R")  # what a live call returns


class Adapter(Generic[R]):
    """What the flow needs from one client library, for one call.

    The defaults describe a call that returns one value and never streams; a subclass
    overrides what its library does differently.
    """

    #: Errors of the live call itself that are recorded, then raised to the caller.
    call_errors: tuple[type[BaseException], ...] = ()
    #: Errors met while draining a live stream: recorded after the chunks before them.
    stream_errors: tuple[type[BaseException], ...] = ()
    #: True for a layer below client code that may retry or wrap what it raises (an HTTP
    #: client's transport): a recorder error leaves it as its interrupting twin.
    below_clients: bool = False

    # -- replay -------------------------------------------------------------------------
    def replay(self, session: Session, recording: Recording, call: Call) -> Any:
        """The recorded answer as the library's own result (or raise the recorded error)."""
        raise NotImplementedError

    # -- a live answer ------------------------------------------------------------------
    def is_stream(self, result: R) -> bool:
        """True when ``result`` is a stream to drain with :meth:`chunks`."""
        return False

    def is_async_stream(self, result: R) -> bool:
        """True when ``result`` is a stream to drain with :meth:`achunks`."""
        return False

    def chunks(self, result: R) -> Iterable[Any]:
        """The chunks of a live sync stream: by default the stream is its own iterable."""
        return cast(Iterable[Any], result)

    def achunks(self, result: R) -> AsyncIterable[Any]:
        """The chunks of a live async stream: by default the stream is its own iterable."""
        return cast(AsyncIterable[Any], result)

    def close(self, result: R) -> None:
        """Release a drained sync stream."""

    async def aclose(self, result: R) -> None:
        """Release a drained async stream."""

    # -- encoding -----------------------------------------------------------------------
    def result_response(self, session: Session, call: Call, result: R) -> ResponseRecord:
        """The ``response`` of a call that returned ``result``."""
        raise NotImplementedError

    def stream_response(
        self,
        session: Session,
        call: Call,
        result: R,
        chunks: list[Any],
        error: BaseException | None,
    ) -> ResponseRecord:
        """The ``response`` of a drained stream (that stopped with ``error``, if not None)."""
        raise NotImplementedError

    def error_response(self, session: Session, call: Call, exc: BaseException) -> ResponseRecord:
        """The ``response`` of a call that raised ``exc``."""
        raise NotImplementedError

    # -- what the caller gets after a live call was recorded --------------------------------
    def recorded(self, session: Session, call: Call, result: R, path: Path) -> Any:
        """The caller's answer for a recorded ``result``: by default the result itself."""
        return result

    def drained(
        self,
        session: Session,
        call: Call,
        result: R,
        chunks: list[Any],
        error: BaseException | None,
        path: Path,
    ) -> Any:
        """The caller's answer for a recorded stream (its chunks, then ``error``)."""
        raise NotImplementedError


def replay_or_record(
    session: Session, call: Call, adapter: Adapter[R], invoke: Callable[[], R]
) -> Any:
    """Replay ``call``, or run ``invoke()`` live and record it: the flow of a sync call."""
    __tracebackhide__ = True  # a miss points at the caller's line, not at this flow
    if recorded_above(call):
        return invoke()
    if not adapter.below_clients:
        return _replay_or_record(session, call, adapter, invoke)
    try:
        return _replay_or_record(session, call, adapter, invoke)
    except ApiRecorderError as exc:
        raise interrupting(exc) from None


def _replay_or_record(
    session: Session, call: Call, adapter: Adapter[R], invoke: Callable[[], R]
) -> Any:
    __tracebackhide__ = True
    found = session.lookup(call)
    if found is not None:
        return _replayed(session, found, call, adapter)
    if not session.records:
        return invoke()
    with sdk_layer_call(call):
        try:
            result = invoke()
        except adapter.call_errors as exc:
            session.save(call, adapter.error_response(session, call, exc))
            raise
        if adapter.is_stream(result):
            chunks, error = _drain(adapter, result)
            return _save_stream(session, call, adapter, result, chunks, error)
        if adapter.is_async_stream(result):
            # Sync code handed out an async stream (a tool that is an async generator):
            # it can only be drained once the caller iterates it.
            return _drain_when_iterated(session, call, adapter, result)
    path = session.save(call, adapter.result_response(session, call, result))
    return adapter.recorded(session, call, result, path)


async def areplay_or_record(
    session: Session, call: Call, adapter: Adapter[R], invoke: Callable[[], Awaitable[R]]
) -> Any:
    """The flow of an async call: :func:`replay_or_record` where ``invoke()`` is awaited."""
    __tracebackhide__ = True
    if recorded_above(call):
        return await invoke()
    if not adapter.below_clients:
        return await _areplay_or_record(session, call, adapter, invoke)
    try:
        return await _areplay_or_record(session, call, adapter, invoke)
    except ApiRecorderError as exc:
        raise interrupting(exc) from None


async def _areplay_or_record(
    session: Session, call: Call, adapter: Adapter[R], invoke: Callable[[], Awaitable[R]]
) -> Any:
    __tracebackhide__ = True
    found = session.lookup(call)
    if found is not None:
        return _replayed(session, found, call, adapter)
    if not session.records:
        return await invoke()
    with sdk_layer_call(call):
        try:
            result = await invoke()
        except adapter.call_errors as exc:
            session.save(call, adapter.error_response(session, call, exc))
            raise
        if adapter.is_async_stream(result):
            chunks, error = await _adrain(adapter, result)
            return _save_stream(session, call, adapter, result, chunks, error)
        if adapter.is_stream(result):
            chunks, error = _drain(adapter, result)
            return _save_stream(session, call, adapter, result, chunks, error)
    path = session.save(call, adapter.result_response(session, call, result))
    return adapter.recorded(session, call, result, path)


def _replayed(session: Session, recording: Recording, call: Call, adapter: Adapter[R]) -> Any:
    # The recorded error is raised as the library's own class; anything else the rebuild
    # raises (a hand-edited file the library's classes refuse) is the file's fault, named.
    try:
        return adapter.replay(session, recording, call)
    except ApiRecorderError:
        raise
    except Exception as exc:
        if isinstance(exc, adapter.call_errors):
            raise
        raise session.met(
            RecordingFormatError(
                recording.path,
                f"cannot replay it: {type(exc).__name__}: {str(exc)[:300]}; re-record this file",
            )
        ) from exc


# Reading the whole stream now leaves a complete recording even if the caller stops early.
def _drain(adapter: Adapter[R], result: R) -> tuple[list[Any], BaseException | None]:
    chunks: list[Any] = []
    error: BaseException | None = None
    try:
        for chunk in adapter.chunks(result):
            chunks.append(chunk)
    except adapter.stream_errors as exc:
        error = exc
    finally:
        adapter.close(result)
    return chunks, error


async def _adrain(adapter: Adapter[R], result: R) -> tuple[list[Any], BaseException | None]:
    chunks: list[Any] = []
    error: BaseException | None = None
    try:
        async for chunk in adapter.achunks(result):
            chunks.append(chunk)
    except adapter.stream_errors as exc:
        error = exc
    finally:
        await adapter.aclose(result)
    return chunks, error


def _save_stream(
    session: Session,
    call: Call,
    adapter: Adapter[R],
    result: R,
    chunks: list[Any],
    error: BaseException | None,
) -> Any:
    path = session.save(call, adapter.stream_response(session, call, result, chunks, error))
    return adapter.drained(session, call, result, chunks, error, path)


async def _drain_when_iterated(
    session: Session, call: Call, adapter: Adapter[R], result: R
) -> AsyncIterator[Any]:
    with sdk_layer_call(call):
        chunks, error = await _adrain(adapter, result)
    async for item in _save_stream(session, call, adapter, result, chunks, error):
        yield item


# -- replayed streams ---------------------------------------------------------------------


def replay_items(items: Iterable[Any], error: BaseException | None) -> Iterator[Any]:
    """Yield the recorded items, then raise the recorded error (a stream that failed midway)."""
    yield from items
    if error is not None:
        raise error


async def areplay_items(items: Iterable[Any], error: BaseException | None) -> AsyncIterator[Any]:
    """The async twin of :func:`replay_items`."""
    for item in items:
        yield item
    if error is not None:
        raise error


def _built_lazily(
    session: Session,
    recording: Recording,
    raw: Any,
    build: TypeBuilder | None,
    expected: tuple[type[Any], ...] = (),
) -> Iterator[Any]:
    # Each chunk is built when the caller reads it, so a long stream never exists as SDK
    # objects all at once (a reader that keeps none holds one chunk at a time).
    for chunk in raw if isinstance(raw, list) else ():
        yield checked_answer(
            recording, session.deserialize(recording, chunk, build=build), expected
        )


def checked_answer(recording: Recording, value: Any, expected: tuple[type[Any], ...]) -> Any:
    """``value`` when it is one of the ``expected`` classes (or none is expected); else the
    recording answers another call (an Embedding for a chat call) and is refused by name."""
    if expected and not isinstance(value, expected):
        names = " or ".join(f"{c.__module__}.{c.__qualname__}" for c in expected)
        found = type(value)
        raise RecordingFormatError(
            recording.path,
            f"it answers with a {found.__module__}.{found.__qualname__} where this call "
            f"returns {names}: it is not a recording of this call; re-record it",
        )
    return value


# -- SDK objects ----------------------------------------------------------------------------


class SdkAdapter(Adapter[R]):
    """An adapter for an SDK whose calls return its own (pydantic) objects.

    A result is written with :meth:`Session.serialize` (normalized, DESIGN 6) and rebuilt with
    the SDK's :meth:`builder`; an error with :meth:`error_details` and :meth:`rebuild_error`.
    """

    provider = ""

    def __init__(self, *, is_async: bool = False) -> None:
        #: Whether the call is a coroutine, so a replayed stream must be an async one.
        self.is_async = is_async

    def builder(self) -> TypeBuilder | None:
        """How the SDK builds its objects from recorded data; None: validate, else construct."""
        return None

    def rebuild_error(self, recording: Recording, call: Call) -> BaseException:
        """The recorded exception as the SDK's own class."""
        raise NotImplementedError

    def error_details(self, exc: BaseException) -> tuple[int | None, Any]:
        """The status code and body recorded for ``exc``."""
        return getattr(exc, "status_code", None), getattr(exc, "body", None)

    def error_message(self, exc: BaseException) -> str:
        """The ``exception_data.message`` recorded for ``exc`` (what the reference rebuilds
        the error from); ``exception_message`` is always ``str(exc)``."""
        return str(exc)

    def stream(
        self, call: Call, items: Iterable[Any], error: BaseException | None, live: R | None
    ) -> Any:
        """A replayed stream of the SDK's own kind (``live``: the stream that was drained)."""
        return areplay_items(items, error) if self.is_async else replay_items(items, error)

    def answer(self, value: Any) -> Any:
        """The caller's answer for a recorded non-streaming value."""
        return value

    def answer_types(self, call: Call) -> tuple[type[Any], ...]:
        """The classes a replayed answer of ``call`` may be (each chunk of a stream, each
        item of a list): any other is refused. () accepts every value."""
        return ()

    #: The answer is a list of objects (a model list), each checked by :meth:`answer_types`.
    answers_list = False

    # -- the Adapter hooks ----------------------------------------------------------------
    def replay(self, session: Session, recording: Recording, call: Call) -> Any:
        response = recording.response
        raw = response.get("body")
        error = self.rebuild_error(recording, call) if response.get("is_exception") else None
        expected = self.answer_types(call)
        if response.get("is_streaming"):
            chunks = _built_lazily(session, recording, raw, self.builder(), expected)
            return self.stream(call, chunks, error, None)
        body = session.deserialize(recording, raw, build=self.builder())
        if error is not None:
            raise error
        if self.answers_list:
            items = checked_answer(recording, body, (list,) if expected else ())
            body = [checked_answer(recording, item, expected) for item in items]
        else:
            checked_answer(recording, body, expected)
        return self.answer(body)

    def result_response(self, session: Session, call: Call, result: R) -> ResponseRecord:
        return {"body": session.serialize(call, result), "is_streaming": False}

    def stream_response(
        self,
        session: Session,
        call: Call,
        result: R,
        chunks: list[Any],
        error: BaseException | None,
    ) -> ResponseRecord:
        if error is not None:
            return self._error_record(session, call, error, chunks)
        return {"body": [session.serialize(call, c) for c in chunks], "is_streaming": True}

    def error_response(self, session: Session, call: Call, exc: BaseException) -> ResponseRecord:
        return self._error_record(session, call, exc, None)

    def _error_record(
        self, session: Session, call: Call, exc: BaseException, chunks: list[Any] | None
    ) -> ResponseRecord:
        # DESIGN 3: a stream that failed midway keeps the chunks received before the error.
        status_code, body = self.error_details(exc)
        return {
            "body": [session.serialize(call, c) for c in chunks] if chunks is not None else None,
            "is_streaming": chunks is not None,
            "is_exception": True,
            "exception_data": {
                "category": "provider_sdk",
                "provider": self.provider,
                "type": type(exc).__name__,
                "message": self.error_message(exc),
                "status_code": status_code,
                "body": body,
            },
            "exception_message": str(exc),
        }

    def drained(
        self,
        session: Session,
        call: Call,
        result: R,
        chunks: list[Any],
        error: BaseException | None,
        path: Path,
    ) -> Any:
        return self.stream(call, chunks, error, result)
