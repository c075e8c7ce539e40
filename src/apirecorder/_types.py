"""The recording format as types (DESIGN 3), and the description of one intercepted call.

A leaf module: the TypedDicts let mypy catch a misspelt key where a recording is built or
read. ``total=False`` marks the keys a reader must accept missing (files of the reference
recorder, older files of this one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

__all__ = [
    "Call",
    "CallKind",
    "ExceptionData",
    "HttpRequest",
    "InferenceRequest",
    "RecordData",
    "RequestRecord",
    "ResponseRecord",
    "ToolRequest",
]

#: What was intercepted: an SDK inference call, a tool call, or a raw HTTP exchange.
CallKind = Literal["inference", "tool", "http"]


class InferenceRequest(TypedDict):
    """``request`` of an SDK inference call."""

    method: str
    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    endpoint: str
    model: str


class ToolRequest(TypedDict):
    """``request`` of a tool call (MCP requests included)."""

    test_id: str | None
    provider: str
    tool_name: str
    kwargs: dict[str, Any]


class HttpRequest(TypedDict):
    """``request`` of a raw HTTP exchange."""

    test_id: str | None
    method: str
    url: str
    headers: dict[str, str]
    payload: Any


RequestRecord = InferenceRequest | ToolRequest | HttpRequest


class ExceptionData(TypedDict, total=False):
    """``response.exception_data``: the error a call raised, enough to raise it again."""

    category: Literal["provider_sdk", "tool", "http"]
    provider: str
    type: str
    message: str
    status_code: int | None
    body: Any
    #: Tools only: where the class lives, its constructor arguments and public attributes.
    module: str
    args: Any
    attributes: dict[str, Any]


class ResponseRecord(TypedDict, total=False):
    """``response`` of any recording: a body, and what the call raised or the server sent."""

    body: Any
    is_streaming: bool
    is_exception: bool
    exception_data: ExceptionData
    exception_message: str
    #: Tools only: whether a recorded stream was a sync or an async generator.
    generator: Literal["sync", "async"]
    #: Tools only: module prefixes the tool trusted beyond the default allow-list.
    trusted_types: list[str]
    #: Raw HTTP only (see ``_httpbody``).
    status: int
    reason: str
    headers: Any
    body_format: str
    json_layout: str
    #: The body is stored decoded, though ``headers`` name the content-encoding received.
    body_decoded: bool


class RecordData(TypedDict, total=False):
    """A whole recording file."""

    test_id: str | None
    request: RequestRecord
    response: ResponseRecord
    format_version: int


@dataclass(frozen=True)
class Call:
    """One intercepted call: its hash, the ``request`` record to write, and labels for messages."""

    kind: CallKind
    request_hash: str
    request: RequestRecord
    test_id: str | None
    endpoint: str
    model: str = ""
    is_model_list: bool = False
    #: Transport keyword arguments (``timeout=``, ``extra_headers=``), neither hashed nor
    #: written: only a lookup for the reference recorder's name of the call uses them.
    transport: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def file_name(self) -> str:
        return f"{self.request_hash}.json"
