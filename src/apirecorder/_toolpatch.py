"""Tools recorded from outside their code: ``patch_tool`` wraps a function you cannot
decorate for the length of a ``with`` block; ``patch_tools`` does so for the tool specs a
``recording(tools=...)`` block names."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from types import TracebackType
from typing import Any

from ._tools import ToolInfo, one_spelling, wrap_tool

__all__ = ["ToolSpec", "parse_tool_spec", "patch_tool", "patch_tools"]

#: One tool to patch: "package.module:Class.method provider [name]", or that as a tuple.
ToolSpec = str | tuple[str, ...]


class _ToolPatch(AbstractContextManager[None]):
    """``patch_tool``'s context manager: the target is wrapped inside the block only."""

    def __init__(
        self,
        target: str,
        provider: str,
        name: str | None,
        exclude: Iterable[str],
        allowed_types: Iterable[str],
    ) -> None:
        module_name, sep, attribute = target.partition(":")
        if not sep or not module_name or not attribute:
            raise ValueError(
                f"patch_tool target {target!r} must look like 'package.module:Class.method' "
                "or 'package.module:function'"
            )
        self.target = target
        self.module_name = module_name
        self.attribute = attribute
        self.provider = provider
        self.name = name or attribute
        self.exclude = frozenset(exclude)
        self.allowed_types = tuple(allowed_types)
        self._patcher: Any = None

    def _owner_and_original(self) -> tuple[Any, str, Any]:
        try:
            owner: Any = importlib.import_module(self.module_name)
        except ImportError as exc:
            raise ValueError(
                f"patch_tool target {self.target!r}: cannot import {self.module_name!r} ({exc})"
            ) from exc
        *path, last = self.attribute.split(".")
        try:
            for part in path:
                owner = getattr(owner, part)
            original = inspect.getattr_static(owner, last)
        except AttributeError as exc:
            raise ValueError(
                f"patch_tool target {self.target!r}: {self.module_name} has no {self.attribute}"
            ) from exc
        return owner, last, original

    def __enter__(self) -> None:
        owner, last, original = self._owner_and_original()
        info = ToolInfo(self.provider, self.name, self.exclude, ())
        # The user named this package, so its classes (results, errors) are trusted.
        trusted = (self.module_name.split(".")[0], *self.allowed_types)
        info.trusted = trusted
        replacement = wrap_tool(original, info, trusted)
        if replacement is original:
            return  # already recorded: an outer recording() or patch_tool wraps it
        from unittest import mock  # when a tool is patched: unittest.mock imports asyncio

        self._patcher = mock.patch.object(owner, last, replacement)
        self._patcher.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        patcher, self._patcher = self._patcher, None
        if patcher is not None:
            patcher.__exit__(exc_type, exc, tb)


def patch_tool(
    target: str,
    provider: str,
    name: str | None = None,
    *,
    exclude: Iterable[str] = (),
    allowed_types: Iterable[str] = (),
    allow_types: Iterable[str] | None = None,
) -> AbstractContextManager[None]:
    """Record the calls of a function you cannot decorate, inside a ``with`` block.

    ``target`` is ``"package.module:Class.method"`` or ``"package.module:function"``; the
    tool name defaults to the part after the colon. Classes of the target's top-level package
    are trusted in its recordings. Code that imported a module-level function by name before
    the block keeps the original: patch where it is looked up.
    """
    allowed_types = one_spelling(allowed_types, allow_types)
    return _ToolPatch(target, provider, name, exclude, allowed_types)


def parse_tool_spec(spec: ToolSpec) -> tuple[str, str, str | None]:
    """``(target, provider, name)`` from ``"target provider [name]"`` or a tuple of those."""
    parts = tuple(spec.split()) if isinstance(spec, str) else tuple(spec)
    if len(parts) not in (2, 3) or not all(isinstance(p, str) and p for p in parts):
        raise ValueError(
            f"tool spec {spec!r} must be 'package.module:Class.method provider [name]' "
            "(for example 'tavily:TavilyClient.search tavily web_search')"
        )
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


@contextmanager
def patch_tools(specs: Iterable[ToolSpec]) -> Iterator[None]:
    """Patch every tool in ``specs`` for the duration of the block (structural undo)."""
    parsed = [parse_tool_spec(spec) for spec in specs]
    with ExitStack() as stack:
        for target, provider, name in parsed:
            stack.enter_context(patch_tool(target, provider, name))
        yield
