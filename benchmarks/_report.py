"""Turning measurements into the console summary and BENCHMARKS.md."""

from __future__ import annotations

from dataclasses import dataclass

from _harness import (
    APIRECORDER,
    FLOOR,
    LIVE,
    SDK_BUILD,
    VCRPY,
    Measurement,
    human_bytes,
    human_time,
)

#: apirecorder may cost at most this many times the floor.
FLOOR_TARGET = 2.0
#: Per-call cost with the most recordings, against the cost with the fewest.
STORAGE_TARGET = 1.5
#: Record overhead against the live call.
RECORD_TARGET = 0.10


@dataclass
class Verdict:
    """One target: what it asks, what was measured, and whether it was met."""

    workload: str
    target: str
    measured: str
    met: bool
    miss: str = ""  # by how much, when missed
    key: str = ""  # "<measurement key>/<aspect>", to find the explanation of a miss
    measurement: Measurement | None = None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def fmt_ratio(value: float | None, suffix: str = "x") -> str:
    return (
        "-" if value is None else f"{value:.1f}{suffix}" if value >= 10 else f"{value:.2f}{suffix}"
    )


def fmt_time(value: float | None) -> str:
    return "-" if value is None else human_time(value)


def verdicts(measurements: list[Measurement]) -> list[Verdict]:
    """Every target of the issue, checked against these measurements."""
    found: list[Verdict] = []
    storage = [m for m in measurements if m.kind == "storage"]
    for m in measurements:
        if m.kind == "replay":
            speedup = ratio(m.get(VCRPY), m.get(APIRECORDER))
            if m.target is not None and speedup is not None:
                found.append(
                    Verdict(
                        m.workload,
                        f"VCR.py / apirecorder ≥ {m.target:g}x",
                        fmt_ratio(speedup),
                        speedup >= m.target,
                        f"{m.target / speedup:.2f}x short of the target"
                        if speedup < m.target
                        else "",
                        f"{m.key}/speed",
                        m,
                    )
                )
            to_floor = ratio(m.get(APIRECORDER), m.get(FLOOR))
            if to_floor is not None:
                found.append(
                    Verdict(
                        m.workload,
                        f"apirecorder / floor ≤ {FLOOR_TARGET:g}x",
                        fmt_ratio(to_floor),
                        to_floor <= FLOOR_TARGET,
                        f"{to_floor / FLOOR_TARGET:.2f}x over the target"
                        if to_floor > FLOOR_TARGET
                        else "",
                        f"{m.key}/floor",
                        m,
                    )
                )
        elif m.kind == "record":
            overhead = ratio(m.get(APIRECORDER), m.get(LIVE))
            if overhead is not None:
                # Issue 16's target: the time recording adds, against a provider call; the
                # figure against this run's local call is said beside it.
                added = (m.get(APIRECORDER) or 0.0) - (m.get(LIVE) or 0.0)
                share = added / PROVIDER_CALL
                found.append(
                    Verdict(
                        m.workload,
                        f"record overhead < {RECORD_TARGET:.0%} of a "
                        f"{PROVIDER_CALL * 1e3:.0f} ms provider call",
                        f"{share:.2%} (+{human_time(added)}, {overhead - 1:+.1%} of the "
                        f"{human_time(m.get(LIVE) or 0.0)} local call)",
                        share < RECORD_TARGET,
                        f"{share - RECORD_TARGET:.1%} points over"
                        if share >= RECORD_TARGET
                        else "",
                        f"{m.key}/overhead",
                        m,
                    )
                )
            speedup = ratio(m.get(VCRPY), m.get(APIRECORDER))
            if speedup is not None:
                found.append(
                    Verdict(
                        m.workload,
                        "faster than VCR.py",
                        fmt_ratio(speedup),
                        speedup > 1,
                        f"{1 / speedup:.2f}x slower" if speedup <= 1 else "",
                        f"{m.key}/speed",
                        m,
                    )
                )
        elif m.kind == "storage":
            speedup = ratio(m.get(VCRPY), m.get(APIRECORDER))
            if speedup is not None:
                found.append(
                    Verdict(
                        f"per-call replay, {m.workload}",
                        "faster than VCR.py",
                        fmt_ratio(speedup),
                        speedup > 1,
                        f"{1 / speedup:.2f}x slower" if speedup <= 1 else "",
                        f"{m.key}/speed",
                        m,
                    )
                )
    ours = [m for m in storage if m.get(APIRECORDER) is not None]
    if len(ours) >= 2:
        smallest, largest = ours[0], ours[-1]
        growth = ratio(largest.get(APIRECORDER), smallest.get(APIRECORDER))
        if growth is not None:
            found.append(
                Verdict(
                    f"per-call replay, {largest.workload} vs {smallest.workload}",
                    f"within {STORAGE_TARGET:g}x",
                    fmt_ratio(growth),
                    growth <= STORAGE_TARGET,
                    f"{growth / STORAGE_TARGET:.2f}x over the target"
                    if growth > STORAGE_TARGET
                    else "",
                    "storage/growth",
                    largest,
                )
            )
    return found


