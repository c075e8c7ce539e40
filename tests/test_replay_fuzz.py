"""The replay path under a seeded, deterministic mutator: thousands of broken recordings.

Real recordings (one per client, made against the local upstream, which is then stopped) and
the reference recorder's own files (an unmutated copy of each in tmp tells the call; the files
under tests/fixtures are only read) are mutated: fields deleted, retyped, duplicated or
swapped, the text truncated or bit-flipped, values nested deep, numbers made huge, NaN or
infinite, strings given lone surrogates, ``__type__`` values replaced. Each mutant is
replayed through its real client in one child process under a memory limit. Every outcome
is a replay of the client's own type, the client's own error for a file that records one, or
an ApiRecorderError naming the file; never another exception, a hang or a crash.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.hostile_cases import records_error
from tests.hostile_values import HOSTILE_TYPES, RETYPES, WRONG_CLASSES
from tests.replay_clients import REFERENCE, REFERENCE_ENDPOINTS, SCENARIOS
from tests.replay_runner import ROOT, Matrix, run_cases, shared_root

SEED = 14
PER_CLIENT = 250
PER_REFERENCE = 30
#: The reference recorder's files that the OpenAI SDK replays (chat, streamed or not,
#: completions, embeddings), once each by name, from both fixture folders.
REFERENCE_FILES = {
    path.name: path
    for folder in ("tests/fixtures", "tests/fixtures-2026")
    for path in sorted((ROOT / folder).rglob("*.json"))
    if json.loads(path.read_bytes())["request"].get("endpoint") in REFERENCE_ENDPOINTS
}

Node = tuple[Any, Any]  # (container, key or index)


def _nodes(data: Any) -> list[Node]:
    found: list[Node] = []
    stack = [data]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            found.append((node, key))
            if isinstance(value, dict | list) and len(found) < 5000:
                stack.append(value)
    return found


_VALUES: list[Any] = [
    *RETYPES.values(),
    10**400,
    -(10**30),
    float("nan"),
    float("inf"),
    "\ud800",
    "x\udfff",
    "é" * 1000,
    "s" * 200_000,
]


def _mutate(data: Any, rng: random.Random, nests: list[tuple[str, str]]) -> Any:
    """One mutation of ``data`` in place (or a new value for the whole document); a deep
    nesting goes in as a marker that ``nests`` maps to its text (json.dumps recurses)."""
    nodes = _nodes(data) if isinstance(data, dict | list) else []
    if not nodes:
        return rng.choice(_VALUES)
    holder, key = rng.choice(nodes)
    op = rng.randrange(7)
    if op == 0:
        del holder[key]
    elif op == 1:
        holder[key] = copy.deepcopy(rng.choice(_VALUES))
    elif op == 2:
        other, other_key = rng.choice(nodes)
        holder[key], other[other_key] = other[other_key], holder[key]
    elif op == 3:
        other, other_key = rng.choice(nodes)
        holder[key] = copy.deepcopy(other[other_key])
    elif op == 4:
        depth = rng.choice((3, 60, 400, 900, 3000))
        marker = f"@nest-{len(nests)}@"
        inner = json.dumps(holder[key], allow_nan=True)
        nests.append((json.dumps(marker), "[" * depth + inner + "]" * depth))
        holder[key] = marker
    elif op == 5:
        typed = [n for n in nodes if n[1] == "__type__"]
        if typed:
            holder, key = rng.choice(typed)
        names = [*HOSTILE_TYPES.values(), *(path for path, _ in WRONG_CLASSES.values())]
        holder[key] = rng.choice(names)
    else:
        value = holder[key]
        if isinstance(value, int | float) and not isinstance(value, bool):
            holder[key] = rng.choice((10**300, 1e308 * 10, float("nan"), -1, 2**64))
        elif isinstance(value, str):
            holder[key] = value + rng.choice(("\ud800", "\x00", "\u2028", '"', "\\"))
        else:
            holder[key] = rng.choice(_VALUES)
    return data


def _mutant(raw: bytes, rng: random.Random) -> tuple[bytes, bool]:
    """A mutated recording's bytes, and whether it records an error."""
    data: Any = json.loads(raw)
    nests: list[tuple[str, str]] = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        data = _mutate(data, rng, nests)
    dumped = json.dumps(data, indent=2)
    for marker, nested in nests:
        dumped = dumped.replace(marker, nested)
    text = dumped.encode("utf-8", "surrogatepass")
    shape = rng.randrange(20)
    if shape == 0:
        text = text[: rng.randrange(len(text))]
    elif shape == 1:
        at = rng.randrange(len(text))
        text = text[:at] + bytes([text[at] ^ (1 << rng.randrange(8))]) + text[at + 1 :]
    return text, records_error(data)


