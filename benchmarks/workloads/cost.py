"""What a suite pays around replay (issue 16): start-up, per test, and import time.

- A generated suite of trivial tests marked ``apirecorder`` that make no API call, run by
  pytest in a subprocess with the plugin on and with it off (``-p no:apirecorder``). The
  same suite of one test splits the difference into what the plugin costs once per run and
  what it costs per test.
- Entering and leaving one test's recording block in this process, as the plugin does.
- ``python -X importtime`` of ``import apirecorder`` and of the plugin's module, with the
  client libraries each pulled in.

Record overhead and stream memory come from the ``record`` and ``memory`` workloads.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import Measurement, time_rounds
from _scenario import Bench, Sizes

import apirecorder
from apirecorder._recording import interceptors_kept

#: Every client library apirecorder supports; none may be imported by what uses none.
CLIENT_LIBRARIES = (
    "openai",
    "anthropic",
    "ollama",
    "mcp",
    "google.genai",
    "aiohttp",
    "requests",
    "urllib3",
    "botocore",
    "httpx",
    "httpx2",
)

#: The suite's variants: extra pytest arguments of each.
PLUGIN_OFF = "plugin off"
PLUGIN_ON = "plugin on"
#: Interleaved rounds of the suites with the plugin on and off.
SUITE_ROUNDS = 11
VARIANTS: dict[str, list[str]] = {
    PLUGIN_OFF: ["-p", "no:apirecorder"],
    PLUGIN_ON: [],
}
TESTS_PER_FILE = 100

#: This apirecorder, for the interpreters started here (whatever PYTHONPATH says).
SOURCE_DIR = str(Path(apirecorder.__file__).resolve().parent.parent)

# What the session start holds was imported by pytest and its plugins (another installed
# plugin may import a client library for itself); what a test run adds is the run's doing.
PROBE = f'''\
"""Benchmark only: which client libraries the run imported."""
import json, os, sys
LIBRARIES = {CLIENT_LIBRARIES!r}
START = []

def imported():
    return [name for name in LIBRARIES if name in sys.modules]

def pytest_sessionstart(session):
    START[:] = imported()

def pytest_sessionfinish(session):
    new = [name for name in imported() if name not in START]
    with open(os.environ["APIRECORDER_BENCH_PROBE"], "w") as handle:
        json.dump({{"new": new, "before": START}}, handle)
'''


def write_suite(folder: Path, tests: int) -> Path:
    """A project of ``tests`` trivial tests marked ``apirecorder``, 100 to a file."""
    folder.mkdir(parents=True)
    # The marker is declared so the plugin-off run sees the same suite without warnings.
    (folder / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    apirecorder: record or replay (apirecorder)\n", "utf-8"
    )
    tests_dir = folder / "tests"
    tests_dir.mkdir()
    for start in range(0, tests, TESTS_PER_FILE):
        count = min(TESTS_PER_FILE, tests - start)
        body = "\n\n".join(f"def test_{start + n}():\n    assert {n} == {n}" for n in range(count))
        (tests_dir / f"test_trivial_{start // TESTS_PER_FILE}.py").write_text(
            "import pytest\n\npytestmark = pytest.mark.apirecorder\n\n\n" + body + "\n", "utf-8"
        )
    return folder


class SuiteRunner:
    """Runs a generated suite with pytest in a subprocess, one variant at a time."""

    def __init__(self, workdir: Path) -> None:
        plugins = workdir / "plugins"
        plugins.mkdir(parents=True, exist_ok=True)
        (plugins / "apirecorder_bench_probe.py").write_text(PROBE, "utf-8")
        self.probe_file = workdir / "probe.json"
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(plugins), SOURCE_DIR]),
            "APIRECORDER_BENCH_PROBE": str(self.probe_file),
        }
        # Bytecode written and used, as in an ordinary run.
        for name in (
            "APIRECORDER_MODE",
            "APIRECORDER_DIR",
            "PYTEST_ADDOPTS",
            "PYTHONDONTWRITEBYTECODE",
        ):
            self.env.pop(name, None)

    def run(self, suite: Path, variant: str, *, probe: bool = False) -> tuple[float, float]:
        """Wall-clock and CPU seconds (user + system) of one pytest run of ``suite``.

        CPU time is what the decomposition uses: it moves far less than the wall clock
        when other processes share the cores. Fails loudly unless the run passed.
        """
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", *VARIANTS[variant]]
        if probe:
            command += ["-p", "apirecorder_bench_probe"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run(
            command, cwd=suite, env=self.env, capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            raise AssertionError(
                f"{variant} run of {suite} failed:\n{result.stdout}{result.stderr}"
            )
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return elapsed, cpu

    def imported(self, suite: Path, variant: str) -> tuple[list[str], list[str]]:
        """The client libraries a run of ``suite`` imported that were not imported before,
        and those already imported when it started (by pytest's other plugins)."""
        self.run(suite, variant, probe=True)
        found = json.loads(self.probe_file.read_text("utf-8"))
        return list(found["new"]), list(found["before"])


def time_variants(
    runner: SuiteRunner, suite: Path, rounds: int
) -> tuple[dict[str, float], dict[str, list[float]], dict[str, float]]:
    """Median wall-clock and CPU time of each variant, interleaved round by round."""
    walls: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    cpus: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for _ in range(rounds):
        for variant in VARIANTS:
            wall, cpu = runner.run(suite, variant)
            walls[variant].append(wall)
            cpus[variant].append(cpu)
    medians = {v: statistics.median(s) for v, s in cpus.items()}
    # How far apart the rounds of one variant are: the resolution of a difference.
    medians["spread"] = max(max(s) - min(s) for s in cpus.values())
    return {v: statistics.median(s) for v, s in walls.items()}, walls, medians


def suite_measurements(workdir: Path, sizes: Sizes) -> list[Measurement]:
    runner = SuiteRunner(workdir)
    big = write_suite(workdir / "suite", sizes.cost_tests)
    one = write_suite(workdir / "one", 1)
    # Untimed: the bytecode caches written, and the libraries each variant imports.
    probed = {variant: runner.imported(one, variant) for variant in VARIANTS}
    imported = {variant: new for variant, (new, _) in probed.items()}
    imported["before"] = probed[PLUGIN_ON][1]
    # The suites' times move with the machine's load by more than the plugin's cost: more
    # rounds than the other workloads (they cost about two seconds each).
    rounds = max(sizes.rounds, SUITE_ROUNDS) if sizes.rounds > 1 else 1
    medians, samples, cpu = time_variants(runner, big, rounds)
    fixed, fixed_samples, fixed_cpu = time_variants(runner, one, rounds)
    tests = sizes.cost_tests
    extra: dict[str, float] = {"tests": float(tests), "rounds": float(rounds)}
    for variant in VARIANTS:
        extra[f"{variant} cpu"] = cpu[variant]
        extra[f"{variant} one"] = fixed[variant]
        extra[f"{variant} one cpu"] = fixed_cpu[variant]
    for variant in (PLUGIN_ON,):
        # CPU seconds: once per run is the 1-test suite on minus off; the rest of the
        # difference, spread over the other tests, is the cost per test.
        once = fixed_cpu[variant] - fixed_cpu[PLUGIN_OFF]
        total = cpu[variant] - cpu[PLUGIN_OFF]
        extra[f"{variant} once"] = once
        extra[f"{variant} per test"] = (total - once) / (tests - 1) if tests > 1 else total
    if rounds > 1:  # one round has no spread to speak of
        extra["spread per test"] = cpu["spread"] / tests
    extra["pytest per test"] = medians[PLUGIN_OFF] / tests
    extra["pytest cpu per test"] = (
        (cpu[PLUGIN_OFF] - fixed_cpu[PLUGIN_OFF]) / (tests - 1) if tests > 1 else 0.0
    )
    suite = Measurement(
        f"{tests:,} trivial tests marked apirecorder, no API call",
        "run",
        medians,
        samples,
        kind="cost",
        key="cost-suite",
        extra=extra,
        imported=imported,
    )
    one_test = Measurement(
        "the same suite of 1 test", "run", fixed, fixed_samples, kind="cost", key="cost-one"
    )
    for variant in VARIANTS:
        names = imported[variant]
        suite.notes.append(
            f"client libraries a 1-test run imported, {variant}: {', '.join(names) or 'none'}"
        )
    suite.notes.append(
        "client libraries already imported when the run started (by other pytest plugins): "
        + (", ".join(imported["before"]) or "none")
    )
    return [suite, one_test]


def block_measurement(workdir: Path, sizes: Sizes) -> Measurement:
    """Entering and leaving ``recording()`` + ``test_context()``, per test, as the plugin."""
    root = workdir / "blocks"
    root.mkdir(parents=True, exist_ok=True)
    ids = [f"tests/test_cost.py::test_{n}" for n in range(sizes.cost_tests)]

    def blocks(**options: Any) -> Callable[[], None]:
        def run() -> None:
            used: set[Path] = set()
            folders: set[Path] = set()
            folders_of: dict[str, tuple[Path, ...]] = {}
            with interceptors_kept():  # as the plugin: installed once per run
                for test_id in ids:
                    with (
                        apirecorder.recording(
                            mode="replay", root=root, process_wide=True, **options
                        ) as session,
                        apirecorder.test_context(test_id),
                    ):
                        # The plugin keeps this for the unused-recordings ledger, the
                        # folders worked out once per test file.
                        used |= session.storage.used
                        test_file = test_id.partition("::")[0]
                        dirs = folders_of.get(test_file)
                        if dirs is None:
                            dirs = folders_of[test_file] = session.storage.dirs_for(test_id)
                        folders.update(dirs)

        return run

    medians, samples = time_rounds(
        {
            "recording + test_context": blocks(),
            "with the network guard": blocks(block_network=True),
        },
        rounds=sizes.rounds,
        units=len(ids),
    )
    return Measurement(
        f"entering and leaving a test's recording block, {len(ids):,} tests",
        "test",
        medians,
        samples,
        kind="cost",
        key="cost-block",
    )


def import_time(statement: str, repeats: int) -> tuple[float, float, list[str]]:
    """``-X importtime`` of ``statement``: seconds for what it adds to a bare interpreter,
    seconds of those in pytest, and the client libraries it imported (median run)."""
    # Bytecode written and used, as for an installed package: without it every run would
    # time compiling the sources too (PYTHONDONTWRITEBYTECODE may be set where this runs).
    env = {**os.environ, "PYTHONPATH": SOURCE_DIR}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    bare = {name for _, _, name in _importtime_lines("pass", env)}
    _importtime_lines(statement, env)  # untimed: writes the bytecode caches
    runs = []
    for _ in range(repeats):
        lines = _importtime_lines(statement, env)
        names = {name for _, _, name in lines}
        # Top-level entries the bare interpreter does not have: what the statement imported.
        top = [
            (cumulative, name)
            for level, cumulative, name in lines
            if level == 0 and name not in bare
        ]
        total = sum(cumulative for cumulative, _ in top) / 1e6
        # The plugin must import pytest; say how much of its time that is.
        pytest_part = next((c for _, c, name in lines if name == "pytest"), 0) / 1e6
        clients = [
            lib
            for lib in CLIENT_LIBRARIES
            if lib in names or any(n.startswith(lib + ".") for n in names)
        ]
        runs.append((total, pytest_part, clients))
    runs.sort(key=lambda run: run[0])
    return runs[len(runs) // 2]


def _importtime_lines(statement: str, env: dict[str, str]) -> list[tuple[int, int, str]]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines: list[tuple[int, int, str]] = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, _, rest = line.partition(":")
        _self, cumulative, name = rest.split("|", 2)
        stripped = name.lstrip()
        level = (len(name) - len(stripped) - 1) // 2
        lines.append((level, int(cumulative), stripped.strip()))
    return lines


def import_measurements(sizes: Sizes) -> list[Measurement]:
    results = []
    repeats = 1 if sizes.rounds < 3 else 5
    for key, statement in (
        ("cost-import", "import apirecorder"),
        ("cost-plugin-import", "import apirecorder.pytest_plugin"),
    ):
        total, in_pytest, clients = import_time(statement, repeats)
        m = Measurement(
            f"python -X importtime -c {statement!r}",
            "process",
            {"import": total},
            kind="cost",
            key=key,
            extra={"pytest": in_pytest},
            imported={"client libraries": clients},
        )
        m.notes.append(f"client libraries imported: {', '.join(clients) or 'none'}")
        results.append(m)
    return results


def run(bench: Bench, sizes: Sizes) -> list[Measurement]:
    workdir = Path(tempfile.mkdtemp(prefix="cost-", dir=bench.workdir))
    return [
        *suite_measurements(workdir, sizes),
        block_measurement(workdir, sizes),
        *import_measurements(sizes),
    ]
