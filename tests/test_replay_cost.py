"""What the recorder costs around a call (issue 16): streams built as read, writes off the path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import openai
import pytest

import apirecorder
from apirecorder import _recorder, _writing
from apirecorder._writing import is_temp_file
from tests.upstream import Upstream

TEST_ID = "tests/test_replay_cost.py::scenario"


def _stream(upstream_url: str) -> Any:
    client = openai.OpenAI(base_url=f"{upstream_url}/v1", api_key="sk-test", max_retries=0)
    return client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "stream me"}], stream=True
    )


def _text(chunk: Any) -> list[str | None]:
    return [choice.delta.content for choice in chunk.choices]


def test_a_replayed_stream_builds_each_chunk_when_it_is_read(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = upstream.url
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = [_text(chunk) for chunk in _stream(url)]
    assert len(live) > 2
    upstream.stop()

    built: list[object] = []
    deserialize = _recorder.Session.deserialize

    def counting(self: _recorder.Session, *args: Any, **kwargs: Any) -> Any:
        value = deserialize(self, *args, **kwargs)
        built.append(value)
        return value

    monkeypatch.setattr(_recorder.Session, "deserialize", counting)
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        stream = _stream(url)
        assert built == []  # nothing built before the first chunk is asked for
        first = next(iter(stream))
        assert built == [first]
        rest = list(stream)
    assert len(built) == len(live)
    assert [_text(chunk) for chunk in [first, *rest]] == live  # ids are normalized (DESIGN 6)


# -- recording: the fsync and the rename off the call's path ---------------------------------

ROOT = Path(__file__).resolve().parent.parent

#: Records one call with the writer thread's fsync held forever, so the parent can kill the
#: process while a recording is written to its temp file but not yet on disk.
KILLED_DURING_FSYNC = """
import os, sys, threading
import openai
import apirecorder

url, folder = sys.argv[1], sys.argv[2]

def held_fsync(fd):
    print("fsync", flush=True)
    threading.Event().wait()

os.fsync = held_fsync
client = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
with apirecorder.test_context("tests/test_replay_cost.py::killed"), \\
        apirecorder.recording("record", folder):
    client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Name a ringed planet"}]
    )
"""


def _record_once(url: str, folder: Path) -> None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
    with (
        apirecorder.test_context("tests/test_replay_cost.py::killed"),
        apirecorder.recording("record", folder),
    ):
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Name a ringed planet"}]
        )


@pytest.mark.parametrize("old_file", [False, True], ids=["first recording", "re-recording"])
def test_a_run_killed_before_the_fsync_leaves_the_old_file_or_none(
    old_file: bool, upstream: Upstream, tmp_path: Path
) -> None:
    folder = tmp_path / "recordings"
    before: dict[str, bytes] = {}
    if old_file:
        _record_once(upstream.url, folder)
        before = {p.name: p.read_bytes() for p in folder.glob("*.json")}
        assert len(before) == 1
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_DURING_FSYNC, upstream.url, str(folder)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        # Printed by the writer thread once the call has returned and its block is waiting.
        assert child.stdout.readline() == "fsync\n", child.communicate()[1]
    finally:
        child.kill()
        child.communicate()
    # Nothing was renamed into place before its data was synced: the old file, or none.
    assert {p.name: p.read_bytes() for p in folder.glob("*.json")} == before
    (temp,) = [p for p in folder.iterdir() if p.name not in before]
    assert is_temp_file(temp.name)
    # The temp file a later run removes holds the whole recording: the write itself is done
    # on the call's path, only the fsync and the rename are left to the writer thread.
    assert json.loads(temp.read_bytes())["request"]["body"]["model"] == "gpt-4o"


def test_a_recording_is_replayed_in_its_block_before_it_is_renamed_into_place(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    renames: list[str] = []
    sync_and_rename = _writing._sync_and_rename

    def held(fd: int, tmp: str, path: Path) -> None:
        release.wait()
        sync_and_rename(fd, tmp, path)
        renames.append(path.name)

    monkeypatch.setattr(_writing, "_sync_and_rename", held)
    url = upstream.url
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
    messages = [{"role": "user", "content": "Name a ringed planet"}]
    with (
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("record-if-missing", tmp_path),
    ):
        try:
            live = client.chat.completions.create(model="gpt-4o", messages=messages)
            upstream.stop()
            assert list(tmp_path.glob("*.json")) == []  # not renamed yet
            # Found in this process meanwhile: replayed, with the upstream gone (in a block
            # of its own: in the same block the same call again is its second call).
            with apirecorder.recording("replay", tmp_path):
                again = client.chat.completions.create(model="gpt-4o", messages=messages)
            assert again.choices[0].message.content == live.choices[0].message.content
        finally:
            release.set()  # the block's end waits for the writer
    assert [p.name for p in tmp_path.glob("*.json")] == renames
    assert len(renames) == 1
