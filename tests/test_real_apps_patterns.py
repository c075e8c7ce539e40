"""What real applications do with repeated calls: polling, list-create-list, a tool asked twice.

Each scenario runs once live (recording) against the local upstream and once in replay with
the upstream stopped and the network blocked; the replay must see what the live run saw. The
n-th identical call of a test replays the n-th recorded answer (``<hash>.json``, then
``<hash>-2.json``, ``<hash>-3.json`` ...), and past the last one the last one again.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

import apirecorder
from apirecorder._cli._verifying import verify_recordings
from apirecorder._ledger import RECORDING_NAME
from apirecorder._storage import HASH_NAME, load_recording, name_ordinal
from tests.upstream import Upstream

pytest_plugins = ["pytester"]

TEST_ID = "tests/test_real_apps_patterns.py::scenario"


def record_then_replay(
    tmp_path: Path, upstream: Upstream, scenario: Callable[[str], Any]
) -> tuple[Any, Any]:
    """The scenario's result live (recorded), then replayed offline; the caller compares."""
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = scenario(upstream.url)
    url = upstream.url
    upstream.stop()
    with (
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("replay", tmp_path, block_network=True),
    ):
        replayed = scenario(url)
    return live, replayed


def _openai(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)


def batch_polling(url: str) -> list[str]:
    client = _openai(url)
    batch = client.batches.create(
        input_file_id="file-input", endpoint="/v1/chat/completions", completion_window="24h"
    )
    statuses = [batch.status]
    while batch.status != "completed" and len(statuses) < 10:
        batch = client.batches.retrieve(batch.id)
        statuses.append(batch.status)
    return statuses


def background_polling(url: str) -> list[str]:
    client = _openai(url)
    response = client.responses.create(model="gpt-4o", input="Say hi", background=True)
    statuses = [str(response.status)]
    while response.status not in ("completed", "failed") and len(statuses) < 10:
        response = client.responses.retrieve(response.id)  # through the HTTP layer
        statuses.append(str(response.status))
    return statuses


def list_create_list(url: str) -> dict[str, Any]:
    client = _openai(url)
    before = [f.filename for f in client.files.list()]
    client.files.create(file=("notes.txt", b"remember the milk"), purpose="user_data")
    after = [f.filename for f in client.files.list()]
    return {"before": before, "after": after}


def anthropic_batch_polling(url: str) -> list[str]:
    client = anthropic.Anthropic(base_url=url, api_key="sk-ant-test", max_retries=0)
    params: Any = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
    }
    batch = client.messages.batches.create(requests=[{"custom_id": "one", "params": params}])
    statuses = [batch.processing_status]
    while batch.processing_status != "ended" and len(statuses) < 10:
        batch = client.messages.batches.retrieve(batch.id)
        statuses.append(batch.processing_status)
    return statuses


def test_polling_replays_every_intermediate_status(upstream: Upstream, tmp_path: Path) -> None:
    live, replayed = record_then_replay(tmp_path, upstream, batch_polling)
    assert live == ["validating", "in_progress", "finalizing", "completed"]
    assert replayed == live
    names = sorted(p.name for p in tmp_path.glob("*.json"))
    # The create, then three polls of one request: <hash>.json, <hash>-2.json, <hash>-3.json.
    assert sorted(name_ordinal(Path(n)) for n in names) == [1, 1, 2, 3]
    assert all(HASH_NAME.fullmatch(n) and RECORDING_NAME.fullmatch(n) for n in names)
    # verify takes <hash>-<n>.json as valid: the hash of its request, its ordinal kept.
    files = [load_recording(path) for path in sorted(tmp_path.glob("*.json"))]
    assert verify_recordings(files).problems == []


def test_anthropic_message_batch_polling(upstream: Upstream, tmp_path: Path) -> None:
    live, replayed = record_then_replay(tmp_path, upstream, anthropic_batch_polling)
    assert live[-1] == "ended" and len(live) >= 3
    assert replayed == live


def test_background_responses_polling(upstream: Upstream, tmp_path: Path) -> None:
    live, replayed = record_then_replay(tmp_path, upstream, background_polling)
    assert live == ["queued", "in_progress", "completed"]
    assert replayed == live


def test_list_create_list_replays_before_and_after(upstream: Upstream, tmp_path: Path) -> None:
    live, replayed = record_then_replay(tmp_path, upstream, list_create_list)
    assert live["before"] == [] and live["after"] == ["notes.txt"]
    assert replayed == live


ticks = itertools.count()


@apirecorder.tool("clock")
def tick(unit: str) -> int:
    return next(ticks)


def test_a_tool_called_twice_with_the_same_arguments(tmp_path: Path) -> None:
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = [tick("s"), tick("s"), tick("s")]
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        assert [tick("s"), tick("s"), tick("s")] == live
    assert len(set(live)) == 3


steps: list[str] = []


@apirecorder.tool("jobs")
def job_status(job: str) -> str:
    return steps.pop(0)


def test_rerecording_repeated_calls_is_byte_identical(tmp_path: Path) -> None:
    # A job that walks the same steps every run (the upstream's batch ids are random).
    def record() -> dict[str, bytes]:
        steps[:] = ["queued", "running", "running", "done"]
        with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
            assert [job_status("j1") for _ in range(4)] == ["queued", "running", "running", "done"]
        return {p.name: p.read_bytes() for p in sorted(tmp_path.glob("*.json"))}

    first = record()
    assert sorted(name_ordinal(Path(name)) for name in first) == [1, 2, 3, 4]
    assert record() == first


