"""urllib3 and botocore (boto3) through the urllib3 layer: record, stop the upstream, replay.

Each replay runs with the upstream stopped and the network blocked, through the real client.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
import requests
import urllib3
from botocore.exceptions import ClientError

from tests.offline import disk_bytes, record_then_replay, recordings
from tests.upstream import Upstream

TEST_ID = "tests/test_urllib3.py::scenario"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def test_pool_manager_json_and_streamed_body(upstream: Upstream, tmp_path: Path) -> None:
    base = upstream.url

    def scenario() -> tuple[Any, ...]:
        http = urllib3.PoolManager()
        plain = http.request("GET", base + "/misc/json?q=1")
        posted = http.request("POST", base + "/misc/echo", json={"a": [1, 2]})
        streamed = http.request("GET", base + "/misc/sse", preload_content=False)
        chunks = list(streamed.stream(2**16))
        streamed.release_conn()
        return (
            (plain.status, plain.json(), plain.headers["content-type"]),
            (posted.status, posted.json()),
            (streamed.status, chunks),
        )

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario, TEST_ID)
    assert replayed == recorded
    assert len(recorded[2][1]) > 1  # one chunk per server-sent event, live and replayed
    assert len(recordings(tmp_path)) == 3


def test_a_requests_call_is_recorded_once(upstream: Upstream, tmp_path: Path) -> None:
    url = upstream.url + "/misc/json"

    def scenario() -> Any:
        return requests.get(url).json()

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario, TEST_ID)
    assert replayed == recorded
    assert len(recordings(tmp_path)) == 1


def _bedrock(url: str) -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


def _messages(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


def test_bedrock_converse_and_converse_stream(upstream: Upstream, tmp_path: Path) -> None:
    url = upstream.url

    def scenario() -> tuple[Any, list[Any]]:
        client = _bedrock(url)
        answer = client.converse(
            modelId=MODEL, messages=_messages("hi there"), inferenceConfig={"maxTokens": 16}
        )
        stream = client.converse_stream(modelId=MODEL, messages=_messages("say four words"))
        events = list(stream["stream"])
        return answer["output"], events

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario, TEST_ID)
    assert replayed == recorded
    deltas = [event for event in recorded[1] if "contentBlockDelta" in event]
    assert len(deltas) == 4
    files = recordings(tmp_path)
    assert len(files) == 2
    stream_file = next(f for f in files if f["request"]["url"].endswith("/converse-stream"))
    frames = stream_file["response"]["body"]
    assert stream_file["response"]["body_format"] == "eventstream"
    assert frames[1]["headers"][":event-type"] == "contentBlockDelta"
    assert frames[1]["payload"]["delta"]["text"]
    # SigV4: the signing time and the signature change every run and never reach the disk.
    for found in files:
        headers = found["request"]["headers"]
        assert "x-amz-date" not in headers
        assert "amz-sdk-invocation-id" not in headers
        assert headers.get("authorization") in (None, "<redacted>")
    assert b"AWS4-HMAC-SHA256" not in disk_bytes(tmp_path)


def test_bedrock_validation_error(upstream: Upstream, tmp_path: Path) -> None:
    url = upstream.url

    def scenario() -> tuple[str, int, str]:
        with pytest.raises(ClientError) as caught:
            _bedrock(url).converse(modelId=MODEL, messages=_messages("TRIGGER_400"))
        error = caught.value.response
        return (
            error["Error"]["Code"],
            error["ResponseMetadata"]["HTTPStatusCode"],
            error["Error"]["Message"],
        )

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario, TEST_ID)
    assert replayed == recorded
    assert recorded[:2] == ("ValidationException", 400)


def test_a_signed_request_hashes_the_same_at_another_time(
    upstream: Upstream, tmp_path: Path
) -> None:
    """The hash is the method, URL and payload: re-signing later still finds the recording."""

    url = upstream.url

    def scenario() -> Any:
        return _bedrock(url).converse(modelId=MODEL, messages=_messages("hello"))["output"]

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario, TEST_ID)
    assert replayed == recorded
    (only,) = recordings(tmp_path)
    assert only["request"]["payload"]["messages"] == _messages("hello")


def test_event_stream_replays_one_chunk_per_frame(upstream: Upstream, tmp_path: Path) -> None:
    url = f"{upstream.url}/model/m/converse-stream"
    body = json.dumps({"messages": _messages("one two three")})

    def scenario() -> list[bytes]:
        response = urllib3.request("POST", url, body=body, preload_content=False)
        return list(response.stream(2**16))

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario, TEST_ID)
    assert replayed == recorded
    assert len(recorded) == len(recordings(tmp_path)[0]["response"]["body"]) > 3
