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
from ._toolpatch import patch_tool
from ._tools import tool

if _typing.TYPE_CHECKING:
    from ._interceptors._mcp import mcp_client

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


def __getattr__(name: str) -> object:
    # mcp_client lives with the MCP interceptor, which is loaded with the code that uses it:
    # importing it here would load the tool layer and unittest.mock (asyncio) at start-up.
    if name == "mcp_client":
        from ._interceptors._mcp import mcp_client

        return mcp_client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "mcp_client"})