def console_line(m: Measurement) -> str:
    """One measurement as a line for the terminal."""
    if m.kind == "memory":
        parts = [f"{tool} {human_bytes(value)}" for tool, value in m.medians.items()]
        speedup = ratio(m.get(VCRPY), m.get(APIRECORDER))
        return f"{m.workload}: " + ", ".join(parts) + f"  (VCR.py/apirecorder {fmt_ratio(speedup)})"
    parts = [f"{tool} {human_time(value)}/{m.unit}" for tool, value in m.medians.items()]
    line = f"{m.workload}: " + ", ".join(parts)
    speedup = ratio(m.get(VCRPY), m.get(APIRECORDER))
    if speedup is not None:
        line += f"  (VCR.py/apirecorder {fmt_ratio(speedup)}"
        to_floor = ratio(m.get(APIRECORDER), m.get(FLOOR))
        if to_floor is not None:
            line += f", apirecorder/floor {fmt_ratio(to_floor)}"
        line += ")"
    if m.kind == "record":
        overhead = ratio(m.get(APIRECORDER), m.get(LIVE))
        if overhead is not None:
            line += f"  record overhead {overhead - 1:+.1%}"
    return line


def _bold(text: str) -> str:
    return text if text == "-" else f"**{text}**"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def replay_table(measurements: list[Measurement]) -> list[str]:
    rows = []
    for m in measurements:
        if m.kind != "replay":
            continue
        rows.append(
            [
                m.workload,
                m.unit,
                fmt_time(m.get(APIRECORDER)),
                fmt_time(m.get(VCRPY)),
                _bold(fmt_ratio(ratio(m.get(VCRPY), m.get(APIRECORDER)))),
                fmt_time(m.get(FLOOR)),
                fmt_ratio(ratio(m.get(APIRECORDER), m.get(FLOOR))),
                fmt_time(m.get(SDK_BUILD)),
            ]
        )
    header = [
        "workload",
        "per",
        "apirecorder",
        "VCR.py",
        "VCR.py / apirecorder",
        "floor",
        "apirecorder / floor",
        "SDK build",
    ]
    return _table(header, rows) if rows else []


def storage_table(measurements: list[Measurement]) -> list[str]:
    storage = [m for m in measurements if m.kind == "storage"]
    if not storage:
        return []
    base = next((m.get(APIRECORDER) for m in storage if m.get(APIRECORDER) is not None), None)
    rows = []
    for m in storage:
        rows.append(
            [
                f"{int(m.extra['count']):,}",
                fmt_time(m.get(APIRECORDER)),
                fmt_ratio(ratio(m.get(APIRECORDER), base)),
                fmt_time(m.get(VCRPY)),
                _bold(fmt_ratio(ratio(m.get(VCRPY), m.get(APIRECORDER)))),
            ]
        )
    header = [
        "recordings (files / cassette interactions)",
        "apirecorder per call",
        "vs the smallest",
        "VCR.py per call",
        "VCR.py / apirecorder",
    ]
    return _table(header, rows)


