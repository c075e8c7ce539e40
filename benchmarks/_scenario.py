"""The shared set-up: a local upstream, one OpenAI client, and the same calls for both tools.

A workload is a list of :class:`BenchTest` (a test id and the calls it makes). It is recorded
once by each tool against the local upstream, then replayed with the upstream stopped:
apirecorder the way its pytest plugin runs a test (one ``recording()`` block and one
``test_context()`` per test), VCR.py the way pytest-recording does (one
``VCR().use_cassette()`` per test, one cassette file per test).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import vcr
from _harness import APIRECORDER, FLOOR, SDK_BUILD, VCRPY, Measurement, time_rounds
from openai._models import construct_type
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

import apirecorder
from apirecorder._recording import interceptors_kept
from apirecorder._storage import _loads as parse_json  # the parser replay uses

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from fidelity import strict_difference  # noqa: E402

from upstream import Upstream  # noqa: E402  (tests/upstream, reused as is)

TEST_FILE = "tests/test_bench.py"

#: The SDK class each API returns, for the floor (the SDK builds them with construct_type).
FLOOR_TYPES: dict[str, type[Any]] = {
    "chat": ChatCompletion,
    "stream": ChatCompletionChunk,
    "embeddings": CreateEmbeddingResponse,
}


@dataclass(frozen=True)
class CallSpec:
    """One SDK call: which API and its keyword arguments."""

    api: str  # "chat" or "embeddings"
    kwargs: dict[str, Any]

    @property
    def streams(self) -> bool:
        return bool(self.kwargs.get("stream"))

    def run(self, client: openai.OpenAI) -> Any:
        """Make the call; a stream is read to its end and returned as its list of chunks."""
        if self.api == "embeddings":
            return client.embeddings.create(**self.kwargs)
        result = client.chat.completions.create(**self.kwargs)
        if self.streams:
            return list(result)
        return result

    def drain(self, client: openai.OpenAI) -> int:
        """Make the call and read a stream without keeping its chunks; returns the count."""
        result = client.chat.completions.create(**self.kwargs)
        count = 0
        for _chunk in result:
            count += 1
        return count


@dataclass
class BenchTest:
    """One simulated test: its pytest node id and the calls it makes, in order."""

    name: str
    calls: list[CallSpec]
    #: Filled while recording with apirecorder: the file each call wrote.
    files: list[Path] = field(default_factory=list)
    #: Filled while recording: what the live call returned (to check replays against).
    live: list[Any] = field(default_factory=list)

    @property
    def test_id(self) -> str:
        return f"{TEST_FILE}::{self.name}"

    def cassette(self, folder: Path) -> Path:
        # pytest-recording's default: cassettes/<test module>/<test name>.yaml
        return folder / "test_bench" / f"{self.name}.yaml"


def chat_call(prompt: str, *, stream: bool = False) -> CallSpec:
    kwargs: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": prompt},
        ],
        "temperature": 0.0,
    }
    if stream:
        kwargs["stream"] = True
    return CallSpec("chat", kwargs)


def stream_call(index: int, chunks: int) -> CallSpec:
    """A streamed chat completion of exactly ``chunks`` chunks from the local upstream.

    The upstream answers "Echo: <prompt>" one word per chunk, plus a role chunk and a
    final chunk: a prompt of ``chunks - 3`` words gives ``chunks`` chunks.
    """
    words = [f"w{index}_{n}" for n in range(max(1, chunks - 3))]
    return chat_call(" ".join(words), stream=True)


def embedding_call(index: int, dimensions: int) -> CallSpec:
    # encoding_format="float": the SDK otherwise asks for base64 on the wire, and the
    # comparison is about replaying responses of that many floats.
    return CallSpec(
        "embeddings",
        {
            "model": "text-embedding-3-small",
            "input": f"benchmark sentence number {index}",
            "dimensions": dimensions,
            "encoding_format": "float",
        },
    )


def comparable(value: Any) -> Any:
    """A response as JSON without the fields apirecorder normalizes when writing (DESIGN 6)."""
    if isinstance(value, list):
        return [comparable(item) for item in value]
    data = value.model_dump(mode="json")
    if isinstance(data, dict):
        data.pop("id", None)
        data.pop("created", None)
    return data


class Bench:
    """A local upstream on 127.0.0.1, one OpenAI client, and where each tool keeps its files."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.upstream = Upstream(volatile=False).start()
        self.client = openai.OpenAI(
            base_url=f"{self.upstream.url}/v1", api_key="sk-bench", max_retries=0
        )
        # vcr.VCR() with no options is what pytest-recording builds when a project sets no
        # vcr_config: YAML cassettes, matching on method, scheme, host, port, path, query.
        self.vcr = vcr.VCR()

    def folders(self, label: str) -> tuple[Path, Path]:
        """(apirecorder root, VCR.py cassette folder) of one workload."""
        return self.workdir / label / "apirecorder", self.workdir / label / "cassettes"

    def start_upstream(self) -> None:
        self.upstream.start()

    def stop_upstream(self) -> None:
        self.upstream.stop()

    def close(self) -> None:
        self.upstream.stop()
        self.client.close()

    # -- recording -------------------------------------------------------------------
    def record_apirecorder(self, tests: list[BenchTest], root: Path) -> None:
        """Record every test with apirecorder (co-located layout under ``root``)."""
        with interceptors_kept():
            self._record_apirecorder(tests, root)

    def _record_apirecorder(self, tests: list[BenchTest], root: Path) -> None:
        for test in tests:
            with (
                apirecorder.recording(mode="record", root=root) as session,
                apirecorder.test_context(test.test_id),
            ):
                test.files.clear()
                test.live.clear()
                for call in test.calls:
                    before = set(session.storage.used)
                    test.live.append(call.run(self.client))
                    (written,) = set(session.storage.used) - before
                    test.files.append(written)

    def record_vcr(self, tests: list[BenchTest], folder: Path, **options: Any) -> None:
        """Record every test with VCR.py, one cassette per test."""
        for test in tests:
            with self.vcr.use_cassette(str(test.cassette(folder)), record_mode="all", **options):
                for call in test.calls:
                    call.run(self.client)

    # -- replaying -------------------------------------------------------------------
    def replay_apirecorder(self, tests: list[BenchTest], root: Path) -> list[Any]:
        """Replay every test as the pytest plugin would: a recording block per test, the
        interceptors installed once for the whole run."""
        results: list[Any] = []
        with interceptors_kept():
            for test in tests:
                with (
                    apirecorder.recording(mode="replay", root=root),
                    apirecorder.test_context(test.test_id),
                ):
                    for call in test.calls:
                        results.append(call.run(self.client))
        return results

    def replay_vcr(self, tests: list[BenchTest], folder: Path, **options: Any) -> list[Any]:
        """Replay every test as pytest-recording would: a cassette per test."""
        results: list[Any] = []
        for test in tests:
            with self.vcr.use_cassette(str(test.cassette(folder)), record_mode="none", **options):
                for call in test.calls:
                    results.append(call.run(self.client))
        return results

    def check_replays(self, tests: list[BenchTest], root: Path, cassettes: Path) -> None:
        """Fail loudly unless both tools replay what the live calls returned."""
        live = [result for test in tests for result in test.live]
        expected = comparable(live)
        for tool, got in (
            ("apirecorder", self.replay_apirecorder(tests, root)),
            ("VCR.py", self.replay_vcr(tests, cassettes)),
        ):
            if comparable(got) != expected:
                raise AssertionError(f"{tool} replayed something else than the live calls")
        # apirecorder's fidelity promise: the replayed objects are the recorded ones.
        for test in tests:
            for call, path in zip(test.calls, test.files, strict=True):
                recorded = sdk_objects(path, call)
                with (
                    apirecorder.recording(mode="replay", root=root),
                    apirecorder.test_context(test.test_id),
                ):
                    replayed = call.run(self.client)
                difference = strict_difference(recorded, replayed)
                if difference is not None:
                    raise AssertionError(
                        f"apirecorder replay of {path} differs from the SDK's objects: {difference}"
                    )


