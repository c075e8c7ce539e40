"""The pytest plugin: a marker and a fixture named ``apirecorder``, options and ini keys.

Where settings disagree, the first of these wins: command line, marker, ini file,
environment, default (mode ``replay``, so CI never records by accident).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ._context import test_context
from ._ledger import (
    LEDGER_CACHE_KEY,
    WORKER_OUTPUT_KEY,
    RunFacts,
    UnusedRecording,
    find_unused,
    ledger_data,
    narrowed_files,
    report_lines,
)
from ._modes import Mode
from ._recording import Session, interceptors_kept, recording
from ._settings import resolve_mode, resolve_storage_dir

__all__ = ["ApiRecorderPlugin"]

MARKER = "apirecorder"


def pytest_addoption(parser: pytest.Parser) -> None:
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "apirecorder(mode=None, storage_dir=None, **options): record or replay the API calls "
        "this test makes (options are the keyword options of apirecorder.recording).",
    )
    config.pluginmanager.register(ApiRecorderPlugin(config), "apirecorder-plugin")


class ApiRecorderPlugin:
    """Session state of the plugin: resolved settings and the recordings each test used."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.root = config.rootpath
        self.autouse = bool(config.getini("apirecorder_autouse"))
        self.used: set[Path] = set()
        self.folders: set[Path] = set()
        self.run = RunFacts(
            narrowed_files=narrowed_files(config.args, config.invocation_params.dir, self.root)
        )
        self.unused: list[UnusedRecording] = []
        # Keeps the interceptors installed from the first recording test to the end of the run.
        self._kept: ExitStack | None = None

    @functools.cached_property
    def run_settings(self) -> RunSettings:
        """The settings no test can change (command line and ini file), read once per run."""
        return RunSettings.of(self.config)

    def settings_for(
        self, node: pytest.Item, marker: pytest.Mark | None = None
    ) -> tuple[Mode, Path | None, dict[str, Any]]:
        """The mode, storage folder and extra options of one test, by precedence."""
        if marker is None:
            marker = node.get_closest_marker(MARKER)
        marker_kwargs: dict[str, Any] = dict(marker.kwargs) if marker else {}
        run = self.run_settings
        mode = resolve_mode(
            cli=run.cli_mode, marker=marker_kwargs.pop("mode", None), ini=run.ini_mode
        )
        directory = resolve_storage_dir(
            cli=run.cli_dir,
            marker=marker_kwargs.pop("storage_dir", None),
            ini=run.ini_dir,
            root=self.root,
        )
        for key, hosts in run.hosts.items():
            marker_kwargs.setdefault(key, hosts)
        return mode, directory, security_options(run, marker_kwargs)

    def wants_recording(
        self, item: pytest.Item, fixturenames: list[str], marker: pytest.Mark | None = None
    ) -> bool:
        return self.autouse or marker is not None or MARKER in fixturenames

    @pytest.fixture(autouse=True)
    def _apirecorder_autouse(self, request: pytest.FixtureRequest) -> Iterator[Session | None]:
        """Intercept API calls for tests that are marked, use the fixture, or autouse is on."""
        item = request.node
        if not isinstance(item, pytest.Item):
            yield None
            return
        marker = item.get_closest_marker(MARKER)
        if not self.wants_recording(item, request.fixturenames, marker):
            yield None
            return
        mode, directory, options = self.settings_for(item, marker)
        options["tools"] = [*self.run_settings.tools, *options.get("tools", ())]
        # Process-wide, so threads the test starts (a server under test, a worker pool) are
        # intercepted too; a recording() block of their own still takes precedence.
        with (
            recording(mode, directory, root=self.root, process_wide=True, **options) as session,
            test_context(item.nodeid),
        ):
            if self._kept is None:
                self._kept = ExitStack()
                self._kept.enter_context(interceptors_kept())
            try:
                yield session
            finally:
                self.used |= session.storage.used
                self.folders.update(session.storage.dirs_for(item.nodeid))
                self.run.modes.add(mode.value)

    def pytest_unconfigure(self) -> None:
        if self._kept is not None:
            self._kept.close()

    @pytest.fixture
    def apirecorder(self, _apirecorder_autouse: Session | None) -> Session:
        """The active recording session of this test (mode, storage folder, options)."""
        assert _apirecorder_autouse is not None
        return _apirecorder_autouse

    # -- the unused-recordings ledger (apirecorder._ledger, docs/cli.md) ------------------
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.run.selected.update(item.nodeid for item in session.items)

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.run.deselected.update(item.nodeid for item in items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.run.report(report.nodeid, report.when, report.outcome)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """pytest-xdist: fold what a worker saw into the controller's facts."""
        output = getattr(node, "workeroutput", None) or {}
        self.run.merge(RunFacts.from_json(output.get(WORKER_OUTPUT_KEY)))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.unused = finish_ledger(self, session)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        failing = bool(self.config.getoption("apirecorder_fail_unused"))
        lines = report_lines(self.unused, self.root, failing)
        if lines:
            terminalreporter.write_sep("=", "apirecorder: unused recordings")
            for line in lines:
                terminalreporter.write_line(line)


def finish_ledger(plugin: ApiRecorderPlugin, session: pytest.Session) -> list[UnusedRecording]:
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


@dataclass(frozen=True)
class RunSettings:
    """What the command line and the ini file say: the same for every test of a run."""

    cli_mode: str | None
    ini_mode: str | None
    cli_dir: str | None
    ini_dir: str | None
    #: ``hosts_under_test`` and ``ignore_hosts`` from the ini file, those that are set.
    hosts: dict[str, list[str]]
    tools: tuple[str, ...]
    cli_block: bool
    ini_block: bool
    ini_allow_hosts: tuple[str, ...]
    cli_allow_hosts: tuple[str, ...]
    #: The redaction options the ini file sets.
    redaction: dict[str, list[Any]]

    @classmethod
    def of(cls, config: pytest.Config) -> RunSettings:
        from ._network import parse_hosts

        hosts = {
            key: list(config.getini(f"apirecorder_{key}"))
            for key in ("hosts_under_test", "ignore_hosts")
        }
        redaction = {name: list(config.getini(f"apirecorder_{name}")) for name in REDACTION_OPTIONS}
        return cls(
            cli_mode=config.getoption("apirecorder_mode"),
            ini_mode=config.getini("apirecorder_mode"),
            cli_dir=config.getoption("apirecorder_dir"),
            ini_dir=config.getini("apirecorder_dir") or None,
            hosts={key: value for key, value in hosts.items() if value},
            tools=tuple(config.getini("apirecorder_patch_tools")),
            cli_block=bool(config.getoption("apirecorder_block_network")),
            ini_block=bool(config.getini("apirecorder_block_network")),
            ini_allow_hosts=tuple(config.getini("apirecorder_allow_hosts")),
            cli_allow_hosts=parse_hosts(config.getoption("apirecorder_allow_hosts")),
            redaction={name: value for name, value in redaction.items() if value},
        )


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
