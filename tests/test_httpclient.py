"""urllib.request and http.client through the http.client layer: record, stop, replay.

Each replay runs with the upstream stopped and the network blocked, through the real client.
"""

from __future__ import annotations

import http.client
import json
import urllib.request
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import pytest
import urllib3

from tests.offline import record_then_replay, recordings
from tests.upstream import Upstream

TEST_ID = "tests/test_httpclient.py::scenario"


def test_urlopen_get_and_post_json(upstream: Upstream, tmp_path: Path) -> None:
    base = upstream.url

    def scenario() -> tuple[Any, ...]:
        with urllib.request.urlopen(base + "/misc/json?q=1") as got:
            plain = (got.status, got.headers["content-type"], json.load(got))
        request = urllib.request.Request(
            base + "/misc/echo",
            data=json.dumps({"model": "m-1", "n": 2}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request) as posted:
            echoed = (posted.status, json.load(posted))
        return plain, echoed

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario, TEST_ID)
    assert replayed == recorded
    files = recordings(tmp_path)
    assert len(files) == 2
    assert {f["request"]["method"] for f in files} == {"GET", "POST"}
    post = next(f for f in files if f["request"]["method"] == "POST")
    assert post["request"]["payload"] == {"model": "m-1", "n": 2}


def test_a_streamed_body_read_line_by_line(upstream: Upstream, tmp_path: Path) -> None:
    url = upstream.url + "/misc/sse"

    def scenario() -> list[bytes]:
        with urllib.request.urlopen(url) as response:
            return list(response)

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario, TEST_ID)
    assert replayed == recorded
    assert len(recorded) > 3
    (only,) = recordings(tmp_path)
    assert only["response"]["body_format"] == "sse_lines"


def test_an_error_status_is_urllibs_http_error(upstream: Upstream, tmp_path: Path) -> None:
    url = upstream.url + "/misc/status/404"

    def scenario() -> tuple[int, bytes]:
        with pytest.raises(HTTPError) as caught:
            urllib.request.urlopen(url)
        return caught.value.code, caught.value.read()

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario, TEST_ID)
    assert replayed == recorded
    assert recorded[0] == 404


def test_plain_http_client_connection(upstream: Upstream, tmp_path: Path) -> None:
    host, port = "127.0.0.1", upstream.port

    def scenario() -> tuple[int, str, bytes]:
        conn = http.client.HTTPConnection(host, port)
        conn.request("GET", "/misc/text")
        response = conn.getresponse()
        result = response.status, response.reason, response.read()
        conn.close()
        return result

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario, TEST_ID)
    assert replayed == recorded


def test_a_urllib3_call_is_recorded_once(upstream: Upstream, tmp_path: Path) -> None:
    url = upstream.url + "/misc/json"

    def scenario() -> Any:
        return urllib3.request("GET", url).json()

    recorded, replayed = record_then_replay(upstream, tmp_path, scenario, TEST_ID)
    assert replayed == recorded
    assert len(recordings(tmp_path)) == 1
