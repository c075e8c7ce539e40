"""The pytest plugin: a marker and a fixture named ``apirecorder``, options and ini keys.

Where settings disagree, the first of these wins: command line, marker, the
``apirecorder_config`` fixture, ini file, environment, default (mode ``replay``, so CI never
records by accident). List options (hosts, redaction rules, ignored fields) add up instead.
Calls made in module-, class- and session-scoped fixtures are recorded under a test id of
their own (:meth:`ApiRecorderPlugin.fixture_id`), so they replay whichever test comes first.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Generator, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._cli.serve import ServerHandle

from ._context import test_context
from ._ledger import (
    REWRITTEN_OUTPUT_KEY,
    WORKER_OUTPUT_KEY,
    RunFacts,
    UnusedRecording,
    narrowed_files,
    report_lines,
    rewrite_lines,
    stale_recordings,
)
from ._modes import Mode
from ._plugin_settings import (
    MARKER,
    DebugToStderr,
    RunSettings,
    add_options,
    anchor_of_test_ids,
    check_marker,
    finish_ledger,
    fixtures_needed_by,
    markers_of,
    problem_of,
    security_options,
)
from ._recording import Session, fail_with_recorder_errors, interceptors_kept, recording
from ._settings import (
    OPTION_KEYWORDS,
    ROOT_ENV,
    check_options,
    debug_enabled,
    fields_ignored,
    layered_options,
    resolve_match_origin,
    resolve_mode,
    resolve_shared_dir,
    resolve_storage_dir,
    test_ids_rooted_at,
)

__all__ = ["ApiRecorderPlugin"]

CONFIG_FIXTURE = "apirecorder_config"
#: The plugin's own fixtures: never wrapped in a recording block themselves.
OWN_FIXTURES = frozenset({MARKER, CONFIG_FIXTURE, "apirecorder_server"})


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "apirecorder(**options): record or replay the API calls this test makes; options: "
        + ", ".join(OPTION_KEYWORDS)
        + " (see the README).",
    )
    config.pluginmanager.register(ApiRecorderPlugin(config), "apirecorder-plugin")


class _TestBlock:
    """A test's open recording block: closed by a finalizer of the test's own node.

    Its two context managers are entered and left by hand, not through an ExitStack: every
    test opens one, and the stack costs as much again as entering them. (A plain class: a
    slotted dataclass costs a millisecond of every run's start-up to build.)
    """

    __slots__ = ("block", "context", "session", "test_id")

    def __init__(
        self,
        block: AbstractContextManager[Session],
        context: AbstractContextManager[None],
        session: Session,
        test_id: str,
    ) -> None:
        self.block = block
        self.context = context
        self.session = session
        self.test_id = test_id


class ApiRecorderPlugin:
    """Session state of the plugin: resolved settings and the recordings each test used."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        #: The command line and the ini file, read once: per test only markers are merged in.
        self.settings = RunSettings.of(config)
        #: pytest's rootdir: relative marker, config-fixture and ini folders start here.
        self.rootdir = config.rootpath
        #: Test ids are relative to this folder, which is also the root of the co-located layout.
        self.root, self.pinned = anchor_of_test_ids(config)
        # Asked several times per test: compared once.
        self._ids_are_node_ids = self.root == self.rootdir
        # A miss names the command that records it, from the folder pytest was started in.
        self._commands = ExitStack()
        self._commands.enter_context(test_ids_rooted_at(self.root))
        self.autouse = self.settings.autouse
        # Markers and their settings, by the identity of a node's apirecorder markers (the
        # markers kept in the value, so an id is never reused): a module's pytestmark is one
        # Mark object for all its tests, so its settings are merged once.
        self._settings_of: dict[tuple[int, ...], tuple[Any, tuple[Mode, Path | None, Any]]] = {}
        self._checked: dict[int, pytest.Mark] = {}
        #: Test -> its block while it is open; None once it is known not to record or replay.
        #: (A dict of the plugin's, not ``item.stash``: its Python methods cost more than the
        #: rest of the look-ups, four of them per test.)
        self._blocks: dict[pytest.Item, _TestBlock | None] = {}
        #: Node -> what its tests' apirecorder_config needs (see _config_needs).
        self._config_needs: dict[Any, frozenset[str] | None] = {}
        #: (storage root, layout, shared folder, test file) -> the folders its tests search
        #: (added to :attr:`folders` once, when worked out).
        self._folders_of: dict[tuple[Path, bool, Path | None, str], tuple[Path, ...]] = {}
        self.used: set[Path] = set()
        self.folders: set[Path] = set()
        self.run = RunFacts(
            narrowed_files={
                self.test_id(name)
                for name in narrowed_files(config.args, config.invocation_params.dir, self.rootdir)
            }
        )
        self.unused: list[UnusedRecording] = []
        #: Record-mode tests: test id -> the recordings its block read or wrote.
        self.recorded: dict[str, set[Path]] = {}
        self.rewritten: list[tuple[str, str]] = []
        #: (name, where defined) of fixtures that a collected recording test uses.
        self.wanted_fixtures: set[tuple[str, str]] = set()
        # Keeps the interceptors installed from the first recording test to the end of the run.
        self._kept: ExitStack | None = None
        self._debug: logging.Handler | None = None
        if debug_enabled():
            self._debug = DebugToStderr()
            logging.getLogger("apirecorder").addHandler(self._debug)

    # -- test ids ---------------------------------------------------------------------
    def test_id(self, nodeid: str) -> str:
        """The test id of a pytest node id: its file part taken from :attr:`root`."""
        if self._ids_are_node_ids:
            return nodeid
        file_part, sep, tail = nodeid.partition("::")
        relative = os.path.relpath(os.path.normpath(self.rootdir / file_part), self.root)
        if relative.startswith(".."):
            return nodeid
        return Path(relative).as_posix() + sep + tail

    def fixture_id(self, fixturedef: Any, request: Any) -> str:
        """The test id of a module-, class- or session-scoped fixture's calls.

        ``<module or class test id>::<fixture>`` (the instantiating module or class), and for a
        session or package fixture ``<file that defines it>::<fixture>``; a parametrized
        fixture adds ``[<param id>]``. None depends on which test asked for it first.
        """
        name = str(fixturedef.argname)
        if fixturedef.scope in ("module", "class"):
            where = self.test_id(str(request.node.nodeid))
        else:
            where = self._defined_in(fixturedef)
        param = ""
        if hasattr(request, "param"):
            ids = fixturedef.ids
            index = int(getattr(request, "param_index", 0))
            if isinstance(ids, list | tuple) and index < len(ids) and ids[index] is not None:
                param = f"[{ids[index]}]"
            elif isinstance(request.param, str | int | float | bool) or request.param is None:
                param = f"[{request.param}]"
            else:
                param = f"[{index}]"
        return f"{where}::{name}{param}"

    def _defined_in(self, fixturedef: Any) -> str:
        try:
            source = inspect.getsourcefile(fixturedef.func)
        except TypeError:
            source = None
        if source:
            relative = os.path.relpath(os.path.abspath(source), self.root)
            if not relative.startswith(".."):
                return Path(relative).as_posix()
        return str(getattr(fixturedef.func, "__module__", "") or "<session>")

    # -- settings ---------------------------------------------------------------------
    def settings_for(
        self, node: Any, config_options: Any, markers: tuple[pytest.Mark, ...] | None = None
    ) -> tuple[Mode, Path | None, dict[str, Any]]:
        """The mode, storage folder and ``recording()`` options of one block, by precedence.

        ``markers``: the node's apirecorder markers, when the caller has them already. The
        result is shared between blocks with the same markers: it is never changed.
        """
        if markers is None:
            markers = markers_of(node)
        if config_options:
            from_config = dict(config_options)
            problem = problem_of(check_options, from_config, f"the {CONFIG_FIXTURE} fixture")
            if problem:
                pytest.fail(problem, pytrace=False)
            return self._resolve(markers, from_config)
        key = tuple(map(id, markers))
        cached = self._settings_of.get(key)
        if cached is None:
            cached = self._settings_of[key] = (markers, self._resolve(markers, {}))
        return cached[1]

    def _resolve(
        self, markers: tuple[pytest.Mark, ...], from_config: dict[str, Any]
    ) -> tuple[Mode, Path | None, dict[str, Any]]:
        for marker in markers:
            self._check(marker)
        # The closest marker wins.
        from_marker = layered_options(*(dict(m.kwargs) for m in reversed(markers)))
        run = self.settings
        merged = layered_options(run.ini_lists, from_config, from_marker)
        mode = resolve_mode(
            cli=run.cli_mode,
            marker=from_marker.get("mode"),
            config=from_config.get("mode"),
            ini=run.ini_mode,
        )
        directory = resolve_storage_dir(
            cli=run.cli_dir,
            marker=from_marker.get("storage_dir"),
            config=from_config.get("storage_dir"),
            ini=run.ini_dir,
            root=self.rootdir,
        )
        merged.pop("mode", None)
        merged.pop("storage_dir", None)
        # Marker and ini relative to the rootdir, the environment to the current folder.
        shared = resolve_shared_dir(
            ini=merged.pop("shared_dir", None) or run.ini_shared_dir, root=self.rootdir
        )
        if shared is not None:
            merged["shared_dir"] = shared
        if run.ini_match_origin:
            merged.setdefault("match_origin", resolve_match_origin(ini=run.ini_match_origin))
        ignored = merged.pop("ignore_fields", None)
        if ignored:
            merged["normalizers"] = [*merged.get("normalizers", ()), fields_ignored(ignored)]
        merged["tools"] = [*run.tools, *merged.get("tools", ())]
        return mode, directory, security_options(run, merged)

    def _check(self, marker: pytest.Mark) -> None:
        # A module's marker is one object for all its tests: checked once.
        if id(marker) not in self._checked:
            check_marker(marker)
            self._checked[id(marker)] = marker

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        # Markers are checked once, at collection: a mistake is one usage error, not one
        # failure per test. Which fixtures to intercept is decided here too, before -k and
        # xdist narrow the run, so it does not depend on which tests run.
        markers = markers_of(item)
        for marker in markers:
            try:
                self._check(marker)
            except pytest.fail.Exception as exc:
                raise pytest.UsageError(f"{item.nodeid}: {exc.msg}") from None
        names = getattr(item, "fixturenames", ())
        self.run.fixture_names.update(names)
        if not (self.autouse or markers or MARKER in names):
            return
        info = getattr(item, "_fixtureinfo", None)
        by_name = getattr(info, "name2fixturedefs", {}) or {}
        for name in names:
            for fixturedef in by_name.get(name, ()):
                self.wanted_fixtures.add((name, str(fixturedef.baseid)))

    def _open(self, stack: ExitStack, node: Any, config_options: Any, test_id: str) -> Session:
        mode, directory, options = self.settings_for(node, config_options)
        # Process-wide, so threads the test starts (a server under test, a worker pool) are
        # intercepted too; a recording() block of their own still takes precedence.
        session = stack.enter_context(
            recording(mode, directory, root=self.root, process_wide=True, **options)
        )
        stack.enter_context(test_context(test_id))
        if self._kept is None:
            self._kept = ExitStack()
            self._kept.enter_context(interceptors_kept())
        return session

    def _close(self, session: Session, test_id: str) -> None:
        storage = session.storage
        used = storage.used  # made from the paths the storage opened, once
        self.used |= used
        # The ledger's folders depend on the test's file alone: worked out (and checked for
        # links) once per file, not once per test.
        key = (storage.root, storage.flat, storage.shared, test_id.partition("::")[0])
        if key not in self._folders_of:
            folders = self._folders_of[key] = storage.dirs_for(test_id)
            self.folders.update(folders)
        if session.mode not in self.run.modes:  # a StrEnum: equal to its value
            self.run.modes.add(session.mode.value)
        if session.mode is Mode.RECORD:
            self.recorded.setdefault(test_id, set()).update(used)

    # -- a test's block -----------------------------------------------------------------
    # Hooks open and close it, not an autouse fixture: pytest's machinery for one more
    # fixture costs more per test than the block itself. It opens before the first
    # function-scoped fixture is set up (every wider one is set up by then) or at the end of
    # set-up, and closes after the test's last function-scoped fixture is torn down, before
    # any wider one (a finalizer of the test's own node).
    def _config_needs_of(self, item: Any) -> frozenset[str] | None:
        """None when the test sees no override of apirecorder_config (its value is then
        ``{}``, and no fixture is set up for it), else the fixtures the override needs.

        pytest has no public way to ask which definition of a fixture a test would get; the
        answer depends only on the test's parent, so it is looked up once per parent.
        """
        parent = item.parent
        if parent in self._config_needs:
            return self._config_needs[parent]
        try:
            manager = item.session._fixturemanager
            defs = manager.getfixturedefs(CONFIG_FIXTURE, item)
            needs: frozenset[str] | None = None
            if defs and len(defs) > 1:  # the plugin's own, and an override
                needs = fixtures_needed_by(manager, item, defs[-1])
        except Exception:  # pytest changed: ask for the fixture's value in every test
            needs = frozenset()
        self._config_needs[parent] = needs
        return needs

    def _config_value(self, item: Any, request: Any) -> Any:
        if self._config_needs_of(item) is None:
            return None
        request = request if request is not None else getattr(item, "_request", None)
        return request.getfixturevalue(CONFIG_FIXTURE) if request is not None else None

    def _waiting(self, item: Any) -> tuple[pytest.Mark, ...] | None:
        """While a test that records or replays has no block open yet: its apirecorder
        markers (an empty tuple when it is autouse or asks for the fixture), else None."""
        if item in self._blocks:
            return None
        markers = markers_of(item)
        if markers or self.autouse or MARKER in getattr(item, "fixturenames", ()):
            return markers
        self._blocks[item] = None
        return None

    def _open_test(
        self, item: pytest.Item, config_options: Any, markers: tuple[pytest.Mark, ...] | None
    ) -> None:
        test_id = self.test_id(item.nodeid)
        mode, directory, options = self.settings_for(item, config_options, markers)
        # As _open, for a test: its two context managers kept in its _TestBlock.
        block = recording(mode, directory, root=self.root, process_wide=True, **options)
        session = block.__enter__()
        context = test_context(test_id)
        entered = False
        try:
            context.__enter__()
            entered = True
            if self._kept is None:
                self._kept = ExitStack()
                self._kept.enter_context(interceptors_kept())
        except BaseException:
            try:
                if entered:
                    context.__exit__(None, None, None)
            finally:
                block.__exit__(None, None, None)
            raise
        self._blocks[item] = _TestBlock(block, context, session, test_id)
        item.addfinalizer(lambda: self._close_test(item))

    def _close_test(self, item: pytest.Item) -> None:
        # A rerun of the same item (pytest-rerunfailures) decides afresh.
        block = self._blocks.pop(item, None)
        if block is None:
            return
        try:
            self._close(block.session, block.test_id)
        except BaseException as exc:
            block.context.__exit__(type(exc), exc, exc.__traceback__)
            if not block.block.__exit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            try:
                block.context.__exit__(None, None, None)
            finally:
                block.block.__exit__(None, None, None)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Iterator[None]:
        """Open the block of a test with no function-scoped fixture once set-up is done."""
        yield
        markers = self._waiting(item)
        if markers is not None:
            config_options = self._config_value(item, None)
            # A function-scoped apirecorder_config opens the block itself, right after it.
            if item not in self._blocks:
                self._open_test(item, config_options, markers)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        """A replay miss or recorder error fails the test as itself, with its explanation,
        even when the code under test caught or wrapped it (``_recording``)."""
        with fail_with_recorder_errors():
            yield

    @pytest.fixture
    def apirecorder(self, request: pytest.FixtureRequest) -> Session:
        """The active recording session of this test (mode, storage folder, options)."""
        block = self._blocks.get(request.node)
        assert block is not None, "the apirecorder fixture's block was not opened"
        return block.session

    # -- fixtures of a wider scope ----------------------------------------------------
    def wants_fixture(self, fixturedef: Any, request: Any) -> bool:
        if fixturedef.scope == "function" or fixturedef.argname in OWN_FIXTURES:
            return False
        node = request.node
        # A module's or class's own marker (pytestmark) counts; a session has no markers.
        marked = not isinstance(node, pytest.Session) and node.get_closest_marker(MARKER)
        return (
            self.autouse
            or (fixturedef.argname, str(fixturedef.baseid)) in self.wanted_fixtures
            or bool(marked)
        )

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Generator[None, Any, Any]:
        """Open a test's block before its first function-scoped fixture, and a block of its
        own around a wider-scoped fixture's set-up and its teardown."""
        if fixturedef.scope == "function":
            item = request.node
            markers = self._waiting(item)
            if markers is None:
                return (yield)
            if fixturedef.argname == CONFIG_FIXTURE:
                # A function-scoped apirecorder_config (and what it needs) is set up first,
                # outside the block its value configures.
                result = yield
                if item not in self._blocks:
                    self._open_test(item, result, markers)
                return result
            needs = self._config_needs_of(item)
            if needs is None or fixturedef.argname not in needs:
                config_options = self._config_value(item, request)
                if item not in self._blocks:
                    self._open_test(item, config_options, markers)
            return (yield)
        if not self.wants_fixture(fixturedef, request):
            return (yield)
        test_id = self.fixture_id(fixturedef, request)
        try:
            config_options = request.getfixturevalue(CONFIG_FIXTURE)
        except pytest.fail.Exception:
            # A narrower apirecorder_config (function-scoped) cannot serve this fixture; it
            # gets the markers of its module or class, the ini file and the environment.
            config_options = None
        node = request.node
        block: list[ExitStack] = []
        sessions: list[Session] = []

        def enter() -> None:
            stack = ExitStack()
            block.append(stack)
            sessions.append(self._open(stack, node, config_options, test_id))

        def leave() -> None:
            if block:
                block.pop().close()
                self._close(sessions.pop(), test_id)

        # Finalizers run last-in first-out: this one, added before the set-up, closes the
        # block after the fixture's teardown code; the one added after it opens the block.
        fixturedef.addfinalizer(leave)
        enter()
        outcome = "failed"
        try:
            result = yield
            outcome = "passed"
            return result
        finally:
            leave()
            self.run.report(test_id, "call", outcome)
            fixturedef.addfinalizer(enter)

    def pytest_unconfigure(self) -> None:
        self._commands.close()
        if self._kept is not None:
            self._kept.close()
        if self._debug is not None:
            logging.getLogger("apirecorder").removeHandler(self._debug)

    # -- the unused-recordings ledger (apirecorder._ledger, docs/cli.md) ------------------
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.run.selected.update(self.test_id(item.nodeid) for item in session.items)

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.run.deselected.update(self.test_id(item.nodeid) for item in items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # A passed set-up or teardown changes no test's outcome (RunFacts.report): two of
        # every passing test's three reports.
        if report.when != "call" and report.outcome == "passed":
            return
        self.run.report(self.test_id(report.nodeid), report.when, report.outcome)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """pytest-xdist: fold what a worker saw into the controller's facts."""
        output = getattr(node, "workeroutput", None) or {}
        self.run.merge(RunFacts.from_json(output.get(WORKER_OUTPUT_KEY)))
        self.rewritten.extend(tuple(pair) for pair in output.get(REWRITTEN_OUTPUT_KEY) or [])

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.rewrite()
        self.unused = finish_ledger(self, session)

    def rewrite(self) -> None:
        """Record mode: delete the recordings of each passed test that its run did not make."""
        passed = self.run.passed()
        tests = {test_id: used for test_id, used in self.recorded.items() if test_id in passed}
        for path, test_id in stale_recordings(tests, self.folders):
            path.unlink(missing_ok=True)
            self.rewritten.append((str(path), test_id))
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[REWRITTEN_OUTPUT_KEY] = [list(pair) for pair in self.rewritten]

    def pytest_report_header(self) -> list[str]:
        if self.pinned:
            return []
        return [
            f"apirecorder: test ids are relative to {self.root}, the folder pytest started "
            "from (no ini file, setup.py or .git found); add a pytest.ini or "
            f"[tool.pytest.ini_options], or set {ROOT_ENV}, to keep them stable"
        ]

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        lines = rewrite_lines(self.rewritten, self.root)
        if lines:
            terminalreporter.write_sep("=", "apirecorder: rewritten tests")
            for line in lines:
                terminalreporter.write_line(line)
        failing = bool(self.config.getoption("apirecorder_fail_unused"))
        lines = report_lines(self.unused, self.root, failing)
        if lines:
            terminalreporter.write_sep("=", "apirecorder: unused recordings")
            for line in lines:
                terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def apirecorder_server(request: pytest.FixtureRequest) -> Iterator[ServerHandle]:
    """One ``apirecorder serve`` for the test session, in the run's mode and folder.

    For a test that drives a program in another language: point its client at
    ``apirecorder_server.url`` (with the ``X-Apirecorder-Test-Id`` header) or at
    ``apirecorder_server.base_url(test_id)``. Record mode forwards to the providers (or to
    ``APIRECORDER_UPSTREAM_<NAME>`` from the environment). Stopped when the session ends.
    """
    from ._cli.serve import serve_process  # a subprocess and its plumbing: only when asked

    plugin = request.config.pluginmanager.get_plugin("apirecorder-plugin")
    assert isinstance(plugin, ApiRecorderPlugin)
    mode, directory, _options = plugin.settings_for(request.session, None)
    if mode is Mode.LIVE:
        pytest.fail(
            "apirecorder_server has no live mode: point the program at the provider itself, "
            "or run with --apirecorder-mode=record",
            pytrace=False,
        )
    args = ["--mode", mode.value, *(["--dir", str(directory)] if directory else [])]
    with serve_process(*args, cwd=plugin.rootdir) as server:
        yield server


@pytest.fixture(scope="session")
def apirecorder_config() -> dict[str, Any]:
    """Settings in code: override it in a conftest, module or class and return the marker's
    options (mode, storage_dir, ignore_hosts, ignore_fields...) as a dict."""
    return {}
