"""Any Python callable as a recorded tool: the ``tool`` decorator and ``patch_tool``.

A tool call is its provider, its name and its arguments bound to parameter names, hashed as the
reference recorder hashes tool calls (DESIGN 4) and written as a tool recording (DESIGN 3). On
replay the result comes back as the type the live call returned (JSON values, pydantic models,
dataclasses), a raised exception as its own class with its message, and a generator's items in
order. :class:`ToolAdapter` is how the record/replay flow (``_flow``) treats a tool call; the
interceptors that record a library's calls as tool calls (MCP) use it too.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import inspect
import warnings
from collections.abc import (
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Sequence,
)
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import AsyncGeneratorType, GeneratorType
from typing import Any, TypeVar

from ._exceptions import SerializationError, UnsafeTypeError
from ._flow import (
    Adapter,
    areplay_items,
    areplay_or_record,
    checked_answer,
    replay_items,
    replay_or_record,
)
from ._modes import Mode
from ._recorder import Call, Session, active_session
from ._serialization import allowed_prefixes, from_json, resolve_type, to_json, trust_to_record
from ._storage import Recording
from ._toolhints import annotation_modules, answer_classes
from ._transportkw import is_plain_json
from ._types import ExceptionData, ResponseRecord

__all__ = [
    "ToolAdapter",
    "ToolInfo",
    "one_spelling",
    "tool",
    "wrap_tool",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Marks a function apirecorder already wraps, so it is never wrapped (and recorded) twice.
_MARK = "__apirecorder_tool__"

#: Parameter names that stand for the bound object, never part of a tool call's key.
_RECEIVERS = frozenset({"self", "cls"})


@dataclass
class ToolInfo:
    """What a wrapped tool knows about itself: its key parts and the classes it may rebuild."""

    provider: str
    name: str
    exclude: frozenset[str]
    #: Module prefixes whose classes this tool's recordings may name (besides the allow-list).
    trusted: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.provider}.{self.name}"


# -- the key: arguments bound to parameter names -------------------------------------------


def _argument_json(value: Any, tool: str, argument: str) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _argument_error(tool, argument, f"a dict key {key!r} that is not a string")
            out[key] = _argument_json(item, tool, argument)
        return out
    if isinstance(value, list | tuple):
        return [_argument_json(item, tool, argument) for item in value]
    if hasattr(value, "model_dump") and hasattr(type(value), "model_fields"):
        return _argument_json(value.model_dump(mode="json"), tool, argument)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _argument_json(dataclasses.asdict(value), tool, argument)
    raise _argument_error(tool, argument, f"a value of type {type(value).__qualname__}")


def _argument_error(tool: str, argument: str, what: str) -> SerializationError:
    return SerializationError(
        f"tool {tool}: argument {argument!r} is {what}, which cannot be part of a recording's "
        f"key. Pass JSON-able values (str, numbers, lists, dicts, pydantic models, dataclasses), "
        f"or leave the argument out of the key with exclude=({argument!r},)."
    )


def bind_arguments(
    signature: inspect.Signature, info: ToolInfo, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's arguments by parameter name, as given (defaults not applied), as JSON.

    ``search("x", max_results=3)`` and ``search(query="x", max_results=3)`` give the same
    dict; ``self``/``cls`` and excluded names are left out; ``**kwargs`` are flattened in.
    Raises TypeError when the arguments do not fit the signature.
    """
    bound = signature.bind(*args, **kwargs)
    first = next(iter(signature.parameters), None)
    out: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if name == first and name in _RECEIVERS:
            continue
        if kind is inspect.Parameter.VAR_KEYWORD:
            for key, item in value.items():
                if key not in info.exclude:
                    out[key] = _argument_json(item, info.label, key)
        elif name not in info.exclude:
            out[name] = _argument_json(value, info.label, name)
    return out


# -- values: JSON, pydantic models, dataclasses --------------------------------------------


def encode_value(value: Any, what: str) -> Any:
    """A tool's return value (or one generator item) as recording JSON, types kept."""
    try:
        return to_json(value)
    except SerializationError as exc:
        raise SerializationError(
            f"{what} cannot be recorded: {exc}; return JSON values, pydantic models or dataclasses."
        ) from exc


