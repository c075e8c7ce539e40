"""Replay of embeddings responses with many floats."""

from __future__ import annotations

from _harness import Measurement
from _scenario import Bench, BenchTest, Sizes, compare_replay, embedding_call


def run(bench: Bench, sizes: Sizes) -> list[Measurement]:
    tests = [
        BenchTest(
            f"test_embeddings_{t}",
            [
                embedding_call(t * sizes.embedding_calls + c, sizes.embedding_dimensions)
                for c in range(sizes.embedding_calls)
            ],
        )
        for t in range(sizes.embedding_tests)
    ]
    total = sizes.embedding_tests * sizes.embedding_calls
    measurement = compare_replay(
        bench,
        "embeddings",
        f"{total} embeddings of {sizes.embedding_dimensions:,} floats "
        f"over {sizes.embedding_tests} tests",
        tests,
        rounds=sizes.rounds,
        unit="call",
        units=total,
    )
    measurement.target = 10.0
    return [measurement]