def floor_objects(path: Path, call: CallSpec) -> Any:
    """The floor of one replay: read the file, parse it with json, validate the SDK objects.

    The parser is the one apirecorder uses (pydantic-core's when installed, else json), and
    pydantic-core's ``model_validate`` is the fastest way to build the SDK's own classes
    from that data; replay cannot do less work than this.
    """
    data = parse_json(path.read_bytes())
    body = data["response"]["body"]
    if call.streams:
        validate = FLOOR_TYPES["stream"].model_validate
        return [validate(chunk["__data__"]) for chunk in body]
    return FLOOR_TYPES[call.api].model_validate(body["__data__"])


def sdk_objects(path: Path, call: CallSpec) -> Any:
    """Read, parse and build the objects the SDK's own way (``construct_type``, unvalidated).

    This is how the SDK turns wire JSON into objects (what VCR.py pays on every replay),
    and the reference a replayed object must be identical to.
    """
    data = parse_json(path.read_bytes())
    body = data["response"]["body"]
    if call.streams:
        cls = FLOOR_TYPES["stream"]
        return [construct_type(type_=cls, value=chunk["__data__"]) for chunk in body]
    return construct_type(type_=FLOOR_TYPES[call.api], value=body["__data__"])


def floor(tests: list[BenchTest]) -> list[Any]:
    """The floor of a whole workload: every recording file read, parsed and built."""
    return [
        floor_objects(path, call)
        for test in tests
        for call, path in zip(test.calls, test.files, strict=True)
    ]