def decode_value(value: Any, source: object, trusted: Sequence[str]) -> Any:
    """Rebuild a value written by :func:`encode_value`; classes only from allowed modules."""
    return from_json(value, source=source, extra=trusted)


# -- exceptions -------------------------------------------------------------------------------


def exception_response(
    provider: str, exc: BaseException, items: list[Any] | None, what: str
) -> ResponseRecord:
    """The ``response`` of a call that raised (after ``items``, for a stream)."""
    message = str(exc)
    status = getattr(exc, "status_code", None)
    data: ExceptionData = {
        "category": "tool",
        "provider": provider,
        "type": type(exc).__qualname__,
        "message": message,
        "status_code": status if isinstance(status, int) else None,
        "body": None,
        "module": type(exc).__module__,
    }
    with suppress(SerializationError):  # without args it is rebuilt from its message
        data["args"] = encode_value(list(exc.args), what)
    state = getattr(exc, "__dict__", {})
    attributes = {k: v for k, v in state.items() if not k.startswith("_") and is_plain_json(v)}
    if attributes:
        data["attributes"] = attributes
    return {
        "body": [encode_value(item, what) for item in items] if items is not None else None,
        "is_streaming": items is not None,
        "is_exception": True,
        "exception_data": data,
        "exception_message": message,
    }


def _exception_class(
    data: dict[str, Any], recording: Recording, trusted: Sequence[str], label: str
) -> type[BaseException]:
    module = str(data.get("module") or "builtins")
    qualname = str(data.get("type") or "Exception")
    found: Any = None
    if module == "builtins":
        found = getattr(builtins, qualname, None)
    else:
        try:
            found = resolve_type(f"{module}.{qualname}", source=recording.path, extra=trusted)
        except UnsafeTypeError as exc:
            raise UnsafeTypeError(
                recording.path,
                f"tool {label} raised {module}.{qualname} when it was recorded, and that class is "
                "outside the allow-list, so it is not imported. If you trust it, pass "
                f"allowed_types=({module!r},) to the tool, or call "
                f"apirecorder.allow_types({module!r}).",
            ) from exc
    # Exception, not BaseException: a recording must never raise SystemExit or
    # KeyboardInterrupt into the test run.
    if not (isinstance(found, type) and issubclass(found, Exception)):
        raise UnsafeTypeError(
            recording.path,
            f"exception_data names {module}.{qualname}, which is not an Exception subclass",
        )
    return found


def rebuild_exception(recording: Recording, trusted: Sequence[str], label: str) -> BaseException:
    """The recorded exception as its own class, carrying the recorded message."""
    response = recording.response
    data = response.get("exception_data") or {}
    message = str(data.get("message") or response.get("exception_message") or "")
    cls = _exception_class(data, recording, trusted, label)
    args = decode_value(data["args"], recording.path, trusted) if "args" in data else [message]
    try:
        exc = cls(*args)
        if str(exc) == message:
            return exc
    except Exception:
        pass
    # The constructor takes something else than what it stores in ``args`` (say a timeout
    # that becomes a sentence): build the object without it and restore what was recorded.
    exc = cls.__new__(cls)
    exc.args = tuple(args)
    for key, value in (data.get("attributes") or {}).items():
        try:
            setattr(exc, key, value)
        except (AttributeError, TypeError):
            continue
    return exc


# -- one call: the adapter the record/replay flow drives ---------------------------------


