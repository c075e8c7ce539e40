"""The folder for calls with no test id is configurable (``shared_dir=``, the ini key
``apirecorder_shared_dir``, ``$APIRECORDER_SHARED_DIR``), so a suite can share it with the
reference recorder, which keeps such calls in ``tests/integration/common/recordings``."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

import apirecorder
from apirecorder._settings import SHARED_DIR_ENV
from apirecorder._storage import Storage
from tests.upstream import Upstream

pytest_plugins = ["pytester"]

REFERENCE_SHARED = "tests/integration/common/recordings"
TEST_ID = "tests/integration/inference/test_chat.py::test_hello"


def test_the_shared_folder_is_the_one_without_a_test_id_and_every_lookups_last(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "elsewhere" / "recordings"  # outside the root: it was named, not found
    colocated = Storage(tmp_path / "root", flat=False, shared=shared)
    assert colocated.dirs_for(None) == (shared,)
    assert colocated.dirs_for(TEST_ID) == (
        tmp_path / "root" / "tests/integration/inference/recordings",
        shared,
    )
    flat = Storage(tmp_path / "flat", flat=True, shared=shared)
    assert flat.dirs_for(None) == (shared,)
    assert flat.dirs_for(TEST_ID) == (tmp_path / "flat", shared)
    assert Storage(tmp_path / "flat", flat=True).dirs_for(None) == (tmp_path / "flat",)


def test_a_call_with_no_test_id_is_written_to_and_replayed_from_it(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(SHARED_DIR_ENV, REFERENCE_SHARED)  # relative to the current folder
    client = openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="k", max_retries=0)

    def chat() -> str:
        answer = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "set-up"}]
        )
        return str(answer.choices[0].message.content)

    with apirecorder.recording("record", root=tmp_path):
        live = chat()
    [path] = (tmp_path / REFERENCE_SHARED).glob("*.json")
    assert json.loads(path.read_text())["test_id"] is None
    assert not (tmp_path / "recordings").exists()
    upstream.stop()
    with apirecorder.recording("replay", root=tmp_path, block_network=True):
        assert chat() == live


def test_the_ini_key_and_the_marker_are_relative_to_the_rootdir(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SHARED_DIR_ENV, "/from/the/environment")  # the ini file wins
    pytester.makeini(f"[pytest]\napirecorder_shared_dir = {REFERENCE_SHARED}\n")
    (pytester.path / "sub").mkdir()
    pytester.makepyfile(
        test_where="""
        import pytest

        def test_where(apirecorder):
            print("SHARED", apirecorder.storage.shared_dir)

        @pytest.mark.apirecorder(shared_dir="from_marker")
        def test_marker():
            import apirecorder._recorder as engine
            print("MARKED", engine.active_session().storage.shared_dir)
        """
    )
    monkeypatch.chdir(pytester.path / "sub")
    result = pytester.runpytest(str(pytester.path), "-s", "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            f"*SHARED {pytester.path / REFERENCE_SHARED}",
            f"*MARKED {pytester.path / 'from_marker'}",  # the marker's, also rootdir-relative
        ]
    )
