"""Uploads (issue 10.3) and replayed headers (issue 10.12), through the real clients.

A multipart request is hashed and stored by its parts, never by its random boundary, so an
upload replays with the upstream stopped and its recording reads as the form it was. A
replayed HTTP response carries every header received (content-length, transfer-encoding,
content-disposition), and each client reads its body right.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
import openai
import pytest
import requests
import urllib3

import apirecorder
from apirecorder._httpbody import MAX_INLINE_FILE, multipart_parts
from apirecorder._httpexchange import request_payload
from tests import offline
from tests.upstream import Request, Response, Upstream

TEST_ID = "tests/test_uploads_and_headers.py::scenario"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00" + bytes(range(256))
BINARY = bytes(range(256)) * 4


def record_then_replay(
    tmp_path: Path, upstream: Upstream, scenario: Callable[[str], Any]
) -> tuple[Any, Any]:
    """The scenario's result live, then replayed with the upstream stopped."""
    url = upstream.url
    return offline.record_then_replay(upstream, tmp_path, lambda: scenario(url), TEST_ID)


def _openai(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)


# -- 10.3: uploads ----------------------------------------------------------------------------


def transcription(url: str) -> Any:
    result = _openai(url).audio.transcriptions.create(model="whisper-1", file=("hello.wav", WAV))
    return result.text


def test_a_transcription_replays_and_reads_as_its_form(upstream: Upstream, tmp_path: Path) -> None:
    live, replayed = record_then_replay(tmp_path, upstream, transcription)
    assert replayed == live == "280 bytes of hello.wav heard by whisper-1"
    (path,) = tmp_path.glob("*.json")
    text = path.read_text()
    assert "boundary" not in text
    request = json.loads(text)["request"]
    assert request["headers"]["content-type"] == "multipart/form-data"
    model, upload = request["payload"]["multipart"]
    assert model == {"name": "model", "value": "whisper-1"}
    assert upload["name"] == "file" and upload["filename"] == "hello.wav"
    assert "content_type" not in upload  # only what mimetypes guesses from the name


def binary_upload(url: str) -> Any:
    client = _openai(url)
    created = client.files.create(file=("data.bin", BINARY), purpose="batch")
    content = client.files.content(created.id).read()  # the stable id, in a path
    return {"id": created.id, "filename": created.filename, "content": content}


def test_a_binary_upload_and_its_content_replay(upstream: Upstream, tmp_path: Path) -> None:
    live, replayed = record_then_replay(tmp_path, upstream, binary_upload)
    assert replayed == live
    assert replayed["content"] == BINARY and replayed["id"].startswith("rec-")


def raw_multipart_posts(url: str) -> Any:
    files = {"file": ("notes.txt", b"remember the milk")}
    by_requests = requests.post(
        f"{url}/v1/files", files=files, data={"purpose": "user_data"}, timeout=5
    ).json()
    by_httpx = httpx.post(f"{url}/v1/files", files=files, data={"purpose": "assistants"}).json()

    async def by_aiohttp() -> Any:
        form = aiohttp.FormData()
        form.add_field("purpose", "vision")
        form.add_field("file", b"\x00\x01\r\n--x\r\n", filename="odd.bin")
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{url}/v1/files", data=form) as response,
        ):
            return await response.json()

    answers = [by_requests, by_httpx, asyncio.run(by_aiohttp())]
    return [(a["filename"], a["purpose"], a["bytes"]) for a in answers]


def test_multipart_posts_of_every_client_replay(upstream: Upstream, tmp_path: Path) -> None:
    live, replayed = record_then_replay(tmp_path, upstream, raw_multipart_posts)
    assert replayed == live
    assert [name for name, _, _ in replayed] == ["notes.txt", "notes.txt", "odd.bin"]


def test_re_recording_an_upload_is_byte_identical(upstream: Upstream, tmp_path: Path) -> None:
    def record(folder: Path) -> dict[str, bytes]:
        with apirecorder.test_context(TEST_ID), apirecorder.recording("record", folder):
            transcription(upstream.url)
            binary_upload(upstream.url)
        return {p.name: p.read_bytes() for p in sorted(folder.glob("*.json"))}

    first = record(tmp_path / "a")
    assert len(first) == 3 and record(tmp_path / "b") == first


def _form(boundary: str, parts: list[tuple[str, bytes]]) -> bytes:
    body = b"".join(
        f"--{boundary}\r\n{head}\r\n\r\n".encode() + content + b"\r\n" for head, content in parts
    )
    return body + f"--{boundary}--\r\n".encode()


