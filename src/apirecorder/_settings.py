"""Settings: the environment variables, the one precedence rule, and the command that records.

A leaf module (it imports only ``_modes``), so every layer can read settings without
pulling in the recorder. The precedence is the README's: command line > marker > ini >
environment > default; :func:`first_set` implements it once, for the pytest plugin and for
``recording()``.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from ._modes import Mode, parse_mode

__all__ = [
    "DEBUG_ENV",
    "DIR_ENV",
    "HOSTS_UNDER_TEST_ENV",
    "IGNORE_HOSTS_ENV",
    "MODE_ENV",
    "SHARED_DIR_ENV",
    "debug_enabled",
    "first_set",
    "record_command",
    "resolve_mode",
    "resolve_shared_dir",
    "resolve_storage_dir",
]

MODE_ENV = "APIRECORDER_MODE"
DIR_ENV = "APIRECORDER_DIR"
DEBUG_ENV = "APIRECORDER_DEBUG"
#: Hosts of servers under test, comma or space separated (added to ``hosts_under_test``).
HOSTS_UNDER_TEST_ENV = "APIRECORDER_HOSTS_UNDER_TEST"
IGNORE_HOSTS_ENV = "APIRECORDER_IGNORE_HOSTS"
#: The folder for calls made with no test id (session set-up), shareable with the reference.
SHARED_DIR_ENV = "APIRECORDER_SHARED_DIR"

T = TypeVar("T")


def first_set(*candidates: T | None, default: T) -> T:
    """The first candidate that is set (not None, not empty), else ``default``.

    Callers list the sources in precedence order: command line, marker, ini, environment.
    """
    for candidate in candidates:
        if candidate is not None and candidate != "":
            return candidate
    return default


def resolve_mode(
    *,
    cli: Mode | str | None = None,
    marker: Mode | str | None = None,
    ini: Mode | str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Mode:
    """The mode by precedence; the default is replay, so CI never records by accident."""
    env = os.environ if environ is None else environ
    return parse_mode(first_set(cli, marker, ini, env.get(MODE_ENV), default=Mode.REPLAY))


def resolve_storage_dir(
    *,
    cli: str | os.PathLike[str] | None = None,
    marker: str | os.PathLike[str] | None = None,
    ini: str | os.PathLike[str] | None = None,
    root: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path | None:
    """The flat storage folder by precedence, or None for the co-located layout.

    The command line and the environment are relative to the current folder; the marker and
    the ini file to ``root`` (the pytest rootdir), as each is written relative to it.
    """
    env = os.environ if environ is None else environ
    if cli:
        return Path(cli).resolve()
    for relative in (marker, ini):
        if relative:
            return (root / Path(relative)) if root is not None else Path(relative)
    from_env = env.get(DIR_ENV)
    return Path(from_env).resolve() if from_env else None


def resolve_shared_dir(
    *,
    given: str | os.PathLike[str] | None = None,
    ini: str | os.PathLike[str] | None = None,
    root: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path | None:
    """The folder for calls with no test id, or None for the layout's own.

    ``given`` (a ``recording()`` argument) and the environment are relative to the current
    folder, the ini file to ``root``, as for the storage folder.
    """
    env = os.environ if environ is None else environ
    if given:
        return Path(given).resolve()
    if ini:
        return (root / Path(ini)) if root is not None else Path(ini)
    from_env = env.get(SHARED_DIR_ENV)
    return Path(from_env).resolve() if from_env else None


def debug_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """``$APIRECORDER_DEBUG`` is on (any value but empty, 0, false, no)."""
    env = os.environ if environ is None else environ
    return env.get(DEBUG_ENV, "") not in ("", "0", "false", "no")


def record_command(test_id: str | None) -> str:
    """The command that records what a replay missed."""
    if test_id and ".py::" in test_id:
        return f"pytest {shlex.quote(test_id)} --apirecorder-mode=record-if-missing"
    return f"{MODE_ENV}=record-if-missing <your command>"
