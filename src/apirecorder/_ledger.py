"""The unused-recordings ledger: what a test run used, what it left unused, and pruning it.

The pytest plugin gathers :class:`RunFacts` during a run (the tests selected, deselected and
their outcomes, the recordings read, the folders searched), computes the unused recordings at
the end with :func:`find_unused`, and saves both as a ledger in pytest's cache. ``apirecorder
prune`` reads that ledger and deletes exactly the files it lists, if they are unchanged.

A recording counts as unused only when the run proves no test needs it:

- its test passed in this run without reading it (a stale recording, say of an older prompt);
- or its test no longer exists: the test's file was collected whole in this run and that test
  id was not in it, or the test's file is gone.

Recordings of tests that were deselected (``-k``, ``-m``, ``--deselect``), skipped, failed or
not run are never unused. Recordings that any test may share, because their hash leaves the
test id out (tool calls, model lists) or because they have no test id, are unused only after a
complete run: every collected test selected and passed, no node ids on the command line.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ._exceptions import ApiRecorderError
from ._secrets import _Lazy
from ._storage import Recording, is_model_list, json_files_in, load_recording

__all__ = [
    "LEDGER_CACHE_KEY",
    "LEDGER_VERSION",
    "Ledger",
    "PrunePlan",
    "RunFacts",
    "UnusedRecording",
    "default_ledger_path",
    "find_unused",
    "load_ledger",
    "plan_prune",
    "rewrite_lines",
    "stale_recordings",
]

#: Key of the ledger in pytest's cache: ``.pytest_cache/v/apirecorder/ledger``.
LEDGER_CACHE_KEY = "apirecorder/ledger"
#: Key under which an xdist worker hands its facts to the controller.
WORKER_OUTPUT_KEY = "apirecorder_run_facts"
#: Key under which an xdist worker hands the recordings rewrite mode deleted.
REWRITTEN_OUTPUT_KEY = "apirecorder_rewritten"
LEDGER_VERSION = 1

_PASSED, _FAILED, _SKIPPED = "passed", "failed", "skipped"


@dataclass
class RunFacts:
    """What one test run saw; facts from several xdist workers merge into one."""

    selected: set[str] = field(default_factory=set)
    deselected: set[str] = field(default_factory=set)
    outcomes: dict[str, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)
    modes: set[str] = field(default_factory=set)
    narrowed_files: set[str] = field(default_factory=set)
    #: Names of the fixtures collected tests use: a fixture's recordings carry
    #: ``<where>::<fixture>`` as their test id, which is no test's.
    fixture_names: set[str] = field(default_factory=set)

    def report(self, nodeid: str, when: str, outcome: str) -> None:
        """Fold one phase report (setup, call, teardown) into the test's outcome."""
        current = self.outcomes.get(nodeid)
        if outcome == _FAILED or current == _FAILED:
            self.outcomes[nodeid] = _FAILED
        elif outcome == _SKIPPED or current == _SKIPPED:
            self.outcomes[nodeid] = _SKIPPED
        elif when == "call" and outcome == _PASSED:
            self.outcomes[nodeid] = _PASSED

    def merge(self, other: RunFacts) -> None:
        self.selected |= other.selected
        self.deselected |= other.deselected
        for nodeid, outcome in other.outcomes.items():
            self.report(nodeid, "call", outcome)
        self.used |= other.used
        self.folders |= other.folders
        self.modes |= other.modes
        self.narrowed_files |= other.narrowed_files
        self.fixture_names |= other.fixture_names

    def passed(self) -> set[str]:
        return {nodeid for nodeid, outcome in self.outcomes.items() if outcome == _PASSED}

    def complete(self) -> bool:
        """True when every collected test was selected, ran and passed."""
        return (
            not self.deselected
            and not self.narrowed_files
            and bool(self.selected)
            and self.selected <= self.passed()
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "selected": sorted(self.selected),
            "deselected": sorted(self.deselected),
            "outcomes": dict(sorted(self.outcomes.items())),
            "used": sorted(self.used),
            "folders": sorted(self.folders),
            "modes": sorted(self.modes),
            "narrowed_files": sorted(self.narrowed_files),
            "fixture_names": sorted(self.fixture_names),
        }

    @classmethod
    def from_json(cls, data: Any) -> RunFacts:
        if not isinstance(data, dict):
            return cls()

        def strings(key: str) -> set[str]:
            value = data.get(key)
            return {str(v) for v in value} if isinstance(value, list) else set()

        outcomes = data.get("outcomes")
        return cls(
            selected=strings("selected"),
            deselected=strings("deselected"),
            outcomes={str(k): str(v) for k, v in outcomes.items()}
            if isinstance(outcomes, dict)
            else {},
            used=strings("used"),
            folders=strings("folders"),
            modes=strings("modes"),
            narrowed_files=strings("narrowed_files"),
            fixture_names=strings("fixture_names"),
        )


