"""Timing, results and the machine description shared by every workload."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata

#: The tools compared, in the order they run inside each round.
APIRECORDER = "apirecorder"
VCRPY = "VCR.py"
FLOOR = "floor"
SDK_BUILD = "SDK build"
LIVE = "live"


@dataclass
class Measurement:
    """The per-unit medians of one workload, in seconds (or bytes for memory)."""

    workload: str
    unit: str  # "call", "stream", "test" or "bytes"
    medians: dict[str, float]
    samples: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    kind: str = "replay"  # "replay", "storage", "record", "memory" or "cost"
    #: The VCR.py / apirecorder ratio the issue asks for, if any.
    target: float | None = None
    #: Free-form numbers a table needs (recording counts and the like).
    extra: dict[str, float] = field(default_factory=dict)
    #: A short stable name ("chat", "stream-long", "record-disk", ...) for explanations.
    key: str = ""
    #: Names found, by what they are of (the client libraries each suite variant imported).
    imported: dict[str, list[str]] = field(default_factory=dict)

    def get(self, tool: str) -> float | None:
        return self.medians.get(tool)


def _per_unit(total: float, units: int) -> float:
    return total / units if units else total


def time_rounds(
    runners: dict[str, Callable[[], object]],
    *,
    rounds: int,
    units: int,
    warmup: bool = True,
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Run each runner once to warm up, then ``rounds`` times interleaved; per-unit medians.

    Interleaving the tools round by round spreads any drift of the machine (another
    process, frequency scaling) over all of them instead of one.
    """
    if warmup:
        for runner in runners.values():
            runner()
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            gc.collect()
            start = time.perf_counter()
            runner()
            samples[name].append(_per_unit(time.perf_counter() - start, units))
    return {name: statistics.median(values) for name, values in samples.items()}, samples


def peak_memory(runner: Callable[[], object]) -> int:
    """Peak bytes allocated by Python while ``runner`` runs (tracemalloc), after a warm-up."""
    runner()
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        runner()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - base


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> dict[str, str]:
    """Cores, CPU model, Python and OS of this run."""
    return {
        "CPU": f"{cpu_model()} ({platform.machine()})",
        "cores": str(os.cpu_count()),
        "Python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "OS": platform.platform(),
        "load average (1, 5, 15 min) at start": ", ".join(
            f"{x:.2f}" for x in (os.getloadavg() if hasattr(os, "getloadavg") else ())
        ),
    }


def package_versions() -> dict[str, str]:
    """Versions of the packages on the measured paths."""
    versions: dict[str, str] = {}
    for name in ("apirecorder", "openai", "httpx2", "pydantic", "pydantic-core", "vcrpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        import yaml

        libyaml = "with libyaml" if getattr(yaml, "__with_libyaml__", False) else "pure Python"
        versions["PyYAML"] = f"{yaml.__version__} ({libyaml})"
    except ImportError:
        versions["PyYAML"] = "not installed"
    return versions


def human_time(seconds: float) -> str:
    """Seconds in the unit that reads best: s, ms or µs."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def human_bytes(count: float) -> str:
    """Bytes in KiB or MiB."""
    if count >= 1 << 20:
        return f"{count / (1 << 20):.1f} MiB"
    return f"{count / 1024:.0f} KiB"
