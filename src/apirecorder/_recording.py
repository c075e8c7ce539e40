"""``recording()``: the composition of the engine with the interceptors, tools and policies.

The engine (``_recorder``: the session; ``_flow``: the record/replay flow) knows nothing of
what is patched. This module opens a session, installs the interceptors the first time a block
opens (and removes them when the last one closes, unless the pytest plugin keeps them), patches
the configured tools, applies the network policy, and hands the user a read-only
:class:`Session` view.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from . import _recorder
from ._exceptions import ApiRecorderError, raise_surfaced, surfaced
from ._hashing import BodyNormalizer
from ._interceptors import install_all
from ._modes import Mode
from ._network import parse_hosts, patches_kept, session_guard
from ._settings import (
    DIR_ENV,
    HOSTS_UNDER_TEST_ENV,
    env_value,
    resolve_match_origin,
    resolve_mode,
    resolve_shared_dir,
)
from ._storage import RecordingWriteError, Storage

if TYPE_CHECKING:
    from ._toolpatch import ToolSpec

__all__ = [
    "Session",
    "engine_of",
    "fail_with_recorder_errors",
    "interceptors_kept",
    "recording",
]


@dataclass(frozen=True, eq=False)
class Session:
    """A ``recording()`` block as its user sees it: mode, where recordings live, and options."""

    mode: Mode
    #: Where recordings are read and written (``storage.root``; ``storage.used`` lists the
    #: files this block read).
    storage: Storage
    ignore_hosts: tuple[str, ...]
    hosts_under_test: tuple[str, ...]
    allowed_types: tuple[str, ...]
    #: The redaction and network options the block was opened with.
    options: Mapping[str, Any]
    #: Whether contexts with no block of their own (other threads) see this one.
    process_wide: bool
    _engine: _recorder.Session = field(repr=False)

    @property
    def misses(self) -> list[ApiRecorderError]:
        """The replay misses and recorder errors met in this block, in order. The pytest
        plugin fails a test that leaves one here; a test that expects a miss clears it."""
        return self._engine.misses

    @property
    def storage_dir(self) -> Path:
        """The folder of the flat layout, or the root of the co-located one."""
        return self.storage.root


def engine_of(view: Session) -> _recorder.Session:
    """The engine session behind a view (for the pytest plugin and tests of the engine)."""
    return view._engine


@contextmanager
def recording(
    mode: Mode | str | None = None,
    storage_dir: str | os.PathLike[str] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    shared_dir: str | os.PathLike[str] | None = None,
    normalizers: Sequence[BodyNormalizer] = (),
    ignore_hosts: str | Sequence[str] = (),
    hosts_under_test: str | Sequence[str] = (),
    allowed_types: str | Sequence[str] = (),
    tools: Sequence[ToolSpec] = (),
    process_wide: bool = False,
    block_network: bool | None = None,
    allow_hosts: str | Sequence[str] | None = None,
    redact_headers: Sequence[str] | None = None,
    redact_json_paths: Sequence[str] | None = None,
    redact_patterns: Sequence[Any] | None = None,
    secret_env_vars: Sequence[str] | None = None,
    before_record_response: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    match_origin: bool | None = None,
) -> Iterator[Session]:
    """Intercept every supported client inside the block, in ``mode``.

    ``mode`` defaults to ``$APIRECORDER_MODE`` then ``"replay"``; ``storage_dir`` to
    ``$APIRECORDER_DIR`` (flat layout), else recordings sit next to each test file under
    ``root`` (default: the current folder). Calls with no test id go to ``shared_dir``
    (default ``$APIRECORDER_SHARED_DIR``), else to the layout's own shared folder. ``tools``
    are functions to record as tool calls, each ``"package.module:Class.method provider
    [name]"`` (see ``patch_tool``). The block is seen by the thread or task that opens it (and
    the tasks it starts); with ``process_wide=True`` also by every thread that has no block of
    its own, as a server under test needs. The redaction and network options are described in
    docs/security.md. ``before_record_response`` gets each response as it will be written (a
    JSON dict) and returns it edited; the test still gets the response as received.
    ``match_origin=False`` (default ``$APIRECORDER_MATCH_ORIGIN``, else True) makes raw HTTP
    recordings match whatever the scheme, host and port of the server.
    """
    resolved = resolve_mode(cli=mode)
    directory = storage_dir if storage_dir not in (None, "") else env_value(DIR_ENV)
    shared = resolve_shared_dir(given=shared_dir)
    storage = (
        Storage(_path(directory), flat=True, shared=shared)
        if directory
        else Storage(_path(root) if root is not None else Path.cwd(), flat=False, shared=shared)
    )
    given = {
        "allow_hosts": allow_hosts,
        "block_network": block_network,
        "redact_headers": redact_headers,
        "redact_json_paths": redact_json_paths,
        "redact_patterns": redact_patterns,
        "secret_env_vars": secret_env_vars,
    }
    options = {name: value for name, value in given.items() if value is not None}
    engine = _recorder.Session(
        mode=resolved,
        storage=storage,
        normalizers=tuple(normalizers),
        ignore_hosts=parse_hosts(ignore_hosts),
        hosts_under_test=parse_hosts(
            [*_names(hosts_under_test), *(env_value(HOSTS_UNDER_TEST_ENV) or "").split()]
        ),
        allowed_types=_names(allowed_types),
        options=options,
        before_record_response=before_record_response,
        match_origin=resolve_match_origin(marker=match_origin),
    )
    view = Session(
        mode=engine.mode,
        storage=storage,
        ignore_hosts=tuple(engine.ignore_hosts),
        hosts_under_test=tuple(engine.hosts_under_test),
        allowed_types=tuple(engine.allowed_types),
        options=MappingProxyType(options),
        process_wide=process_wide,
        _engine=engine,
    )
    _open_block()
    try:
        with (
            _recorder.activated(engine, process_wide=process_wide),
            _patched_tools(tools) if tools else nullcontext(),
            session_guard(engine),
        ):
            yield view
    except BaseException as exc:
        try:
            storage.flush()
        except RecordingWriteError as failed:
            # The block's own error stays the one raised; the failed write is told with it.
            exc.add_note(f"apirecorder: also, a recording was not written: {failed}")
        # Below a client a miss travels as its interrupting twin; the block hands the test
        # the error itself (its cause kept), as the place where it was met.
        raise_surfaced(exc)
        raise
    else:
        # Every recording the block made is on disk when it ends (written off the calls'
        # path, see Storage.write); a write that failed raises here.
        storage.flush()
    finally:
        _close_block()


@contextmanager
def fail_with_recorder_errors() -> Iterator[None]:
    """Around a test's call: a recorder error fails it as the error itself, with its
    explanation, even when the code under test caught it, wrapped it or let a twin through.

    Errors met inside the block (in the block this test runs in) count; a test that
    expects one (``pytest.raises``) clears ``session.misses`` to pass.
    """
    __tracebackhide__ = True
    engine = _recorder.active_session()
    before = len(engine.misses) if engine is not None else 0
    try:
        yield
    except BaseException as exc:
        raise_surfaced(exc)
        missed = _unseen(engine, before, exc)
        if missed is None:
            raise
        raise missed from exc
    missed = _unseen(engine, before, None) if engine is not None and engine.misses else None
    if missed is not None:
        missed.add_note(
            "apirecorder: the code under test caught this error; the test fails with it anyway"
        )
        raise missed


def _unseen(
    engine: _recorder.Session | None, before: int, raised: BaseException | None
) -> ApiRecorderError | None:
    # The first recorder error met during the call that is not what the test raised.
    if engine is None:
        return None
    seen: set[int] = set()
    while raised is not None and id(raised) not in seen:
        seen.add(id(raised))
        plain = surfaced(raised)
        if plain is not None:
            seen.add(id(plain))
        # Only the chain a traceback shows: a wrapper raised ``from None`` hides the miss.
        raised = raised.__cause__ or (None if raised.__suppress_context__ else raised.__context__)
    return next((e for e in engine.misses[before:] if id(e) not in seen), None)


def _patched_tools(tools: Sequence[ToolSpec]) -> AbstractContextManager[None]:
    # The tool layer is loaded by the first block that patches tools, not at start-up.
    from ._toolpatch import patch_tools

    return patch_tools(tools)


def _path(value: str | os.PathLike[str]) -> Path:
    # The pytest plugin passes a Path for every test's block: building another costs more
    # than the rest of the storage set-up.
    return value if isinstance(value, Path) else Path(value)


def _names(value: str | Sequence[str]) -> tuple[str, ...]:
    # A single name is a common slip for a one-item list; never split it into characters.
    return (value,) if isinstance(value, str) else tuple(value)


# -- the patches: installed once while any block is open (or kept) ---------------------------

_state_lock = threading.RLock()
_open_blocks = 0
_patches: ExitStack | None = None
_kept = False


def _open_block() -> None:
    global _patches, _open_blocks
    with _state_lock:
        if _patches is None:
            stack = ExitStack()
            try:
                install_all(stack)
            except BaseException:
                stack.close()
                raise
            _patches = stack
        _open_blocks += 1


def _close_block() -> None:
    global _open_blocks
    with _state_lock:
        _open_blocks -= 1
        _uninstall_if_idle()


def _uninstall_if_idle() -> None:
    global _patches
    if not _open_blocks and not _kept and _patches is not None:
        stack, _patches = _patches, None
        stack.close()


@contextmanager
def interceptors_kept() -> Iterator[None]:
    """Leave the interceptors installed between ``recording()`` blocks inside this block.

    The pytest plugin enters it once its first test records or replays, so the patches are
    made once per run instead of once per test; between tests they pass every call through.
    The network guard's patches (``block_network=True``) are kept the same way.
    """
    global _kept
    with _state_lock:
        already, _kept = _kept, True
    try:
        with patches_kept():
            yield
    finally:
        with _state_lock:
            _kept = already
            _uninstall_if_idle()
