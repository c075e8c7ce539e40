"""Event streams as their text lines (the reference recorder's form): exact bytes back, one
chunk per event, the reference's own files read, and redaction that still reaches each event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import apirecorder
from apirecorder._httpbody import decode_body, encode_body, sse_as_events, sse_as_lines
from apirecorder._httpexchange import replayed_response
from apirecorder._redaction import PLACEHOLDER, redact_recording

STREAMS = {
    "empty": b"",
    "blank line": b"\n",
    "events": b'event: a\ndata: {"a":1}\n\ndata: [DONE]\n\n',
    "crlf": b"data: x\r\n\r\ndata: y\r\n\r\n",
    "cr": b"data: x\r\rdata: y\r\r",
    "no final newline": b"data: x\n\ndata: y",
    "extra blank lines": b": ping\n\n\n\ndata: q\n",
}


@pytest.mark.parametrize("name", STREAMS)
def test_a_stream_is_its_lines_and_comes_back_byte_for_byte(name: str) -> None:
    data = STREAMS[name]
    encoded = encode_body(data, "text/event-stream")
    assert encoded["body_format"] == "sse_lines" and encoded["is_streaming"] is True
    assert all(isinstance(line, str) for line in encoded["body"])
    chunks = decode_body(encoded)
    assert b"".join(chunks) == data
    # One chunk per event: each but the last ends with the blank line that closes it.
    assert all(chunk.endswith((b"\n\n", b"\r\n\r\n", b"\r\r", b"\n")) for chunk in chunks[:-1])
    assert sse_as_lines(sse_as_events(encoded)) == encoded


def test_lines_that_end_in_more_than_one_way_keep_the_event_form() -> None:
    data = b"data: x\r\n\ndata: y\n\n"
    encoded = encode_body(data, "text/event-stream")
    assert encoded["body_format"] == "sse"
    assert b"".join(decode_body(encoded)) == data


def test_the_reference_shape_replays_as_its_mock_does() -> None:
    lines = ["event: a", 'data: {"n":1}', "", "data: [DONE]", ""]
    replayed = replayed_response({"body": lines, "is_streaming": True})
    assert replayed.status == 200
    assert replayed.headers == [("content-type", "text/event-stream")]
    assert replayed.chunks == [b'event: a\ndata: {"n":1}\n\n', b"data: [DONE]\n\n"]
    # The reference's wire text: its lines joined with "\n", the last one ended too.
    assert replayed.content.decode() == "\n".join(lines) + "\n"


def _stream_record(text: str) -> dict[str, Any]:
    response: dict[str, Any] = {"status": 200, "headers": {"content-type": "text/event-stream"}}
    response.update(encode_body(text.encode(), "text/event-stream"))
    return {
        "test_id": "tests/test_x.py::test_y",
        "request": {
            "test_id": None,
            "method": "POST",
            "url": "https://x.example/v1",
            "payload": {},
        },
        "response": response,
    }


def test_a_json_path_reaches_into_each_events_data(tmp_path: Path) -> None:
    events = [{"user": "alice", "text": "hi"}, {"user": "bob", "text": "there"}]
    text = "".join(f"data: {json.dumps(e, separators=(',', ':'))}\n\n" for e in events)
    paths = ["response.body[*].data.user"]
    with apirecorder.recording("record", tmp_path, redact_json_paths=paths) as session:
        written = redact_recording(_stream_record(text), session)
    response = written["response"]
    assert response["body_format"] == "sse_lines"
    assert "alice" not in json.dumps(response) and "bob" not in json.dumps(response)
    data = [json.loads(line[6:]) for line in response["body"] if line.startswith("data: ")]
    assert data == [{"user": PLACEHOLDER, "text": "hi"}, {"user": PLACEHOLDER, "text": "there"}]


@apirecorder.tool("text")
def _pieces(n: int) -> Iterator[str]:
    yield from ["one\ntwo", "three\r\nfour"][:n]


def test_a_tool_stream_of_strings_is_not_taken_for_event_lines(tmp_path: Path) -> None:
    # Like the reference's raw-HTTP stream it is a list of strings with no body_format; only
    # the HTTP layer reads such a list as lines.
    with apirecorder.recording("record", tmp_path), apirecorder.test_context("t.py::t"):
        assert list(_pieces(2)) == ["one\ntwo", "three\r\nfour"]
    [path] = tmp_path.glob("*.json")
    assert json.loads(path.read_text())["response"]["body"] == ["one\ntwo", "three\r\nfour"]
    with apirecorder.recording("replay", tmp_path), apirecorder.test_context("t.py::t"):
        assert list(_pieces(2)) == ["one\ntwo", "three\r\nfour"]
