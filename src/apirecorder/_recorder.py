"""The record/replay decision, shared by every interceptor.

An interceptor describes a call as a :class:`Call`, asks the active :class:`Session` for
a recording with :meth:`Session.lookup`, and after a live call hands the response to
:meth:`Session.save`. The session knows the mode and the storage; it knows no client library.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from . import _hashing
from ._context import current_test_id
from ._diagnostics import explain_miss
from ._exceptions import RecordingNotFoundError
from ._modes import Mode, parse_mode
from ._network import parse_hosts
from ._redaction import mask_secret_fields, redact_recording
from ._serialization import from_json, to_json
from ._storage import FORMAT_VERSION, Recording, Storage, model_list_digest

__all__ = [
    "Call",
    "Session",
    "active_session",
    "handled_above",
    "interceptors_kept",
    "recording",
    "sdk_layer_call",
]

logger = logging.getLogger("apirecorder")

#: Options ``recording()`` passes on to the redaction and network policies (see docs).
POLICY_OPTIONS = frozenset(
    {
        "allow_hosts",
        "block_network",
        "redact_headers",
        "redact_json_paths",
        "redact_patterns",
        "secret_env_vars",
    }
)

MODE_ENV = "APIRECORDER_MODE"
HOSTS_UNDER_TEST_ENV = "APIRECORDER_HOSTS_UNDER_TEST"
DIR_ENV = "APIRECORDER_DIR"
DEBUG_ENV = "APIRECORDER_DEBUG"


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0", "false", "no")


@dataclass(frozen=True)
class Call:
    """One intercepted call: its hash, the ``request`` record to write, and labels for messages."""

    kind: str  # "inference", "tool" or "http"
    request_hash: str
    request: dict[str, Any]
    test_id: str | None
    endpoint: str
    model: str = ""
    is_model_list: bool = False

    @property
    def file_name(self) -> str:
        return f"{self.request_hash}.json"


@dataclass
class Session:
    """An active ``recording()`` block: its mode, its storage and its options."""

    mode: Mode
    storage: Storage
    normalizers: Sequence[_hashing.BodyNormalizer] = ()
    ignore_hosts: Sequence[str] = ()
    hosts_under_test: Sequence[str] = ()
    allowed_types: Sequence[str] = ()
    options: dict[str, Any] = field(default_factory=dict)
    #: deterministic_id counters, per (test id, kind); fresh for every session.
    id_counters: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)
    #: Live id -> the stable id written in its place; see ``normalize_response_data``.
    id_map: dict[str, str] = field(default_factory=dict)
    #: ``$APIRECORDER_DEBUG``, read once when the session starts.
    debug: bool = field(default_factory=lambda: debug_enabled())

    # -- describing calls -------------------------------------------------------------
    def inference_call(
        self,
        *,
        base_url: str,
        endpoint: str,
        body: dict[str, Any],
        method: str = "POST",
        label: str | None = None,
    ) -> Call:
        """Describe an SDK inference call; ``label`` overrides the recorded endpoint name."""
        url = _hashing.endpoint_path(base_url, endpoint)
        test_id = current_test_id()
        body = mask_secret_fields(self.stable_ids(body))
        request_hash = _hashing.inference_request_hash(method, url, body, test_id, self.normalizers)
        model = body.get("model")
        logical = label or endpoint
        call = Call(
            kind="inference",
            request_hash=request_hash,
            request={
                "method": method.upper(),
                "url": url,
                "headers": {},
                "body": body,
                "endpoint": logical,
                "model": model if isinstance(model, str) else "",
            },
            test_id=test_id,
            endpoint=logical,
            model=model if isinstance(model, str) else "",
            is_model_list=logical in _hashing.MODEL_LIST_ENDPOINTS,
        )
        if self.debug:
            self._debug_call(call)
        return call

    def tool_call(self, provider: str, tool_name: str, kwargs: dict[str, Any]) -> Call:
        """Describe a tool invocation."""
        test_id = current_test_id()
        kwargs = mask_secret_fields(kwargs)
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
        payload = mask_secret_fields(self.stable_ids(payload))
        call = Call(
            kind="http",
            request_hash=_hashing.http_request_hash(
                url, method, payload, test_id, self.normalizers
            ),
            request={
                "test_id": test_id,
                "method": method.upper(),
                "url": url,
                "headers": headers,
                "payload": payload,
            },
            test_id=test_id,
            endpoint=f"{method.upper()} {url}",
            model=str(payload.get("model", "")) if isinstance(payload, dict) else "",
        )
        if self.debug:
            self._debug_call(call)
        return call

    def stable_ids(self, value: Any) -> Any:
        """``value`` with every live id this session recorded replaced by its stable id."""
        if not self.id_map:
            return value
        if isinstance(value, str):
            return self.id_map.get(value, value)
        if isinstance(value, dict):
            return {key: self.stable_ids(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.stable_ids(item) for item in value]
        return value

    def _debug_call(self, call: Call) -> None:
        hashed = {k: v for k, v in call.request.items() if k != "headers"}
        logger.warning(
            "apirecorder: %s call test_id=%r endpoint=%s model=%r hash=%s input=%s",
            call.kind,
            call.test_id,
            call.endpoint,
            call.model,
            call.request_hash,
            json.dumps(hashed, sort_keys=True, default=str),
        )

    # -- the decision -----------------------------------------------------------------
    @property
    def records(self) -> bool:
        """True when a call that was not replayed must be made live and written."""
        return self.mode in (Mode.RECORD, Mode.RECORD_IF_MISSING)

    def lookup(self, call: Call) -> Recording | None:
        """The recording to replay for ``call``, or None to make the call live.

        In replay mode a miss raises :class:`RecordingNotFoundError`.
        """
        __tracebackhide__ = True  # pytest shows the test's own call, then the explanation
        if self.mode is Mode.LIVE or self.mode is Mode.RECORD:
            return None
        if call.is_model_list:
            found = self._merged_model_list(call)
        else:
            found = self.storage.find(call.request_hash, call.test_id)
        if self.debug:
            logger.warning(
                "apirecorder: %s %s in %s",
                "hit" if found else "miss",
                call.request_hash,
                [str(d) for d in self.storage.dirs_for(call.test_id)],
            )
        if found is None and self.mode is Mode.REPLAY:
            raise RecordingNotFoundError(
                self.explain_miss(call), request_hash=call.request_hash, test_id=call.test_id
            )
        return found

    def _merged_model_list(self, call: Call) -> Recording | None:
        records = self.storage.find_model_lists(call.request_hash, call.test_id)
        if not records:
            return None
        merged: dict[str, Any] = {}
        first = records[0]
        for rec in records:
            body = rec.response.get("body")
            for item in _model_items(body):
                merged[_model_id(item)] = item
        ordered = [merged[key] for key in sorted(merged)]
        body0 = first.response.get("body")
        if isinstance(body0, dict) and "__data__" in body0:
            # An Ollama ListResponse: one object whose "models" field holds the list.
            data = dict(body0["__data__"])
            data["models"] = ordered
            new_body: Any = {"__type__": body0["__type__"], "__data__": data}
        else:
            new_body = ordered
        data_all = dict(first.data)
        data_all["response"] = {**first.response, "body": new_body}
        return Recording(first.path, data_all)

    def save(self, call: Call, response: dict[str, Any]) -> Path:
        """Write the recording of ``call`` with an already-serialized ``response``."""
        shared = _shared_by_tests(call)
        record: dict[str, Any] = {
            "test_id": None if shared else call.test_id,
            "request": call.request,
            "response": response,
            "format_version": FORMAT_VERSION,
        }
        record = redact_recording(record, self)
        name = call.file_name
        if call.is_model_list:
            ids = [_model_id(item) for item in _model_items(response.get("body"))]
            name = f"models-{call.request_hash}-{model_list_digest(ids)}.json"
        # A shared file goes to the shared folder, which every test's lookup tries.
        path = self.storage.path_for(name, None if shared else call.test_id)
        self.storage.write(path, record)
        if self.debug:
            logger.warning("apirecorder: wrote %s", path)
        return path

    # -- building responses -----------------------------------------------------------
    def result_record(self, call: Call, result: Any) -> dict[str, Any]:
        """The ``response`` of a call that returned one object."""
        return {"body": self.serialize(call, result), "is_streaming": False}

    def stream_record(self, call: Call, chunks: list[Any]) -> dict[str, Any]:
        """The ``response`` of a stream read to its end."""
        return {"body": [self.serialize(call, c) for c in chunks], "is_streaming": True}

    def error_record(
        self,
        call: Call,
        exc: BaseException,
        chunks: list[Any] | None,
        *,
        provider: str,
        status_code: int | None,
        body: Any,
    ) -> dict[str, Any]:
        """The ``response`` of a call that raised (after ``chunks``, for a stream), DESIGN 3."""
        return {
            "body": [self.serialize(call, c) for c in chunks] if chunks is not None else None,
            "is_streaming": chunks is not None,
            "is_exception": True,
            "exception_data": {
                "category": "provider_sdk",
                "provider": provider,
                "type": type(exc).__name__,
                "message": str(exc),
                "status_code": status_code,
                "body": body,
            },
            "exception_message": str(exc),
        }

    def serialize(self, call: Call, value: Any) -> Any:
        """A response value as recording JSON, normalized (DESIGN 6)."""
        return to_json(value, call.request_hash, self.id_map)

    def deserialize(self, recording: Recording, value: Any) -> Any:
        """Rebuild a recorded value as its original types."""
        return from_json(value, source=recording.path, extra=self.allowed_types)

    # -- messages ---------------------------------------------------------------------
    def explain_miss(self, call: Call) -> str:
        """The message of a replay miss: what was asked, where we looked, how to record it."""
        return explain_miss(self, call)


def _shared_by_tests(call: Call) -> bool:
    # A model list whose hash has no test id (DESIGN 4) is one file for every test; naming
    # the test that wrote it last would make parallel (xdist) runs write different bytes.
    path = urlparse(str(call.request.get("url", ""))).path
    return call.is_model_list and path in _hashing.MODEL_LIST_ENDPOINTS


def _model_items(body: Any) -> list[Any]:
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        data = body.get("__data__", body)
        if isinstance(data, dict) and isinstance(data.get("models"), list):
            models: list[Any] = data["models"]
            return models
    return []


def _model_id(item: Any) -> str:
    data = item.get("__data__", item) if isinstance(item, dict) else {}
    if not isinstance(data, dict):
        return str(data)
    for key in ("id", "model", "name"):
        if isinstance(data.get(key), str):
            return str(data[key])
    return ""


def record_command(test_id: str | None) -> str:
    """The command that records what a replay missed."""
    if test_id and ".py::" in test_id:
        return f"pytest {shlex.quote(test_id)} --apirecorder-mode=record-if-missing"
    return f"{MODE_ENV}=record-if-missing <your command>"


# -- one call, one recording ----------------------------------------------------------

_sdk_call: ContextVar[bool] = ContextVar("apirecorder_sdk_call", default=False)


@contextmanager
def sdk_layer_call() -> Iterator[None]:
    """Mark a live call an SDK layer is recording, so the HTTP layer below lets it pass."""
    token = _sdk_call.set(True)
    try:
        yield
    finally:
        _sdk_call.reset(token)


def handled_above() -> bool:
    """True while an SDK layer records the current call (the HTTP layer must not)."""
    return _sdk_call.get()


# -- the active session ---------------------------------------------------------------

_state_lock = threading.RLock()
_sessions: list[Session] = []
_patches: ExitStack | None = None


def active_session() -> Session | None:
    """The innermost session that records or replays; None outside one and in live mode."""
    if not _sessions:
        return None
    session = _sessions[-1]
    # Live mode means no interception at all: every layer passes calls straight through.
    return None if session.mode is Mode.LIVE else session


@contextmanager
def recording(
    mode: Mode | str | None = None,
    storage_dir: str | os.PathLike[str] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    normalizers: Sequence[_hashing.BodyNormalizer] = (),
    ignore_hosts: Sequence[str] = (),
    hosts_under_test: Sequence[str] = (),
    allowed_types: Sequence[str] = (),
    tools: Sequence[str | tuple[str, ...]] = (),
    **options: Any,
) -> Iterator[Session]:
    """Intercept every supported client inside the block, in ``mode``.

    ``mode`` defaults to ``$APIRECORDER_MODE`` then ``"replay"``; ``storage_dir`` to
    ``$APIRECORDER_DIR`` (flat layout), else recordings sit next to each test file under
    ``root`` (default: the current folder). ``tools`` are functions to record as tool calls,
    each ``"package.module:Class.method provider [name]"`` (see ``patch_tool``).
    """
    unknown = sorted(set(options) - POLICY_OPTIONS)
    if unknown:
        valid = ", ".join(sorted(POLICY_OPTIONS))
        raise TypeError(f"recording() got unknown option(s) {', '.join(unknown)}; valid: {valid}")
    resolved = parse_mode(mode if mode is not None else os.environ.get(MODE_ENV, Mode.REPLAY))
    directory = storage_dir if storage_dir is not None else os.environ.get(DIR_ENV) or None
    storage = (
        Storage(Path(directory), flat=True)
        if directory is not None
        else Storage(Path(root) if root is not None else Path.cwd(), flat=False)
    )
    session = Session(
        mode=resolved,
        storage=storage,
        normalizers=tuple(normalizers),
        ignore_hosts=parse_hosts(ignore_hosts),
        hosts_under_test=parse_hosts(
            [*_names(hosts_under_test), *os.environ.get(HOSTS_UNDER_TEST_ENV, "").split()]
        ),
        allowed_types=_names(allowed_types),
        options=options,
    )
    from ._network import session_guard  # local: network blocking is optional policy
    from ._tools import patch_tools  # local: _tools builds on this module

    _push(session)
    try:
        with patch_tools(tools), session_guard(session):
            yield session
    finally:
        _pop(session)


def _names(value: str | Sequence[str]) -> tuple[str, ...]:
    # A single name is a common slip for a one-item list; never split it into characters.
    return (value,) if isinstance(value, str) else tuple(value)


def _push(session: Session) -> None:
    global _patches
    with _state_lock:
        if _patches is None:
            from ._interceptors import install_all

            stack = ExitStack()
            try:
                install_all(stack)
            except BaseException:
                stack.close()
                raise
            _patches = stack
        _sessions.append(session)


def _pop(session: Session) -> None:
    with _state_lock:
        _sessions.remove(session)
        _uninstall_if_idle()


def _uninstall_if_idle() -> None:
    global _patches
    if not _sessions and not _kept and _patches is not None:
        stack, _patches = _patches, None
        stack.close()


_kept = False


@contextmanager
def interceptors_kept() -> Iterator[None]:
    """Leave the interceptors installed between ``recording()`` blocks inside this block.

    The pytest plugin enters it once its first test records or replays, so the patches are
    made once per run instead of once per test; between tests they pass every call through.
    """
    global _kept
    with _state_lock:
        already, _kept = _kept, True
    try:
        yield
    finally:
        with _state_lock:
            _kept = already
            _uninstall_if_idle()
