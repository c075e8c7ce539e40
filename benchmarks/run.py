"""Benchmark apirecorder against VCR.py on the same recorded OpenAI traffic; write BENCHMARKS.md.

Run from the repository root:

    .venv/bin/python benchmarks/run.py            # full run, a few minutes on 2 cores
    .venv/bin/python benchmarks/run.py --quick    # small sizes, seconds; numbers are rough
    .venv/bin/python benchmarks/run.py --only chat --only streams --no-write

Every workload is recorded by both tools through the real OpenAI SDK against a local
upstream on 127.0.0.1, then replayed with that upstream stopped, in this one process.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fidelity
from _harness import (
    APIRECORDER,
    FLOOR,
    LIVE,
    Measurement,
    human_time,
    machine_description,
    package_versions,
)
from _report import (
    FLOOR_TARGET,
    RECORD_TARGET,
    STORAGE_TARGET,
    SUITE_TARGET,
    console_line,
    cost_table,
    memory_table,
    notes,
    record_table,
    replay_table,
    storage_table,
    verdict_table,
    verdicts,
)
from _scenario import QUICK, REPO, Bench, Sizes
from workloads import WORKLOADS

COMMAND = ".venv/bin/python benchmarks/run.py"


def _extra(measurements: list[Measurement], key: str, name: str) -> str:
    for m in measurements:
        if m.key == key and name in m.extra:
            return human_time(m.extra[name])
    return "(not measured)"


def _why_replay_floor(m: Measurement, all_: list[Measurement]) -> str:
    per_test = _extra(all_, "chat", APIRECORDER + " setup")
    return (
        f"{m.workload}, apirecorder against the floor: the floor is only "
        f"{human_time(m.get(FLOOR) or 0)} per {m.unit} (read a small file, parse it, one "
        "model_validate), so the fixed costs the floor leaves out weigh more than the "
        "file. Per call: the request key (the SDK arguments as JSON, the reference's "
        "float normalization, json.dumps with sorted keys, sha256: about 10 µs), the "
        "interception around `create()` and the lookup's bookkeeping (about 10-20 µs). "
        "Per test: entering and leaving `recording()` and `test_context()`, as the pytest "
        f"plugin does for every test ({per_test} per test here, spread over its calls; the "
        "interceptors themselves are installed once per run, the costliest being "
        f"{_costliest_install(all_)}). "
        "With the set-up left out (all tests in one recording block) a chat call costs "
        f"{_extra(all_, 'chat', APIRECORDER + ' calls only')}."
    )


def _costliest_install(all_: list[Measurement]) -> str:
    chat = next((m for m in all_ if m.key == "chat"), None)
    installs = {
        k[len("install ") :]: v
        for k, v in (chat.extra.items() if chat else ())
        if k.startswith("install ")
    }
    if not installs:
        return "not measured"
    name, cost = max(installs.items(), key=lambda item: item[1])
    total = human_time(sum(installs.values()))
    text = f"the {name} interceptor's `install()` ({human_time(cost)} of {total} for all)"
    if name.startswith("ollama"):
        text += (
            ", which patches 14 methods and rebinds the module-level shortcuts "
            "(`ollama.chat` and friends); its wrappers are built once per process"
        )
    return text


def _why_stream_speed(m: Measurement, all_: list[Measurement]) -> str:
    return (
        "Streams against VCR.py: VCR.py's time for a long stream is almost all the SDK "
        "building chunks with `construct_type` (compare the SDK build column), and "
        "apirecorder already replays close to its floor (reading and parsing the indented "
        "recording, then one pydantic-core validation per chunk). The rest of the gap to "
        "the target is that floor: parsing the file and model_validate per chunk."
    )


def _why_record_overhead(m: Measurement, all_: list[Measurement]) -> str:
    live = m.get(LIVE) or 0.0
    extra = (m.get(APIRECORDER) or 0.0) - live
    at_300ms = extra / 0.3
    if m.key == "record-disk":
        return (
            f"Record overhead on disk: recording adds {human_time(extra)} per call to a "
            f"{human_time(live)} live call. Every recording is written the crash-safe way "
            "(temporary file, fsync, rename; DESIGN section 8), but only the temporary file is "
            "written while the call waits: a writer thread syncs and renames it, overlapping "
            "the calls that follow, and the block's end waits for it (so the last fsync of each "
            "test is still paid, and on a busy disk the writer can fall behind). What is left "
            "is the CPU work of the tmpfs row plus that. "
            "Against a local upstream that answers in about a millisecond that is a large "
            f"share; against a provider call of 300 ms it would be {at_300ms:.1%}. "
            "VCR.py writes one cassette per test when the test ends, without fsync."
        )
    return (
        f"Record overhead on tmpfs (no disk cost left): recording adds {human_time(extra)} "
        f"per call to a {human_time(live)} live call, the CPU work of recording: "
        "serializing the response (model_dump), the secret scan before writing "
        "(redaction), the 2-space-indented JSON dump (json.dumps with an indent runs the "
        "pure-Python encoder), the atomic write, the request key, and the per-test "
        "set-up spread over the test's calls. Against a provider call of 300 ms it "
        f"would be {at_300ms:.2%}."
    )


def _why_record_speed(m: Measurement, all_: list[Measurement]) -> str:
    return (
        "Recording, apirecorder against VCR.py: apirecorder writes one file per call as the "
        "call completes and fsyncs it before renaming it into place (a crash or a kill never "
        "truncates a recording); VCR.py serializes the whole cassette once when the test "
        "ends and does not fsync it."
    )


#: Why a target can be missed, by verdict key ("<measurement key>/<aspect>").
MISS_REASONS: dict[str, Callable[[Measurement, list[Measurement]], str]] = {
    "chat/floor": _why_replay_floor,
    "embeddings/floor": _why_replay_floor,
    "stream-short/floor": _why_replay_floor,
    "embeddings/speed": _why_replay_floor,
    "stream-long/speed": _why_stream_speed,
    "stream-short/speed": _why_stream_speed,
    "record-disk/overhead": _why_record_overhead,
    "record-tmpfs/overhead": _why_record_overhead,
    "record-disk/speed": _why_record_speed,
    "record-tmpfs/speed": _why_record_speed,
}


def parser_name() -> str:
    from apirecorder._storage import _fast_json_parser

    if _fast_json_parser() is not None:
        return (
            "`pydantic_core.from_json`, with `json.loads` for anything it refuses; "
            "`json.loads` alone when pydantic-core is not installed"
        )
    return "`json.loads`"


def cost_section(
    measurements: list[Measurement], sizes: Sizes, machine: dict[str, str]
) -> list[str]:
    """The heading and method of the "cost around replay" table (issue 16)."""
    suite = next((m for m in measurements if m.key == "cost-suite"), None)
    rounds = int(suite.extra["rounds"]) if suite else 0
    load = machine.get("load average (1, 5, 15 min) at start", "?")
    return [
        "## Cost around replay",
        "",
        "What a suite pays besides the replays themselves (issue 16), measured in this run. "
        f"The suite: {sizes.cost_tests:,} trivial tests (100 to a file) marked "
        "`pytest.mark.apirecorder`, replay mode, no API call, run by `python -m pytest -q` in a "
        "subprocess with the plugin on and off (`-p no:apirecorder`); every supported client "
        "library is installed. Wall "
        f"clock, median of {rounds} interleaved rounds; the machine's load average at the "
        f"start of the run was {load} (other processes share its cores, so the suite's times "
        "move with them; the ratio is what to read). The same suite of one test gives what "
        "the plugin costs once per run; the rest, spread over the tests, is its per-test "
        'cost. The block cost is `recording(mode="replay")` + `test_context(<node id>)` '
        "entered and left in this process with the interceptors kept installed, as the "
        "plugin does. Record overhead and peak memory are the `record` and `memory` rows "
        f"above; the import rows are the median of `python -X importtime -c ...` runs (what "
        "the statement adds to a bare interpreter).",
        "",
    ]


def cost_explained(measurements: list[Measurement]) -> list[str]:
    """Why the suite rows read as they do."""
    suite = next((m for m in measurements if m.key == "cost-suite"), None)
    if suite is None:
        return []
    new = suite.imported.get("plugin on")
    before = suite.imported.get("before") or []
    reasons = []
    if new == []:
        reasons.append(
            "Plugin on: an interceptor is installed when the code under test imports its "
            "library (`apirecorder._interceptors.install_all` leaves an import hook), so the "
            "suite imports no client library it does not use. Once per run the plugin imports "
            "apirecorder's own modules (the `import apirecorder.pytest_plugin` row) and, when "
            "the first test opens its block, patches the libraries that were imported already"
            + (
                f" ({', '.join(before)} here, imported at start-up by another installed pytest "
                "plugin, with the plugin off too)"
                if before
                else ""
            )
            + ". Per test, the plugin's hooks (no fixture: pytest's machinery for one costs "
            "more than the block) merge the markers into settings read once per run, open "
            "`recording()` and `test_context()` before the test's first function-scoped "
            "fixture, and close them after its last, keeping the ledger (the folders a test "
            "file's tests search are worked out once per file)."
        )
    elif new:
        reasons.append(
            f"Plugin on: the run imported {', '.join(new)}, which the suite does not use: an "
            "interceptor imported its library instead of waiting for the code under test to."
        )
    spread = suite.extra.get("spread per test")
    reasons.append(
        "Per test by difference: the CPU time left once the 1-test suite's difference "
        "(start-up) is taken out, spread over the other tests; it includes pytest's own work "
        "for the plugin's hooks. "
        + (
            f"The rounds of one variant differ by up to {human_time(spread)} per test, "
            "which is how precise these rows are. "
            if spread is not None
            else ""
        )
        + "The in-process rows time the recording block alone."
    )
    return reasons


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and 2 rounds")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(WORKLOADS),
        help="run only this workload (repeatable)",
    )
    parser.add_argument("--rounds", type=int, help="timed rounds per workload (median taken)")
    parser.add_argument(
        "--output", type=Path, default=REPO / "BENCHMARKS.md", help="where to write the report"
    )
    parser.add_argument("--workdir", type=Path, help="keep recordings here instead of a temp dir")
    return parser.parse_args(argv)


def _serve_section(measurements: list[Measurement]) -> list[str]:
    """``apirecorder serve`` under load (issue 13): requests per second and peak memory."""
    found = [m for m in measurements if m.kind == "serve"]
    if not found:
        return []
    lines = [
        "## `apirecorder serve` under load",
        "",
        "Streamed chat completions recorded through the server from the local upstream, then "
        "replayed with the upstream stopped by many clients at once (httpx, one thread each), "
        "every answer checked against the prompt that asked for it "
        "(`benchmarks/serve_load.py`). Peak memory is the server process's VmHWM.",
        "",
        "| workload | chunks per stream | time | requests/s | server peak RSS |",
        "|---|---|---|---|---|",
    ]
    for m in found:
        extra = m.extra
        lines.append(
            f"| {m.workload} | {extra['chunks']:.0f} | {extra['seconds']:.2f} s "
            f"| **{extra['per_second']:,.0f}** | {extra['peak_rss'] / 2**20:.1f} MiB |"
        )
    return [*lines, ""]


def render(
    measurements: list[Measurement],
    sizes: Sizes,
    args: argparse.Namespace,
    fidelity_checked: int,
    elapsed: float,
    machine: dict[str, str],
) -> str:
    versions = package_versions()
    found = verdicts(measurements)
    command = COMMAND + (" --quick" if args.quick else "")
    lines = [
        "# Benchmarks: apirecorder against VCR.py",
        "",
        "Generated by `benchmarks/run.py` on "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} in {elapsed:.0f} s. "
        "Reproduce from the repository root with:",
        "",
        "```sh",
        command,
        "```",
        "",
        "(`--quick` runs small sizes in seconds; `--only NAME` runs one workload; "
        "`--rounds N` changes the number of timed rounds; `--no-write` prints only.)",
        "",
        *(
            [
                "**This is a `--quick` run: the sizes are too small for the targets "
                "(per-test set-up dominates) and one round is timed. Run without "
                "`--quick` for the real numbers.**",
                "",
            ]
            if args.quick
            else []
        ),
        "## Machine and versions",
        "",
        *[f"- {key}: {value}" for key, value in machine.items()],
        *[f"- {name} {version}" for name, version in versions.items()],
        "",
        "## What is compared",
        "",
        "Both tools replay the same calls, made through the real OpenAI SDK "
        "(`openai.OpenAI().chat.completions.create(...)`, `.embeddings.create(...)`), "
        "recorded by each of them from the same local upstream on 127.0.0.1 "
        "(`tests/upstream`, deterministic mode) and replayed with that upstream stopped.",
        "",
        "- **apirecorder** runs each simulated test the way its pytest plugin does: one "
        '`apirecorder.recording(mode="replay")` block and one `test_context(<node id>)` '
        "per test, recordings co-located in `tests/recordings/`.",
        "- **VCR.py** runs each test the way pytest-recording does: one "
        '`vcr.VCR().use_cassette(<test>.yaml, record_mode="none")` per test, one YAML '
        "cassette per test, default options (matching on method, scheme, host, port, path, "
        "query). vcrpy 9 patches `httpx2` (the transport of openai 3.x) itself: "
        "`httpx2.HTTPTransport.handle_request` is in its patcher list, and the runner checks "
        "that VCR.py replays the live responses with the upstream down, so no adapter "
        "was needed and both sides go through the unmodified SDK.",
        "- **floor**: read the recording file apirecorder replays (`Path.read_bytes`), parse "
        f"it with the JSON parser apirecorder uses ({parser_name()}), and build the SDK "
        "objects with pydantic-core (`ChatCompletion.model_validate(...)`, per chunk for "
        "streams). Replay cannot do less.",
        "- **SDK build**: the same read and parse, but the objects built the way the SDK "
        "builds them from the wire (`openai._models.construct_type`, pure Python, "
        "unvalidated). VCR.py pays this on every replay, and a replayed object must be "
        "identical to what it gives.",
        "",
        "Times are medians over "
        f"{args.rounds or sizes.rounds} timed rounds after one warm-up round, the tools "
        "interleaved round by round, divided by the number of calls (or streams) in a "
        "round; each tool's per-test set-up (entering the recording block or the cassette) "
        "is included. Before timing, the runner checks that every replay returns what the "
        "live call returned, and that every object apirecorder replays is identical to the "
        "SDK's own `construct_type` build of the recording (class, values and their Python "
        "types, fields set, extra fields); the same check ran over "
        f"{fidelity_checked} recorded OpenAI objects of every kind (`benchmarks/fidelity.py`).",
        "",
        "## Replay",
        "",
        *replay_table(measurements),
        "",
    ]
    storage = storage_table(measurements)
    if storage:
        lines += [
            "## Per-call replay cost as the storage grows",
            "",
            "One test of "
            f"{sizes.storage_calls} calls. For apirecorder, the folder holds that many "
            "recording files (the test's own plus fillers with their own hash names). For "
            "VCR.py, the comparable is the size of the test's cassette: that many "
            "interactions, the test's own spread evenly among fillers; with many "
            "interactions on one endpoint VCR.py has to match on the body too, so these "
            "cassettes replay with `match_on` = the defaults + `body`. Per call, including "
            "the test's set-up (VCR.py loads the whole cassette there).",
            "",
            *storage,
            "",
        ]
    record = record_table(measurements)
    if record:
        lines += [
            "## Record overhead",
            "",
            "The same calls made live (no recorder), recorded by apirecorder (one atomic "
            "write per call: the temporary file written on the call's path, its fsync and "
            "rename by a writer thread, waited for when the block ends), and recorded by "
            'VCR.py (`record_mode="all"`, the '
            "cassette written when the test ends), against the local upstream.",
            "",
            *record,
            "",
        ]
    memory = memory_table(measurements)
    if memory:
        lines += [
            "## Peak memory",
            "",
            "tracemalloc peak above the starting point while replaying the stream and "
            "reading it to its end (chunks not kept by the reader), after a warm-up run.",
            "",
            *memory,
            "",
        ]
    cost = cost_table(measurements)
    if cost:
        lines += [*cost_section(measurements, sizes, machine), *cost, ""]
        lines += [f"- {reason}" for reason in cost_explained(measurements)]
        lines += [""]
    lines += _serve_section(measurements)
    lines += ["## Targets (issue 7)", "", *verdict_table(found), ""]
    missed = [v for v in found if not v.met]
    if missed:
        lines += ["### Why targets are missed", ""]
        reasons: list[str] = []
        for verdict in missed:
            explain = MISS_REASONS.get(verdict.key)
            if explain is None or verdict.measurement is None:
                reasons.append(
                    f"{verdict.workload} ({verdict.target}): no explanation is recorded for "
                    "this miss (the target was met in the full runs made while writing the "
                    "runner); suspect a busy machine or a `--quick` run, and run again."
                )
            else:
                reasons.append(explain(verdict.measurement, measurements))
        lines += [f"- {reason}" for reason in dict.fromkeys(reasons)]
        lines += [""]
    extra_notes = notes(measurements)
    if extra_notes:
        lines += ["## Notes", "", *extra_notes, ""]
    lines += [
        f"Targets: ≥10x VCR.py per non-streaming call, ≥5x on streams, within "
        f"{FLOOR_TARGET:g}x of the floor, per-call cost with the most recordings within "
        f"{STORAGE_TARGET:g}x of the fewest, record overhead under {RECORD_TARGET:.0%}; "
        f"issue 16: a suite with the plugin within {SUITE_TARGET:.2f}x of the same suite "
        "without it, and no client library imported by `import apirecorder`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    if args.rounds:
        sizes = Sizes(**{**sizes.__dict__, "rounds": args.rounds})
    started = time.perf_counter()
    machine = machine_description()  # taken once, so the load average is the one at start
    for key, value in {**machine, **package_versions()}.items():
        print(f"{key}: {value}")
    checked, problems = fidelity.run()
    print(f"fidelity: {checked} recorded OpenAI objects rebuilt identically: {not problems}")
    if problems:
        for problem in problems[:20]:
            print("  " + problem)
        return 1
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="apirecorder-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(workdir)
    measurements: list[Measurement] = []
    try:
        for name in args.only or list(WORKLOADS):
            for measurement in WORKLOADS[name].run(bench, sizes):
                print(console_line(measurement), flush=True)
                for note in measurement.notes:
                    print(f"  note: {note}")
                measurements.append(measurement)
    finally:
        bench.close()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - started
    for verdict in verdicts(measurements):
        status = "met" if verdict.met else f"MISSED ({verdict.miss})"
        print(f"target {verdict.workload}: {verdict.target}: {verdict.measured} {status}")
    print(f"done in {elapsed:.0f} s")
    if not args.no_write:
        args.output.write_text(
            render(measurements, sizes, args, checked, elapsed, machine), "utf-8"
        )
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