class UnusedRecording(NamedTuple):
    """A recording no test of the run used, the test that made it, and why it is unused.
    (The ledger's records are NamedTuples: see :class:`apirecorder._secrets.KeyFormat`.)"""

    path: Path
    test_id: str | None
    reason: str
    mtime_ns: int

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "test_id": self.test_id,
            "reason": self.reason,
            "mtime_ns": self.mtime_ns,
        }


def _shared(request: dict[str, Any], test_id: str | None) -> bool:
    # Any test may read these: their hash leaves the test id out, or they have none.
    from ._diagnostics import recording_kind

    return (
        test_id is None
        or "::" not in test_id
        or recording_kind(request) == "tool"
        or is_model_list(request)
    )


def _recordings_in(
    folders: Iterable[str], skipped: set[str]
) -> Iterator[tuple[Path, Recording, str | None]]:
    """Each readable recording in ``folders`` not in ``skipped`` (absolute paths), its test id."""
    for path in json_files_in(folders):
        if os.path.abspath(path) in skipped:
            continue
        # The miss explanations' module, only once there is a recording to look at: the
        # plugin imports this module at start-up, and a run that searched empty folders (or
        # used every recording in them) never needs it.
        from ._diagnostics import recording_test_id

        try:
            recording = load_recording(path)
        except ApiRecorderError:
            continue  # a broken file is `apirecorder verify`'s business, never deleted
        yield path, recording, recording_test_id(recording)


def find_unused(facts: RunFacts, root: Path) -> list[UnusedRecording]:
    """The recordings in the searched folders that this run proves no test needs."""
    used = {os.path.abspath(path) for path in facts.used}
    passed = facts.passed()
    complete = facts.complete()
    known = facts.selected | facts.deselected | set(facts.outcomes)
    collected_files = {nodeid.split("::", 1)[0] for nodeid in known}
    unused: list[UnusedRecording] = []
    for path, recording, test_id in _recordings_in(facts.folders, used):
        reason: str | None = None
        if _shared(recording.request, test_id):
            if complete:
                reason = "no test of a complete run used it"
        elif test_id in passed:
            reason = "its test passed without reading it"
        elif _fixture_name(test_id) in facts.fixture_names:
            if complete:
                reason = "no fixture of a complete run used it"
        elif test_id not in known and test_id is not None:
            test_file = test_id.split("::", 1)[0]
            if test_file in collected_files and test_file not in facts.narrowed_files:
                reason = "its test no longer exists"
            elif not (root / test_file).exists():
                reason = "its test file no longer exists"
        if reason is not None:
            unused.append(UnusedRecording(path, test_id, reason, path.stat().st_mtime_ns))
    return unused


def _fixture_name(test_id: str | None) -> str:
    return (test_id or "").rsplit("::", 1)[-1].split("[", 1)[0]


# -- rewrite mode ------------------------------------------------------------------------


def stale_recordings(
    tests: dict[str, set[Path]], folders: Iterable[Path]
) -> list[tuple[Path, str]]:
    """The recordings of ``tests`` (test id -> files its record-mode run made) in ``folders``
    that the run did not make: what rewrite mode deletes once the test passed."""
    if not tests:
        return []
    made = {os.path.abspath(path) for used in tests.values() for path in used}
    stale: list[tuple[Path, str]] = []
    for path, recording, test_id in _recordings_in(sorted({str(f) for f in folders}), made):
        if not RECORDING_NAME.fullmatch(path.name):
            continue
        if test_id in tests and not _shared(recording.request, test_id):
            stale.append((path, test_id))
    return stale


def rewrite_lines(rewritten: list[tuple[str, str]], root: Path) -> list[str]:
    """The end-of-run report of the recordings rewrite mode deleted."""
    if not rewritten:
        return []
    count = len(rewritten)
    noun = "recording" if count == 1 else "recordings"
    lines = [f"record mode deleted {count} {noun} that passing tests no longer make:"]
    for path, test_id in sorted(rewritten)[:REPORT_NAMES]:
        lines.append(f"  {_shown(Path(path), root)}  ({test_id})")
    if count > REPORT_NAMES:
        lines.append(f"  ... and {count - REPORT_NAMES} more")
    return lines


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# -- the ledger file ---------------------------------------------------------------------


class Ledger(NamedTuple):
    """What the last test run left behind for ``apirecorder prune``."""

    path: Path
    rootdir: Path
    finished: str
    modes: tuple[str, ...]
    computed: bool
    why_not: str
    unused: tuple[UnusedRecording, ...]


