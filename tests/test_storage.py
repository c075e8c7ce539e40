"""Storage details that replay relies on."""

from __future__ import annotations

import os
from pathlib import Path

from apirecorder._storage import Storage


def _touch(folder: Path, name: str) -> None:
    (folder / name).write_text("{}")


def test_model_list_lookup_sees_files_added_after_it_was_cached(tmp_path: Path) -> None:
    storage = Storage(tmp_path, flat=True)
    _touch(tmp_path, "models-abc-11111111.json")
    _touch(tmp_path, "abc.json")
    old = 1_000_000_000
    os.utime(tmp_path, ns=(old, old))  # settled long ago: the listing is cached
    assert [p.name for p in storage._glob(tmp_path, "models-abc-")] == ["models-abc-11111111.json"]
    _touch(tmp_path, "models-abc-22222222.json")  # changes the folder's mtime
    assert [p.name for p in storage._glob(tmp_path, "models-abc-")] == [
        "models-abc-11111111.json",
        "models-abc-22222222.json",
    ]
    os.unlink(tmp_path / "models-abc-11111111.json")
    assert [p.name for p in storage._glob(tmp_path, "models-abc-")] == ["models-abc-22222222.json"]


def test_model_list_lookup_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert list(Storage(tmp_path, flat=True)._glob(tmp_path / "absent", "models-")) == []


def test_recordings_are_ordinary_files_not_private_ones(tmp_path: Path) -> None:
    storage = Storage(tmp_path, flat=True)
    path = tmp_path / "abc.json"
    storage.write(path, {"request": {}, "response": {}})
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["abc.json"]  # no temp file left behind
