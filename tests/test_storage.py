"""Storage details that replay relies on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from apirecorder import _storage
from apirecorder._storage import Storage


def _touch(folder: Path, name: str) -> None:
    (folder / name).write_text("{}")


def _settle(folder: Path, seconds: int) -> None:
    # A folder modified long ago: its listing is cached (recent folders never are).
    os.utime(folder, ns=(seconds * 10**9, seconds * 10**9))


def test_model_list_lookup_sees_files_added_after_it_was_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = Storage(tmp_path, flat=True)
    listings: list[str] = []
    real_scandir = os.scandir

    def counting_scandir(path: Any) -> Any:
        listings.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(_storage.os, "scandir", counting_scandir)

    def names() -> list[str]:
        return [p.name for p in storage._glob(tmp_path, "models-abc-")]

    _touch(tmp_path, "models-abc-11111111.json")
    _touch(tmp_path, "abc.json")
    _settle(tmp_path, 1_000_000_000)
    assert names() == ["models-abc-11111111.json"]
    assert names() == ["models-abc-11111111.json"]
    assert len(listings) == 1  # the second lookup cost one stat, no listing

    # A file added behind the cache's back, with the folder's mtime put back: the cache is
    # used, so the lookup does not see it (which proves the cache exists)...
    _touch(tmp_path, "models-abc-22222222.json")
    _settle(tmp_path, 1_000_000_000)
    assert names() == ["models-abc-11111111.json"]
    assert len(listings) == 1

    # ...and any change of the folder's mtime, as every real write makes, invalidates it.
    _settle(tmp_path, 1_000_000_001)
    assert names() == ["models-abc-11111111.json", "models-abc-22222222.json"]
    assert len(listings) == 2
    os.unlink(tmp_path / "models-abc-11111111.json")  # a real change: mtime is now
    assert names() == ["models-abc-22222222.json"]
    assert len(listings) == 3


def test_model_list_lookup_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert list(Storage(tmp_path, flat=True)._glob(tmp_path / "absent", "models-")) == []


def test_recordings_are_ordinary_files_not_private_ones(tmp_path: Path) -> None:
    storage = Storage(tmp_path, flat=True)
    path = tmp_path / "abc.json"
    storage.write(path, {"request": {}, "response": {}})
    storage.flush()  # the rename into place happens off the call's path
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["abc.json"]  # no temp file left behind
