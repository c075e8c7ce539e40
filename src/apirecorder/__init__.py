"""apirecorder: record the API traffic of AI applications once, replay it in tests."""

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
from ._interceptors._mcp import mcp_client
from ._modes import Mode
from ._network import block_network
from ._recording import Session, recording
from ._serialization import allow_types
from ._tools import patch_tool, tool

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
