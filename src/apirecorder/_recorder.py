"""The engine: the session of a ``recording()`` block, and which session is active where.

A :class:`Session` describes calls (:meth:`Session.inference_call` and friends), looks up
recordings (:meth:`Session.lookup`) and writes them (:meth:`Session.save`). It knows no client
library; the one record/replay flow built on it is in ``_flow``, and ``recording()`` (which
wires the session to the interceptors, tools and network policy) is in ``_recording``.

The active session is per context (a ContextVar: each thread and asyncio task sees the
``recording()`` block it runs in), with a process-wide fallback for a server under test,
whose request threads never entered the block that its process opened.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlparse

from . import _hashing
from ._context import current_test_id
from ._exceptions import ApiRecorderError, RecordingFormatError, RecordingNotFoundError
from ._legacy import legacy_request_hash
from ._modes import Mode
from ._requestjson import request_json, request_json_for_hash
from ._serialization import TypeBuilder, from_json, to_json
from ._settings import debug_enabled, record_command
from ._storage import (
    FORMAT_VERSION,
    Recording,
    Storage,
    merge_model_lists,
    model_ids,
    recording_file_name,
)
from ._transportkw import plain_transport_kwargs, transport_hashes
from ._types import Call, HttpRequest, RecordData, ResponseRecord

__all__ = [
    "Call",
    "Session",
    "activated",
    "active_session",
    "handled_above",
    "record_command",
    "recorded_above",
    "sdk_layer_call",
]

logger = logging.getLogger("apirecorder")
E = TypeVar("E", bound=ApiRecorderError)


@dataclass
class Session:
    """An active ``recording()`` block: its mode, its storage and its options."""

    mode: Mode
    storage: Storage
    normalizers: Sequence[_hashing.BodyNormalizer] = ()
    ignore_hosts: Sequence[str] = ()
    hosts_under_test: Sequence[str] = ()
    allowed_types: Sequence[str] = ()
    #: Redaction and network options (``redact_headers``, ``block_network``...), as given.
    options: dict[str, Any] = field(default_factory=dict)
    #: deterministic_id counters, per (test id, kind); fresh for every session.
    id_counters: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)
    #: Live id -> the stable id written in its place; see ``normalize_response_data``.
    id_map: dict[str, str] = field(default_factory=dict)
    #: False: raw HTTP recordings match whatever the scheme, host and port (``hashed_url``).
    match_origin: bool = True
    #: ``$APIRECORDER_DEBUG``, read once when the session starts.
    debug: bool = field(default_factory=lambda: debug_enabled())
    #: Set when its block ends; a context that still holds it then sees no block of its own.
    closed: bool = field(default=False, repr=False)
    #: Edits a serialized response before it is written (VCR.py's ``before_record_response``).
    before_record_response: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: Every replay miss and recorder error met in this session, in order: the pytest plugin
    #: fails the test with them even when the code under test caught them.
    misses: list[ApiRecorderError] = field(default_factory=list, repr=False)
    #: How often each (test id, request hash) was asked for: the n-th identical call of a
    #: test replays (and records) the n-th recording of it, ``<hash>-<n>.json``.
    call_counts: dict[tuple[str | None, str], int] = field(default_factory=dict, repr=False)
    #: The last recording found for each (test id, request hash): what replay answers when
    #: a test makes the same call more often than was recorded.
    _last_found: dict[tuple[str | None, str], str] = field(default_factory=dict, repr=False)
    #: id(call) -> (call, its ordinal), from the lookup that missed to the save that follows.
    _to_save: dict[int, tuple[Call, int]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- describing calls -------------------------------------------------------------
    def inference_call(
        self,
        *,
        base_url: str,
        endpoint: str,
        body: dict[str, Any],
        method: str = "POST",
        label: str | None = None,
        transport: Mapping[str, Any] | None = None,
    ) -> Call:
        """Describe an SDK inference call; ``label`` overrides the recorded endpoint name.

        ``body`` may hold SDK objects: it is made JSON, given the stable ids of this
        session and masked in one walk (``_requestjson``).
        """
        url = _hashing.endpoint_path(base_url, endpoint)
        test_id = current_test_id()
        body, changes = request_json_for_hash(body, self.id_map)
        request_hash = _hashing.inference_request_hash(
            method, url, body, test_id, self.normalizers, normalized=not changes
        )
        model = body.get("model")
        logical = label or endpoint
        model_name = model if isinstance(model, str) else ""
        call = Call(
            kind="inference",
            request_hash=request_hash,
            request={
                "method": method.upper(),
                "url": url,
                "headers": {},
                "body": body,
                "endpoint": logical,
                "model": model_name,
            },
            test_id=test_id,
            endpoint=logical,
            model=model_name,
            is_model_list=logical in _hashing.MODEL_LIST_ENDPOINTS,
            transport=plain_transport_kwargs(transport) if transport else {},
        )
        if self.debug:
            self._debug_call(call)
        return call

    def tool_call(self, provider: str, tool_name: str, kwargs: dict[str, Any]) -> Call:
        """Describe a tool invocation (``kwargs`` already JSON)."""
        test_id = current_test_id()
        kwargs = request_json(kwargs, None)
        call = Call(
            kind="tool",
            request_hash=_hashing.tool_request_hash(provider, tool_name, kwargs),
            request={
                "test_id": test_id,
                "provider": provider,
                "tool_name": tool_name,
                "kwargs": kwargs,
            },
            test_id=test_id,
            endpoint=f"{provider}.{tool_name}",
        )
        if self.debug:
            self._debug_call(call)
        return call

    def http_call(self, *, method: str, url: str, headers: dict[str, str], payload: Any) -> Call:
        """Describe a raw HTTP exchange (payload: parsed JSON body, else its text, else None)."""
        test_id = current_test_id()
        payload, changes = request_json_for_hash(payload, self.id_map)
        request: dict[str, Any] = {
            "test_id": test_id,
            "method": method.upper(),
            "url": url,
            "headers": headers,
            "payload": payload,
        }
        if not self.match_origin:
            request["match_origin"] = False  # so verify and rehash hash it the same way
        call = Call(
            kind="http",
            request_hash=_hashing.http_request_hash(
                url,
                method,
                payload,
                test_id,
                self.normalizers,
                match_origin=self.match_origin,
                normalized=not changes,
            ),
            request=cast(HttpRequest, request),
            test_id=test_id,
            endpoint=f"{method.upper()} {url}",
            model=str(payload.get("model", "")) if isinstance(payload, dict) else "",
        )
        if self.debug:
            self._debug_call(call)
        return call

    def _debug_call(self, call: Call) -> None:
        hashed = {k: v for k, v in call.request.items() if k != "headers"}
        self._debug(
            f"apirecorder: {call.kind} call test_id={call.test_id!r} endpoint={call.endpoint} "
            f"model={call.model!r} hash={call.request_hash} "
            f"input={json.dumps(hashed, sort_keys=True, default=str)}"
        )

    def _debug(self, text: str) -> None:
        # The log holds nothing a recording would not: the same redaction, on the text.
        from ._redaction import redact_text  # loaded by the first call that needs it

        logger.warning("%s", redact_text(text, self))

    # -- the decision -----------------------------------------------------------------
    @property
    def records(self) -> bool:
        """True when a call that was not replayed must be made live and written."""
        return self.mode in (Mode.RECORD, Mode.RECORD_IF_MISSING)

    def lookup(self, call: Call) -> Recording | None:
        """The recording to replay for ``call``, or None to make the call live.

        In replay mode a miss raises :class:`RecordingNotFoundError`. This is the one place
        that picks the recording of a call and the one place a miss is decided. The n-th
        identical call of a test (same hash, same test id) gets the n-th recording; past the
        last one recorded, replay answers with the last one again (a finished job polled once
        more), and ``record-if-missing`` records the missing one.
        """
        __tracebackhide__ = True  # pytest shows the test's own call, then the explanation
        if self.mode is Mode.LIVE:
            return None
        ordinal = self._count(call)
        try:
            found = None if self.mode is Mode.RECORD else self._find_ordinal(call, ordinal)
        except RecordingFormatError as exc:
            # What is wrong and the command that writes the file anew; the parser's frames
            # and chained errors would only hide that.
            command = record_command(call.test_id, mode=Mode.RECORD.value)
            raise RecordingFormatError(
                exc.path, f"{exc.problem}\nTo re-record it, run:\n  {command}"
            ) from None
        if self.debug:
            folders = [str(d) for d in self.storage.dirs_for(call.test_id)]
            nth = f" (identical call #{ordinal})" if ordinal > 1 else ""
            self._debug(
                f"apirecorder: {'hit' if found else 'miss'} {call.request_hash} in {folders}{nth}"
            )
        if found is None and self.mode is Mode.REPLAY:
            raise self.miss(call)
        if found is None:
            with self._lock:
                self._to_save[id(call)] = (call, ordinal)
        return found

    def _count(self, call: Call) -> int:
        if call.is_model_list:
            return 1  # model lists merge every file of their hash instead
        key = (call.test_id, call.request_hash)
        with self._lock:
            ordinal = self.call_counts.get(key, 0) + 1
            self.call_counts[key] = ordinal
        return ordinal

    def _find_ordinal(self, call: Call, ordinal: int) -> Recording | None:
        key = (call.test_id, call.request_hash)
        found = self._find(call, call.request_hash, ordinal)
        if found is None and ordinal == 1:
            found = self._find_fallbacks(call)
        if found is not None:
            self._last_found[key] = found.location
        elif ordinal > 1 and self.mode is Mode.REPLAY and key in self._last_found:
            found = self.storage.reload(self._last_found[key])
        return found

    def _find_fallbacks(self, call: Call) -> Recording | None:
        # Only first calls: other writers (the reference) write no ``<hash>-<n>.json``.
        for request_hash in self._other_names(call):
            found = self._find(call, request_hash, 1)
            if found is not None:
                return found
        return None

    def _other_names(self, call: Call) -> Iterator[str]:
        """The names other recorders (or this one before) gave ``call``, in the order tried
        after a miss; each is worked out only when the ones before it missed."""
        if call.kind != "tool":
            # The reference's previous hash rules (DESIGN 4), and for raw HTTP its hash of
            # the URL as sent (query unsorted).
            candidates = dict.fromkeys(
                _hashing.recorded_request_hash(
                    call.test_id,
                    call.request,
                    generation=generation,
                    normalizers=self.normalizers,
                    sort_query=sort_query,
                )
                for sort_query in ((True, False) if call.kind == "http" else (True,))
                for generation in _hashing.GENERATIONS
            )
            candidates.pop(call.request_hash, None)
            yield from candidates
        if call.transport:
            # The reference recorder hashed timeout= and extra_headers= too.
            yield from transport_hashes(call, call.transport, self.normalizers)
        if call.kind == "inference":
            # An object rebuilt from a file that holds every field sends back nulls the live
            # one did not (_legacy): that file of the same test and endpoint still replays.
            matched = legacy_request_hash(
                call, self.storage.dirs_for(call.test_id), self.normalizers
            )
            if matched is not None:
                if self.debug:
                    self._debug(f"apirecorder: {call.request_hash} replays legacy {matched}")
                yield matched

    def miss(self, call: Call) -> RecordingNotFoundError:
        """The error of a replay miss, with what was asked, where we looked, and the nearest."""
        # Imported on a miss only: the explanation (difflib, the folder scan) is no part of
        # the start-up of a run that replays what it finds.
        from ._diagnostics import explain_miss
        from ._redaction import redact_text

        folders = self.storage.dirs_for(call.test_id)
        message, nearest = explain_miss(
            call, mode=self.mode.value, folders=folders, normalizers=self.normalizers
        )
        # The message (and so a junit XML report) holds no secret the recording would not.
        return self.met(
            RecordingNotFoundError(
                redact_text(message, self),
                request_hash=call.request_hash,
                test_id=call.test_id if call.test_id is None else redact_text(call.test_id, self),
                endpoint=call.endpoint,
                searched=folders,
                nearest=nearest,
            )
        )

    def met(self, error: E) -> E:
        """Note a recorder error (a miss, a failed write) the test must fail with; returns it."""
        with self._lock:
            self.misses.append(error)
        return error

    def _find(self, call: Call, request_hash: str, ordinal: int) -> Recording | None:
        if call.is_model_list:
            return merge_model_lists(self.storage.find_model_lists(request_hash, call.test_id))
        return self.storage.find(request_hash, call.test_id, ordinal=ordinal)

    def save(self, call: Call, response: ResponseRecord | dict[str, Any]) -> Path:
        """Write the recording of ``call`` with an already-serialized ``response``."""
        try:
            return self._save(call, response)
        except ApiRecorderError as exc:
            # A failed write (read-only folder, bad redaction rule) must fail the test.
            self.met(exc)
            raise

    def _save(self, call: Call, response: ResponseRecord | dict[str, Any]) -> Path:
        shared = _shared_by_tests(call)
        if self.before_record_response is not None:
            # A copy: the hook edits what is written, never what the test gets back.
            response = self.before_record_response(copy.deepcopy(dict(response)))
        record: RecordData = {
            "test_id": None if shared else call.test_id,
            "request": call.request,
            "response": cast(ResponseRecord, response),
            "format_version": FORMAT_VERSION,
        }
        from ._redaction import redact_recording  # loaded by the first call that needs it

        written = redact_recording(cast(dict[str, Any], record), self)
        with self._lock:
            pending = self._to_save.pop(id(call), None)
        ordinal = pending[1] if pending is not None and pending[0] is call else 1
        name = recording_file_name(call.request_hash, ordinal=ordinal)
        if call.is_model_list:
            name = recording_file_name(call.request_hash, model_ids(response.get("body")))
        # A shared file goes to the shared folder, which every test's lookup tries.
        path = self.storage.path_for(name, None if shared else call.test_id)
        self.storage.write(path, written)
        if self.debug:
            self._debug(f"apirecorder: wrote {path}")
        return path

    # -- values -----------------------------------------------------------------------
    def serialize(self, call: Call, value: Any) -> Any:
        """A response value as recording JSON, normalized (DESIGN 6)."""
        return to_json(value, call.request_hash, self.id_map)

    def deserialize(
        self,
        recording: Recording,
        value: Any,
        *,
        build: TypeBuilder | None = None,
        trusted: Sequence[str] = (),
    ) -> Any:
        """Rebuild a recorded value as its original types, with the adapter's ``build``."""
        return from_json(
            value, source=recording.location, extra=(*trusted, *self.allowed_types), build=build
        )


