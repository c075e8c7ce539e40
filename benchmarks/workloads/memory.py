"""Peak memory (tracemalloc) of replaying the long stream, read to its end."""

from __future__ import annotations

from _harness import APIRECORDER, FLOOR, SDK_BUILD, VCRPY, Measurement, peak_memory
from _scenario import Bench, BenchTest, Sizes, floor, offline, sdk_build, stream_call

import apirecorder


def run(bench: Bench, sizes: Sizes) -> list[Measurement]:
    test = BenchTest("test_memory_stream", [stream_call(0, sizes.big_stream_chunks)])
    call = test.calls[0]
    root, cassettes = bench.folders("memory")
    bench.record_apirecorder([test], root)
    bench.record_vcr([test], cassettes)
    client = bench.client

    def replay_apirecorder() -> int:
        with (
            apirecorder.recording(mode="replay", root=root),
            apirecorder.test_context(test.test_id),
        ):
            return call.drain(client)

    def replay_vcr() -> int:
        with bench.vcr.use_cassette(str(test.cassette(cassettes)), record_mode="none"):
            return call.drain(client)

    with offline(bench):
        peaks = {
            APIRECORDER: float(peak_memory(replay_apirecorder)),
            VCRPY: float(peak_memory(replay_vcr)),
            FLOOR: float(peak_memory(lambda: floor([test]))),
            SDK_BUILD: float(peak_memory(lambda: sdk_build([test]))),
        }
    size = test.files[0].stat().st_size
    return [
        Measurement(
            f"peak memory replaying 1 stream of {sizes.big_stream_chunks:,} chunks",
            "bytes",
            peaks,
            kind="memory",
            key="memory",
            extra={"file_size": float(size)},
        )
    ]
