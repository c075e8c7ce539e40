"""The OpenAI SDK layer: chat, completions, embeddings, responses and model lists.

Patches the resource methods (``Completions.create`` and friends, sync and async), so a
call is recorded as its keyword arguments and replayed as the SDK's own objects, built
without validation the way the SDK builds them from the wire. Everything that touches
``openai``'s internals lives in this module.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

import httpx2
import openai
from openai._base_client import AsyncPaginator
from openai._compat import field_get_default, get_args, get_origin, is_union
from openai._models import FinalRequestOptions, construct_type
from openai._types import NotGiven, Omit
from openai._utils import extract_type_arg, is_annotated_type, is_type_alias_type
from openai.pagination import AsyncPage, SyncPage
from openai.types.model import Model
from pydantic import BaseModel, ValidationError

from .._flow import SdkAdapter, areplay_items, areplay_or_record, replay_items, replay_or_record
from .._recorder import Call, Session, active_session
from .._serialization import TypeBuilder
from .._storage import Recording

__all__ = ["build", "install"]

PROVIDER = "openai"

#: (module, sync class, async class, method, logical endpoint)
_CREATE_METHODS: tuple[tuple[str, str, str, str], ...] = (
    ("openai.resources.chat.completions.completions", "Completions", "AsyncCompletions",
     "/v1/chat/completions"),
    ("openai.resources.completions", "Completions", "AsyncCompletions", "/v1/completions"),
    ("openai.resources.embeddings", "Embeddings", "AsyncEmbeddings", "/v1/embeddings"),
    ("openai.resources.responses.responses", "Responses", "AsyncResponses", "/v1/responses"),
)  # fmt: skip
_MODELS_ENDPOINT = "/v1/models"

#: Keyword arguments that shape the transport, not the request body; never hashed or stored.
_TRANSPORT_KWARGS = frozenset({"extra_headers", "timeout"})


def build(cls: type[Any], data: Any) -> Any:
    """An OpenAI object from recorded data, as the SDK builds it from the wire."""
    # The SDK builds objects from the wire with construct_type, in pure Python: about 60 µs
    # for one stream chunk. pydantic-core's strict validation builds them about 8x faster.
    # Strict mode coerces nothing, so when it accepts the data it lands on the same values of
    # the same types; _as_constructed then makes the few places where construct_type's
    # semantics differ from pydantic's match, or sends the data the SDK's own way.
    # benchmarks/fidelity.py checks the result against construct_type object by object.
    plan = _plan(cls) if isinstance(data, dict) else None
    if plan is not None:
        try:
            # model_validate(data, strict=True) without its Python wrapper (one per object).
            built = plan.validate(data, strict=True)
        except ValidationError:
            pass
        else:
            if _as_constructed(built, plan):
                return built
    return construct_type(type_=cls, value=data)


# How to walk a field's value to reach the models construct_type builds itself (not through
# pydantic): None for nothing to walk, ("model", class), ("list", walk) or ("dict", walk).
_Walk = tuple[str, Any] | None


class _Plan:
    """What construct_type would do differently from pydantic for one model class."""

    def __init__(
        self,
        names: frozenset[str],
        steps: tuple[tuple[str, _Walk, bool], ...],
        validate: Callable[..., Any],
    ):
        self.names = names  # field names: an extra key with one of these is ambiguous
        self.steps = steps  # (field, walk, whether a None there means "use the default")
        self.validate = validate  # the class's pydantic-core validate_python


_plans: dict[type[Any], _Plan | None] = {}


def _plan(cls: type[Any]) -> _Plan | None:
    """The plan of ``cls``, or None when it must always be built with construct_type."""
    try:
        return _plans[cls]
    except KeyError:
        pass
    plan: _Plan | None = None
    try:
        if isinstance(cls, type) and issubclass(cls, BaseModel) and _extras_type(cls) is None:
            steps = []
            for name, field in cls.model_fields.items():
                walk = _walk_for(field.annotation, field.metadata)
                # construct_type turns a recorded null into the field's default.
                none_means_default = field_get_default(field) is not None
                if walk is not None or none_means_default:
                    steps.append((name, walk, none_means_default))
            plan = _Plan(
                frozenset(cls.model_fields),
                tuple(steps),
                cls.__pydantic_validator__.validate_python,
            )
    except Exception:  # a class pydantic cannot describe: the SDK's road only
        plan = None
    _plans[cls] = plan
    return plan


def _extras_type(cls: type[BaseModel]) -> Any:
    schema: Any = cls.__pydantic_core_schema__
    fields = schema.get("schema", {}) if schema.get("type") == "model" else {}
    return fields.get("extras_schema")


def _walk_for(annotation: Any, metadata: list[Any] | None = None) -> _Walk:
    # Mirrors the dispatch of openai._models.construct_type.
    if is_type_alias_type(annotation):
        annotation = annotation.__value__
    if not metadata and is_annotated_type(annotation):
        annotation = extract_type_arg(annotation, 0)
    origin = get_origin(annotation) or annotation
    args = get_args(annotation)
    if is_union(origin):
        return None  # construct_type validates unions with pydantic: nothing to undo below
    if origin is dict:
        inner = _walk_for(args[1]) if len(args) > 1 else None
        return ("dict", inner) if inner is not None else None
    if isinstance(origin, type) and issubclass(origin, BaseModel):
        return ("model", origin)
    if origin is list:
        inner = _walk_for(args[0]) if args else None
        return ("list", inner) if inner is not None else None
    return None


def _as_constructed(model: BaseModel, plan: _Plan) -> bool:
    """Make a validated model what construct_type builds; False when it cannot be."""
    extra = model.__pydantic_extra__
    if extra:
        if not plan.names.isdisjoint(extra):
            return False
        # pydantic counts extra keys as set; construct_type does not.
        model.__pydantic_fields_set__.difference_update(extra)
    values = model.__dict__
    for name, walk, none_means_default in plan.steps:
        value = values[name]
        if value is None:
            if none_means_default:
                return False
        elif walk is not None and not _walk_value(value, walk):
            return False
    return True


def _walk_value(value: Any, walk: tuple[str, Any]) -> bool:
    kind, inner = walk
    if kind == "model":
        if not isinstance(value, BaseModel):
            return True
        cls = type(value)
        plan = _plans[cls] if cls in _plans else _plan(cls)
        return plan is not None and _as_constructed(value, plan)
    items = value if kind == "list" else value.values() if isinstance(value, dict) else ()
    return all(_walk_value(item, inner) for item in items if item is not None)


def install(stack: ExitStack) -> None:
    """Patch the OpenAI resources for as long as ``stack`` stays open."""
    for module_name, sync_name, async_name, endpoint in _CREATE_METHODS:
        module = importlib.import_module(module_name)
        sync_cls, async_cls = getattr(module, sync_name), getattr(module, async_name)
        stack.enter_context(
            mock.patch.object(sync_cls, "create", _sync_create(sync_cls.create, endpoint))
        )
        stack.enter_context(
            mock.patch.object(async_cls, "create", _async_create(async_cls.create, endpoint))
        )
    models = importlib.import_module("openai.resources.models")
    stack.enter_context(mock.patch.object(models.Models, "list", _sync_list(models.Models.list)))
    stack.enter_context(
        mock.patch.object(models.AsyncModels, "list", _async_list(models.AsyncModels.list))
    )


# -- describing a call ------------------------------------------------------------------


def _intercepts(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    if args:
        return False
    headers = kwargs.get("extra_headers")
    if not headers:
        return True
    # with_raw_response / with_streaming_response want the HTTP response itself: leave those
    # to the HTTP layer, which records the exchange as it was.
    return not any(str(k).lower() == "x-stainless-raw-response" for k in headers)


#: Types of argument that are neither iterators nor the SDK's NOT_GIVEN/omit sentinels.
_PLAIN = frozenset({str, bytes, int, float, bool, type(None), list, dict, tuple})


def _materialize(kwargs: dict[str, Any]) -> dict[str, Any]:
    # A one-shot iterator (say, a generator of messages) is read once for the hash, so the
    # live call gets the same items as a list.
    for value in kwargs.values():
        # Plain values first: an isinstance against the Iterator ABC costs more.
        if type(value) not in _PLAIN and isinstance(value, Iterator):
            break
    else:
        return kwargs  # the usual case: nothing to read, no copy
    return {
        key: list(value)
        if isinstance(value, Iterator) and not isinstance(value, str | bytes)
        else value
        for key, value in kwargs.items()
    }


_last_url: tuple[Any, str] = (None, "")  # the last base URL object seen, and its text
#: Client classes whose ``base_url`` property hands back the client's ``_base_url`` object:
#: read directly, since the SDK's property imports a module on every read.
_plain_base_url: dict[type[Any], bool] = {}


def _base_url(client: Any) -> str:
    # Turning an httpx URL into text costs more than the rest of describing a call; a client
    # keeps the same URL object (it is immutable, a new base_url is a new object). One tuple,
    # replaced whole, so threads never pair one URL with another's text.
    global _last_url
    cls = type(client)
    plain = _plain_base_url.get(cls)
    if plain is None:
        plain = _plain_base_url[cls] = client.base_url is getattr(client, "_base_url", None)
    url = client._base_url if plain else client.base_url
    last = _last_url
    if url is last[0]:
        return last[1]
    text = str(url)
    _last_url = (url, text)
    return text


def _call(session: Session, resource: Any, endpoint: str, kwargs: dict[str, Any]) -> Call:
    # One pass over the arguments: the body (made JSON by the session, in the same walk that
    # masks secrets and maps ids) and the transport arguments, neither NOT_GIVEN nor omit.
    body: dict[str, Any] = {}
    transport: dict[str, Any] = {}
    for key, value in kwargs.items():
        if type(value) not in _PLAIN and isinstance(value, NotGiven | Omit):
            continue
        if key in _TRANSPORT_KWARGS:
            transport[key] = value
        else:
            body[key] = value
    return session.inference_call(
        base_url=_base_url(resource._client),
        endpoint=endpoint,
        body=body,
        transport=transport,
    )


# -- replaying --------------------------------------------------------------------------


def _request(call: Call) -> httpx2.Request:
    return httpx2.Request(str(call.request.get("method", "POST")), str(call.request.get("url", "")))


def _rebuild_exception(recording: Recording, call: Call) -> openai.OpenAIError:
    response = recording.response
    data = response.get("exception_data") or {}
    message = str(data.get("message") or response.get("exception_message") or "")
    status = data.get("status_code")
    body = data.get("body")
    found = getattr(openai, str(data.get("type")), None)
    cls: type[openai.OpenAIError]
    if isinstance(found, type) and issubclass(found, openai.OpenAIError):
        cls = found
    else:
        cls = openai.APIStatusError if status is not None else openai.APIError
    request = _request(call)
    if issubclass(cls, openai.APIStatusError):
        http_response = httpx2.Response(
            int(status or 500),
            request=request,
            json={"error": body} if body is not None else None,
        )
        return cls(message, response=http_response, body=body)
    if issubclass(cls, openai.APITimeoutError):
        return cls(request=request)
    if issubclass(cls, openai.APIConnectionError):
        return cls(message=message, request=request)
    if issubclass(cls, openai.APIError):
        return cls(message, request, body=body)
    return cls(message)


def _event_stream_response(call: Call) -> httpx2.Response:
    return httpx2.Response(
        200, request=_request(call), headers={"content-type": "text/event-stream"}, content=b""
    )


class _ReplayedResponse:
    """What both replayed streams share: the recorded items, and the HTTP response a stream
    carries, built only when code asks for it (building an ``httpx2.Response`` costs more than
    replaying a short stream, and most code never looks at ``stream.response``).
    """

    _call: Call | None
    _response: httpx2.Response | None
    _items: Iterable[Any]
    _error: BaseException | None
    _options: Any

    def __init__(
        self,
        items: Iterable[Any],
        error: BaseException | None,
        *,
        call: Call | None = None,
        response: httpx2.Response | None = None,
    ) -> None:
        self._call = call
        self._response = response
        self._items = items
        self._error = error
        self._options = None
        self._iterator = self.__stream__()

    def __stream__(self) -> Any:  # each stream class yields its items its own way
        raise NotImplementedError

    @property
    def response(self) -> httpx2.Response:
        if self._response is None:
            assert self._call is not None
            self._response = _event_stream_response(self._call)
        return self._response

    @response.setter
    def response(self, value: httpx2.Response) -> None:
        self._response = value


class ReplayStream(_ReplayedResponse, openai.Stream[Any]):
    """A replayed ``openai.Stream``: yields the recorded chunks, then any recorded error."""

    def __stream__(self) -> Iterator[Any]:
        return replay_items(self._items, self._error)

    def close(self) -> None:
        if self._response is not None:
            self._response.close()


class AsyncReplayStream(_ReplayedResponse, openai.AsyncStream[Any]):
    """A replayed ``openai.AsyncStream``: yields the recorded chunks, then any recorded error."""

    def __stream__(self) -> AsyncIterator[Any]:
        return areplay_items(self._items, self._error)

    async def close(self) -> None:
        if self._response is not None:
            await self._response.aclose()


class _OpenAIAdapter(SdkAdapter[Any]):
    """``create`` of every resource: one object, or an ``openai.Stream`` of chunks."""

    provider = PROVIDER
    call_errors = stream_errors = (openai.OpenAIError,)

    def builder(self) -> TypeBuilder:
        return build

    def answer_types(self, call: Call) -> tuple[type[Any], ...]:
        body = call.request.get("body")
        streams = isinstance(body, dict) and body.get("stream") is True
        return _ANSWERS.get((call.endpoint, streams), ())

    def rebuild_error(self, recording: Recording, call: Call) -> BaseException:
        return _rebuild_exception(recording, call)

    def is_stream(self, result: Any) -> bool:
        return isinstance(result, openai.Stream)

    def is_async_stream(self, result: Any) -> bool:
        return isinstance(result, openai.AsyncStream)

    def close(self, result: Any) -> None:
        result.close()

    async def aclose(self, result: Any) -> None:
        await result.close()

    def stream(
        self, call: Call, items: Iterable[Any], error: BaseException | None, live: Any | None
    ) -> Any:
        stream_cls = AsyncReplayStream if self.is_async else ReplayStream
        if live is None:
            return stream_cls(items, error, call=call)
        return stream_cls(items, error, response=live.response)


#: (endpoint, streamed) -> the classes its answer (each chunk) is; a Responses stream yields
#: a union of event classes, each an openai model.
_ANSWERS: dict[tuple[str, bool], tuple[type[Any], ...]] = {
    ("/v1/chat/completions", False): (openai.types.chat.ChatCompletion,),
    ("/v1/chat/completions", True): (openai.types.chat.ChatCompletionChunk,),
    ("/v1/completions", False): (openai.types.Completion,),
    ("/v1/completions", True): (openai.types.Completion,),
    ("/v1/embeddings", False): (openai.types.CreateEmbeddingResponse,),
    ("/v1/responses", False): (openai.types.responses.Response,),
    ("/v1/responses", True): (openai.BaseModel,),
    (_MODELS_ENDPOINT, False): (Model,),
}

_SYNC = _OpenAIAdapter(is_async=False)
_ASYNC = _OpenAIAdapter(is_async=True)


# -- the patched methods ----------------------------------------------------------------


@functools.cache  # one wrapper per original: install() runs every session
def _sync_create(original: Callable[..., Any], endpoint: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        session = active_session()
        if session is None or not _intercepts(args, kwargs):
            return original(self, *args, **kwargs)
        kwargs = _materialize(kwargs)
        call = _call(session, self, endpoint, kwargs)
        return replay_or_record(session, call, _SYNC, lambda: original(self, **kwargs))

    return create


@functools.cache  # one wrapper per original: install() runs every session
def _async_create(original: Callable[..., Any], endpoint: str) -> Callable[..., Any]:
    @functools.wraps(original)
    async def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        session = active_session()
        if session is None or not _intercepts(args, kwargs):
            return await original(self, *args, **kwargs)
        kwargs = _materialize(kwargs)
        call = _call(session, self, endpoint, kwargs)
        return await areplay_or_record(session, call, _ASYNC, lambda: original(self, **kwargs))

    return create


# -- model lists ------------------------------------------------------------------------


def _page_options() -> FinalRequestOptions:
    return FinalRequestOptions.construct(method="get", url="/models")


def _sync_page(resource: Any, models: list[Any]) -> SyncPage[Model]:
    page: SyncPage[Model] = SyncPage[Model].construct(data=models, object="list")
    page._set_private_attributes(client=resource._client, model=Model, options=_page_options())
    return page


def _async_page(resource: Any, models: list[Any]) -> AsyncPage[Model]:
    page: AsyncPage[Model] = AsyncPage[Model].construct(data=models, object="list")
    page._set_private_attributes(client=resource._client, model=Model, options=_page_options())
    return page


class _ModelsAdapter(_OpenAIAdapter):
    """``models.list()``: the models read live (every page), handed back as one page."""

    answers_list = True

    def __init__(self, resource: Any, *, is_async: bool) -> None:
        super().__init__(is_async=is_async)
        self.resource = resource

    def _page(self, models: list[Any]) -> Any:
        return (_async_page if self.is_async else _sync_page)(self.resource, models)

    def answer(self, value: Any) -> Any:
        return self._page(list(value) if isinstance(value, list) else [])

    def recorded(self, session: Session, call: Call, result: Any, path: Path) -> Any:
        return self._page(result)


@functools.cache  # one wrapper per original: install() runs every session
def _sync_list(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def list_models(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        session = active_session()
        if session is None or not _intercepts(args, kwargs):
            return original(self, *args, **kwargs)
        call = _call(session, self, _MODELS_ENDPOINT, kwargs)
        adapter = _ModelsAdapter(self, is_async=False)
        # Every page is read inside the flow's marker, so the HTTP layer leaves them alone.
        return replay_or_record(session, call, adapter, lambda: list(original(self, **kwargs)))

    return list_models


async def _collect(pages: Any) -> list[Any]:
    return [model async for model in pages]


class _ReplayPaginator(AsyncPaginator[Any, AsyncPage[Model]]):
    """``AsyncModels.list()`` under a recording: awaitable to a page, and async-iterable."""

    def __init__(self, resource: Any, original: Callable[..., Any], kwargs: dict[str, Any]):
        self._resource = resource
        self._original = original
        self._kwargs = kwargs

    async def _get_page(self) -> AsyncPage[Model]:
        session = active_session()
        original, resource, kwargs = self._original, self._resource, self._kwargs
        if session is None:
            page: AsyncPage[Model] = await original(resource, **kwargs)
            return page
        call = _call(session, resource, _MODELS_ENDPOINT, kwargs)
        adapter = _ModelsAdapter(resource, is_async=True)
        replayed: AsyncPage[Model] = await areplay_or_record(
            session, call, adapter, lambda: _collect(original(resource, **kwargs))
        )
        return replayed


@functools.cache  # one wrapper per original: install() runs every session
def _async_list(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def list_models(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        session = active_session()
        if session is None or not _intercepts(args, kwargs):
            return original(self, *args, **kwargs)
        return _ReplayPaginator(self, original, kwargs)

    return list_models
