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
    "MATCH_ORIGIN_ENV",
    "MODE_ENV",
    "debug_enabled",
    "first_set",
    "record_command",
    "resolve_match_origin",
    "resolve_mode",
    "resolve_storage_dir",
]

MODE_ENV = "APIRECORDER_MODE"
DIR_ENV = "APIRECORDER_DIR"
DEBUG_ENV = "APIRECORDER_DEBUG"
#: Hosts of servers under test, comma or space separated (added to ``hosts_under_test``).
HOSTS_UNDER_TEST_ENV = "APIRECORDER_HOSTS_UNDER_TEST"
IGNORE_HOSTS_ENV = "APIRECORDER_IGNORE_HOSTS"
#: ``0`` (or false, no, off): raw HTTP recordings match whatever the scheme, host and port.
MATCH_ORIGIN_ENV = "APIRECORDER_MATCH_ORIGIN"

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


def _flag(value: bool | str | None) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    return None  # unset (or unreadable): the next source decides


def resolve_match_origin(
    *,
    marker: bool | str | None = None,
    ini: bool | str | None = None,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Whether raw HTTP recordings match on scheme, host and port (default: yes)."""
    env = os.environ if environ is None else environ
    for candidate in (marker, ini, env.get(MATCH_ORIGIN_ENV)):
        flag = _flag(candidate)
        if flag is not None:
            return flag
    return True


def debug_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """``$APIRECORDER_DEBUG`` is on (any value but empty, 0, false, no)."""
    env = os.environ if environ is None else environ
    return env.get(DEBUG_ENV, "") not in ("", "0", "false", "no")


def record_command(test_id: str | None) -> str:
    """The command that records what a replay missed."""
    if test_id and ".py::" in test_id:
        return f"pytest {shlex.quote(test_id)} --apirecorder-mode=record-if-missing"
    return f"{MODE_ENV}=record-if-missing <your command>"