PARTS = [
    ('Content-Disposition: form-data; name="timestamp_granularities[]"', b"word"),
    ('Content-Disposition: form-data; name="timestamp_granularities[]"', b"segment"),
    (
        'Content-Disposition: form-data; name="file"; filename="a.bin"\r\n'
        "Content-Type: application/x-custom",
        b"\r--\n\r\r\n--not-the-boundary\x00\xff",
    ),
    ('Content-Disposition: form-data; name="api_key"', b"sk-secret-form-value"),
]


def test_a_form_is_its_parts_whatever_the_boundary() -> None:
    payloads = [
        request_payload(_form(b, PARTS), f"multipart/form-data; boundary={b}")
        for b in (os.urandom(16).hex(), '"quoted-boundary"'.strip('"'))
    ]
    assert payloads[0] == payloads[1]
    parts = payloads[0]["multipart"]
    assert [p["name"] for p in parts] == ["timestamp_granularities[]"] * 2 + ["file", "api_key"]
    assert [parts[0]["value"], parts[1]["value"]] == ["word", "segment"]
    assert parts[2]["content_type"] == "application/x-custom"  # given, not guessed: kept
    assert parts[2]["base64"] == "DS0tCg0NCi0tbm90LXRoZS1ib3VuZGFyeQD/"
    assert parts[3]["value"] == "<redacted>"


def test_a_big_file_is_its_digest_and_a_broken_form_its_text() -> None:
    big = os.urandom(MAX_INLINE_FILE + 1)
    head = 'Content-Disposition: form-data; name="file"; filename="big.raw"'
    parts = multipart_parts(_form("b0", [(head, big)]), "multipart/form-data; boundary=b0")
    assert parts == [
        {
            "name": "file",
            "filename": "big.raw",
            "sha256": hashlib.sha256(big).hexdigest(),
            "size": len(big),
        }
    ]
    truncated = _form("b0", PARTS[:1])[:-10]
    assert multipart_parts(truncated, "multipart/form-data; boundary=b0") is None
    assert isinstance(request_payload(truncated, "multipart/form-data; boundary=b0"), str)


# -- 10.12: replayed headers --------------------------------------------------------------------


def _download(request: Request) -> Response:
    headers = [
        ("Content-Type", "application/pdf"),
        ("Content-Disposition", 'attachment; filename="report.pdf"'),
    ]
    return Response(200, headers, b"%PDF-1.4 not really")


def _by_httpx(url: str) -> tuple[dict[str, str], bytes]:
    response = httpx.get(url)
    return dict(response.headers), response.content


def _by_requests(url: str) -> tuple[dict[str, str], bytes]:
    response = requests.get(url, timeout=5)
    return dict(response.headers), response.content


def _by_aiohttp(url: str) -> tuple[dict[str, str], bytes]:
    async def fetch() -> tuple[dict[str, str], bytes]:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return dict(response.headers), await response.read()

    return asyncio.run(fetch())


def _by_urllib3(url: str) -> tuple[dict[str, str], bytes]:
    with urllib3.PoolManager() as pool:
        response = pool.request("GET", url)
        return dict(response.headers), response.data


def _by_http_client(url: str) -> tuple[dict[str, str], bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=5)
    try:
        connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        response = connection.getresponse()
        return dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _by_urllib_request(url: str) -> tuple[dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return dict(response.headers.items()), response.read()


CLIENTS: dict[str, Callable[[str], tuple[dict[str, str], bytes]]] = {
    "httpx": _by_httpx,
    "requests": _by_requests,
    "aiohttp": _by_aiohttp,
    "urllib3": _by_urllib3,
    "http.client": _by_http_client,
    "urllib.request": _by_urllib_request,
}


@pytest.mark.parametrize("client", CLIENTS)
def test_replayed_responses_keep_their_headers(
    client: str, upstream: Upstream, tmp_path: Path
) -> None:
    upstream.add_route("GET", "/download", _download)
    fetch = CLIENTS[client]

    def scenario(url: str) -> Any:
        seen = [fetch(f"{url}{path}") for path in ("/misc/json", "/misc/chunks", "/download")]
        return [({k.lower(): v for k, v in h.items() if k.lower() != "date"}, b) for h, b in seen]

    live, replayed = record_then_replay(tmp_path, upstream, scenario)
    assert replayed == live
    (json_headers, json_body), (chunk_headers, chunk_body), (pdf_headers, _) = replayed
    assert json_headers["content-length"] == str(len(json_body))
    assert chunk_headers["transfer-encoding"] == "chunked"
    assert chunk_body == b"part 0\npart 1\npart 2\npart 3\npart 4\n"
    assert pdf_headers["content-disposition"] == 'attachment; filename="report.pdf"'
