"""Properties that hold for every input (hypothesis): hashing, round trips, and the loader.

The fuzz budgets are set so the whole file runs in about ten seconds.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import apirecorder
from apirecorder._exceptions import ApiRecorderError
from apirecorder._hashing import http_request_hash, inference_request_hash, tool_request_hash
from apirecorder._requestjson import request_json, request_json_for_hash
from apirecorder._serialization import from_json
from apirecorder._storage import Storage, load_recording, parse_recording
from tests.upstream import Upstream

ROOT = Path(__file__).resolve().parents[1]

# Every string Python's json module can produce, lone surrogates included.
TEXT = st.text(st.characters(codec=None, categories=None), max_size=20)
KEYS = st.text(max_size=8)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    TEXT,
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(KEYS, children, max_size=5)
    ),
    max_leaves=25,
)
BODIES = st.dictionaries(KEYS, JSON, max_size=6)


def _shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON value with every object's keys in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: _shuffled(item, rng) for key, item in items}
    if isinstance(value, list):
        return [_shuffled(item, rng) for item in value]
    return value


def _all_hashes(body: dict[str, Any], test_id: str | None) -> list[str]:
    return [
        inference_request_hash("POST", "http://h/v1/v1/chat/completions", body, test_id),
        inference_request_hash("POST", "http://h/api/tags", body, test_id),
        http_request_hash("https://h/x?q=1", "post", body, test_id),
        tool_request_hash("tavily", "web_search", body),
    ]


# Strings and numbers the reference's normalization changes, so examples meet both answers
# of the walk's "could the rules change it" test.
NORMALIZED = st.one_of(
    st.sampled_from(
        ["score: 0.87", "0.123456789 m", "<|3f0a9c1e-0b6d-4a8e-9f1b-2c3d4e5f6a7b|>", "x"]
    ),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["stream_options", "extra_body", "project_id"]),
)
RULE_BODIES = st.dictionaries(
    st.one_of(KEYS, st.sampled_from(["extra_body", "stream_options", "api_key"])),
    st.one_of(JSON, NORMALIZED, st.dictionaries(st.sampled_from(["project_id", "k"]), NORMALIZED)),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(body=st.one_of(BODIES, RULE_BODIES), test_id=st.one_of(st.none(), TEXT))
def test_the_one_walk_shortcut_never_changes_a_hash(
    body: dict[str, Any], test_id: str | None
) -> None:
    # The request walk says when the hash rules cannot change a body, and the hash then skips
    # its own normalization: the hash must be the one the full normalization gives.
    walked, changes = request_json_for_hash(body, None)
    assert walked == request_json(body, None)
    for url in ("http://h/v1/v1/chat/completions", "https://bedrock.h/model/x/converse"):
        full = inference_request_hash("POST", url, walked, test_id)
        assert inference_request_hash("POST", url, walked, test_id, normalized=not changes) == full
    http = http_request_hash("https://h/x?q=1", "post", walked, test_id)
    assert (
        http_request_hash("https://h/x?q=1", "post", walked, test_id, normalized=not changes)
        == http
    )


@settings(max_examples=150, deadline=None)
@given(body=BODIES, test_id=st.one_of(st.none(), TEXT), seed=st.integers())
def test_the_hash_ignores_key_order(body: dict[str, Any], test_id: str | None, seed: int) -> None:
    assert _all_hashes(_shuffled(body, random.Random(seed)), test_id) == _all_hashes(body, test_id)


HASH_IN_CHILD = """
import json, sys
from apirecorder._hashing import http_request_hash, inference_request_hash, tool_request_hash
from apirecorder._requestjson import request_json, request_json_for_hash
for case in json.load(sys.stdin):
    body, test_id = case["body"], case["test_id"]
    print(json.dumps([
        inference_request_hash("POST", "http://h/v1/v1/chat/completions", body, test_id),
        inference_request_hash("POST", "http://h/api/tags", body, test_id),
        http_request_hash("https://h/x?q=1", "post", body, test_id),
        tool_request_hash("tavily", "web_search", body),
    ]))
