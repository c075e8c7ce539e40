"""apirecorder: record the API traffic of AI applications once, replay it in tests."""

import typing as _typing

from ._context import current_test_id, test_context
from ._exceptions import (
    ApiRecorderError,
    NetworkBlockedError,
    RecordingFormatError,
    RecordingNotFoundError,
    SerializationError,
    UnsafeTypeError,
)
from ._ids import deterministic_id
from ._modes import Mode
from ._network import block_network
from ._recording import Session, recording
from ._serialization import allow_types

if _typing.TYPE_CHECKING:
    from ._interceptors._mcp import mcp_client
    from ._toolpatch import patch_tool
    from ._tools import tool

__all__ = [
    "ApiRecorderError",
    "Mode",
    "NetworkBlockedError",
    "RecordingFormatError",
    "RecordingNotFoundError",
    "SerializationError",
    "Session",
    "UnsafeTypeError",
    "allow_types",
    "block_network",
    "current_test_id",
    "deterministic_id",
    "mcp_client",
    "patch_tool",
    "recording",
    "test_context",
    "tool",
]

__version__ = "0.1.0"


#: Public names loaded on first use (``apirecorder.tool``), with the module that has each:
#: the tool layer (and, for mcp_client, the MCP interceptor with unittest.mock and asyncio)
#: is what a suite that records no tool call should not pay for at start-up.
_LAZY = {
    "mcp_client": "._interceptors._mcp",
    "patch_tool": "._toolpatch",
    "tool": "._tools",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # found by the next look-up without this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
