"""What a tool's annotations say about its recordings: the modules its answers may name, and
the class its answer must be.

A tool's recorded answer is rebuilt from allow-listed types only; when the function is
annotated to return a model or a dataclass, the rebuilt answer must also be one (a file
edited, merged badly or written for another tool hands back something else, silently,
otherwise). Annotations are read on first use: forward references resolve only after import.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

__all__ = ["annotation_modules", "answer_classes"]


def _return_annotation(fn: Callable[..., Any]) -> Any:
    try:
        return typing.get_type_hints(fn).get("return")
    except Exception:  # an unresolvable forward reference: the annotation as written
        return inspect.signature(fn).return_annotation


def annotation_modules(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The modules of the classes in ``fn``'s return annotation (``-> list[Hit]``: Hit's)."""
    modules: list[str] = []
    pending = [_return_annotation(fn)]
    while pending:
        current = pending.pop()
        if isinstance(current, type) and current.__module__ not in ("builtins", "typing"):
            modules.append(current.__module__)
        pending.extend(typing.get_args(current))
    return tuple(dict.fromkeys(modules))


def _checkable(cls: Any) -> bool:
    # Only classes whose instances are what the recording rebuilds: a model or a dataclass.
    # A builtin (``-> dict``, ``-> float`` that returns an int) says too little to refuse by.
    return isinstance(cls, type) and (
        dataclasses.is_dataclass(cls) or hasattr(cls, "model_validate")
    )


def answer_classes(fn: Callable[..., Any]) -> tuple[type[Any], ...]:
    """The classes ``fn``'s answer must be an instance of, from its return annotation:
    ``-> Forecast`` gives (Forecast,), ``-> Forecast | None`` (Forecast, NoneType); () when the
    annotation names no model or dataclass alone (no annotation, ``-> dict``, ``-> list[Hit]``,
    a generator), and then any answer is accepted."""
    annotation = _return_annotation(fn)
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        return ()
    if _checkable(annotation):
        return (annotation,)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
        classes = tuple(m for m in members if m is not type(None))
        if classes and all(_checkable(m) for m in classes):
            none = (type(None),) if len(classes) < len(members) else ()
            return (*classes, *none)
    return ()
