"""The public façade: exactly the documented names, sorted, and no pytest import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import apirecorder

EXPECTED_EXPORTS = [
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


def test_all_is_sorted_and_complete() -> None:
    # The exact list: a new export is a decision to make here, not something that slips in.
    assert apirecorder.__all__ == EXPECTED_EXPORTS
    # pytest rewrites the plugin package and adds "@py_builtins"-style names; skip them.
    public = {n for n in dir(apirecorder) if not n.startswith("_") and n.isidentifier()}
    assert public - {"asgi", "pytest_plugin"} == set(EXPECTED_EXPORTS)


def test_the_session_users_get_is_a_small_read_only_view(tmp_path: object) -> None:
    with apirecorder.recording("replay", str(tmp_path)) as session:
        assert isinstance(session, apirecorder.Session)
        public = {name for name in dir(session) if not name.startswith("_")}
        assert public == {
            "allowed_types",
            "hosts_under_test",
            "ignore_hosts",
            "misses",
            "mode",
            "options",
            "process_wide",
            "storage",
            "storage_dir",
        }
        assert str(session.storage_dir) == str(tmp_path)
        with pytest.raises(AttributeError):
            session.mode = apirecorder.Mode.RECORD  # type: ignore[misc]


def test_design_names_exist() -> None:
    for name in (
        "ApiRecorderError",
        "Mode",
        "RecordingNotFoundError",
        "current_test_id",
        "recording",
        "test_context",
    ):
        assert name in apirecorder.__all__
    for error in ("RecordingNotFoundError", "RecordingFormatError", "SerializationError"):
        assert issubclass(getattr(apirecorder, error), apirecorder.ApiRecorderError)
    assert issubclass(apirecorder.UnsafeTypeError, apirecorder.RecordingFormatError)
    assert [m.value for m in apirecorder.Mode] == ["live", "record", "replay", "record-if-missing"]


def test_import_does_not_import_pytest_or_client_libraries() -> None:
    code = (
        "import sys, apirecorder; "
        "libs = ('pytest', 'openai', 'httpx', 'httpx2', 'ollama', 'anthropic', 'mcp', "
        "'anyio', 'requests', 'aiohttp', 'pydantic', 'tavily'); "
        "print(sorted(m for m in libs if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_mode_lists_valid_modes(tmp_path: object) -> None:
    with (
        pytest.raises(
            ValueError, match="unknown apirecorder mode 'replya'; valid modes are"
        ) as err,
        apirecorder.recording("replya", str(tmp_path)),
    ):
        pass
    assert "'live', 'record', 'replay', 'record-if-missing'" in str(err.value)


def test_mode_accepts_enum_and_string(tmp_path: object) -> None:
    with apirecorder.recording(apirecorder.Mode.RECORD, str(tmp_path)) as session:
        assert session.mode is apirecorder.Mode.RECORD
    with apirecorder.recording("record-if-missing", str(tmp_path)) as session:
        assert session.mode is apirecorder.Mode.RECORD_IF_MISSING


def test_test_context_nests_and_resets() -> None:
    assert apirecorder.current_test_id() is None
    with apirecorder.test_context("a.py::t1"):
        assert apirecorder.current_test_id() == "a.py::t1"
        with apirecorder.test_context("a.py::t2"):
            assert apirecorder.current_test_id() == "a.py::t2"
        assert apirecorder.current_test_id() == "a.py::t1"
    assert apirecorder.current_test_id() is None


def test_a_single_host_name_is_not_split_into_characters(tmp_path: object) -> None:
    with apirecorder.recording(
        "replay", str(tmp_path), ignore_hosts="db.local", hosts_under_test=["app.local"]
    ) as session:
        assert session.ignore_hosts == ("db.local",)
        assert session.hosts_under_test == ("app.local",)


def test_a_misspelled_option_is_an_error_not_silently_ignored(tmp_path: object) -> None:
    with (
        pytest.raises(TypeError, match=r"unexpected keyword argument 'block_netwrok'"),
        apirecorder.recording("replay", str(tmp_path), block_netwrok=True),
    ):
        pass


def test_host_lists_accept_comma_separated_names(tmp_path: object) -> None:
    with apirecorder.recording(
        "replay", str(tmp_path), ignore_hosts="db.local, Cache.Local"
    ) as session:
        assert session.ignore_hosts == ("db.local", "cache.local")
