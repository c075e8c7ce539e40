"""apirecorder: record the API traffic of AI applications once, replay it in tests."""

from ._context import current_test_id, test_context
from ._exceptions import ApiRecorderError, RecordingNotFoundError
from ._modes import Mode
from ._recorder import recording
from ._serialization import allow_types

__all__ = [
    "ApiRecorderError",
    "Mode",
    "RecordingNotFoundError",
    "allow_types",
    "current_test_id",
    "recording",
    "test_context",
]

__version__ = "0.1.0"
