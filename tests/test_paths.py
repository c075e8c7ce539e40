"""A test id can never make apirecorder write or read outside the storage root.

Recordings made with the co-located layout sit under ``<root>/<test folder>/recordings/``;
the folder comes from the test id, so a hostile or odd id (``..``, an absolute path, a
drive letter, a NUL byte, thousands of characters) must still land inside the root.
"""

from __future__ import annotations

import os
from pathlib import Path

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import apirecorder
from apirecorder._storage import Storage, safe_relative_dir
from tests.upstream import Upstream

HOSTILE_IDS = {
    "dot-dot": "../../../outside/test_x.py::test_a",
    "dot-dot inside": "tests/../../../../outside/test_x.py::test_a",
    "absolute": "/etc/cron.d/test_x.py::test_a",
    "drive letter": "C:\\Windows\\System32\\test_x.py::test_a",
    "drive letter, forward slashes": "C:/outside/test_x.py::test_a",
    "UNC share": "\\\\server\\share\\test_x.py::test_a",
    "NUL byte": "tests/evil\x00/../../test_x.py::test_a",
    "very long": "tests/" + "d" * 5000 + "/test_x.py::test_" + "n" * 5000,
    "many parts": "tests/" + "a/" * 3000 + "test_x.py::test_a",
    "long multibyte part": "tests/" + "é" * 400 + "/test_x.py::test_a",
    "control characters": "tests/a\nb\tc/te<s>t|x?.py::test_a",
}


def _chat(url: str) -> None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])


def _files_under(folder: Path) -> set[Path]:
    return {Path(d) / f for d, _, files in os.walk(folder) for f in files}


def _inside(path: Path, root: Path) -> bool:
    return os.path.commonpath([os.path.abspath(path), os.path.abspath(root)]) == str(root)


@pytest.mark.parametrize("name", HOSTILE_IDS)
def test_hostile_test_id_writes_and_reads_inside_the_root(
    name: str, upstream: Upstream, tmp_path: Path
) -> None:
    root = tmp_path / "a" / "b" / "root"
    root.mkdir(parents=True)
    test_id = HOSTILE_IDS[name]
    with apirecorder.test_context(test_id), apirecorder.recording("record", root=root):
        _chat(upstream.url)
    written = _files_under(tmp_path)
    assert len(written) == 1
    (path,) = written
    assert _inside(path, root)
    assert path.parent.name == "recordings"
    assert all(len(part.encode("utf-8", "surrogateescape")) <= 100 for part in path.parts[-3:])

    url = upstream.url
    upstream.stop()
    with apirecorder.test_context(test_id), apirecorder.recording("replay", root=root):
        _chat(url)  # found again, inside the root


def test_a_recording_planted_where_a_dot_dot_id_points_is_never_read(
    upstream: Upstream, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    test_id = "../outside/test_x.py::test_a"
    with apirecorder.test_context(test_id), apirecorder.recording("record", root=root):
        _chat(upstream.url)
    (recorded,) = _files_under(root)
    # Where a naive join of root and test folder would look: <root>/../outside/recordings.
    planted = tmp_path / "outside" / "recordings" / recorded.name
    planted.parent.mkdir(parents=True)
    recorded.rename(planted)
    url = upstream.url
    upstream.stop()
    with (
        apirecorder.test_context(test_id),
        apirecorder.recording("replay", root=root),
        pytest.raises(apirecorder.RecordingNotFoundError),
    ):
        _chat(url)


def test_an_ordinary_test_id_gets_its_folder_and_the_shared_fallback(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "root", flat=False)
    (folder, shared) = storage.dirs_for("tests/sub/test_x.py::t")
    assert folder == tmp_path / "root" / "tests" / "sub" / "recordings"
    assert shared == tmp_path / "root" / "recordings"


# -- the shortening rule (docs/security.md) --------------------------------------------


def test_ordinary_test_files_keep_their_folder() -> None:
    assert safe_relative_dir("tests/integration/test_chat.py") == Path(
        "tests/integration/test_chat.py"
    )


def test_a_long_part_is_cut_and_suffixed_with_its_digest() -> None:
    part = "d" * 150
    (short, file_name) = safe_relative_dir(f"tests/{part}/test_x.py").parts[1:]
    assert file_name == "test_x.py"
    assert len(short) == 100
    assert short.startswith("d" * 83 + "-")
    # 16 hex of the sha256 of the whole part: two long parts that share a prefix differ.
    other = safe_relative_dir(f"tests/{part}e/test_x.py").parts[1]
    assert short != other and short[:84] == other[:84]


def test_a_long_multibyte_part_is_cut_by_bytes() -> None:
    short = safe_relative_dir("é" * 100 + "/test_x.py").parts[0]
    assert len(short.encode("utf-8")) <= 100
    assert short.startswith("é" * 41 + "-")


def test_a_long_path_becomes_one_folder() -> None:
    relative = safe_relative_dir("/".join(["part"] * 60) + "/test_x.py")
    assert len(relative.parts) == 1
    assert relative.parts[0].startswith("part_part_part")
    assert len(relative.parts[0]) == 100


# -- any test id at all ---------------------------------------------------------------

_PIECES = st.sampled_from(
    ["..", ".", "/", "\\", "C:", "c:\\", "\x00", "::", ".py", "test_x.py", "~", "\ud800", "é"]
)
_ID_TEXT = st.lists(st.one_of(_PIECES, st.text(max_size=30)), max_size=40).map("".join)
_LONG_ID = st.builds(
    lambda n, s: s * n, st.integers(min_value=50, max_value=600), st.sampled_from(["ab/", "é/.."])
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(test_id=st.one_of(_ID_TEXT, _LONG_ID.map(lambda s: s + "test_x.py::t")))
def test_any_test_id_stays_inside_the_root(test_id: str, tmp_path: Path) -> None:
    root = tmp_path / "root"
    storage = Storage(root, flat=False)
    for folder in storage.dirs_for(test_id):
        assert _inside(folder, root)
        relative = folder.relative_to(root)
        assert ".." not in relative.parts
        assert all(len(os.fsencode(part)) <= 100 for part in relative.parts)
    path = storage.path_for("0" * 64 + ".json", test_id)
    storage.write(path, {"request": {}, "response": {}})
    assert path.is_file() and _inside(path.resolve(), root.resolve())
    path.unlink()