def record_table(measurements: list[Measurement]) -> list[str]:
    rows = []
    for m in measurements:
        if m.kind != "record":
            continue
        live = m.get(LIVE)
        rows.append(
            [
                m.workload,
                fmt_time(live),
                fmt_time(m.get(APIRECORDER)),
                f"{(ratio(m.get(APIRECORDER), live) or 1) - 1:+.1%}",
                fmt_time(m.get(VCRPY)),
                f"{(ratio(m.get(VCRPY), live) or 1) - 1:+.1%}",
                _bold(fmt_ratio(ratio(m.get(VCRPY), m.get(APIRECORDER)))),
            ]
        )
    header = [
        "workload",
        "live call",
        "apirecorder record",
        "overhead",
        "VCR.py record",
        "overhead",
        "VCR.py / apirecorder",
    ]
    return _table(header, rows) if rows else []


def memory_table(measurements: list[Measurement]) -> list[str]:
    rows = []
    for m in measurements:
        if m.kind != "memory":
            continue
        rows.append(
            [
                m.workload,
                human_bytes(m.extra.get("file_size", 0)),
                human_bytes(m.get(APIRECORDER) or 0),
                human_bytes(m.get(VCRPY) or 0),
                _bold(fmt_ratio(ratio(m.get(VCRPY), m.get(APIRECORDER)))),
                human_bytes(m.get(FLOOR) or 0),
                human_bytes(m.get(SDK_BUILD) or 0),
            ]
        )
    header = [
        "workload",
        "recording file",
        "apirecorder peak",
        "VCR.py peak",
        "VCR.py / apirecorder",
        "floor peak",
        "SDK build peak",
    ]
    return _table(header, rows) if rows else []


def verdict_table(found: list[Verdict]) -> list[str]:
    rows = [
        [v.workload, v.target, v.measured, "met" if v.met else f"**missed** ({v.miss})"]
        for v in found
    ]
    return _table(["workload", "target", "measured", "result"], rows) if rows else []


def notes(measurements: list[Measurement]) -> list[str]:
    lines = []
    for m in measurements:
        for note in m.notes:
            lines.append(f"- {m.workload}: {note}")
    return lines


#: The suite with the plugin on may take at most this many times the run without it.
SUITE_TARGET = 1.10
#: The provider call the record overhead is projected onto, in seconds.
PROVIDER_CALL = 0.300


def _named(measurements: list[Measurement], key: str) -> Measurement | None:
    return next((m for m in measurements if m.key == key), None)


def _libraries(names: list[str] | None) -> str:
    if names is None:
        return "(not probed)"
    return ", ".join(f"`{name}`" for name in names) if names else "none"


