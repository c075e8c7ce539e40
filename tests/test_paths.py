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
    storage.flush()  # the rename into place happens off the call's path
    assert path.is_file() and _inside(path.resolve(), root.resolve())
    path.unlink()


# -- symlinks committed inside the root ---------------------------------------------------

TEST_ID = "tests/sub/test_x.py::test_a"

#: Where a symlink inside the root points outside it (relative to the root).
LINKS = {
    "the test's folder": "tests/sub",
    "the test's recordings folder": "tests/sub/recordings",
    "a parent of the test's folder": "tests",
    "the shared recordings folder": "recordings",
}


@pytest.mark.parametrize("where", LINKS)
def test_a_symlinked_folder_inside_the_root_never_sends_writes_outside(
    where: str, upstream: Upstream, tmp_path: Path
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    link = root / LINKS[where]
    link.parent.mkdir(parents=True)
    link.symlink_to(outside, target_is_directory=True)
    with (
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("record", root=root),
        pytest.raises(apirecorder.ApiRecorderError, match="outside the storage root") as err,
    ):
        _chat(upstream.url)
    assert str(link) in str(err.value) or str(root) in str(err.value)
    assert _files_under(outside) == set()


@pytest.mark.parametrize("where", LINKS)
def test_a_symlinked_folder_inside_the_root_never_sends_reads_outside(
    where: str, upstream: Upstream, tmp_path: Path
) -> None:
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    # A call with no test id is recorded in the shared folder, one with an id in its own.
    test_id = None if where == "the shared recordings folder" else TEST_ID
    with apirecorder.test_context(test_id), apirecorder.recording("record", root=root):
        _chat(upstream.url)
    # Move the recordings out and leave a link to them: a lookup must refuse to follow it.
    real = root / LINKS[where]
    real.rename(elsewhere)
    real.symlink_to(elsewhere, target_is_directory=True)
    url = upstream.url
    upstream.stop()
    with (
        apirecorder.test_context(test_id),
        apirecorder.recording("replay", root=root),
        pytest.raises(apirecorder.ApiRecorderError, match="outside the storage root"),
    ):
        _chat(url)


def test_a_symlinked_recording_file_is_read_only_when_it_stays_inside(
    upstream: Upstream, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", root=root):
        _chat(upstream.url)
    (path,) = _files_under(root)
    inside, outside = root / "kept.json.data", tmp_path / "outside.json"
    inside.write_bytes(path.read_bytes())
    outside.write_bytes(path.read_bytes())
    url = upstream.url
    upstream.stop()
    path.unlink()
    path.symlink_to(inside)
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", root=root):
        _chat(url)  # a link inside the root is followed
    path.unlink()
    path.symlink_to(outside)
    with (
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("replay", root=root),
        pytest.raises(apirecorder.ApiRecorderError, match="outside the storage root"),
    ):
        _chat(url)


# -- names Windows would read as ".." ------------------------------------------------------


@pytest.mark.parametrize("folder", [".. ", "... ", ". ", "..  ", ". .", "..", "...", " "])
def test_dot_and_space_folder_names_never_survive_as_a_parent_reference(folder: str) -> None:
    relative = safe_relative_dir(f"tests/{folder}/{folder}/x/test_a.py")
    # What Windows makes of each part: trailing dots and spaces dropped.
    assert all(part.rstrip(". ") == part and part for part in relative.parts)
    assert relative == Path("tests/x/test_a.py")


def test_trailing_dots_and_spaces_are_dropped_from_every_part() -> None:
    assert safe_relative_dir("tests/name. /more../test_a.py") == Path("tests/name/more/test_a.py")


# -- long ids land where docs/security.md says ------------------------------------------


def test_a_folder_over_200_bytes_becomes_one_folder_under_the_root(tmp_path: Path) -> None:
    folder = "/".join(["d" * 60] * 4)  # 243 bytes
    storage = Storage(tmp_path, flat=False)
    first, shared = storage.dirs_for(f"{folder}/test_x.py::test_a")
    assert shared == tmp_path / "recordings"
    assert first.parent.parent == tmp_path and first.name == "recordings"
    assert first.parent.name == safe_relative_dir(folder).name
    assert first.parent.name.startswith("d" * 60 + "_" + "d" * 22)
    assert len(first.parent.name) == 100


def test_a_long_file_name_keeps_its_short_folder(tmp_path: Path) -> None:
    storage = Storage(tmp_path, flat=False)
    first, _ = storage.dirs_for("tests/sub/test_" + "n" * 250 + ".py::test_a")
    assert first == tmp_path / "tests" / "sub" / "recordings"