def _shared_by_tests(call: Call) -> bool:
    # A model list whose hash has no test id (DESIGN 4) is one file for every test; naming
    # the test that wrote it last would make parallel (xdist) runs write different bytes.
    path = urlparse(str(call.request.get("url", ""))).path
    return call.is_model_list and path in _hashing.MODEL_LIST_ENDPOINTS


# -- one call, one recording ----------------------------------------------------------

#: The hash of the call an SDK layer is recording live here ("" for one not described).
_sdk_call: ContextVar[str | None] = ContextVar("apirecorder_sdk_call", default=None)


@contextmanager
def sdk_layer_call(call: Call | None = None) -> Iterator[None]:
    """Mark a live call an SDK layer is recording, so the HTTP layer below lets it pass."""
    token = _sdk_call.set(call.request_hash if call is not None else "")
    try:
        yield
    finally:
        _sdk_call.reset(token)


def handled_above() -> bool:
    """True while an SDK layer records the current call (the HTTP layer must not)."""
    return _sdk_call.get() is not None


def recorded_above(call: Call) -> bool:
    """True when this very call is being recorded by the same flow further up (its library
    patched twice): the inner one only passes it on, so it counts and is written once."""
    return _sdk_call.get() == call.request_hash


# -- the active session ---------------------------------------------------------------

