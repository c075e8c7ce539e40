"""Replay of non-streaming chat completions spread over many tests (10 calls per test)."""

from __future__ import annotations

import importlib
import importlib.util
import statistics
import time
from contextlib import ExitStack

from _harness import APIRECORDER, VCRPY, Measurement, human_time, time_rounds
from _scenario import Bench, BenchTest, Sizes, chat_call, compare_replay, offline

import apirecorder
from apirecorder._interceptors import INTERCEPTORS
from apirecorder._recording import interceptors_kept


def make_tests(count: int, calls: int) -> list[BenchTest]:
    return [
        BenchTest(
            f"test_chat_{t}",
            [chat_call(f"Test {t}, question {c}: name a colour.") for c in range(calls)],
        )
        for t in range(count)
    ]


def run(bench: Bench, sizes: Sizes) -> list[Measurement]:
    tests = make_tests(sizes.chat_tests, sizes.chat_calls)
    total = sizes.chat_tests * sizes.chat_calls
    name = f"{total:,} chat completions over {sizes.chat_tests} tests"
    measurement = compare_replay(
        bench, "chat", name, tests, rounds=sizes.rounds, unit="call", units=total
    )
    measurement.target = 10.0
    measurement.extra.update(per_test_setup(bench, tests, sizes))
    measurement.notes.append(
        "per-test set-up alone (no call): apirecorder "
        f"{human_time(measurement.extra[APIRECORDER + ' setup'])} (entering and leaving "
        "`recording()`; the interceptors are installed once per run), VCR.py "
        f"{human_time(measurement.extra[VCRPY + ' setup'])} (loading and parsing the "
        "cassette, patching its transports); apirecorder per call with that set-up left "
        f"out (all tests in one recording block): "
        f"{human_time(measurement.extra[APIRECORDER + ' calls only'])}"
    )
    installs = {
        k[len("install ") :]: v for k, v in measurement.extra.items() if k.startswith("install ")
    }
    measurement.notes.append(
        "installing and removing each interceptor once (once per run, as the plugin does): "
        + ", ".join(f"{name} {human_time(cost)}" for name, cost in installs.items())
    )
    return [measurement]


def per_test_setup(bench: Bench, tests: list[BenchTest], sizes: Sizes) -> dict[str, float]:
    """What entering and leaving a test costs each tool with no call made, and what a call
    costs apirecorder with the set-up left out (every test inside one recording block)."""
    root, cassettes = bench.folders("chat")
    client = bench.client

    def apirecorder_setup() -> None:
        with interceptors_kept():  # as the pytest plugin: installed once per run
            for test in tests:
                with (
                    apirecorder.recording(mode="replay", root=root),
                    apirecorder.test_context(test.test_id),
                ):
                    pass

    def vcr_setup() -> None:
        for test in tests:
            with bench.vcr.use_cassette(str(test.cassette(cassettes)), record_mode="none"):
                pass

    def calls_only() -> None:
        with apirecorder.recording(mode="replay", root=root):
            for test in tests:
                with apirecorder.test_context(test.test_id):
                    for call in test.calls:
                        call.run(client)

    with offline(bench):
        setup, _ = time_rounds(
            {APIRECORDER: apirecorder_setup, VCRPY: vcr_setup},
            rounds=sizes.rounds,
            units=len(tests),
        )
        steady, _ = time_rounds(
            {APIRECORDER: calls_only},
            rounds=sizes.rounds,
            units=sum(len(test.calls) for test in tests),
        )
    return {
        **{f"{tool} setup": value for tool, value in setup.items()},
        f"{APIRECORDER} calls only": steady[APIRECORDER],
        **{f"install {name}": cost for name, cost in install_costs().items()},
    }


def install_costs(repeats: int = 200) -> dict[str, float]:
    """Median cost of installing and removing each interceptor once (what every test pays)."""
    costs: dict[str, float] = {}
    for module_name, library in INTERCEPTORS:
        if importlib.util.find_spec(library) is None:
            continue
        module = importlib.import_module(f"apirecorder._interceptors.{module_name}")
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            with ExitStack() as stack:
                module.install(stack)
            samples.append(time.perf_counter() - started)
        name = f"{module_name.lstrip('_')} ({library})"
        costs[name] = costs.get(name, 0.0) + statistics.median(samples)
    return costs
