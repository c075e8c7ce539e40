"""The benchmark runner works end to end (tiny sizes, nothing written, no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUNNER = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


def test_quick_benchmark_run_measures_every_workload(tmp_path: Path) -> None:
    report = tmp_path / "BENCHMARKS.md"
    result = subprocess.run(
        [sys.executable, str(RUNNER), "--quick", "--output", str(report)],
        capture_output=True,
        text=True,
        timeout=300,  # a busy machine; the quick run itself takes well under a minute
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # The fidelity check ran and found every replayed object identical to the SDK's build.
    assert "rebuilt identically: True" in out
    for workload in (
        "chat completions over",
        "1 stream of 100 chunks",
        "streams of 20 chunks",
        "embeddings of 256 floats",
        "10 recordings",
        "record 6 chat completions",
        "peak memory replaying",
        "100 trivial tests marked apirecorder, no API call",
        "entering and leaving a test's recording block",
        "importtime -c 'import apirecorder'",
    ):
        assert workload in out, f"{workload!r} missing from:\n{out}"
    text = report.read_text(encoding="utf-8")
    for section in (
        "## Machine and versions",
        "## Replay",
        "## Cost around replay",
        "## Targets (issue 7)",
    ):
        assert section in text
    assert ".venv/bin/python benchmarks/run.py --quick" in text
