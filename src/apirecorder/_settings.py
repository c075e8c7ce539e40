"""Settings: the environment variables, the one precedence rule, and the command that records.

A leaf module (it imports only ``_modes``), so every layer can read settings without
pulling in the recorder. The precedence is the README's: command line > marker > config
fixture > ini > environment > default; :func:`first_set` implements it once for single
values, :func:`layered_options` for the option dicts (where lists add up).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ._modes import Mode, parse_mode

__all__ = [
    "DEBUG_ENV",
    "DIR_ENV",
    "HOSTS_UNDER_TEST_ENV",
    "IGNORE_HOSTS_ENV",
    "LIST_OPTIONS",
    "MATCH_ORIGIN_ENV",
    "MODE_ENV",
    "OPTION_KEYWORDS",
    "ROOT_ENV",
    "SHARED_DIR_ENV",
    "check_options",
    "debug_enabled",
    "fields_ignored",
    "first_set",
    "ini_ignore_fields",
    "ini_lines",
    "ini_normalizers",
    "layered_options",
    "record_command",
    "resolve_match_origin",
    "resolve_mode",
    "resolve_shared_dir",
    "resolve_storage_dir",
    "test_ids_rooted_at",
]

MODE_ENV = "APIRECORDER_MODE"
DIR_ENV = "APIRECORDER_DIR"
DEBUG_ENV = "APIRECORDER_DEBUG"
#: Hosts of servers under test, comma or space separated (added to ``hosts_under_test``).
HOSTS_UNDER_TEST_ENV = "APIRECORDER_HOSTS_UNDER_TEST"
IGNORE_HOSTS_ENV = "APIRECORDER_IGNORE_HOSTS"
#: The folder test ids are taken relative to, when pytest found no ini file to pin them.
ROOT_ENV = "APIRECORDER_ROOT"

#: The keywords of the marker and of the ``apirecorder_config`` fixture: ``mode`` and
#: ``storage_dir``, the keyword options of ``recording()``, and ``ignore_fields``.
OPTION_KEYWORDS = (
    "allow_hosts",
    "allowed_types",
    "before_record_response",
    "block_network",
    "hosts_under_test",
    "ignore_fields",
    "ignore_hosts",
    "match_origin",
    "mode",
    "normalizers",
    "redact_headers",
    "redact_json_paths",
    "redact_patterns",
    "secret_env_vars",
    "shared_dir",
    "storage_dir",
    "tools",
)
#: Options whose values from every source add up instead of the first one winning, so a
#: marker's ``ignore_hosts=`` keeps the hosts the ini file protects.
LIST_OPTIONS = frozenset(
    {
        "allow_hosts",
        "allowed_types",
        "hosts_under_test",
        "ignore_fields",
        "ignore_hosts",
        "normalizers",
        "redact_headers",
        "redact_json_paths",
        "redact_patterns",
        "secret_env_vars",
        "tools",
    }
)

#: The folder for calls made with no test id (session set-up), shareable with the reference.
SHARED_DIR_ENV = "APIRECORDER_SHARED_DIR"

#: ``0`` (or false, no, off): raw HTTP recordings match whatever the scheme, host and port.
MATCH_ORIGIN_ENV = "APIRECORDER_MATCH_ORIGIN"

T = TypeVar("T")


def env_value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """``os.environ.get(name)`` (or ``environ.get``), at a tenth of its cost when unset.

    Every test's block reads several variables, nearly always unset, and ``Mapping.get``
    raises and catches a KeyError inside for each. CPython's ``os.environ`` keeps its
    values in a dict of encoded strings (``_data``), looked up here directly.
    """
    if environ is not None:
        return environ.get(name)
    data = getattr(os.environ, "_data", None)
    if type(data) is not dict or os.name != "posix":
        return os.environ.get(name)
    key = _ENV_KEYS.get(name)
    if key is None:
        key = _ENV_KEYS[name] = os.fsencode(name)
    raw = data.get(key)
    return None if raw is None else os.fsdecode(raw)


_ENV_KEYS: dict[str, bytes] = {}


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
    config: Mode | str | None = None,
    ini: Mode | str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Mode:
    """The mode by precedence; the default is replay, so CI never records by accident."""
    given = first_set(cli, marker, config, ini, default=None)
    if given is None:
        # Read only when nothing above it is set: recording() opens one block per test.
        given = first_set(env_value(MODE_ENV, environ), default=Mode.REPLAY)
    return parse_mode(given)


def resolve_storage_dir(
    *,
    cli: str | os.PathLike[str] | None = None,
    marker: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    ini: str | os.PathLike[str] | None = None,
    root: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path | None:
    """The flat storage folder by precedence, or None for the co-located layout.

    The command line and the environment are relative to the current folder; the marker and
    the config fixture and the ini file to ``root`` (the pytest rootdir).
    """
    env = os.environ if environ is None else environ
    if cli:
        return Path(cli).resolve()
    for relative in (marker, config, ini):
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
    if given:
        return Path(given).resolve()
    if ini:
        return (root / Path(ini)) if root is not None else Path(ini)
    from_env = env_value(SHARED_DIR_ENV, environ)
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
    for candidate in (marker, ini, env_value(MATCH_ORIGIN_ENV, environ)):
        flag = _flag(candidate)
        if flag is not None:
            return flag
    return True


def debug_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """``$APIRECORDER_DEBUG`` is on (any value but empty, 0, false, no)."""
    return (env_value(DEBUG_ENV, environ) or "") not in ("", "0", "false", "no")


#: The folders test ids are relative to, innermost pytest run last (see :func:`test_ids_rooted_at`).
_test_id_roots: list[Path] = []


@contextmanager
def test_ids_rooted_at(root: Path) -> Iterator[None]:
    """Inside the block, test ids name files relative to ``root`` (the pytest plugin's run),
    so :func:`record_command` can name the test from the folder pytest was started in."""
    _test_id_roots.append(root)
    try:
        yield
    finally:
        _test_id_roots.remove(root)


# pytest would otherwise try to collect the name as a test.
test_ids_rooted_at.__test__ = False  # type: ignore[attr-defined]


def _as_invoked(test_id: str) -> str:
    if not _test_id_roots:
        return test_id
    file_part, sep, tail = test_id.partition("::")
    relative = Path(os.path.relpath(_test_id_roots[-1] / file_part)).as_posix()
    return relative + sep + tail


def record_command(test_id: str | None, mode: str = "record-if-missing") -> str:
    """The command that records what a replay missed (``mode="record"`` to write it anew)."""
    if test_id and ".py::" in test_id:
        import shlex  # only for the message of a miss

        return f"pytest {shlex.quote(_as_invoked(test_id))} --apirecorder-mode={mode}"
    return f"{MODE_ENV}={mode} <your command>"


def check_options(options: Mapping[str, Any], where: str) -> None:
    """Raise ValueError naming ``where`` and the valid keywords if an option is unknown."""
    unknown = sorted(set(options) - set(OPTION_KEYWORDS))
    if unknown:
        noun = "keyword" if len(unknown) == 1 else "keywords"
        raise ValueError(
            f"{where}: unknown {noun} {', '.join(unknown)}; "
            f"valid keywords: {', '.join(OPTION_KEYWORDS)}"
        )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    # A single name is a common slip for a one-item list; never split it into characters.
    return [value] if isinstance(value, str | bytes) or callable(value) else list(value)


def layered_options(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Option dicts merged, the lowest precedence first: a later layer's value wins, except for
    :data:`LIST_OPTIONS`, whose items add up (in order, each once)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for name, value in (layer or {}).items():
            if name in LIST_OPTIONS:
                items = [*merged.get(name, []), *_as_list(value)]
                merged[name] = [item for i, item in enumerate(items) if item not in items[:i]]
            elif value is not None:
                merged[name] = value
    return merged


# -- volatile request fields ----------------------------------------------------------------


def _drop(node: Any, path: Sequence[str]) -> None:
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        keys = list(node) if head == "*" else [head] if head in node else []
        for key in keys:
            if rest:
                _drop(node[key], rest)
            else:
                del node[key]
    elif isinstance(node, list):
        if head == "*":
            indexes = range(len(node))
        elif head.lstrip("-").isdigit() and -len(node) <= int(head) < len(node):
            indexes = range(int(head) % len(node), int(head) % len(node) + 1)
        else:
            indexes = range(0)
        for index in reversed(indexes):
            if rest:
                _drop(node[index], rest)
            else:
                del node[index]


def fields_ignored(paths: Iterable[str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A body normalizer that drops each dotted path (``metadata.request_id``, ``user``,
    ``messages.*.name``; ``*`` is every key or index) before the request is hashed."""
    parsed = [tuple(str(p).split(".")) for p in paths if str(p).strip()]
    for path in parsed:
        if any(not part for part in path):
            raise ValueError(f"ignore_fields: {'.'.join(path)!r} is not a dotted path")

    def ignore_fields(body: dict[str, Any]) -> dict[str, Any]:
        # The hashing layer hands normalizers a deep copy: editing it in place is safe.
        for path in parsed:
            _drop(body, path)
        return body

    return ignore_fields


#: ini files pytest reads, in the order it looks for them in a folder.
_INI_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


def _ini_value(path: Path, key: str) -> tuple[bool, Any]:
    """(found an ini section, the value of ``key`` there) for one candidate file."""
    # The parsers only here: the CLI reads ini files, a test run never does through this.
    import configparser
    import tomllib

    if path.name == "pyproject.toml":
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            return False, None
        section = data.get("tool", {}).get("pytest", {})
        section = section.get("ini_options", section) if isinstance(section, dict) else {}
        return bool(section), section.get(key) if isinstance(section, dict) else None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error):
        return False, None
    name = "tool:pytest" if path.name == "setup.cfg" else "pytest"
    if not parser.has_section(name):
        return path.name in ("pytest.ini", ".pytest.ini"), None
    return True, parser.get(name, key, fallback=None)


def ini_lines(start: Path, key: str) -> list[str]:
    """The lines of ``key`` (a ``linelist`` setting) in the pytest ini file that pytest
    started in ``start`` would use, so the CLI applies the settings the tests did."""
    for folder in (start.absolute(), *start.absolute().parents):
        for name in _INI_FILES:
            candidate = folder / name
            if not candidate.is_file():
                continue
            found, value = _ini_value(candidate, key)
            if found:
                lines = value if isinstance(value, list) else str(value or "").splitlines()
                return [str(line).strip() for line in lines if str(line).strip()]
    return []


def ini_ignore_fields(start: Path) -> list[str]:
    """``apirecorder_ignore_fields`` of the ini file above ``start``: the CLI hashes requests
    as the tests did."""
    return ini_lines(start, "apirecorder_ignore_fields")


def ini_normalizers(start: Path) -> list[Callable[[dict[str, Any]], dict[str, Any]]]:
    """The body normalizers the ini file above ``start`` gives the tests (``ignore_fields``)."""
    fields = ini_ignore_fields(start)
    return [fields_ignored(fields)] if fields else []
