"""Running many replay cases in a memory-limited child process, once per test run.

Shared by the hostile matrix and the fuzz: :class:`Matrix` records one real recording per
client against the local upstream (then stops it), and :func:`run_cases` drives
``tests.replay_child`` over case folders, starting a new child after a case that killed one.
Results live in a folder shared by the xdist workers of a run, each computed once under a lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.hostile_cases import Case
from tests.replay_clients import SHAPES, record_all
from tests.upstream import Upstream

ROOT = Path(__file__).resolve().parents[1]
#: CPython with every SDK imported and a few threads maps about 400 MB; a case that reads
#: /dev/zero to the end, or expands an id mapping, needs far more than this.
MEMORY_LIMIT = 2 * 1024**3
#: What "promptly" means for one case: a replay; a CLI command, which reads every string of
#: a file of 13 MB (20,000 stream chunks) in about 10 s on a loaded 2-core machine.
TIMEOUT_S = 10
CLI_TIMEOUT_S = 30


def shared_root(factory: pytest.TempPathFactory) -> Path:
    # Shared by the xdist workers of one run, so each child process runs once per run.
    base = factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "hostile-matrix"
    root.mkdir(exist_ok=True)
    return root


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Matrix:
    """The outcomes of every case, per client, computed once per run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root / "base"
        self.url = ""

    def record(self) -> None:
        with _locked(self.root / "base.lock"):
            url_file = self.root / "url"
            if not url_file.exists():
                upstream = Upstream().start()
                url = upstream.url
                try:
                    record_all(url, self.base)
                finally:
                    upstream.stop()  # every replay below is offline
                url_file.write_text(url)
            self.url = url_file.read_text()

    def recording_of(self, client: str) -> Path:
        """The recording the cases of ``client`` replace (of several, the one its shape names)."""
        paths = sorted((self.base / client).iterdir())
        method = SHAPES[client].method
        if method:
            paths = [
                p for p in paths if json.loads(p.read_bytes())["request"]["tool_name"] == method
            ]
        (path,) = paths
        return path

    def cases(self, runner: str, source: str, cases: Sequence[Case]) -> dict[str, dict[str, Any]]:
        """``runner`` (a client, or ``cli:<command>``) over ``cases`` of ``source``'s recording."""
        key = runner.replace(":", "-") + ("" if runner == source else f"-{source}")

        def run(folder: Path) -> dict[str, dict[str, Any]]:
            written = self._write_cases(source, folder, cases)
            entries = [(name, str(path.parent)) for name, (path, _) in written.items()]
            results = run_cases(runner, self.url, entries, folder)
            for name, (path, replays_error) in written.items():
                results[name].update(path=str(path), replays_error=replays_error)
            return results

        return self.once(key, run)

    def once(
        self, key: str, compute: Callable[[Path], dict[str, dict[str, Any]]]
    ) -> dict[str, dict[str, Any]]:
        """``compute(folder)``, run once per test run whichever worker asks first."""
        done = self.root / f"{key}.json"
        with _locked(self.root / f"{key}.lock"):
            if not done.exists():
                folder = self.root / key
                folder.mkdir()
                done.write_text(json.dumps(compute(folder)))
                # The cases hold a few hundred MB (16 MB strings): only the outcomes are kept.
                shutil.rmtree(folder)
        result: dict[str, dict[str, Any]] = json.loads(done.read_text())
        return result

    def _write_cases(
        self, source: str, folder: Path, cases: Sequence[Case]
    ) -> dict[str, tuple[Path, bool]]:
        original = self.recording_of(source)
        raw = original.read_bytes()
        others = [p for p in original.parent.iterdir() if p != original]
        (folder / "base.json").write_bytes(raw)
        # What ``explain`` is asked about: the real recording's request body.
        body = json.loads(raw)["request"].get("body") or {}
        (folder / "request.json").write_text(json.dumps(body))
        written = {}
        for index, case in enumerate(cases):
            case_dir = folder / f"{index:03d}"
            case_dir.mkdir()
            path = case_dir / original.name
            for other in others:  # the call's other recordings, as recorded
                shutil.copyfile(other, case_dir / other.name)
            written[case.name] = (path, case.make(path, raw))
        return written


def run_cases(
    runner: str, url: str, entries: Sequence[Sequence[str]], folder: Path
) -> dict[str, dict[str, Any]]:
    """The outcome of each (case, folder[, client]) entry, from as many children as it takes."""
    results: dict[str, dict[str, Any]] = {}
    out = folder / "outcomes.jsonl"
    while len(results) < len(entries):
        remaining = [list(entry) for entry in entries if entry[0] not in results]
        manifest = folder / "manifest.json"
        manifest.write_text(json.dumps(remaining))
        stderr = _child(runner, url, manifest, out)
        started = None
        for line in map(json.loads, out.read_text().splitlines()):
            if line.get("started"):
                started = line["case"]
            else:
                results[line["case"]] = line
                started = None
        if started is not None:
            # The case killed its process (or hung past the watchdog): name it, go on.
            results[started] = {"outcome": "crashed", "message": stderr[-3000:]}
        elif len(results) < len(entries):
            results[remaining[0][0]] = {"outcome": "child failed", "message": stderr[-3000:]}
    return results


def _child(runner: str, url: str, manifest: Path, out: Path) -> str:
    timeout = CLI_TIMEOUT_S if runner.startswith("cli:") else TIMEOUT_S
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    env.pop("APIRECORDER_DEBUG", None)
    argv = [sys.executable, "-m", "tests.replay_child", runner, url, str(manifest), str(out),
            str(MEMORY_LIMIT), str(timeout)]  # fmt: skip
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900, check=False
        )
    except subprocess.TimeoutExpired as exc:
        return f"the child hung past 900 s: {exc.stderr!r}"
    return done.stderr
