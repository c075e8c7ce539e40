"""``apirecorder serve`` under load: streamed chat completions, many clients at once (issue 13).

The load itself is ``benchmarks/serve_load.py`` (bounded in count, loopback only, every answer
checked against the prompt that asked for it); this runs it at the benchmark's sizes.
"""

from __future__ import annotations

from _harness import Measurement
from _scenario import Bench, Sizes
from serve_load import run_load


def run(bench: Bench, sizes: Sizes) -> list[Measurement]:
    quick = sizes.cost_tests < 1_000
    streams, rounds, concurrency = (20, 2, 10) if quick else (100, 5, 100)
    result = run_load(streams, rounds, concurrency)
    return [
        Measurement(
            f"{result.requests:,} streamed chat completions, {concurrency} clients at once",
            "request",
            {"apirecorder serve": result.seconds / result.requests},
            kind="serve",
            key="serve-load",
            extra={
                "requests": float(result.requests),
                "concurrency": float(concurrency),
                "seconds": result.seconds,
                "per_second": result.per_second,
                "peak_rss": float(result.peak_rss_bytes),
                "chunks": float(result.chunks_per_stream),
            },
        )
    ]
