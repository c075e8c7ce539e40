"""Replay of streamed chat completions: one long stream, and many short ones."""

from __future__ import annotations

from _harness import Measurement
from _scenario import Bench, BenchTest, Sizes, compare_replay, stream_call


def run(bench: Bench, sizes: Sizes) -> list[Measurement]:
    big = [BenchTest("test_long_stream", [stream_call(0, sizes.big_stream_chunks)])]
    long_stream = compare_replay(
        bench,
        "stream-long",
        f"1 stream of {sizes.big_stream_chunks:,} chunks",
        big,
        rounds=max(sizes.rounds, 7) if sizes.rounds > 2 else sizes.rounds,
        unit="stream",
        units=1,
    )
    small = [
        BenchTest(
            f"test_short_streams_{t}",
            [
                stream_call(t * sizes.small_stream_calls + c + 1, sizes.small_stream_chunks)
                for c in range(sizes.small_stream_calls)
            ],
        )
        for t in range(sizes.small_stream_tests)
    ]
    count = sizes.small_stream_tests * sizes.small_stream_calls
    short_streams = compare_replay(
        bench,
        "stream-short",
        f"{count} streams of {sizes.small_stream_chunks} chunks "
        f"over {sizes.small_stream_tests} tests",
        small,
        rounds=sizes.rounds,
        unit="stream",
        units=count,
    )
    for measurement in (long_stream, short_streams):
        measurement.target = 5.0
    return [long_stream, short_streams]