def _write_mutants(matrix: Matrix, folder: Path) -> tuple[list[list[str]], dict[str, Any]]:
    entries: list[list[str]] = []
    facts: dict[str, Any] = {}

    def write(client: str, original: Path, count: int, key: str) -> None:
        raw = original.read_bytes()
        base = json.loads(raw)
        others = [p for p in original.parent.iterdir() if p != original]
        rng = random.Random(f"{SEED}-{key}")
        for index in range(count):
            case = f"{key}#{index}"
            case_dir = folder / key / f"{index:04d}"
            case_dir.mkdir(parents=True)
            for other in others:  # the call's other recordings (MCP's initialize), as recorded
                shutil.copyfile(other, case_dir / other.name)
            text, replays_error = _mutant(raw, rng) if index else (raw, records_error(base))
            (case_dir / original.name).write_bytes(text)
            entries.append([case, str(case_dir), client])
            facts[case] = {"path": str(case_dir / original.name), "replays_error": replays_error}

    for client in SCENARIOS:
        write(client, matrix.recording_of(client), PER_CLIENT, client)
    for name, fixture in REFERENCE_FILES.items():
        # The call comes from an unmutated copy; the fixture itself is only read.
        original = folder / "originals" / name[:16] / name
        original.parent.mkdir(parents=True)
        shutil.copyfile(fixture, original)
        write(f"{REFERENCE}{original}", original, PER_REFERENCE, _reference(name))
    return entries, facts


def _reference(name: str) -> str:
    return f"reference-{name[:16]}"


@pytest.fixture(scope="session")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The outcome of every mutant, computed once per run."""
    matrix = Matrix(shared_root(tmp_path_factory))
    matrix.record()

    def run(folder: Path) -> dict[str, dict[str, Any]]:
        entries, facts = _write_mutants(matrix, folder)
        results = run_cases("fuzz", matrix.url, entries, folder)
        for case, line in results.items():
            line.update(facts[case])
        return results

    return matrix.once("fuzz", run)


def _failures(outcomes: dict[str, dict[str, Any]], client: str) -> list[str]:
    bad = []
    for case, line in outcomes.items():
        if not case.startswith(f"{client}#"):
            continue
        outcome = line["outcome"]
        passed = (
            outcome == "ok"
            or (outcome == "recorder" and line["path"] in line["message"])
            or (outcome == "client error" and line["replays_error"])
        ) and not line.get("imported_canary")
        if not passed:
            bad.append(f"{case}: {outcome} {line.get('type', '')} {line.get('message', '')[-400:]}")
    return bad


@pytest.mark.parametrize("client", SCENARIOS)
def test_a_mutated_recording_replays_or_is_refused_by_name(
    fuzzed: dict[str, dict[str, Any]], client: str
) -> None:
    failures = _failures(fuzzed, client)
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_a_mutated_reference_recording_replays_or_is_refused_by_name(
    fuzzed: dict[str, dict[str, Any]], name: str
) -> None:
    key = _reference(name)
    # Case 0 is the file as the reference wrote it: the call it answers is the right one.
    first = fuzzed[f"{key}#0"]
    assert first["outcome"] == ("client error" if first["replays_error"] else "ok"), first
    failures = _failures(fuzzed, key)
    assert not failures, "\n".join(failures[:20])


def test_the_fuzz_runs_thousands_of_cases_and_reaches_every_outcome(
    fuzzed: dict[str, dict[str, Any]],
) -> None:
    assert len(REFERENCE_FILES) >= 10
    cases = PER_CLIENT * len(SCENARIOS) + PER_REFERENCE * len(REFERENCE_FILES)
    assert len(fuzzed) == cases >= 4000
    outcomes = {line["outcome"] for line in fuzzed.values()}
    assert {"ok", "recorder"} <= outcomes
    for client in SCENARIOS:  # case 0 of each is the real recording, which replays
        assert fuzzed[f"{client}#0"]["outcome"] == "ok", client
