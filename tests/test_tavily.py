"""Web search with the real tavily-python clients, recorded through ``patch_tool``.

Recorded against the local upstream's Tavily route, replayed with the upstream stopped; the
API key never reaches a recording.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tavily  # type: ignore[import-untyped]
from tavily.errors import BadRequestError, UsageLimitExceededError  # type: ignore[import-untyped]

import apirecorder
from tests.upstream import Upstream

API_KEY = "tvly-dev-SECRETKEY0123456789abcdef"
TEST_ID = "tests/test_tavily.py::web_search"
TOOLS = [
    "tavily:TavilyClient.search tavily web_search",
    "tavily:AsyncTavilyClient.search tavily web_search",
]
REFERENCE_NAME = "6d9cbffef9f5654b2a520171ac36175f6886d64f0c6c1eb94c9b4d86d718b606.json"
OFFLINE_URL = "http://127.0.0.1:9"  # nothing listens there: a live call would fail


@dataclass
class Tavily:
    """Record and replay blocks around the real clients, all writing to one folder."""

    folder: Path

    @contextmanager
    def session(self, mode: str) -> Iterator[None]:
        with (
            apirecorder.recording(mode, self.folder, tools=TOOLS),
            apirecorder.test_context(TEST_ID),
        ):
            yield

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("*.json"))


@pytest.fixture
def tav(tmp_path: Path) -> Tavily:
    return Tavily(tmp_path)


def assert_no_key_on_disk(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path


def test_sync_search_records_then_replays_offline(tav: Tavily, upstream: Upstream) -> None:
    with tav.session("record"):
        client = tavily.TavilyClient(api_key=API_KEY, api_base_url=upstream.url)
        live = client.search("saturn rings", max_results=2, include_answer=True)
    assert [r.headers["authorization"] for r in upstream.requests] == [f"Bearer {API_KEY}"]
    upstream.stop()

    with tav.session("replay"):
        client = tavily.TavilyClient(api_key="tvly-other", api_base_url=OFFLINE_URL)
        replayed = client.search(query="saturn rings", include_answer=True, max_results=2)
    assert replayed == live
    assert replayed["answer"] == "An answer about saturn rings."
    assert [r["url"] for r in replayed["results"]] == [
        "https://example.com/saturn-rings/1",
        "https://example.com/saturn-rings/2",
    ]
    assert len(upstream.requests) == 1
    # One tool recording per search: the HTTP layer below did not record the call again.
    [path] = tav.files()
    request = json.loads(path.read_text())["request"]
    assert request == {
        "test_id": TEST_ID,
        "provider": "tavily",
        "tool_name": "web_search",
        "kwargs": {"query": "saturn rings", "max_results": 2, "include_answer": True},
    }
    assert_no_key_on_disk(tav.folder)


def test_async_search_records_then_replays_offline(tav: Tavily, upstream: Upstream) -> None:
    async def search(base_url: str) -> dict[str, Any]:
        client = tavily.AsyncTavilyClient(api_key=API_KEY, api_base_url=base_url)
        result: dict[str, Any] = await client.search("jupiter moons", max_results=3)
        return result

    with tav.session("record"):
        live = asyncio.run(search(upstream.url))
    upstream.stop()
    with tav.session("replay"):
        replayed = asyncio.run(search(OFFLINE_URL))
    assert replayed == live and len(replayed["results"]) == 3
    assert len(upstream.requests) == 1 and len(tav.files()) == 1
    assert_no_key_on_disk(tav.folder)


def test_sync_and_async_clients_share_a_recording(tav: Tavily, upstream: Upstream) -> None:
    with tav.session("record"):
        live = tavily.TavilyClient(api_key=API_KEY, api_base_url=upstream.url).search("io")
    upstream.stop()
    with tav.session("replay"):
        client = tavily.AsyncTavilyClient(api_key=API_KEY, api_base_url=OFFLINE_URL)
        assert asyncio.run(client.search("io")) == live


def test_the_reference_recording_name_is_reproduced(tav: Tavily, upstream: Upstream) -> None:
    with tav.session("record"):
        tavily.TavilyClient(api_key=API_KEY, api_base_url=upstream.url).search("test query 0")
    assert [p.name for p in tav.files()] == [REFERENCE_NAME]


@pytest.mark.parametrize(
    ("query", "error_type", "message"),
    [
        ("TRIGGER_400 x", BadRequestError, "Invalid request: the query contains TRIGGER_400."),
        (
            "TRIGGER_429 x",
            UsageLimitExceededError,
            "Your request has been blocked due to excessive requests.",
        ),
    ],
)
def test_errors_replay_as_tavily_errors(
    tav: Tavily, upstream: Upstream, query: str, error_type: type[Exception], message: str
) -> None:
    with tav.session("record"), pytest.raises(error_type, match=message):
        tavily.TavilyClient(api_key=API_KEY, api_base_url=upstream.url).search(query)
    upstream.stop()
    with tav.session("replay"), pytest.raises(error_type) as replayed:
        tavily.TavilyClient(api_key=API_KEY, api_base_url=OFFLINE_URL).search(query)
    assert type(replayed.value) is error_type and str(replayed.value) == message
    assert_no_key_on_disk(tav.folder)


def test_replay_miss_names_the_tool_call(tav: Tavily) -> None:
    with tav.session("replay"), pytest.raises(apirecorder.RecordingNotFoundError) as miss:
        tavily.TavilyClient(api_key=API_KEY, api_base_url=OFFLINE_URL).search("never recorded")
    assert "tavily.web_search" in str(miss.value)