def _polls(url: str, times: int) -> list[str]:
    client = _openai(url)
    batch = client.batches.create(
        input_file_id="f", endpoint="/v1/chat/completions", completion_window="24h"
    )
    return [client.batches.retrieve(batch.id).status for _ in range(times)]


def test_more_identical_calls_than_recorded_repeat_the_last(
    upstream: Upstream, tmp_path: Path
) -> None:
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        recorded = _polls(upstream.url, 2)
    url = upstream.url
    upstream.stop()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        replayed = _polls(url, 4)
    assert recorded == ["in_progress", "finalizing"]
    assert replayed == ["in_progress", "finalizing", "finalizing", "finalizing"]


def test_record_if_missing_records_only_the_missing_nth_call(
    upstream: Upstream, tmp_path: Path
) -> None:
    # A list asked for again and again (no id in its URL: an id a replay handed out names
    # nothing the provider knows, so a live call after it could not use it).
    def lists(times: int) -> list[int]:
        client = _openai(upstream.url)
        return [len(list(client.files.list())) for _ in range(times)]

    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        lists(2)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    upstream.reset()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record-if-missing", tmp_path):
        lists(3)
    after = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    # The first two replayed; only the third went live.
    assert len(upstream.requests_to("/v1/files")) == 1
    (added,) = set(after) - set(before)
    assert name_ordinal(Path(added)) == 3
    assert {name: after[name] for name in before} == before


# -- where the server lives ------------------------------------------------------------------


def test_http_recordings_match_on_another_port_with_match_origin_off(
    upstream: Upstream, tmp_path: Path
) -> None:
    import httpx

    with (
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("record", tmp_path, match_origin=False),
    ):
        live = httpx.get(f"{upstream.url}/misc/json?b=2&a=1").json()
    other = Upstream().start()  # a free port of its own, stopped at once: nothing listens
    other_url = other.url.replace("127.0.0.1", "localhost")
    assert other.port != upstream.port
    other.stop()
    upstream.stop()
    with (
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("replay", tmp_path, match_origin=False, block_network=True),
    ):
        assert httpx.get(f"{other_url}/misc/json?a=1&b=2").json() == live
    with (
        pytest.raises(apirecorder.RecordingNotFoundError),
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("replay", tmp_path),
    ):
        httpx.get(f"{other_url}/misc/json?a=1&b=2")


def test_match_origin_from_the_environment(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import requests

    monkeypatch.setenv("APIRECORDER_MATCH_ORIGIN", "0")
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = requests.get(f"{upstream.url}/misc/json", timeout=5).json()
    url = upstream.url.replace("127.0.0.1", "localhost")
    upstream.stop()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        assert requests.get(f"{url}/misc/json", timeout=5).json() == live


def test_query_order_never_matters(upstream: Upstream, tmp_path: Path) -> None:
    import requests

    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = requests.get(f"{upstream.url}/misc/json?b=2&a=1", timeout=5).json()
    url = upstream.url
    upstream.stop()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        assert requests.get(f"{url}/misc/json?a=1&b=2", timeout=5).json() == live


def test_a_file_named_from_the_unsorted_url_still_replays(
    upstream: Upstream, tmp_path: Path
) -> None:
    from apirecorder._hashing import http_request_hash

    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = requests_get(f"{upstream.url}/misc/json?b=2&a=1")
    (path,) = tmp_path.glob("*.json")
    request = json.loads(path.read_text())["request"]
    # The reference hashes the URL as sent: rename the file to its name.
    reference = http_request_hash(
        request["url"], "GET", request["payload"], TEST_ID, sort_query=False
    )
    assert f"{reference}.json" != path.name
    path.rename(tmp_path / f"{reference}.json")
    url = upstream.url
    upstream.stop()
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        assert requests_get(f"{url}/misc/json?b=2&a=1") == live
    assert verify_recordings([load_recording(tmp_path / f"{reference}.json")]).problems == []


def requests_get(url: str) -> Any:
    import requests

    return requests.get(url, timeout=5).json()


def test_match_origin_precedence() -> None:
    from apirecorder._settings import resolve_match_origin

    assert resolve_match_origin(environ={}) is True
    assert resolve_match_origin(environ={"APIRECORDER_MATCH_ORIGIN": "0"}) is False
    assert resolve_match_origin(ini="false", environ={"APIRECORDER_MATCH_ORIGIN": "1"}) is False
    assert resolve_match_origin(marker=True, ini="false", environ={}) is True


def test_match_origin_from_the_ini_file_and_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\napirecorder_match_origin = false\n")
    pytester.makepyfile(
        test_origin="""
        import pytest
        from apirecorder._recording import engine_of

        def test_ini(apirecorder):
            assert engine_of(apirecorder).match_origin is False

        @pytest.mark.apirecorder(match_origin=True)
        def test_marker(apirecorder):
            assert engine_of(apirecorder).match_origin is True
        """
    )
    result = pytester.runpytest("-p", "no:hypothesispytest", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_hashed_url_sorts_the_query_and_can_drop_the_origin() -> None:
    from apirecorder._hashing import hashed_url

    assert hashed_url("http://h:1/p?b=2&a=1&b=1") == "http://h:1/p?a=1&b=2&b=1"
    assert hashed_url("http://h:1/p?b=2&a=1", sort_query=False) == "http://h:1/p?b=2&a=1"
    assert hashed_url("https://other:2/p?b=%20&a", match_origin=False) == "/p?a&b=%20"
    assert hashed_url("http://h/p") == "http://h/p"
