"""Typed values to JSON and back, importing classes only from an allow-list of modules.

A pydantic model is written as ``{"__type__": "<module>.<qualname>", "__data__": <json>}``,
the data holding the fields it carries (``exclude_unset``), so it rebuilds with the same
``model_fields_set``; a dataclass the same way; plain JSON values as they are. Reading
resolves ``__type__`` only when its module lies under an allowed prefix, so a recording is
always data, never code.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._exceptions import RecordingFormatError, SerializationError, UnsafeTypeError

__all__ = [
    "DEFAULT_ALLOWED_PREFIXES",
    "TRUSTED_TYPES_KEY",
    "TypeBuilder",
    "allow_types",
    "allowed_prefixes",
    "from_json",
    "is_allowed",
    "normalize_response_data",
    "resolve_type",
    "to_json",
    "trust_to_record",
    "type_name",
]

#: Modules whose classes a recording may name, before any user registration.
DEFAULT_ALLOWED_PREFIXES: tuple[str, ...] = (
    "anthropic.types",
    "mcp.types",
    "mcp_types",
    "ollama._types",
    "openai.types",
)

#: Builds an instance of ``cls`` from recorded JSON data.
TypeBuilder = Callable[[type[Any], Any], Any]

_lock = threading.Lock()
_allowed: set[str] = set(DEFAULT_ALLOWED_PREFIXES)
# type path -> (its module object, the class); the module check notices a re-import.
_resolved: dict[str, tuple[Any, type[Any]]] = {}
# Answers of is_allowed, asked once per replayed object (every stream chunk); emptied
# whenever the allow-list changes.
_allowed_answers: dict[tuple[str, tuple[str, ...]], bool] = {}
_MAX_ANSWERS = 4096


def allow_types(*prefixes: str) -> None:
    """Let recordings name classes from these modules (and their submodules)."""
    with _lock:
        for prefix in prefixes:
            _allowed.add(prefix.rstrip("."))
        _allowed_answers.clear()


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def is_allowed(type_path: str, extra: Iterable[str] = ()) -> bool:
    """Tell whether ``type_path`` ("module.Qualname") may be imported."""
    key = (type_path, extra) if isinstance(extra, tuple) else None
    if key is not None:
        known = _allowed_answers.get(key)
        if known is not None:
            return known
    module = _split(type_path)[0]
    with _lock:  # so an answer never outlives a change of the allow-list
        allowed = any(_under(module, p) for p in (*_allowed, *extra))
        if key is not None:
            if len(_allowed_answers) >= _MAX_ANSWERS:
                _allowed_answers.clear()
            _allowed_answers[key] = allowed
    return allowed


#: The response key of a tool recording that names the modules its tool trusted beyond the
#: allow-list (its own module, its return annotation's, its ``allow_types``).
TRUSTED_TYPES_KEY = "trusted_types"


def trust_to_record(trusted: Iterable[str]) -> list[str]:
    """The prefixes a tool trusts that the default allow-list does not cover, as its recording
    lists them (not what a run registered, so re-recording writes the same bytes)."""
    return [
        p for p in dict.fromkeys(trusted) if not any(_under(p, c) for c in DEFAULT_ALLOWED_PREFIXES)
    ]


def allowed_prefixes(
    response: Mapping[str, Any], extra: Iterable[str] = (), tool: Iterable[str] | None = None
) -> tuple[str, ...]:
    """The prefixes a recording's ``__type__`` values may come from besides the allow-list.

    The one rule of replay and ``verify``: ``extra`` (the user's ``allow_types``) and the
    modules the recording's tool trusts. Replay passes the tool's own list (``tool``: the code
    decides what is imported); ``verify``, which has no tool, reads the list written when the
    recording was made from that same tool.
    """
    if tool is None:
        written = response.get(TRUSTED_TYPES_KEY)
        tool = [p for p in written if isinstance(p, str) and p] if isinstance(written, list) else ()
    return tuple(dict.fromkeys((*tool, *extra)))


def type_name(obj: Any) -> str:
    """Return the ``__type__`` string of an object's class."""
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _split(type_path: str) -> tuple[str, str]:
    # The qualname has no dots for the classes we store; nested classes are looked up
    # by trying the longest importable module prefix.
    module, _, qualname = type_path.rpartition(".")
    return module, qualname


def _shown(type_path: object) -> str:
    # A message names the value, not 100,000 characters of it.
    text = repr(type_path)
    return text if len(text) <= 200 else f"{text[:200]}... ({len(text)} characters)"


def resolve_type(type_path: str, *, source: object = None, extra: Iterable[str] = ()) -> type[Any]:
    """Import and return the class ``type_path`` names, refusing anything outside the allow-list."""
    # The allow-list is checked before the cache: a class another session allowed is not
    # allowed here unless this session allows it too.
    if not isinstance(type_path, str) or not type_path or not is_allowed(type_path, extra):
        raise UnsafeTypeError(
            source if isinstance(source, str) or source is None else str(source),
            f"__type__ {_shown(type_path)} is not in the allow-list of importable modules; "
            "nothing was imported. If you trust this recording, allow its module with "
            "apirecorder.allow_types('<module prefix>').",
        )
    cached = _resolved.get(type_path)
    if cached is not None and sys.modules.get(cached[1].__module__) is cached[0]:
        return cached[1]
    parts = type_path.split(".")
    obj: Any = None
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        if not any(_under(module_name, p) for p in (*_allowed, *extra)):
            break
        try:
            obj = sys.modules.get(module_name) or importlib.import_module(module_name)
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            obj = None
            continue
        break
    if not isinstance(obj, type):
        raise UnsafeTypeError(
            str(source) if source is not None else None,
            f"__type__ {_shown(type_path)} does not name a class that can be imported here "
            "(is the library that defines it installed?)",
        )
    if not any(_under(obj.__module__, p) for p in (*_allowed, *extra)):
        # Reached through an allowed module (an import, an attribute such as __class__),
        # but defined outside the allow-list.
        raise UnsafeTypeError(
            str(source) if source is not None else None,
            f"__type__ {_shown(type_path)} resolves to {obj.__module__}.{obj.__qualname__}, "
            "which is outside the allow-list of importable modules",
        )
    _resolved[type_path] = (sys.modules.get(obj.__module__), obj)
    return obj


_ID_PREFIX = re.compile(r"^[A-Za-z]+[_-]")
# What a provider-made id looks like: a short word, "_" or "-", then a random-looking tail
# with at least one digit ("call_psji79pf", "msg_8dc87511...", "chatcmpl-9x..."). Other
# strings under *_id keys are the application's own data and are never rewritten.
_PROVIDER_ID = re.compile(r"[A-Za-z]+[_-](?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{6,}")
# Fields that hold the caller's own data, echoed back by the provider.
_USER_DATA_FIELDS = frozenset(
    {"metadata", "user", "safety_identifier", "prompt_cache_key", "custom_id"}
)
#: Top-level keys that hold the response's own id under another name (Gemini's REST API).
_TOP_ID_ALIASES = ("responseId",)
_NESTED_TIMES = ("created", "created_at", "completed_at")


def normalize_response_data(
    data: Any, request_hash: str, id_map: dict[str, str] | None = None
) -> Any:
    """Make volatile response fields stable so re-recording gives a clean diff.

    At the top level (DESIGN 6): ``id`` becomes ``rec-<hash[:12]>`` and ``created`` 0 unless
    the object is a model; ``created_at`` becomes the epoch; Ollama durations become 0. An id
    this session already rewrote keeps the stable id it got first (a retrieved or polled
    object is the one created before), and Gemini's ``responseId`` is an ``id``.
    Below it, provider-made ids (``id`` and ``*_id`` strings shaped like ``call_x7k2...``,
    never the caller's ``metadata``) become ``<prefix>rec-<hash[:12]>-<n>``, and numeric
    timestamps 0. ``id_map`` collects live id -> stable id, so a later request that
    sends a live id back can be hashed with the stable one that replay will hand out.
    """
    if not isinstance(data, dict):
        return data
    ids = id_map if id_map is not None else {}
    stable_top = f"rec-{request_hash[:12]}"
    if data.get("object") != "model":
        for key in ("id", *_TOP_ID_ALIASES):
            live = data.get(key)
            if isinstance(live, str):
                data[key] = ids.setdefault(live, stable_top)
            elif key == "id" and key in data:
                data[key] = stable_top
        if data.get("created") is not None:
            data["created"] = 0
    if data.get("created_at") is not None:
        # A null stays null: replay must give back what the live call gave.
        # Ollama sends a timestamp string; OpenAI's Responses API a number of seconds.
        # Keep the field's JSON type so the replayed object still fits its declared type.
        numeric = isinstance(data["created_at"], int | float) and data["created_at"] is not True
        data["created_at"] = 0 if numeric else "1970-01-01T00:00:00.000000Z"
    for field in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        if data.get(field) is not None:
            data[field] = 0
    counter = [sum(1 for v in ids.values() if v.startswith(_stable_stem(request_hash)))]
    top = ("id", "created", "created_at", *_TOP_ID_ALIASES)
    rest = {k: v for k, v in data.items() if k not in top}
    data.update(_normalize_fields(rest, request_hash, ids, counter))
    return data


def _stable_stem(request_hash: str) -> str:
    return f"rec-{request_hash[:12]}-"


def _normalize_nested(
    value: Any, request_hash: str, ids: dict[str, str], counter: list[int]
) -> Any:
    if isinstance(value, list):
        return [_normalize_nested(item, request_hash, ids, counter) for item in value]
    if not isinstance(value, dict) or value.get("object") == "model":
        return value
    return _normalize_fields(value, request_hash, ids, counter)


def _normalize_fields(
    value: dict[str, Any], request_hash: str, ids: dict[str, str], counter: list[int]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in _USER_DATA_FIELDS:
            out[key] = item
        elif (
            (key == "id" or key.endswith("_id"))
            and isinstance(item, str)
            and (item in ids or _PROVIDER_ID.fullmatch(item))
        ):
            stable = ids.get(item)
            if stable is None and "rec-" not in item:
                counter[0] += 1
                match = _ID_PREFIX.match(item)
                prefix = match.group(0) if match else ""
                stable = f"{prefix}{_stable_stem(request_hash)}{counter[0]}"
                ids[item] = stable
            out[key] = stable or item
        elif key in _NESTED_TIMES and isinstance(item, int | float) and item is not True:
            out[key] = 0
        else:
            out[key] = _normalize_nested(item, request_hash, ids, counter)
    return out


def _model_data(value: Any) -> Any:
    # Only the fields the object carries (those the wire held): rebuilt from them, the
    # replayed object has the live one's model_fields_set at every level, so what the
    # application sends back (an SDK serializes with exclude_unset) is what it sent live.
    # The default by_alias=False keeps both keys of a field whose alias also came in as an
    # extra (openai's ``async_`` and ``async``), as the live object holds them.
    return value.model_dump(mode="json", exclude_unset=True)


def to_json(
    value: Any, request_hash: str | None = None, id_map: dict[str, str] | None = None
) -> Any:
    """Turn one response value into JSON, normalizing typed objects when a hash is given."""
    if hasattr(value, "model_dump") and hasattr(type(value), "model_fields"):
        data = _model_data(value)
        if request_hash is not None:
            data = normalize_response_data(data, request_hash, id_map)
        return {"__type__": type_name(value), "__data__": data}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Field by field, not dataclasses.asdict: nested dataclasses and models keep their types.
        data = {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"__type__": type_name(value), "__data__": data}
    return _plain(value)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SerializationError(f"dict key {key!r} is not a string")
            out[key] = to_json(item)
        return out
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    raise SerializationError(
        f"a value of type {type(value).__name__} cannot be stored in a recording as JSON"
    )


def _default_builder(cls: type[Any], data: Any) -> Any:
    if dataclasses.is_dataclass(cls):
        return cls(**data)
    validate = getattr(cls, "model_validate", None)
    if validate is None:
        raise TypeError(f"{cls.__qualname__} is neither a pydantic model nor a dataclass")
    try:
        return validate(data)
    except Exception:
        # A live call can return data that breaks the declared types; replay must not fail
        # where the live call did not, so build the object without validation.
        return cls.model_construct(**data)


def _build_dataclass(
    cls: type[Any],
    data: dict[str, Any],
    source: object,
    extra: tuple[str, ...],
    build: TypeBuilder,
) -> Any:
    # Fields are rebuilt first (they may hold typed values); init=False fields are set after.
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {
        key: _from_json(item, source, extra, build) for key, item in data.items() if key in fields
    }
    obj = cls(**{key: item for key, item in values.items() if fields[key].init})
    for key, item in values.items():
        if not fields[key].init:
            object.__setattr__(obj, key, item)
    return obj


def from_json(
    value: Any,
    *,
    source: object = None,
    extra: Iterable[str] = (),
    build: TypeBuilder | None = None,
) -> Any:
    """Rebuild a value written by :func:`to_json`; typed objects become their classes again.

    ``build`` makes the models (the interceptor that replays passes its library's way of
    building them from the wire); without it models are validated, else constructed.
    """
    try:
        return _from_json(value, source, tuple(extra), build or _default_builder)
    except RecursionError as exc:
        raise RecordingFormatError(
            str(source) if source is not None else None,
            "the recorded value is nested too deeply to rebuild",
        ) from exc


#: cls -> (is it a dataclass, can a recorded value be one), asked for every replayed object.
_class_kinds: dict[type[Any], tuple[bool, bool]] = {}


def _class_kind(cls: type[Any]) -> tuple[bool, bool]:
    known = _class_kinds.get(cls)
    if known is None:
        # A TypedDict or a typing alias is a class too, but isinstance refuses it (TypeError)
        # and no builder makes one: only a model or a dataclass is written as a typed value.
        is_dataclass = dataclasses.is_dataclass(cls)
        buildable = is_dataclass or (
            hasattr(cls, "model_validate") and hasattr(cls, "model_fields")
        )
        known = _class_kinds[cls] = (is_dataclass, buildable)
    return known


def _from_json(value: Any, source: object, extra: tuple[str, ...], build: TypeBuilder) -> Any:
    if isinstance(value, dict):
        type_path = value.get("__type__")
        if type_path is not None and "__data__" in value:
            cls = resolve_type(type_path, source=source, extra=extra)
            is_dataclass, buildable = _class_kind(cls)
            if not buildable:
                raise RecordingFormatError(
                    str(source) if source is not None else None,
                    f"__type__ {_shown(type_path)} is not a pydantic model or a dataclass (a "
                    "TypedDict, an alias?), so no recorded value can be one; re-record this file",
                )
            try:
                if is_dataclass and isinstance(value["__data__"], dict):
                    built = _build_dataclass(cls, value["__data__"], source, extra, build)
                else:
                    built = build(cls, value["__data__"])
            except Exception as exc:
                raise RecordingFormatError(
                    str(source) if source is not None else None,
                    f"cannot build {type_path} from its recorded __data__: {exc}",
                ) from exc
            if not isinstance(built, cls):
                raise RecordingFormatError(
                    str(source) if source is not None else None,
                    f"cannot build {type_path} from its recorded __data__: it is a "
                    f"{type(value['__data__']).__name__}, not the object the class needs",
                )
            return built
        return {key: _from_json(item, source, extra, build) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item, source, extra, build) for item in value]
    return value