class ToolAdapter(Adapter[Any]):
    """A tool call for the flow: values kept as their types, a generator's items in order.

    ``errors`` are recorded and raised again on replay; ``async_items`` says a recorded
    stream replays as an async generator when the recording does not say which kind it was.
    """

    def __init__(
        self,
        provider: str,
        trusted: Sequence[str] = (),
        errors: tuple[type[BaseException], ...] = (Exception,),
        *,
        async_items: bool = False,
        answers: tuple[type[Any], ...] = (),
    ) -> None:
        self.provider = provider
        self.trusted = tuple(trusted)
        #: The classes the tool's (non-streamed) answer must be, from its return annotation.
        self.answers = answers
        self.call_errors = self.stream_errors = errors
        self.async_items = async_items

    def replay(self, session: Session, recording: Recording, call: Call) -> Any:
        trusted = allowed_prefixes(recording.response, session.allowed_types, self.trusted)
        response = recording.response
        body = response.get("body")
        if response.get("is_streaming"):
            items = [decode_value(item, recording.path, trusted) for item in body or []]
            error = (
                rebuild_exception(recording, trusted, call.endpoint)
                if response.get("is_exception")
                else None
            )
            kind = response.get("generator") or ("async" if self.async_items else "sync")
            return areplay_items(items, error) if kind == "async" else replay_items(items, error)
        if response.get("is_exception"):
            raise rebuild_exception(recording, trusted, call.endpoint)
        return checked_answer(recording, decode_value(body, recording.path, trusted), self.answers)

    def is_stream(self, result: Any) -> bool:
        return isinstance(result, GeneratorType)

    def is_async_stream(self, result: Any) -> bool:
        return isinstance(result, AsyncGeneratorType)

    def _with_trust(self, response: ResponseRecord) -> ResponseRecord:
        # What this tool trusts is written down, so `apirecorder verify` (which has no tool)
        # judges the file's types by replay's rule (_serialization.allowed_prefixes).
        trusted = trust_to_record(self.trusted)
        if trusted:
            response["trusted_types"] = trusted
        return response

    def result_response(self, session: Session, call: Call, result: Any) -> ResponseRecord:
        if self.answers and not isinstance(result, self.answers):
            # Its replay will be refused (checked_answer): say so now, at the live call.
            warnings.warn(
                f"tool {call.endpoint} returned a {type(result).__qualname__}, not the "
                f"{' or '.join(c.__qualname__ for c in self.answers)} its return annotation "
                "names: its replay will be refused until the annotation says what it returns",
                stacklevel=2,
            )
        what = f"the value returned by tool {call.endpoint}"
        return self._with_trust({"body": encode_value(result, what), "is_streaming": False})

    def stream_response(
        self,
        session: Session,
        call: Call,
        result: Any,
        chunks: list[Any],
        error: BaseException | None,
    ) -> ResponseRecord:
        what = f"an item yielded by tool {call.endpoint}"
        if error is not None:
            response = exception_response(self.provider, error, chunks, what)
        else:
            response = {"body": [encode_value(item, what) for item in chunks], "is_streaming": True}
        response["generator"] = "async" if self.is_async_stream(result) else "sync"
        return self._with_trust(response)

    def error_response(self, session: Session, call: Call, exc: BaseException) -> ResponseRecord:
        what = f"the exception raised by tool {call.endpoint}"
        return self._with_trust(exception_response(self.provider, exc, None, what))

    def drained(
        self,
        session: Session,
        call: Call,
        result: Any,
        chunks: list[Any],
        error: BaseException | None,
        path: Path,
    ) -> Any:
        if self.is_async_stream(result):
            return areplay_items(chunks, error)
        return replay_items(chunks, error)


# -- wrapping a function ---------------------------------------------------------------------


def _default_name(fn: Callable[..., Any]) -> str:
    qualname = str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "tool"))
    return qualname.rpartition("<locals>.")[2]


