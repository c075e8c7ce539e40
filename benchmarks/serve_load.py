"""A load test of ``apirecorder serve`` on loopback: requests per second and peak memory.

Records ``--streams`` distinct streamed chat completions through the server from the local
upstream, then replays them with the upstream stopped, ``--concurrency`` clients at a time,
``--rounds`` times over. Every answer is checked against the prompt that asked for it (no
mixed-up responses). Bounded in count; it stops by itself. Run from the repository root:

    .venv/bin/python benchmarks/serve_load.py            # 100 streams x 10 rounds, 100 at once
    .venv/bin/python benchmarks/serve_load.py --quick
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from apirecorder._cli.serve import serve_process  # noqa: E402
from upstream import Upstream  # noqa: E402

TEST_ID = "benchmarks/serve_load.py::load"


@dataclass
class LoadResult:
    requests: int
    concurrency: int
    seconds: float
    peak_rss_bytes: int
    chunks_per_stream: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _ask(client: httpx.Client, url: str, prompt: str) -> str:
    body = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": prompt}]}
    text: list[str] = []
    headers = {"X-Apirecorder-Test-Id": TEST_ID, "Authorization": "Bearer sk-load"}
    with client.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                choices = json.loads(line[6:]).get("choices") or [{}]
                text.append(choices[0].get("delta", {}).get("content") or "")
    return "".join(text)


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def run_load(streams: int, rounds: int, concurrency: int) -> LoadResult:
    prompts = [f"load test stream {n} with a few more words" for n in range(streams)]
    expected = [f"Echo: {p}" for p in prompts]
    with tempfile.TemporaryDirectory() as folder:
        with Upstream(volatile=False) as upstream:
            where = f"openai={upstream.url}"
            with serve_process("--mode", "record", "--dir", folder, "--upstream", where) as url:
                with httpx.Client(timeout=60) as client, ThreadPoolExecutor(concurrency) as pool:
                    assert list(pool.map(lambda p: _ask(client, url, p), prompts)) == expected
        with serve_process("--dir", folder) as url:
            limits = httpx.Limits(max_connections=concurrency)
            with httpx.Client(timeout=60, limits=limits) as client:
                with ThreadPoolExecutor(concurrency) as pool:
                    started = time.perf_counter()
                    for _ in range(rounds):
                        got = list(pool.map(lambda p: _ask(client, url, p), prompts))
                        if got != expected:
                            raise AssertionError("a replayed stream answered another request")
                    seconds = time.perf_counter() - started
            peak = _peak_rss(url.pid)
    return LoadResult(streams * rounds, concurrency, seconds, peak, len(expected[0].split()))


def table(result: LoadResult) -> list[str]:
    return [
        "| requests | concurrent clients | chunks per stream | time | requests/s "
        "| server peak RSS |",
        "|---|---|---|---|---|---|",
        f"| {result.requests:,} streamed chat completions | {result.concurrency} "
        f"| {result.chunks_per_stream} | {result.seconds:.2f} s | **{result.per_second:,.0f}** "
        f"| {result.peak_rss_bytes / 2**20:.1f} MiB |",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args(argv)
    if args.quick:
        args.streams, args.rounds, args.concurrency = 20, 2, 10
    result = run_load(args.streams, args.rounds, args.concurrency)
    print("\n".join(table(result)))
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "serve-load"
    sys.exit(main())
