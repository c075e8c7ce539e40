"""Request hashing reproduces every reference recording's file name, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apirecorder._hashing import (
    http_request_hash,
    inference_request_hash,
    normalize_for_hash,
    recorded_request_hashes,
    tool_request_hash,
)
from apirecorder._storage import load_recording

FIXTURES = Path(__file__).parent / "fixtures"
ALL_FIXTURES = sorted(FIXTURES.glob("*/*.json"))


def _expected_hash(path: Path) -> str:
    name = path.stem
    return name.split("-")[1] if name.startswith("models-") else name


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.stem[:16])
def test_fixture_file_name_is_the_hash_of_its_request(path: Path) -> None:
    data = json.loads(path.read_text())
    request = data["request"]
    if "tool_name" in request:
        got = tool_request_hash(request["provider"], request["tool_name"], request["kwargs"])
    else:
        got = inference_request_hash(
            request["method"], request["url"], request["body"], data["test_id"]
        )
    assert got == _expected_hash(path)


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.stem[:16])
def test_recorded_request_hash_gives_every_fixtures_name_in_both_generations(path: Path) -> None:
    # None of these requests holds what the 2026 rules change, so both generations agree.
    recording = load_recording(path)
    assert recorded_request_hashes(recording.test_id, recording.request) == (
        _expected_hash(path),
        _expected_hash(path),
    )


def test_there_are_fixtures_of_every_kind() -> None:
    assert len(ALL_FIXTURES) == 23
    endpoints = {json.loads(p.read_text())["request"].get("endpoint") for p in ALL_FIXTURES}
    assert {
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/models",
        "/generate_content",
        "/generate_content_stream",
    } <= endpoints


def test_normalize_rounds_floats_and_long_decimals_in_strings() -> None:
    value = {"t": 0.123456789, "n": [1, True, 2.5], "s": "x 3.14159265 y 2.5 -0.000012345"}
    assert normalize_for_hash(value) == {
        "t": 0.12346,
        "n": [1, True, 2.5],
        "s": "x 3.14159 y 2.5 -0.00001",
    }


def test_model_list_endpoints_ignore_the_test_id() -> None:
    url = "http://localhost:11434/v1/models"
    assert inference_request_hash("GET", url, {}, "a.py::t") == inference_request_hash(
        "GET", url, {}, None
    )
    chat = "http://localhost:11434/v1/chat/completions"
    assert inference_request_hash("POST", chat, {}, "a.py::t") != inference_request_hash(
        "POST", chat, {}, None
    )


def test_user_normalizer_applies_on_top_and_leaves_other_bodies_alone() -> None:
    def drop_seed(body: dict[str, object]) -> dict[str, object]:
        body.pop("seed", None)
        return body

    url = "https://api.openai.com/v1/v1/chat/completions"
    plain = {"model": "m", "messages": []}
    assert inference_request_hash("POST", url, plain, None, [drop_seed]) == inference_request_hash(
        "POST", url, plain, None
    )
    seeded = {**plain, "seed": 7}
    assert inference_request_hash("POST", url, seeded, None, [drop_seed]) == inference_request_hash(
        "POST", url, plain, None
    )
    assert seeded == {"model": "m", "messages": [], "seed": 7}  # the caller's body is untouched


def test_http_hash_covers_test_id_url_method_and_payload() -> None:
    base = http_request_hash("https://x/y", "post", {"a": 1.0000001}, "t")
    assert base == http_request_hash("https://x/y", "POST", {"a": 1.0}, "t")
    assert base != http_request_hash("https://x/y", "POST", {"a": 1.0}, "u")
    assert base != http_request_hash("https://x/z", "POST", {"a": 1.0}, "t")
