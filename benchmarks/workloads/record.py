"""Record overhead: the same calls live, recorded by apirecorder, and recorded by VCR.py.

Run twice when the machine has a RAM disk (/dev/shm): once with the recordings on the
work folder's disk, where apirecorder's fsync per file costs what the disk makes it cost,
and once on tmpfs, where what is left is the CPU work of recording.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from _harness import APIRECORDER, LIVE, VCRPY, Measurement, time_rounds
from _scenario import Bench, BenchTest, Sizes, chat_call

import apirecorder

RAM_DISK = Path("/dev/shm")


def run(bench: Bench, sizes: Sizes) -> list[Measurement]:
    results = [measure(bench, sizes, *bench.folders("record"), "disk")]
    if RAM_DISK.is_dir():
        folder = Path(tempfile.mkdtemp(prefix="apirecorder-bench-", dir=RAM_DISK))
        try:
            results.append(measure(bench, sizes, folder / "apirecorder", folder / "vcr", "tmpfs"))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return results


def measure(bench: Bench, sizes: Sizes, root: Path, cassettes: Path, where: str) -> Measurement:
    tests = [
        BenchTest(
            f"test_record_{t}",
            [chat_call(f"Record test {t}, question {c}.") for c in range(sizes.record_calls)],
        )
        for t in range(sizes.record_tests)
    ]
    client = bench.client

    def live() -> None:
        for test in tests:
            for call in test.calls:
                call.run(client)

    def record_apirecorder() -> None:
        for test in tests:
            with (
                apirecorder.recording(mode="record", root=root),
                apirecorder.test_context(test.test_id),
            ):
                for call in test.calls:
                    call.run(client)

    def record_vcr() -> None:
        bench.record_vcr(tests, cassettes)

    total = sizes.record_tests * sizes.record_calls
    medians, samples = time_rounds(
        {LIVE: live, APIRECORDER: record_apirecorder, VCRPY: record_vcr},
        rounds=sizes.rounds,
        units=total,
    )
    written = len(list((root / "tests" / "recordings").glob("*.json")))
    if written != total:
        raise AssertionError(f"apirecorder wrote {written} recordings, expected {total}")
    return Measurement(
        f"record {total} chat completions over {sizes.record_tests} tests, files on {where}",
        "call",
        medians,
        samples,
        kind="record",
        key=f"record-{where}",
    )
