"""Installing an interceptor when the code under test imports its library, not before.

Importing a client library to patch it costs what the library costs to import (the OpenAI
SDK alone builds about a thousand pydantic models), and a suite that never uses it should
not pay that. :func:`install_lazily` patches the libraries already imported at once and, for
the others, puts a finder on ``sys.meta_path`` that wraps the library's loader: the moment
its top-level module has finished executing, and before the importing code gets it back,
the interceptor is imported and installed. Nothing here imports a library itself.

The finder watches its libraries for as long as the stack is open, so a library that is
dropped from ``sys.modules`` and imported again (pytester's ``sys.modules`` snapshots do that)
is patched again in its new classes. Closing the stack removes the finder and every patch.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from importlib.abc import Loader

__all__ = ["install_lazily"]

logger = logging.getLogger("apirecorder")

_PACKAGE = __name__.rpartition(".")[0]


def install_lazily(stack: ExitStack, interceptors: Sequence[tuple[str, str]]) -> None:
    """Install each ``(interceptor module, library)`` now if the library is imported, else
    the moment it is; ``stack.close()`` removes the import hook and every patch."""
    installer = _LazyInstaller(tuple(interceptors))
    # Registered before anything is patched, so a failing install leaves nothing behind
    # once the caller closes the stack.
    stack.callback(installer.close)
    installer.start()


class _LazyInstaller:
    """The patches made for one stack, and the finder that makes the late ones."""

    def __init__(self, interceptors: tuple[tuple[str, str], ...]) -> None:
        self.interceptors = interceptors
        self.libraries = frozenset(library for _, library in interceptors)
        self._lock = threading.Lock()
        self._closed = False
        #: One stack per install, closed last-made first; each install fills its own so
        #: that two threads installing at once never share an ExitStack.
        self._installed: list[ExitStack] = []
        #: (interceptor, library) -> the library module it was installed for, so the same
        #: module is never patched twice while a fresh import of it is.
        self._done: dict[tuple[str, str], ModuleType] = {}
        #: interceptor module -> the thread installing it, and those to install once more.
        self._installing: dict[str, int] = {}
        self._again: set[str] = set()
        self._finder = _LibraryFinder(self)

    def start(self) -> None:
        # The finder goes in first: a library that another thread starts importing while
        # the imported ones are being patched is then caught by it.
        sys.meta_path.insert(0, self._finder)
        for module_name, library in self.interceptors:
            module = _imported(library)
            if module is not None:
                self.install(module_name, library, module)

    def loaded(self, library: str, module: ModuleType) -> None:
        """Called by the loader once ``library``'s module has executed."""
        for module_name, name in self.interceptors:
            if name == library:
                self.install(module_name, library, module)

    def install(self, module_name: str, library: str, module: ModuleType) -> None:
        me = threading.get_ident()
        with self._lock:
            if self._closed or self._done.get((module_name, library)) is module:
                return
            self._done[(module_name, library)] = module
            owner = self._installing.get(module_name)
            if owner is not None and owner != me:
                # Another thread is installing this interceptor (httpx and httpx2 imported
                # at once): waiting for it could deadlock on the import locks, since its
                # install may import the library this thread is executing. It runs install
                # once more when it is done instead.
                self._again.add(module_name)
                return
            nested = owner == me  # installing one library imported another
            self._installing[module_name] = me
        try:
            while True:
                self._install(module_name)
                with self._lock:
                    if nested or module_name not in self._again:
                        break
                    self._again.discard(module_name)
        except BaseException:
            with self._lock:
                self._done.pop((module_name, library), None)
            raise
        finally:
            if not nested:
                with self._lock:
                    self._installing.pop(module_name, None)

    def _install(self, module_name: str) -> None:
        patches = ExitStack()
        try:
            interceptor = importlib.import_module(f"{_PACKAGE}.{module_name}")
            interceptor.install(patches)
        except BaseException:
            patches.close()
            raise
        with self._lock:
            keep = not self._closed
            if keep:
                self._installed.append(patches)
        if not keep:  # the stack closed while this was installing
            patches.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            installed, self._installed = self._installed, []
            self._done.clear()
        # pytester restores sys.meta_path after an in-process run, so the finder may be
        # gone already; once closed it ignores every import anyway.
        with suppress(ValueError):
            sys.meta_path.remove(self._finder)
        for patches in reversed(installed):
            patches.close()

    @property
    def closed(self) -> bool:
        return self._closed


def _imported(library: str) -> ModuleType | None:
    """``library``'s module if it has finished importing, else None (it is then hooked)."""
    module = sys.modules.get(library)
    if module is None:
        return None
    spec = getattr(module, "__spec__", None)
    if getattr(spec, "_initializing", False):
        # Another thread is executing it, and the finder was not there to see it start:
        # wait for that import to finish (importing a module that is in sys.modules runs
        # nothing again). In the importing thread itself the import returns at once, and
        # the module, half-executed, cannot be patched yet; it is left alone.
        module = importlib.import_module(library)
        if getattr(getattr(module, "__spec__", None), "_initializing", False):
            logger.debug("apirecorder: %s is still being imported; not patched", library)
            return None
    return module


class _LibraryFinder:
    """A ``sys.meta_path`` finder that only wraps the loaders of the watched libraries."""

    def __init__(self, installer: _LazyInstaller) -> None:
        self.installer = installer

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self.installer.libraries or self.installer.closed:
            return None
        # Ask the finders after this one, as the import system would have.
        finders = list(sys.meta_path)
        try:
            after = finders[finders.index(self) + 1 :]
        except ValueError:
            return None
        for finder in after:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec: ModuleSpec | None = find_spec(fullname, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = cast(
                    "Loader", _InstallingLoader(spec.loader, self.installer, fullname)
                )
            return spec
        return None


class _InstallingLoader:
    """The library's own loader, followed by the install once the module has executed."""

    def __init__(self, loader: Any, installer: _LazyInstaller, library: str) -> None:
        self.loader = loader
        self.installer = installer
        self.library = library

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self.loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        # Give the module its real loader back first, so importlib.reload, importlib.resources
        # and inspect see the library's loader, never this wrapper.
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = self.loader
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self.loader
        self.loader.exec_module(module)
        # The module that import hands back, should the library have replaced itself.
        loaded = sys.modules.get(self.library, module)
        # The import system binds a submodule to its package only after exec_module returns;
        # the interceptor installed now reads it as an attribute (``http.client``), so bind
        # it first, as the import would.
        parent, _, child = self.library.rpartition(".")
        if parent and parent in sys.modules:
            setattr(sys.modules[parent], child, loaded)
        self.installer.loaded(self.library, loaded)

    def __getattr__(self, name: str) -> Any:
        # Anything else (get_source, is_package, get_resource_reader) is the real loader's.
        return getattr(self.loader, name)