def ledger_data(
    facts: RunFacts, root: Path, unused: list[UnusedRecording] | None, why_not: str = ""
) -> dict[str, Any]:
    """The JSON the plugin saves at the end of a run.

    Test ids pass through the redaction of recordings: a parametrize id can hold a key.
    """
    unused_json = [item.as_json() for item in unused or []]
    protected = (facts.selected | facts.deselected | set(facts.outcomes)) - facts.passed()
    # The redaction rules are loaded only for a run that has test ids to write.
    if unused_json or protected:
        from ._redaction import Redactor

        text = Redactor.from_options({}).text
        for item in unused_json:
            if item["test_id"] is not None:
                item["test_id"] = text(item["test_id"])
        protected = {text(test_id) for test_id in protected}
    return {
        "version": LEDGER_VERSION,
        "rootdir": str(root),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "modes": sorted(facts.modes),
        "computed": unused is not None,
        "why_not": why_not,
        "scanned_folders": sorted(facts.folders),
        "used": sorted(facts.used),
        "protected_tests": sorted(protected),
        "unused": unused_json,
    }


def default_ledger_path(start: Path) -> Path | None:
    """The ledger in ``.pytest_cache`` of ``start`` or the nearest folder above it."""
    for folder in (start, *start.parents):
        candidate = folder / ".pytest_cache" / "v" / LEDGER_CACHE_KEY
        if candidate.is_file():
            return candidate
    return None


def load_ledger(path: Path) -> Ledger:
    """Read a ledger file; a file that is not one raises ApiRecorderError naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ApiRecorderError(f"{path}: cannot read the ledger: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != LEDGER_VERSION:
        raise ApiRecorderError(
            f"{path}: not an apirecorder ledger of version {LEDGER_VERSION}; run pytest again"
        )
    unused = []
    for item in data.get("unused") or []:
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            unused.append(
                UnusedRecording(
                    Path(item["path"]),
                    item.get("test_id") if isinstance(item.get("test_id"), str) else None,
                    str(item.get("reason", "")),
                    int(item.get("mtime_ns") or 0),
                )
            )
    return Ledger(
        path=path,
        rootdir=Path(str(data.get("rootdir", ""))),
        finished=str(data.get("finished", "")),
        modes=tuple(str(m) for m in data.get("modes") or []),
        computed=bool(data.get("computed")),
        why_not=str(data.get("why_not", "")),
        unused=tuple(unused),
    )


class PrunePlan(NamedTuple):
    """The files prune deletes, and those it keeps with the reason."""

    delete: tuple[UnusedRecording, ...]
    keep: tuple[tuple[UnusedRecording, str], ...]


#: The names recordings are written under (DESIGN section 5; ``<hash>-<n>.json`` for the
#: n-th identical call of a test).
RECORDING_NAME = _Lazy(r"(?:models-)?[0-9a-f]{64}(?:-[0-9a-f]{8}|-[1-9][0-9]*)?\.json")


def plan_prune(ledger: Ledger) -> PrunePlan:
    """The ledger's unused files that still exist unchanged since the run that listed them."""
    delete: list[UnusedRecording] = []
    keep: list[tuple[UnusedRecording, str]] = []
    for item in ledger.unused:
        try:
            mtime = item.path.stat().st_mtime_ns
        except FileNotFoundError:
            continue  # already gone
        if not RECORDING_NAME.fullmatch(item.path.name):
            # The ledger is a file anyone can edit: never delete what is not a recording.
            keep.append((item, "not named like a recording (<hash>.json); left alone"))
        elif mtime != item.mtime_ns:
            keep.append((item, "changed since the test run; run the tests again"))
        else:
            delete.append(item)
    return PrunePlan(tuple(delete), tuple(keep))


def narrowed_files(args: Iterable[str], invocation_dir: Path, root: Path) -> set[str]:
    """Test files named with ``::`` on the command line: only part of each was collected."""
    files: set[str] = set()
    for arg in args:
        if "::" not in arg:
            continue
        target = Path(os.path.abspath(invocation_dir / arg.split("::", 1)[0]))
        try:
            files.add(target.relative_to(root).as_posix())
        except ValueError:
            files.add(target.as_posix())
    return files


#: How many unused recordings the end-of-run report names.
REPORT_NAMES = 5


def report_lines(unused: list[UnusedRecording], root: Path, failing: bool) -> list[str]:
    """The end-of-run report of unused recordings (empty when there are none)."""
    if not unused:
        return []
    count = len(unused)
    noun = "recording" if count == 1 else "recordings"
    lines = [f"{count} {noun} in the searched folders were used by no test:"]
    if count == 1:
        lines[0] = "1 recording in the searched folders was used by no test:"
    for item in unused[:REPORT_NAMES]:
        shown = _shown(item.path, root)
        lines.append(f"  {shown}  ({item.test_id or 'no test id'}: {item.reason})")
    if count > REPORT_NAMES:
        lines.append(f"  ... and {count - REPORT_NAMES} more (`apirecorder prune` lists them all)")
    lines.append("Delete them with `apirecorder prune --yes` (`apirecorder prune` only lists).")
    if failing:
        lines.append("--apirecorder-fail-unused: the run fails because of them.")
    return lines
