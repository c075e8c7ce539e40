"""Misses that surface: through an SDK that retries and wraps transport errors (Anthropic), a
replay miss or a failed write reaches the test as the recorder's own error, at once.

Below a client the error travels as its interrupting twin (``apirecorder._exceptions``): an
``except Exception`` retry loop or wrapper lets it pass, ``except RecordingNotFoundError``
catches it, and ``recording()`` and the pytest plugin hand back the plain error.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import requests

import apirecorder
from apirecorder._storage import RecordingWriteError
from tests.upstream import Upstream

pytest_plugins = ["pytester"]

TEST_ID = "tests/test_misses_surface.py::scenario"
MODEL = "claude-sonnet-4-5"
HI: Any = [{"role": "user", "content": "hi"}]
NOWHERE = "http://127.0.0.1:9"  # nothing listens: a request that got out would fail


def timed(what: str, started: float) -> None:
    # Printed, not asserted (no wall-clock asserts): `pytest -s` shows it.
    print(f"{what} surfaced in {time.perf_counter() - started:.3f} s")


def test_anthropic_miss_fails_at_once_with_the_explanation(
    upstream: Upstream, tmp_path: Path
) -> None:
    client = anthropic.Anthropic(base_url=upstream.url, api_key="sk-ant-test")  # retries on
    started = time.perf_counter()
    with (
        pytest.raises(apirecorder.RecordingNotFoundError) as caught,
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("replay", tmp_path),
    ):
        client.messages.create(model=MODEL, max_tokens=8, messages=HI)
    timed("anthropic replay miss", started)
    assert type(caught.value) is apirecorder.RecordingNotFoundError  # the plain error again
    assert str(caught.value).startswith("No recording for this http call (mode: replay).")
    assert caught.value.endpoint == f"POST {upstream.url}/v1/messages"
    assert upstream.requests == []  # no attempt got out, and none was retried


def test_the_call_itself_can_catch_the_miss(tmp_path: Path) -> None:
    # `except RecordingNotFoundError` around the SDK call catches it; `except Exception`
    # (the SDK's own retry and wrapping) does not.
    client = anthropic.Anthropic(base_url=NOWHERE, api_key="sk-ant-test")
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path) as block:
        with pytest.raises(apirecorder.RecordingNotFoundError) as caught:
            client.messages.create(model=MODEL, max_tokens=8, messages=HI)
        assert not isinstance(caught.value, Exception)
        with pytest.raises(apirecorder.RecordingNotFoundError):
            try:
                client.messages.create(model=MODEL, max_tokens=8, messages=HI)
            except Exception as exc:  # what an application's catch-all does
                raise RuntimeError("the app wrapped it") from exc
        assert len(block.misses) == 2


def test_async_anthropic_miss(tmp_path: Path) -> None:
    async def call() -> None:
        client = anthropic.AsyncAnthropic(base_url=NOWHERE, api_key="sk-ant-test")
        await client.messages.create(model=MODEL, max_tokens=8, messages=HI)

    started = time.perf_counter()
    with (
        pytest.raises(apirecorder.RecordingNotFoundError) as caught,
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("replay", tmp_path),
    ):
        asyncio.run(call())
    timed("async anthropic replay miss", started)
    assert "No recording" in str(caught.value)


def test_streaming_anthropic_misses(tmp_path: Path) -> None:
    def sync_stream() -> None:
        client = anthropic.Anthropic(base_url=NOWHERE, api_key="sk-ant-test")
        with client.messages.stream(model=MODEL, max_tokens=8, messages=HI) as stream:
            for _ in stream:
                pass

    async def async_stream() -> None:
        client = anthropic.AsyncAnthropic(base_url=NOWHERE, api_key="sk-ant-test")
        async with client.messages.stream(model=MODEL, max_tokens=8, messages=HI) as stream:
            async for _ in stream:
                pass

    for run in (sync_stream, lambda: asyncio.run(async_stream())):
        started = time.perf_counter()
        with (
            pytest.raises(apirecorder.RecordingNotFoundError) as caught,
            apirecorder.test_context(TEST_ID),
            apirecorder.recording("replay", tmp_path),
        ):
            run()
        timed("anthropic stream replay miss", started)
        assert '"stream": true' in str(caught.value) or "stream" in str(caught.value)


def test_direct_http_calls_can_catch_the_miss(tmp_path: Path) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: httpx.get(f"{NOWHERE}/x"),
        lambda: requests.get(f"{NOWHERE}/x", timeout=5),
    ]
    with apirecorder.test_context(TEST_ID), apirecorder.recording("replay", tmp_path):
        for call in calls:
            with pytest.raises(apirecorder.RecordingNotFoundError):
                call()


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        yield folder
    finally:
        folder.chmod(0o700)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_failed_write_costs_one_live_call(upstream: Upstream, read_only: Path) -> None:
    client = anthropic.Anthropic(base_url=upstream.url, api_key="sk-ant-test")  # retries on
    with (
        pytest.raises(RecordingWriteError) as caught,
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("record", read_only),
    ):
        client.messages.create(model=MODEL, max_tokens=8, messages=HI)
    assert len(upstream.requests_to("/v1/messages")) == 1
    assert "cannot write the recording" in str(caught.value)


def test_a_failed_write_through_a_bad_folder_costs_one_live_call(
    upstream: Upstream, tmp_path: Path
) -> None:
    # As root a read-only folder is writable; a file where the folder should be is not.
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    client = anthropic.Anthropic(base_url=upstream.url, api_key="sk-ant-test")  # retries on
    with (
        pytest.raises(apirecorder.ApiRecorderError) as caught,
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("record", blocked),
    ):
        client.messages.create(model=MODEL, max_tokens=8, messages=HI)
    assert len(upstream.requests_to("/v1/messages")) == 1
    assert isinstance(caught.value, RecordingWriteError)


def test_code_that_catches_everything_still_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_app=f"""
        import anthropic
        import pytest

        def ask():
            client = anthropic.Anthropic(base_url="{NOWHERE}", api_key="sk-ant-test")
            try:
                return client.messages.create(
                    model="{MODEL}", max_tokens=8, messages=[{{"role": "user", "content": "hi"}}]
                )
            except BaseException:  # swallows even the interrupting twin
                return None

        def wrap():
            client = anthropic.Anthropic(base_url="{NOWHERE}", api_key="sk-ant-test")
            try:
                client.messages.create(
                    model="{MODEL}", max_tokens=8, messages=[{{"role": "user", "content": "hi"}}]
                )
            except BaseException as exc:
                raise RuntimeError("the model is unavailable") from None

        @pytest.mark.apirecorder(mode="replay")
        def test_swallowed():
            assert ask() is None

        @pytest.mark.apirecorder(mode="replay")
        def test_wrapped():
            wrap()

        @pytest.mark.apirecorder(mode="replay")
        def test_caught_as_exception():
            try:
                anthropic.Anthropic(base_url="{NOWHERE}", api_key="sk-ant-test").messages.create(
                    model="{MODEL}", max_tokens=8, messages=[{{"role": "user", "content": "hi"}}]
                )
            except Exception:
                pass

        def test_expected(apirecorder):
            import apirecorder as package

            with pytest.raises(package.RecordingNotFoundError):
                ask_plainly()
            apirecorder.misses.clear()  # this test wants the miss

        def ask_plainly():
            anthropic.Anthropic(base_url="{NOWHERE}", api_key="sk-ant-test").messages.create(
                model="{MODEL}", max_tokens=8, messages=[{{"role": "user", "content": "hi"}}]
            )
        """
    )
    result = pytester.runpytest("-p", "no:hypothesispytest", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=3, passed=1)
    out = result.stdout.str()
    assert out.count("RecordingNotFoundError: No recording for this http call") >= 3
    assert "the code under test caught this error; the test fails with it anyway" in out
    assert "RuntimeError: the model is unavailable" in out


def test_a_miss_inside_a_task_group_surfaces_as_the_plain_error(tmp_path: Path) -> None:
    async def two_calls() -> None:
        client = anthropic.AsyncAnthropic(base_url=NOWHERE, api_key="sk-ant-test")
        async with asyncio.TaskGroup() as group:
            for text in ("one", "two"):
                group.create_task(
                    client.messages.create(
                        model=MODEL, max_tokens=8, messages=[{"role": "user", "content": text}]
                    )
                )

    with (
        pytest.raises(apirecorder.RecordingNotFoundError) as caught,
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("replay", tmp_path),
    ):
        asyncio.run(two_calls())
    assert type(caught.value) is apirecorder.RecordingNotFoundError


def test_the_twin_is_caught_as_the_error_and_not_as_exception() -> None:
    from apirecorder._exceptions import interrupting, is_interrupting, surfaced

    error = apirecorder.RecordingNotFoundError("why", request_hash="h", test_id=None, endpoint="e")
    twin = interrupting(error)
    assert isinstance(twin, apirecorder.RecordingNotFoundError)
    assert isinstance(twin, apirecorder.ApiRecorderError)
    assert not isinstance(twin, Exception)
    assert (str(twin), twin.endpoint, twin.request_hash) == ("why", "e", "h")
    assert is_interrupting(twin) and interrupting(twin) is twin
    assert surfaced(twin) is error and surfaced(error) is None
    assert surfaced(BaseExceptionGroup("g", [twin, interrupting(error)])) is error
    assert surfaced(BaseExceptionGroup("g", [twin, ValueError()])) is None


def test_botocore_and_tenacity_do_not_retry_a_miss(upstream: Upstream, tmp_path: Path) -> None:
    import boto3
    import tenacity

    bedrock = boto3.client(
        "bedrock-runtime",
        endpoint_url=upstream.url,
        region_name="us-east-1",
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    attempts: list[int] = []

    @tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none())
    def fetch() -> Any:
        attempts.append(1)
        return httpx.get(f"{upstream.url}/misc/json")

    for call in (
        lambda: bedrock.converse(
            modelId="anthropic.claude-3-haiku-20240307-v1:0",
            messages=[{"role": "user", "content": [{"text": "hi"}]}],
        ),
        fetch,
    ):
        started = time.perf_counter()
        with (
            pytest.raises(apirecorder.RecordingNotFoundError),
            apirecorder.test_context(TEST_ID),
            apirecorder.recording("replay", tmp_path),
        ):
            call()
        timed("botocore / tenacity replay miss", started)
    assert attempts == [1]
    assert upstream.requests == []