class _Wrapper:
    """Builds the replacement of one tool function, of the same kind (sync, async, generator)."""

    def __init__(self, fn: Callable[..., Any], info: ToolInfo, base_trusted: Sequence[str]):
        self.fn = fn
        self.info = info
        self.signature = inspect.signature(fn)
        self._base_trusted = tuple(base_trusted)
        self._trusted: tuple[str, ...] | None = None
        self._answers: tuple[type[Any], ...] | None = None
        unknown = sorted(
            name
            for name in info.exclude
            if name not in self.signature.parameters
            and not any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in self.signature.parameters.values()
            )
        )
        if unknown:
            raise ValueError(
                f"tool {info.label}: exclude names {', '.join(map(repr, unknown))}, which "
                f"{'is' if len(unknown) == 1 else 'are'} not a parameter of "
                f"{_default_name(fn)}{self.signature}"
            )

    @property
    def trusted(self) -> tuple[str, ...]:
        # Annotations are read on first use: forward references resolve only after import.
        if self._trusted is None:
            self._trusted = tuple(
                dict.fromkeys((*self._base_trusted, *annotation_modules(self.fn)))
            )
        return self._trusted

    @property
    def answers(self) -> tuple[type[Any], ...]:
        if self._answers is None:
            self._answers = answer_classes(self.fn)
        return self._answers

    def prepare(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Session, Call] | None:
        session = active_session()
        if session is None or session.mode is Mode.LIVE:
            return None
        try:
            arguments = bind_arguments(self.signature, self.info, args, kwargs)
        except TypeError:
            return None  # the function itself raises the same TypeError, recorded or not
        return session, session.tool_call(self.info.provider, self.info.name, arguments)

    def run_sync(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], *, async_items: bool = False
    ) -> Any:
        prepared = self.prepare(args, kwargs)
        if prepared is None:
            return self.fn(*args, **kwargs)
        session, call = prepared
        adapter = ToolAdapter(
            self.info.provider, self.trusted, async_items=async_items, answers=self.answers
        )
        return replay_or_record(session, call, adapter, lambda: self.fn(*args, **kwargs))

    async def run_async(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        prepared = self.prepare(args, kwargs)
        if prepared is None:
            return await self.fn(*args, **kwargs)
        session, call = prepared
        adapter = ToolAdapter(
            self.info.provider, self.trusted, async_items=True, answers=self.answers
        )
        return await areplay_or_record(session, call, adapter, lambda: self.fn(*args, **kwargs))

    def build(self) -> Callable[..., Any]:
        fn = self.fn
        wrapper: Callable[..., Any]
        if inspect.isasyncgenfunction(fn):

            async def async_gen_wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                async for item in self.run_sync(args, kwargs, async_items=True):
                    yield item

            wrapper = async_gen_wrapper
        elif inspect.iscoroutinefunction(fn):

            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.run_async(args, kwargs)

            wrapper = async_wrapper
        elif inspect.isgeneratorfunction(fn):

            def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
                return (yield from self.run_sync(args, kwargs))

            wrapper = gen_wrapper
        else:

            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                return self.run_sync(args, kwargs)

            wrapper = sync_wrapper
        functools.update_wrapper(wrapper, fn)
        setattr(wrapper, _MARK, self.info)
        return wrapper


def wrap_tool(fn: Any, info: ToolInfo, trusted: Sequence[str]) -> Any:
    """Wrap ``fn`` (a function, staticmethod or classmethod) as a recorded tool."""
    if isinstance(fn, staticmethod | classmethod):
        return type(fn)(wrap_tool(fn.__func__, info, trusted))
    if getattr(fn, _MARK, None) is not None:
        return fn
    if not callable(fn):
        raise TypeError(f"tool {info.label}: {fn!r} is not callable")
    return _Wrapper(fn, info, trusted).build()


def tool(
    provider: str,
    name: str | None = None,
    *,
    exclude: Iterable[str] = (),
    allowed_types: Iterable[str] = (),
    allow_types: Iterable[str] | None = None,
) -> Callable[[F], F]:
    """Record and replay calls of the decorated function or method as tool calls.

    The key is ``provider``, ``name`` (default: the function's qualified name) and the
    arguments by parameter name, without ``self``/``cls`` and the ``exclude`` names (say a
    client object). Results may name classes from the function's own module, the modules of
    its annotated return type, the allow-list and ``allowed_types`` (the spelling of
    ``recording(allowed_types=...)``; ``allow_types=`` is its deprecated old name).
    """
    allowed_types = one_spelling(allowed_types, allow_types)

    def decorate(fn: F) -> F:
        target = fn.__func__ if isinstance(fn, staticmethod | classmethod) else fn
        info = ToolInfo(
            provider=provider,
            name=name or _default_name(target),
            exclude=frozenset(exclude),
            trusted=(),
        )
        trusted = (getattr(target, "__module__", None) or "__main__", *allowed_types)
        info.trusted = tuple(trusted)
        wrapped: F = wrap_tool(fn, info, trusted)
        return wrapped

    return decorate


def one_spelling(allowed_types: Iterable[str], allow_types: Iterable[str] | None) -> Iterable[str]:
    # ``allow_types=`` was the tools' own spelling of ``recording(allowed_types=...)``; it is
    # still read, with a warning, for one release.
    if allow_types is None:
        return allowed_types
    warnings.warn(
        "allow_types= is deprecated; pass allowed_types= (the spelling recording() uses)",
        DeprecationWarning,
        stacklevel=3,
    )
    return (*allowed_types, *allow_types)
