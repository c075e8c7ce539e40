"""The pytest plugin's settings: its options and ini keys, checked once, and how they complete
a block's options (marker checks, test-id anchoring, network and redaction settings).

Part of the pytest shell: :mod:`apirecorder.pytest_plugin` registers the hooks, the plugin
object and the fixtures, and calls these.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import pytest

from ._ledger import (
    LEDGER_CACHE_KEY,
    WORKER_OUTPUT_KEY,
    RunFacts,
    UnusedRecording,
    find_unused,
    ledger_data,
)
from ._modes import Mode, parse_mode
from ._settings import MODE_ENV, ROOT_ENV, check_options, fields_ignored

#: The marker's name (and the fixture's).
MARKER = "apirecorder"


class DebugToStderr(logging.Handler):
    """``$APIRECORDER_DEBUG`` lines on the stderr of the moment, so ``-s`` shows them."""

    def emit(self, record: logging.LogRecord) -> None:
        # sys.stderr is looked up per line: pytest swaps it while it captures a test.
        with suppress(OSError, ValueError):
            sys.stderr.write(self.format(record) + "\n")


def add_options(parser: pytest.Parser) -> None:
    """The options and ini keys of ``pytest_addoption``."""
    group = parser.getgroup("apirecorder", "record and replay API traffic (apirecorder)")
    group.addoption(
        "--apirecorder-mode",
        choices=[m.value for m in Mode],
        default=None,
        help="live, record, replay (the default) or record-if-missing.",
    )
    group.addoption(
        "--apirecorder-dir",
        default=None,
        help="Keep every recording in this one folder (default: next to each test file).",
    )
    group.addoption(
        "--apirecorder-fail-unused",
        action="store_true",
        default=False,
        help="Fail a replay run that leaves recordings unused (see docs/cli.md).",
    )
    parser.addini("apirecorder_mode", "Recording mode (see --apirecorder-mode).", default=None)
    parser.addini(
        "apirecorder_dir",
        "Folder for all recordings, relative to the rootdir (see --apirecorder-dir).",
        default=None,
    )
    parser.addini(
        "apirecorder_shared_dir",
        "Folder for calls with no test id (session set-up), relative to the rootdir.",
        default=None,
    )
    parser.addini(
        "apirecorder_patch_tools",
        "Functions to record as tool calls, one per line: "
        "'package.module:Class.method provider [name]'.",
        type="linelist",
        default=[],
    )
    parser.addini(
        "apirecorder_autouse",
        "Record or replay every test, not only those marked apirecorder.",
        type="bool",
        default=False,
    )
    parser.addini(
        "apirecorder_match_origin",
        "false: raw HTTP recordings match whatever the scheme, host and port of the server "
        "(a local server on a free port, a proxy, a region).",
        default="",
    )
    _add_security_options(group, parser)
    parser.addini(
        "apirecorder_ignore_hosts",
        "Hosts whose traffic is never recorded or replayed, one per line (a database's HTTP "
        "API, a local service): their calls always go live.",
        type="linelist",
        default=[],
    )
    parser.addini(
        "apirecorder_hosts_under_test",
        "Hosts of servers under test, one per line: never recorded, and sent the test id "
        "(see docs/server-mode.md).",
        type="linelist",
        default=[],
    )
    parser.addini(
        "apirecorder_ignore_fields",
        "Request body fields left out of the request hash, one dotted path per line "
        "(metadata.request_id, messages.*.name).",
        type="linelist",
        default=[],
    )


#: The ini keys the plugin reads as lists and adds to the options of every block.
INI_LISTS = ("ignore_hosts", "hosts_under_test", "ignore_fields")


class RunSettings(NamedTuple):
    """What the command line, the ini file and ``$APIRECORDER_MODE`` say: the same for every
    test of a run, so read (and checked) once, when the plugin starts. (A NamedTuple: see
    :class:`apirecorder._secrets.KeyFormat`.)"""

    cli_mode: str | None
    ini_mode: str | None
    cli_dir: str | None
    ini_dir: str | None
    ini_shared_dir: str | None
    ini_match_origin: str
    autouse: bool
    #: ``ignore_hosts``, ``hosts_under_test`` and ``ignore_fields``: those the ini file sets.
    ini_lists: dict[str, list[str]]
    tools: tuple[str, ...]
    cli_block: bool
    ini_block: bool
    ini_allow_hosts: tuple[str, ...]
    cli_allow_hosts: tuple[str, ...]
    #: The redaction options the ini file sets.
    redaction: dict[str, list[str]]

    @classmethod
    def of(cls, config: pytest.Config) -> RunSettings:
        """Read the settings; a bad value is one usage error at start-up, not a failure in
        every test."""
        from ._network import parse_hosts

        ini = _checked_ini(config)
        redaction = {name: list(config.getini(f"apirecorder_{name}")) for name in REDACTION_OPTIONS}
        return cls(
            cli_mode=config.getoption("apirecorder_mode"),
            ini_mode=ini["mode"],
            cli_dir=config.getoption("apirecorder_dir"),
            ini_dir=config.getini("apirecorder_dir") or None,
            ini_shared_dir=config.getini("apirecorder_shared_dir") or None,
            ini_match_origin=config.getini("apirecorder_match_origin"),
            autouse=bool(ini["autouse"]),
            ini_lists={name: list(ini[name]) for name in INI_LISTS if ini[name]},
            tools=tuple(config.getini("apirecorder_patch_tools")),
            cli_block=bool(config.getoption("apirecorder_block_network")),
            ini_block=bool(config.getini("apirecorder_block_network")),
            ini_allow_hosts=tuple(config.getini("apirecorder_allow_hosts")),
            cli_allow_hosts=parse_hosts(config.getoption("apirecorder_allow_hosts")),
            redaction={name: value for name, value in redaction.items() if value},
        )


def _checked_ini(config: pytest.Config) -> dict[str, Any]:
    # A misspelt key is pytest's own warning ("Unknown config option"), an error with
    # --strict-config; the values are checked here.
    values: dict[str, Any] = {}
    for key in ("mode", "autouse", *INI_LISTS):
        try:
            values[key] = config.getini(f"apirecorder_{key}")
            if key == "mode" and values[key]:
                parse_mode(values[key])
        except ValueError as exc:
            raise pytest.UsageError(f"apirecorder_{key} in {config.inipath}: {exc}") from None
    values["mode"] = values["mode"] or None
    try:
        fields_ignored(values["ignore_fields"])
        if os.environ.get(MODE_ENV):
            parse_mode(os.environ[MODE_ENV])
    except ValueError as exc:
        where = "the ini file" if "ignore_fields" in str(exc) else f"${MODE_ENV}"
        raise pytest.UsageError(f"{where}: {exc}") from None
    return values


def _pinned_by_pytest(config: pytest.Config) -> bool:
    # pytest's node ids do not depend on the invocation folder once it found an ini file
    # (pyproject.toml counts), a setup.py, or was told the rootdir.
    return (
        config.inipath is not None
        or bool(config.getoption("rootdir", None))
        or (config.rootpath / "setup.py").is_file()
    )


def anchor_of_test_ids(config: pytest.Config) -> tuple[Path, bool]:
    """The folder test ids are relative to, and whether it is pinned (same from any folder).

    ``$APIRECORDER_ROOT``, else pytest's rootdir when an ini file or setup.py pins it, else the
    nearest folder above with ``.git`` or ``.hg``, else the rootdir (not pinned).
    """
    pinned = os.environ.get(ROOT_ENV)
    if pinned:
        return Path(os.path.abspath(pinned)), True
    root = config.rootpath
    if _pinned_by_pytest(config):
        return root, True
    for folder in (root, *root.parents):
        if (folder / ".git").exists() or (folder / ".hg").exists():
            return folder, True
    return root, False


def check_marker(marker: pytest.Mark) -> None:
    """Fail (once, at collection) on a positional argument or an unknown keyword."""
    if marker.args:
        shown = ", ".join(repr(arg) for arg in marker.args)
        hint = (
            f"@pytest.mark.apirecorder(mode={marker.args[0]!r})"
            if len(marker.args) == 1 and isinstance(marker.args[0], str)
            else "@pytest.mark.apirecorder(mode=..., storage_dir=...)"
        )
        pytest.fail(
            f"@pytest.mark.apirecorder({shown}): the marker takes keywords only; write {hint}",
            pytrace=False,
        )
    problem = problem_of(check_options, marker.kwargs, "@pytest.mark.apirecorder")
    if problem:
        pytest.fail(problem, pytrace=False)


def fixtures_needed_by(manager: Any, item: Any, fixturedef: Any) -> frozenset[str]:
    """The fixtures ``fixturedef`` needs for ``item``, directly or through others (through
    pytest's fixture manager: the plugin's look-up of an ``apirecorder_config`` override)."""
    needs: set[str] = set()
    todo = list(fixturedef.argnames)
    while todo:
        name = todo.pop()
        if name in needs:
            continue
        needs.add(name)
        for found in manager.getfixturedefs(name, item) or ():
            todo.extend(found.argnames)
    return frozenset(needs)


def problem_of(check: Any, *args: Any) -> str:
    # The message of a ValueError, so the failure is raised outside the except block and
    # shows without "During handling of the above exception".
    try:
        check(*args)
    except ValueError as exc:
        return str(exc)
    return ""


# -- secrets and the network (docs/security.md) -------------------------------------------

#: ``recording()`` options that the ini file can extend, one entry per line.
REDACTION_OPTIONS = ("redact_headers", "redact_json_paths", "redact_patterns", "secret_env_vars")


def _add_security_options(group: Any, parser: pytest.Parser) -> None:
    group.addoption(
        "--apirecorder-block-network",
        action="store_const",
        const=True,
        default=None,
        help="In replay mode, refuse every outgoing connection except loopback and the "
        "allowed hosts (NetworkBlockedError).",
    )
    group.addoption(
        "--apirecorder-allow-hosts",
        default=None,
        metavar="HOST[,HOST...]",
        help="Hosts that stay reachable when the network is blocked (names, addresses, "
        "*.example.com).",
    )
    parser.addini(
        "apirecorder_block_network",
        "Block the network in replay mode (see --apirecorder-block-network).",
        type="bool",
        default=False,
    )
    parser.addini(
        "apirecorder_allow_hosts",
        "Hosts reachable while the network is blocked, one per line.",
        type="linelist",
        default=[],
    )
    for name in REDACTION_OPTIONS:
        parser.addini(
            f"apirecorder_{name}",
            f"Extra redaction rules, one per line (the {name}= option of recording()).",
            type="linelist",
            default=[],
        )


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def security_options(run: RunSettings, options: dict[str, Any]) -> dict[str, Any]:
    """A test's marker options completed with the network and redaction settings.

    ``block_network``: command line, else marker, else ini. Allowed hosts and redaction
    rules from the ini file, the marker and the command line add up.
    """
    from ._network import parse_hosts

    merged = dict(options)
    if run.cli_block or ("block_network" not in merged and run.ini_block):
        merged["block_network"] = True
    marker_hosts = merged.get("allow_hosts")
    if run.ini_allow_hosts or run.cli_allow_hosts or marker_hosts:
        hosts = parse_hosts(
            [*run.ini_allow_hosts, *parse_hosts(marker_hosts), *run.cli_allow_hosts]
        )
        if hosts:
            merged["allow_hosts"] = hosts
    for name, from_ini in run.redaction.items():
        merged[name] = [*from_ini, *_listed(merged.get(name))]
    return merged


def markers_of(node: Any) -> tuple[pytest.Mark, ...]:
    """``tuple(node.iter_markers("apirecorder"))``, closest first, in one loop: asked twice
    for every test, and pytest's three nested generators cost more than the rest of it."""
    found: list[pytest.Mark] = []
    while node is not None:
        for mark in node.own_markers:
            if mark.name == MARKER:
                found.append(mark)
        node = node.parent
    return tuple(found)


