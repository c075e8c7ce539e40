"""Faults while writing: the recorder's own error naming the file and the fix, nothing lost.

A full disk or a read-only folder is simulated by making the system call fail with its
errno (the tests run as root, where permissions alone would not stop a write).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openai
import pytest

import apirecorder
from apirecorder import _writing
from apirecorder._cli import main
from apirecorder._storage import RecordingWriteError
from tests.upstream import Upstream

TEST_ID = "tests/test_faults.py::test_x"


def _chat(url: str, text: str = "Name a ringed planet") -> str:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
    result = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": text}]
    )
    return result.choices[0].message.content or ""


def _record(url: str, folder: Path, text: str = "Name a ringed planet") -> str:
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", folder):
        return _chat(url, text)


def _fail_with(code: int) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OSError(code, os.strerror(code))

    return fail


FIXES = {
    errno.ENOSPC: "the disk is full: free some space and record again",
    errno.EROFS: "read-only file system: record where you can write",
    errno.EACCES: "not writable by this user: fix its permissions",
}
#: Where the write fails: making the temp file, flushing it to disk, renaming it into place.
STEPS = {
    "create temp": (_writing, "_create_temp"),
    "fsync": (_writing.os, "fsync"),
    "replace": (_writing.os, "replace"),
}


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("code", FIXES, ids=errno.errorcode.get)
def test_a_failed_write_names_the_file_and_the_fix_and_keeps_the_old_file(
    code: int, step: str, upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(upstream.url, tmp_path)
    (path,) = tmp_path.iterdir()
    old = path.read_bytes()
    module, name = STEPS[step]
    monkeypatch.setattr(module, name, _fail_with(code))
    with pytest.raises(RecordingWriteError) as err:
        _record(upstream.url, tmp_path)
    assert isinstance(err.value, apirecorder.ApiRecorderError)
    assert err.value.path == path
    message = str(err.value)
    assert message.startswith(f"{path}: cannot write the recording ({os.strerror(code)}); ")
    assert FIXES[code] in message
    assert "Any earlier recording of this call was left as it was." in message
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


def test_a_folder_removed_just_before_the_write_is_made_again(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "recordings"
    real_create = _writing._create_temp
    removed: list[Path] = []

    def remove_then_make(*args: Any, **kwargs: Any) -> Any:
        if not removed:  # a clean-up in another process, between mkdir and the temp file
            shutil.rmtree(folder)
            removed.append(folder)
        return real_create(*args, **kwargs)

    monkeypatch.setattr(_writing, "_create_temp", remove_then_make)
    answer = _record(upstream.url, folder)
    assert removed == [folder]
    assert len(list(folder.glob("*.json"))) == 1
    url = upstream.url
    upstream.stop()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", folder):
        assert _chat(url) == answer


def test_a_folder_removed_between_two_calls_is_made_again(
    upstream: Upstream, tmp_path: Path
) -> None:
    folder = tmp_path / "recordings"
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", folder):
        _chat(upstream.url, "first")
        shutil.rmtree(folder)
        _chat(upstream.url, "second")
    assert len(list(folder.glob("*.json"))) == 1


# -- temp files of killed runs --------------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _temp(folder: Path, name: str, age_s: float = 0.0) -> Path:
    path = folder / name
    path.write_bytes(b'{"request": {"half": "writ')
    if age_s:
        stamp = time.time() - age_s
        os.utime(path, (stamp, stamp))
    return path


def _temp_files(folder: Path) -> dict[str, Path]:
    hashed = "0" * 64 + ".json"
    return {
        "killed run": _temp(folder, f".{hashed}.{_dead_pid()}.k1ll3d.tmp"),
        "old name, old": _temp(folder, f".{hashed}.abc123.tmp", age_s=2 * 3600),
        "any name, old": _temp(folder, f".{hashed}.{os.getppid()}.0ld.tmp", age_s=2 * 3600),
        "live writer": _temp(folder, f".{hashed}.{os.getppid()}.l1ve.tmp"),
        "old name, recent": _temp(folder, f".{hashed}.r3cent.tmp"),
    }


def test_the_next_write_removes_orphan_temp_files_and_keeps_live_ones(
    upstream: Upstream, tmp_path: Path
) -> None:
    tmp_path.mkdir(exist_ok=True)
    temps = _temp_files(tmp_path)
    _record(upstream.url, tmp_path)
    left = {name for name, path in temps.items() if path.exists()}
    assert left == {"live writer", "old name, recent"}
    assert len(list(tmp_path.glob("*.json"))) == 1


@pytest.mark.parametrize("command", ["ls", "stats", "verify", "normalize", "rehash", "diff"])
def test_every_command_ignores_temp_files(
    command: str,
    upstream: Upstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "recordings"
    _record(upstream.url, folder)
    (path,) = folder.glob("*.json")
    temps = _temp_files(folder)
    monkeypatch.chdir(tmp_path)
    argv = [command, str(path), str(path)] if command == "diff" else [command, "recordings"]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert ".tmp" not in out + err
    assert all(p.exists() for p in temps.values())  # reading never deletes anything
