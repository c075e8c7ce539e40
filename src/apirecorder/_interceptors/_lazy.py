"""Installing an interceptor when the code under test imports its library, not before.

Importing a client library to patch it costs what the library costs to import (the OpenAI
SDK alone builds about a thousand pydantic models), and a suite that never uses it should
not pay that. :func:`install_lazily` patches the libraries already imported at once and, for
the others, puts a finder on ``sys.meta_path`` that wraps the library's loader: the moment
its top-level module has finished executing, and before the importing code gets it back,
the interceptor is imported and installed. Nothing here imports a library itself.

The HTTP libraries that other pytest plugins import before the first test (requests,
urllib3, httpx, ``http.client``) are not patched at once either: each of the methods their
interceptor patches gets a stand-in (:class:`_Deferred`) that, on the first call of any of
them, imports and installs the interceptor, then makes the call through it. A run whose tests
make no HTTP call never imports those interceptors; a call inside a block is intercepted as if
they had been installed when the block opened.

The finder watches its libraries for as long as the stack is open, so a library that is
dropped from ``sys.modules`` and imported again (pytester's ``sys.modules`` snapshots do that)
is patched again in its new classes. Closing the stack removes the finder and every patch.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from importlib.machinery import ModuleSpec
from types import FunctionType, ModuleType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from importlib.abc import Loader

__all__ = ["install_lazily"]

logger = logging.getLogger("apirecorder")

_PACKAGE = __name__.rpartition(".")[0]

#: Library -> the methods (module, class, attribute) its interceptor patches, when it is
#: patched on the first call instead of at once (tests/test_deferred_patching.py checks that this
#: is exactly what the interceptor patches).
DEFERRED: dict[str, tuple[tuple[str, str, str], ...]] = {
    "httpx": (
        ("httpx", "HTTPTransport", "handle_request"),
        ("httpx", "AsyncHTTPTransport", "handle_async_request"),
    ),
    "httpx2": (
        ("httpx2", "HTTPTransport", "handle_request"),
        ("httpx2", "AsyncHTTPTransport", "handle_async_request"),
    ),
    "requests": (("requests.adapters", "HTTPAdapter", "send"),),
    "urllib3": (("urllib3.connectionpool", "HTTPConnectionPool", "_make_request"),),
    "http.client": (
        ("http.client", "HTTPConnection", "request"),
        ("http.client", "HTTPConnection", "getresponse"),
    ),
}


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
        #: interceptor module -> the stand-ins that install it on their first call.
        self._deferred: dict[str, list[_Deferred]] = {}
        #: Held while stand-ins are made, removed or fired: a call that fires one waits for
        #: an install another thread's call started, so it is never let through unpatched.
        self.fire_lock = threading.RLock()
        #: The stand-ins whose interceptor was installed: their gate may come back when
        #: the interceptor's patch is undone, and is removed then.
        self._fired: list[_Deferred] = []
        self._finder = _LibraryFinder(self)

    def start(self) -> None:
        # The finder goes in first: a library that another thread starts importing while
        # the imported ones are being patched is then caught by it.
        sys.meta_path.insert(0, self._finder)
        for module_name, library in self.interceptors:
            module = _imported(library)
            if module is not None and not self._defer(module_name, library):
                self.install(module_name, library, module)

    def _defer(self, module_name: str, library: str) -> bool:
        """Put stand-ins on the methods the interceptor patches; False when it must be
        installed now (not a deferred library, or a method is not a plain function)."""
        found: list[tuple[type, str, FunctionType]] = []
        for module_path, class_name, attribute in DEFERRED.get(library, ()):
            owner = getattr(sys.modules.get(module_path), class_name, None)
            if not isinstance(owner, type):
                return False
            method = vars(owner).get(attribute)
            if not isinstance(method, FunctionType):
                return False
            found.append((owner, attribute, method))
        if not found:
            return False
        with self.fire_lock:
            stand_ins = self._deferred.setdefault(module_name, [])
            for owner, attribute, method in found:
                stand_in = _Deferred(self, module_name, library, owner, attribute, method)
                stand_ins.append(stand_in)
                setattr(owner, attribute, stand_in.function)
        return True

    def fire(self, stand_in: _Deferred) -> None:
        """A stand-in was called: install its interceptor (once) before the call goes on."""
        with self.fire_lock:
            if stand_in in self._deferred.get(stand_in.module_name, ()):
                module = sys.modules.get(stand_in.library)
                if module is not None:
                    self.install(stand_in.module_name, stand_in.library, module)
                else:  # the library was dropped from sys.modules: nothing left to patch
                    for each in self._deferred.pop(stand_in.module_name, []):
                        each.put_back()

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
        with self.fire_lock:
            stand_ins = self._deferred.pop(module_name, [])
            # The interceptor must wrap the library's own methods, and no other thread may
            # call one unpatched meanwhile: a gate shows this thread the library's method,
            # and makes every other wait for the install and get the interceptor's.
            above = [stand_in.gate() for stand_in in stand_ins]
            try:
                self._install_now(module_name)
            finally:
                for stand_in, over in zip(stand_ins, above, strict=True):
                    stand_in.installed(over)
            self._fired.extend(stand_ins)

    def _install_now(self, module_name: str) -> None:
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
        with self.fire_lock:
            deferred, self._deferred = self._deferred, {}
            for stand_ins in deferred.values():
                for stand_in in reversed(stand_ins):
                    stand_in.put_back()
        # pytester restores sys.meta_path after an in-process run, so the finder may be
        # gone already; once closed it ignores every import anyway.
        with suppress(ValueError):
            sys.meta_path.remove(self._finder)
        for patches in reversed(installed):
            patches.close()
        with self.fire_lock:
            fired, self._fired = self._fired, []
            for stand_in in reversed(fired):
                stand_in.ungate()

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


class _Deferred:
    """A stand-in for one method an interceptor patches, until the first call of it."""

    def __init__(
        self,
        installer: _LazyInstaller,
        module_name: str,
        library: str,
        owner: type,
        attribute: str,
        original: FunctionType,
    ) -> None:
        self.module_name = module_name
        self.library = library
        self.owner = owner
        self.attribute = attribute
        self.original = original
        self.installer = installer
        #: The interceptor's method, once installed.
        self.patched: Callable[..., Any] | None = None
        self._gate: _Gate | None = None
        fire = functools.partial(installer.fire, self)
        target = self.target
        function: Callable[..., Any]
        if inspect.iscoroutinefunction(original):

            async def function(this: Any, *args: Any, **kwargs: Any) -> Any:
                fire()
                return await target()(this, *args, **kwargs)

        else:

            def function(this: Any, *args: Any, **kwargs: Any) -> Any:
                fire()
                return target()(this, *args, **kwargs)

        self.function = functools.wraps(original)(function)

    def target(self) -> Callable[..., Any]:
        """The interceptor's method once it is installed (a caller that kept the stand-in,
        ``saved = Adapter.send``, goes through it too), else the library's own."""
        if self.patched is None or self.installer.closed:
            return self.original
        return self.patched

    def put_back(self) -> None:
        """Put the library's method back (the interceptor was never installed)."""
        if vars(self.owner).get(self.attribute) is self.function:
            setattr(self.owner, self.attribute, self.original)

    def gate(self) -> Any:
        """Put a :class:`_Gate` in place of the stand-in for the install; returns a patch
        someone made over the stand-in, which stays above the interceptor (as it would
        have been had it been installed at once), or None."""
        current = vars(self.owner).get(self.attribute)
        self._gate = _Gate(self)
        setattr(self.owner, self.attribute, self._gate)
        return None if current is self.function else current

    def installed(self, over: Any) -> None:
        """After the interceptor's install: remember its method, put back a patch above."""
        current = vars(self.owner).get(self.attribute)
        if current is self._gate:  # the install failed, or left this method alone
            setattr(self.owner, self.attribute, self.original)
        else:
            self.patched = current
        if over is not None:
            setattr(self.owner, self.attribute, over)

    def ungate(self) -> None:
        # Undoing the interceptor's patch put back what it replaced: the gate.
        if vars(self.owner).get(self.attribute) is self._gate:
            setattr(self.owner, self.attribute, self.original)


class _Gate:
    """The class attribute while an interceptor is being installed: the installing thread
    (the interceptor reading the method it wraps) gets the library's own method; any other
    waits until the install is done and gets what the class then has."""

    __slots__ = ("installing", "stand_in")

    def __init__(self, stand_in: _Deferred) -> None:
        self.stand_in = stand_in
        self.installing = threading.get_ident()

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        stand_in = self.stand_in
        method: Any = stand_in.original
        if threading.get_ident() != self.installing:
            with stand_in.installer.fire_lock:  # held until the install is done
                current = vars(stand_in.owner).get(stand_in.attribute)
            if current is not None and current is not self:
                method = current
        bind = getattr(type(method), "__get__", None)
        return bind(method, instance, owner) if bind is not None else method


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