def cost_table(measurements: list[Measurement]) -> list[str]:
    """The "cost around replay" rows (issue 16): what a suite pays besides the replays."""
    suite = _named(measurements, "cost-suite")
    block = _named(measurements, "cost-block")
    rows: list[list[str]] = []
    if suite is not None:
        rows += _suite_rows(suite)
    if block is not None and suite is not None:
        pytest_per_test = suite.extra["pytest per test"]
        for name, value in block.medians.items():
            label = (
                "per test: entering and leaving `recording()` + `test_context()` (mode, "
                "storage folders, policies) and the plugin's ledger bookkeeping, in process"
            )
            if name != "recording + test_context":
                label = "per test: the same with `block_network=True` (the network guard)"
            rows.append(
                [
                    label,
                    human_time(value),
                    f"pytest's own per test {human_time(pytest_per_test)} "
                    f"({value / pytest_per_test:.1%})",
                    "",
                    "",
                ]
            )
    for m in measurements:
        if m.kind != "record":
            continue
        live, ours = m.get(LIVE), m.get(APIRECORDER)
        if live is None or ours is None:
            continue
        where = "disk" if m.key == "record-disk" else "tmpfs"
        extra = ours - live
        share = extra / PROVIDER_CALL
        rows.append(
            [
                f"record overhead per call, files on {where} (`record` workload)",
                f"+{human_time(extra)}: {extra / live:+.1%} of a {human_time(live)} local call",
                f"{share:.2%} of a {PROVIDER_CALL * 1e3:.0f} ms provider call (projected)",
                f"< {RECORD_TARGET:.0%} of a provider call",
                "met" if share < RECORD_TARGET else "**missed**",
            ]
        )
    for m in measurements:
        if m.kind != "memory":
            continue
        ours, theirs = m.get(APIRECORDER), m.get(VCRPY)
        rows.append(
            [
                f"{m.workload} (`memory` workload)",
                human_bytes(ours or 0),
                f"VCR.py {human_bytes(theirs or 0)} (apirecorder / VCR.py: "
                f"{fmt_ratio(ratio(ours, theirs))})",
                "",
                "",
            ]
        )
    for key, what in (
        ("cost-import", "`import apirecorder`"),
        ("cost-plugin-import", "`import apirecorder.pytest_plugin` (the plugin's start-up)"),
    ):
        imports = _named(measurements, key)
        if imports is None:
            continue
        clients = imports.imported.get("client libraries")
        in_pytest = imports.extra.get("pytest", 0.0)
        measured = human_time(imports.medians["import"])
        if in_pytest:
            measured += f", of which pytest {human_time(in_pytest)}"
        rows.append(
            [
                f"{what}, `python -X importtime`",
                measured,
                f"client libraries imported: {_libraries(clients)}",
                "no client library",
                "met" if clients == [] else "**missed**",
            ]
        )
    header = ["cost", "measured", "against", "target", "result"]
    return _table(header, rows) if rows else []


def _difference(seconds: float) -> str:
    """A plugin-on minus plugin-off time; negative when the runs vary more than it."""
    if seconds < 0:
        # The difference is smaller than how much the runs themselves vary.
        return f"{human_time(seconds)} (below this run's noise)"
    return human_time(seconds)


def _suite_rows(suite: Measurement) -> list[list[str]]:
    tests = int(suite.extra["tests"])
    off = suite.get("plugin off") or 0.0
    off_cpu = suite.extra["plugin off cpu"]
    rows = []
    for variant in ("plugin on",):
        on = suite.get(variant)
        if on is None:
            continue
        times = ratio(on, off)
        on_cpu = suite.extra[f"{variant} cpu"]
        rows.append(
            [
                f"{tests:,} trivial tests marked `apirecorder`, no API call: **{variant}** "
                "against off",
                f"{human_time(on)} against {human_time(off)}: **{fmt_ratio(times)}** "
                f"(CPU {human_time(on_cpu)} against {human_time(off_cpu)}: "
                f"{fmt_ratio(ratio(on_cpu, off_cpu))})",
                "client libraries a 1-test run imported: "
                + _libraries(suite.imported.get(variant)),
                f"≤ {SUITE_TARGET:.2f}x",
                "met" if times is not None and times <= SUITE_TARGET else "**missed**",
            ]
        )
        rows.append(
            [
                f"{variant}: once per run (the 1-test suite, on minus off, CPU)",
                _difference(suite.extra[f"{variant} once"]),
                "pytest's own start-up and one test: "
                f"{human_time(suite.extra['plugin off one cpu'])} CPU",
                "",
                "",
            ]
        )
        rows.append(
            [
                f"{variant}: per test, the plugin's hooks and block (the rest of the "
                f"difference over {tests - 1:,} tests, CPU)",
                _difference(suite.extra[f"{variant} per test"]),
                f"pytest's own per test: {human_time(suite.extra['pytest per test'])} "
                f"(the off run / {tests:,}), {human_time(suite.extra['pytest cpu per test'])} "
                "CPU with its start-up left out",
                "",
                "",
            ]
        )
    return rows
