"""The active session is per context: each thread and each asyncio task sees its own block.

A block opened with ``process_wide=True`` (the pytest plugin's, a server's) is what a thread
with no block of its own sees. Threads meet at a barrier so both blocks are open at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import apirecorder
from apirecorder._recorder import active_session
from tests.upstream import Upstream

TEST_ID = "tests/test_session_context.py::t"


def _in_threads(*targets: Callable[[], Any]) -> list[Any]:
    """Run each target in its own thread; their results (or the exceptions they raised)."""
    results: list[Any] = [None] * len(targets)

    def run(index: int, target: Callable[[], Any]) -> None:
        try:
            results[index] = target()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_threads_each_see_their_own_block(upstream: Upstream, tmp_path: Path) -> None:
    url = f"{upstream.url}/misc/json?q=1"
    both_open = threading.Barrier(2)
    recorded, replayed = tmp_path / "recorded", tmp_path / "replayed"

    def recording_thread() -> Any:
        with apirecorder.recording("record", recorded), apirecorder.test_context(TEST_ID):
            both_open.wait()
            session = active_session()
            assert session is not None and session.mode is apirecorder.Mode.RECORD
            return httpx.get(url).json()

    def replaying_thread() -> Any:
        with apirecorder.recording("replay", replayed), apirecorder.test_context(TEST_ID):
            both_open.wait()
            session = active_session()
            assert session is not None and session.mode is apirecorder.Mode.REPLAY
            return httpx.get(url).json()

    body, miss = _in_threads(recording_thread, replaying_thread)
    assert isinstance(body, dict)
    # The replaying thread looked in its own empty folder, not in the recording thread's.
    assert isinstance(miss, apirecorder.RecordingNotFoundError)
    assert miss.searched == (replayed,)
    assert len(list(recorded.glob("*.json"))) == 1
    assert not replayed.exists() or not list(replayed.glob("*.json"))


def test_a_thread_without_a_block_sees_none_unless_one_is_process_wide(tmp_path: Path) -> None:
    with apirecorder.recording("replay", tmp_path):
        assert active_session() is not None
        assert _in_threads(active_session) == [None]
    with apirecorder.recording("replay", tmp_path, process_wide=True) as view:
        assert view.process_wide
        (seen,) = _in_threads(active_session)
        assert seen is not None and seen.storage is view.storage
        # A block of the thread's own takes precedence over the process-wide one.
        with apirecorder.recording("live", tmp_path):
            assert active_session() is None
    assert _in_threads(active_session) == [None]


def test_two_tasks_each_see_their_own_block(upstream: Upstream, tmp_path: Path) -> None:
    url = f"{upstream.url}/misc/json?q=2"
    recorded, replayed = tmp_path / "recorded", tmp_path / "replayed"

    async def task(mode: str, folder: Path, both_open: asyncio.Barrier) -> Any:
        with apirecorder.recording(mode, folder), apirecorder.test_context(TEST_ID):
            await both_open.wait()
            session = active_session()
            assert session is not None and session.mode.value == mode
            async with httpx.AsyncClient() as client:
                return (await client.get(url)).json()

    async def main() -> list[Any]:
        both_open = asyncio.Barrier(2)
        return await asyncio.gather(
            task("record", recorded, both_open),
            task("replay", replayed, both_open),
            return_exceptions=True,
        )

    body, miss = asyncio.run(main())
    assert isinstance(body, dict)
    assert isinstance(miss, apirecorder.RecordingNotFoundError)
    assert miss.searched == (replayed,)
    assert len(list(recorded.glob("*.json"))) == 1


def test_a_miss_carries_endpoint_searched_and_nearest(upstream: Upstream, tmp_path: Path) -> None:
    base = upstream.url
    with apirecorder.recording("record", tmp_path), apirecorder.test_context(TEST_ID):
        httpx.get(f"{base}/misc/json?q=1")
    upstream.stop()
    with (
        apirecorder.recording("replay", tmp_path),
        apirecorder.test_context(TEST_ID),
        pytest.raises(apirecorder.RecordingNotFoundError) as caught,
    ):
        httpx.get(f"{base}/misc/json?q=3")
    miss = caught.value
    assert miss.endpoint == f"GET {base}/misc/json?q=3"
    assert miss.searched == (tmp_path,)
    (written,) = tmp_path.glob("*.json")
    assert miss.nearest == written
    assert miss.test_id == TEST_ID


def test_a_server_block_stopped_from_another_thread_is_gone_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apirecorder.asgi import start_recording_from_environment, stop_recording_from_environment

    monkeypatch.setenv("APIRECORDER_MODE", "replay")
    monkeypatch.setenv("APIRECORDER_DIR", str(tmp_path))
    # Another test in this process may have started (and left) the process's recording.
    stop_recording_from_environment()
    started, stopped = threading.Event(), threading.Event()

    def request_thread() -> tuple[bool, bool]:
        # The first request turns recording on for the whole process, in this thread.
        start_recording_from_environment()
        during = active_session() is not None
        started.set()
        stopped.wait()
        return during, active_session() is not None

    def main_thread() -> tuple[bool, bool]:
        started.wait()
        seen = active_session() is not None  # process-wide: seen without a block here
        stop_recording_from_environment()
        stopped.set()
        return seen, active_session() is not None

    (during, after), (seen, after_main) = _in_threads(request_thread, main_thread)
    assert (during, seen) == (True, True)
    assert (after, after_main) == (False, False)
