"""The one precedence rule (command line > marker > ini > environment > default), in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from apirecorder import Mode
from apirecorder._settings import resolve_mode, resolve_storage_dir

ENV = {"APIRECORDER_MODE": "record", "APIRECORDER_DIR": "from-env"}


@pytest.mark.parametrize(
    ("cli", "marker", "ini", "environ", "expected"),
    [
        ("live", "record", "replay", ENV, Mode.LIVE),
        (None, "record-if-missing", "live", ENV, Mode.RECORD_IF_MISSING),
        (None, None, "live", ENV, Mode.LIVE),
        (None, None, "", ENV, Mode.RECORD),
        (None, None, None, {}, Mode.REPLAY),
    ],
)
def test_mode_precedence(
    cli: str | None, marker: str | None, ini: str | None, environ: dict[str, str], expected: Mode
) -> None:
    assert resolve_mode(cli=cli, marker=marker, ini=ini, environ=environ) is expected


def test_an_unknown_mode_from_any_source_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid modes are"):
        resolve_mode(environ={"APIRECORDER_MODE": "replya"})


def test_storage_dir_precedence(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert (
        resolve_storage_dir(cli="c", marker="m", ini="i", root=root, environ=ENV)
        == Path("c").resolve()
    )
    assert resolve_storage_dir(marker="m", ini="i", root=root, environ=ENV) == root / "m"
    assert resolve_storage_dir(ini="i", root=root, environ=ENV) == root / "i"
    assert resolve_storage_dir(root=root, environ=ENV) == Path("from-env").resolve()
    assert resolve_storage_dir(root=root, environ={}) is None