def sdk_build(tests: list[BenchTest]) -> list[Any]:
    """Every recording file read, parsed and built with the SDK's ``construct_type``."""
    return [
        sdk_objects(path, call)
        for test in tests
        for call, path in zip(test.calls, test.files, strict=True)
    ]


@contextmanager
def offline(bench: Bench) -> Iterator[None]:
    """Stop the upstream for the block, so every replay provably reads from disk."""
    bench.stop_upstream()
    try:
        yield
    finally:
        bench.start_upstream()


@dataclass(frozen=True)
class Sizes:
    """How much work each workload does; ``--quick`` shrinks everything."""

    rounds: int = 5
    chat_tests: int = 100
    chat_calls: int = 10
    big_stream_chunks: int = 1000
    small_stream_tests: int = 10
    small_stream_calls: int = 10
    small_stream_chunks: int = 50
    embedding_tests: int = 10
    embedding_calls: int = 10
    embedding_dimensions: int = 1536
    storage_counts: tuple[int, ...] = (10, 1_000, 100_000)
    cassette_counts: tuple[int, ...] = (10, 1_000, 10_000)
    storage_calls: int = 10
    record_tests: int = 10
    record_calls: int = 10
    #: Trivial tests in the generated suite of the cost workload (issue 16).
    cost_tests: int = 1_000


QUICK = Sizes(
    rounds=1,
    chat_tests=4,
    chat_calls=3,
    big_stream_chunks=100,
    small_stream_tests=2,
    small_stream_calls=2,
    small_stream_chunks=20,
    embedding_tests=2,
    embedding_calls=2,
    embedding_dimensions=256,
    storage_counts=(10, 100),
    cassette_counts=(10, 50),
    storage_calls=3,
    record_tests=2,
    record_calls=3,
    cost_tests=100,
)


def compare_replay(
    bench: Bench,
    label: str,
    workload: str,
    tests: list[BenchTest],
    *,
    rounds: int,
    unit: str,
    units: int,
) -> Measurement:
    """Record ``tests`` with both tools, check both replays, then time replay and floors."""
    root, cassettes = bench.folders(label)
    bench.record_apirecorder(tests, root)
    bench.record_vcr(tests, cassettes)
    with offline(bench):
        bench.check_replays(tests, root, cassettes)
        medians, samples = time_rounds(
            {
                APIRECORDER: lambda: bench.replay_apirecorder(tests, root),
                VCRPY: lambda: bench.replay_vcr(tests, cassettes),
                FLOOR: lambda: floor(tests),
                SDK_BUILD: lambda: sdk_build(tests),
            },
            rounds=rounds,
            units=units,
        )
    return Measurement(workload, unit, medians, samples, key=label)