#: The innermost block this context runs in. A live block is kept too: it hides the
#: blocks around it and the process-wide one.
_current: ContextVar[Session | None] = ContextVar("apirecorder_session", default=None)
_process_lock = threading.Lock()
#: Blocks opened with ``process_wide=True``, innermost last: what a context that entered no
#: block of its own sees (the request threads of a server under test, a test's worker threads).
_process_wide: list[Session] = []


def active_session() -> Session | None:
    """The session that records or replays here; None outside one and in live mode."""
    session = _current.get()
    if session is None or session.closed:
        # A block closed from another context (a server's, stopped from its main thread)
        # stays in the context that opened it; it counts as gone.
        session = _process_wide[-1] if _process_wide else None
    # Live mode means no interception at all: every layer passes calls straight through.
    return None if session is None or session.mode is Mode.LIVE else session


@contextmanager
def activated(session: Session, *, process_wide: bool = False) -> Iterator[Session]:
    """Make ``session`` the active one in this context (and, with ``process_wide``, in every
    context that has no block of its own) for the duration of the block."""
    outer = _current.get()
    token = _current.set(session)
    if process_wide:
        with _process_lock:
            _process_wide.append(session)
    try:
        yield session
    finally:
        session.closed = True
        if process_wide:
            with _process_lock:
                _process_wide.remove(session)
        try:
            _current.reset(token)
        except ValueError:
            # Left in another context than it was entered (an async fixture's teardown runs
            # in a task of its own): restore the block around it by value instead.
            _current.set(outer)