"""


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.data_too_large])
@given(
    cases=st.lists(
        st.fixed_dictionaries({"body": BODIES, "test_id": st.one_of(st.none(), TEXT)}),
        min_size=3,
        max_size=10,
    ),
    hash_seed=st.integers(min_value=1, max_value=2**32 - 1),
)
def test_the_hash_is_the_same_in_another_process(
    cases: list[dict[str, Any]], hash_seed: int
) -> None:
    # Another interpreter with another string-hash seed computes the same digests.
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
    done = subprocess.run(
        [sys.executable, "-c", HASH_IN_CHILD],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    theirs = [json.loads(line) for line in done.stdout.splitlines()]
    assert theirs == [_all_hashes(c["body"], c["test_id"]) for c in cases]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=JSON, request=BODIES, test_id=st.one_of(st.none(), TEXT))
def test_save_then_load_round_trips_any_json_value(
    value: Any, request: dict[str, Any], test_id: str | None, tmp_path: Path
) -> None:
    storage = Storage(tmp_path, flat=True)
    path = storage.path_for("a" * 64 + ".json", test_id)
    data = {"test_id": test_id, "request": request, "response": {"body": value}}
    storage.write(path, data)
    storage.flush()  # the rename into place happens off the call's path
    assert load_recording(path).data == data


# -- the loader never raises anything but ApiRecorderError ---------------------------

SOURCE = Path("fuzz.json")


def _raised(action: Callable[[], object]) -> ApiRecorderError | None:
    """The ApiRecorderError ``action`` raises, if any; any other exception fails the test."""
    try:
        action()
    except ApiRecorderError as exc:
        return exc
    return None


@settings(max_examples=3000, deadline=None)
@given(raw=st.binary(max_size=200))
def test_the_loader_on_arbitrary_bytes(raw: bytes) -> None:
    error = _raised(lambda: parse_recording(raw, SOURCE))
    assert error is None or str(error).startswith("fuzz.json: ")


TYPES = st.sampled_from(
    [
        "openai.types.chat.chat_completion.ChatCompletion",
        "openai.types.chat.chat_completion_chunk.ChatCompletionChunk",
        "openai.types.model.Model",
        "ollama._types.ChatResponse",
        "mcp.types.CallToolResult",
        "openai.types.nope.Missing",
        "openai.types",
        "openai.types..x",
        "os.system",
        "builtins.eval",
        "",
    ]
)
TYPED: st.SearchStrategy[Any] = st.recursive(
    JSON,
    lambda children: st.one_of(
        st.fixed_dictionaries({"__type__": st.one_of(TYPES, JSON), "__data__": children}),
        st.lists(children, max_size=4),
        st.dictionaries(KEYS, children, max_size=4),
    ),
    max_leaves=15,
)
RECORDING_LIKE = st.fixed_dictionaries(
    {"request": st.one_of(BODIES, JSON), "response": st.one_of(JSON, st.just({}))},
    optional={
        "format_version": st.one_of(st.just(1), JSON),
        "id_normalization_mapping": st.one_of(st.dictionaries(TEXT, TEXT, max_size=3), JSON),
        "test_id": JSON,
    },
)
RESPONSES = st.fixed_dictionaries(
    {"body": TYPED},
    optional={
        "is_streaming": st.one_of(st.booleans(), JSON),
        "is_exception": st.one_of(st.booleans(), JSON),
        "exception_data": JSON,
    },
)


@settings(max_examples=600, deadline=None)
@given(data=RECORDING_LIKE, response=st.one_of(st.none(), RESPONSES))
def test_the_loader_and_rebuilder_on_recording_shaped_json(
    data: dict[str, Any], response: dict[str, Any] | None
) -> None:
    if response is not None:
        data["response"] = response
    raw = json.dumps(data).encode("utf-8", "surrogatepass")

    def load_and_rebuild() -> None:
        recording = parse_recording(raw, SOURCE)
        from_json(recording.response.get("body"), source=SOURCE)

    error = _raised(load_and_rebuild)
    assert error is None or str(error).startswith("fuzz.json: ")


# -- and through a real client replay -------------------------------------------------

TEST_ID = "tests/test_properties.py::replay"


def _chat(url: str, stream: bool) -> Any:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
    result = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "fuzz"}], stream=stream
    )
    return list(result) if stream else result


@pytest.fixture(scope="module")
def recorded_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A plain and a streaming chat recording, made once against a local upstream."""
    folder = tmp_path_factory.mktemp("fuzz")
    with Upstream() as upstream:
        with apirecorder.test_context(TEST_ID), apirecorder.recording("record", folder):
            _chat(upstream.url, stream=False)
        plain = set(folder.glob("*.json"))
        with apirecorder.test_context(TEST_ID), apirecorder.recording("record", folder):
            _chat(upstream.url, stream=True)
        url = upstream.url
    (streaming,) = set(folder.glob("*.json")) - plain
    (single,) = plain
    return single, streaming, url


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stream=st.booleans(), choice=st.randoms(use_true_random=False), replacement=TYPED)
def test_a_mutated_recording_replays_or_fails_with_a_named_error(
    recorded_pair: tuple[Path, Path, str],
    stream: bool,
    choice: random.Random,
    replacement: Any,
    tmp_path: Path,
) -> None:
    single, streaming, url = recorded_pair
    original = streaming if stream else single
    data = json.loads(original.read_bytes())
    # Replace one subtree of the response (or the response itself) with anything.
    target = choice.choice([p for p in _paths(data) if p[:1] == ("response",)])
    if len(target) == 1:
        data["response"] = replacement
    else:
        parent = data
        for step in target[:-1]:
            parent = parent[step]
        parent[target[-1]] = replacement
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    (folder / original.name).write_bytes(json.dumps(data).encode("utf-8", "surrogatepass"))

    def replay() -> None:
        try:
            with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", folder):
                _chat(url, stream)
        except openai.OpenAIError:
            pass  # a recorded error replayed as the SDK's own class, as designed

    error = _raised(replay)
    assert error is None or original.name in str(error)
