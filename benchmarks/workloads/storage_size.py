"""Per-call replay cost as the storage grows: files in the folder, interactions in a cassette.

apirecorder names each file by its request hash, so a lookup opens one file whatever the
folder holds. VCR.py keeps a test's interactions in one cassette, loads all of it when the
test starts, and scans it for every request; its comparable of "recordings in the folder"
is the number of interactions in the cassette. With many interactions on one endpoint,
VCR.py must match on the body too (its default matchers would hand back the first unplayed
interaction for the path), so these cassettes are replayed with ``body`` added to the
default ``match_on``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from _harness import APIRECORDER, VCRPY, Measurement, human_time, time_rounds
from _scenario import Bench, BenchTest, Sizes, chat_call, offline
from vcr.serializers import yamlserializer

MATCH_ON_BODY = ("method", "scheme", "host", "port", "path", "query", "body")
#: From this many interactions on, one VCR.py test takes seconds.
SLOW_CASSETTE = 5_000


def add_fillers(folder: Path, payload: bytes, start: int, stop: int) -> None:
    """Write recordings ``start`` to ``stop`` (exclusive): same content, their own hash names."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    for index in range(start, stop):
        name = hashlib.sha256(f"filler {index}".encode()).hexdigest() + ".json"
        fd = os.open(folder / name, flags, 0o644)
        try:
            os.write(fd, payload)
        finally:
            os.close(fd)


def write_cassette(template: Path, target: Path, size: int) -> None:
    """A cassette of ``size`` interactions: the test's own, spread evenly among fillers."""
    data: dict[str, Any] = yamlserializer.deserialize(template.read_text(encoding="utf-8"))
    own: list[dict[str, Any]] = data["interactions"]
    body = json.loads(own[0]["request"]["body"])
    places = {(2 * i + 1) * size // (2 * len(own)): item for i, item in enumerate(own)}
    interactions: list[dict[str, Any]] = []
    for index in range(size):
        if index in places:
            interactions.append(places[index])
            continue
        body["messages"][-1]["content"] = f"Filler question {index}."
        request = {**own[0]["request"], "body": json.dumps(body, separators=(",", ":"))}
        interactions.append({"request": request, "response": own[0]["response"]})
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        yamlserializer.serialize({**data, "interactions": interactions}), encoding="utf-8"
    )


def note_extrapolation(results: list[Measurement]) -> None:
    """Say what VCR.py would cost at the sizes it was not run at, by its measured growth."""
    timed = [m for m in results if m.get(VCRPY) is not None]
    untimed = [m for m in results if m.get(VCRPY) is None and m.get(APIRECORDER) is not None]
    if len(timed) < 2 or not untimed:
        return
    (small, large) = timed[-2:]
    slope = ((large.get(VCRPY) or 0) - (small.get(VCRPY) or 0)) / (
        large.extra["count"] - small.extra["count"]
    )
    for m in untimed:
        if m.extra["count"] <= large.extra["count"]:
            continue
        estimate = (large.get(VCRPY) or 0) + slope * (m.extra["count"] - large.extra["count"])
        m.notes.append(
            f"VCR.py not run with a {int(m.extra['count']):,}-interaction cassette, to keep "
            "the run short; extrapolating its linear growth between "
            f"{int(small.extra['count']):,} and {int(large.extra['count']):,} interactions "
            f"gives about {human_time(estimate)} per call, "
            f"{estimate / (m.get(APIRECORDER) or 1):,.0f}x apirecorder"
        )


def run(bench: Bench, sizes: Sizes) -> list[Measurement]:
    test = BenchTest(
        "test_storage",
        [chat_call(f"Storage question {c}.") for c in range(sizes.storage_calls)],
    )
    root, cassettes = bench.folders("storage")
    bench.record_apirecorder([test], root)
    bench.record_vcr([test], cassettes)
    folder = test.files[0].parent
    payload = test.files[0].read_bytes()
    template = test.cassette(cassettes)
    calls = sizes.storage_calls
    results: list[Measurement] = []
    present = calls
    counts = sorted(set(sizes.storage_counts) | set(sizes.cassette_counts))
    try:
        with offline(bench):
            for count in counts:
                runners: dict[str, Any] = {}
                notes: list[str] = []
                if count in sizes.storage_counts:
                    started = time.perf_counter()
                    add_fillers(folder, payload, present, count)
                    present = max(present, count)
                    # Flush the new files now, so the disk writing them back does not run
                    # under the timed replays.
                    os.sync()
                    notes.append(
                        f"{count - calls:,} filler files written in "
                        f"{time.perf_counter() - started:.1f} s"
                    )
                    runners[APIRECORDER] = lambda: bench.replay_apirecorder([test], root)
                if count in sizes.cassette_counts:
                    sized = cassettes.parent / f"cassettes-{count}"
                    started = time.perf_counter()
                    write_cassette(template, test.cassette(sized), count)
                    notes.append(
                        f"cassette of {count:,} interactions written in "
                        f"{time.perf_counter() - started:.1f} s"
                    )
                    runners[VCRPY] = lambda sized=sized: bench.replay_vcr(
                        [test], sized, match_on=MATCH_ON_BODY
                    )
                medians, samples = time_rounds(
                    {k: v for k, v in runners.items() if k != VCRPY or count < SLOW_CASSETTE},
                    rounds=sizes.rounds,
                    units=calls,
                )
                if VCRPY in runners and count >= SLOW_CASSETTE:
                    # Seconds per test at this size: one cold round is plenty.
                    slow, slow_samples = time_rounds(
                        {VCRPY: runners[VCRPY]}, rounds=1, units=calls, warmup=False
                    )
                    medians.update(slow)
                    samples.update(slow_samples)
                    notes.append("VCR.py timed over one round (no warm-up) at this size")
                results.append(
                    Measurement(
                        f"{count:,} recordings",
                        "call",
                        medians,
                        samples,
                        notes=notes,
                        kind="storage",
                        key="storage",
                        extra={"count": float(count)},
                    )
                )
        note_extrapolation(results)
    finally:
        started = time.perf_counter()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(cassettes.parent, ignore_errors=True)
        if results:
            results[-1].notes.append(f"storage removed in {time.perf_counter() - started:.1f} s")
    return results