# -- the end of a run ---------------------------------------------------------------------


class LedgerOwner(Protocol):
    """What :func:`finish_ledger` reads of the plugin (``ApiRecorderPlugin``)."""

    config: pytest.Config
    run: RunFacts
    used: set[Path]
    folders: set[Path]
    root: Path


def finish_ledger(plugin: LedgerOwner, session: pytest.Session) -> list[UnusedRecording]:
    """At the end of a run: find the unused recordings, save the ledger, set the exit status.

    Unused recordings are computed only when every test ran in replay mode; an xdist worker
    hands its facts to the controller instead.
    """
    config, run = plugin.config, plugin.run
    run.used |= {str(path) for path in plugin.used}
    run.folders |= {str(path) for path in plugin.folders}
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[WORKER_OUTPUT_KEY] = run.as_json()
        return []
    unused: list[UnusedRecording] | None = None
    if run.modes and run.modes != {Mode.REPLAY.value}:
        why_not = f"not a replay run (modes: {', '.join(sorted(run.modes))})"
    elif session.exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        why_not = f"the run ended early (exit status {int(session.exitstatus)})"
    else:
        why_not = ""
        unused = find_unused(run, plugin.root)
    cache = getattr(config, "cache", None)
    if cache is not None:
        cache.set(LEDGER_CACHE_KEY, ledger_data(run, plugin.root, unused, why_not))
    if unused and config.getoption("apirecorder_fail_unused") and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    return unused or []
