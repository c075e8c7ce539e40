"""The reference's current hash rules, matched byte for byte, and the previous generation kept.

``tests/reference_impl.py`` is the reference's hashing transcribed as expected behaviour; every
body here hashes the same through it and through apirecorder. The 2026 fixtures prove each
generation names the files it named, and the CLI's verify and rehash handle both.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apirecorder._cli import main
from apirecorder._hashing import (
    Generation,
    http_request_hash,
    inference_request_hash,
    recorded_request_hash,
    recorded_request_hashes,
    tool_request_hash,
)
from apirecorder._storage import Storage, load_recording
from tests import reference_impl as reference

FIXTURES_2026 = Path(__file__).parent / "fixtures-2026" / "reference-2026"
README_2026 = FIXTURES_2026.parent / "README.md"
UUID = "0f8fad5b-d9cb-468f-a7e6-2ea0a3a3f7c1"
OTHER_UUID = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
OPENAI = "https://api.openai.com/v1/v1/chat/completions"
BEDROCK = "https://bedrock-mantle.us-east-2.api.aws/v1/v1/chat/completions"
TEST_ID = "tests/integration/test_x.py::test_y[param]"

FILE_SEARCH_TEXT = (
    f"[1] document_id: {UUID}, score: 0.8234567, attributes: {{'region': 'us', 'n': 2}}\n"
    f"text: Llama 4 Maverick has 128 experts <|{UUID}|>.\n"
    f"[2] document_id:{OTHER_UUID}, score: -1.5e-3 attributes: {{}} tail"
)

#: Bodies the current rules touch, and bodies they must leave alone (each a case of its own).
BODIES: dict[str, Any] = {
    "plain": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
    "floats": {"temperature": 0.123456789, "top_p": 1.0, "n": 2, "flag": True, "x": None},
    "long decimals in text": {"input": "pi is 3.14159265 and -0.000012345, not 2.5"},
    "file-search tool output": {
        "model": "gpt-4o",
        "messages": [
            {"role": "user", "content": "How many experts?"},
            {"role": "tool", "tool_call_id": "call_1", "content": FILE_SEARCH_TEXT},
        ],
    },
    "score forms": {"s": "score:1 score: .5 score:+2.5E+10 score: -0.0001234 scores: 3"},
    "attributes without comma": {"s": "x attributes: {a: 1} y ,attributes:{}"},
    "attributes with nested braces": {"s": "a, attributes: {'k': {'n': 1}} end"},
    "upper-case uuid is kept": {"s": f"document_id: {UUID.upper()} <|{UUID.upper()}|>"},
    "citation only": {"s": f"see <|{UUID}|><|{OTHER_UUID}|>"},
    "score then long decimal": {"s": "score: 0.123456 and 0.123456"},
    "extra_body project_id": {"model": "m", "extra_body": {"project_id": "p-1", "guided": 1}},
    "extra_query project_id": {"extra_query": {"project_id": "1461945d"}},
    "extra_body not a dict": {"extra_body": "project_id", "extra_query": ["project_id"]},
    "project_id below the root is kept": {"options": {"extra_body": {"project_id": "p"}}},
    "project_id of a dict in a list goes": {"items": [{"extra_body": {"project_id": "p"}}]},
    "project_id in nested lists": {"a": [[{"extra_query": {"project_id": "p", "k": 2}}]]},
    "stream_options at the root": {"model": "m", "stream": True, "stream_options": {"x": 1}},
    "stream_options below the root": {
        "messages": [{"stream_options": 1}],
        "o": {"stream_options": 2},
    },
    "tuple": {"t": (1.0000001, "score: 3", {"extra_body": {"project_id": "p"}})},
    "unicode": {"s": "héllo ✓ score: 1 \ud83d"},
    "empty": {},
}

URLS = {
    "openai": OPENAI,
    "bedrock host": BEDROCK,
    "bedrock in the userinfo": "https://bedrock@example.com/v1/chat/completions",
    "bedrock only in the path": "https://example.com/bedrock/v1/chat/completions",
    "databricks": "https://adb-1234567890123456.7.cloud.databricks.com/serving-endpoints/chat",
    "model list": "http://localhost:11434/v1/models",
    "ollama tags": "http://localhost:11434/api/tags",
    "vertex": "vertexai:///generate_content",
}


def _reference_inference(url: str, body: Any, test_id: str | None) -> str:
    return reference.inference_hash("POST", reference.rewrite_url(url), body, test_id)


@pytest.mark.parametrize("url", URLS.values(), ids=URLS.keys())
@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_inference_hash_is_the_references(url: str, body: Any) -> None:
    for test_id in (TEST_ID, None):
        assert inference_request_hash("post", url, body, test_id) == _reference_inference(
            url, body, test_id
        )


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_http_payload_hash_is_the_references(body: Any) -> None:
    # The reference normalizes raw-HTTP payloads with the same function, bedrock rule aside.
    for url in (BEDROCK, "http://0.0.0.0:11434/v1/messages"):
        assert http_request_hash(url, "post", body, TEST_ID) == reference.http_hash(
            url, "post", body, TEST_ID
        )


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_tool_hash_is_the_references_and_normalizes_nothing(body: Any) -> None:
    assert tool_request_hash("tavily", "web_search", body) == reference.tool_hash(
        "tavily", "web_search", body
    )


def _both(url: str, body: Any) -> tuple[str, str]:
    request = {"method": "POST", "url": url, "body": body}
    return recorded_request_hashes(TEST_ID, request)


def test_the_cases_touch_what_they_name() -> None:
    # Guards the table above: a rule that silently stopped applying would still hash alike.
    assert reference.normalize_string(FILE_SEARCH_TEXT) == (
        "[1] document_id: __NORMALIZED__, score: __NORMALIZED__\n"
        "text: Llama 4 Maverick has 128 experts <|__NORMALIZED__|>.\n"
        "[2] document_id: __NORMALIZED__, score: __NORMALIZED__ tail"
    )
    touched = {
        "file-search tool output",
        "score forms",
        "extra_body project_id",
        "extra_query project_id",
        "project_id of a dict in a list goes",
    }
    for name in touched:
        current, previous = _both(OPENAI, BODIES[name])
        assert current != previous, name
    current, previous = _both(BEDROCK, BODIES["stream_options at the root"])
    assert current != previous
    for name in ("plain", "floats", "project_id below the root is kept", "empty"):
        current, previous = _both(BEDROCK, BODIES[name])
        assert current == previous, name


_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "score: 0.5",
            "score:-1e5",
            ", attributes: {a: 1}",
            f"document_id: {UUID}",
            f"<|{OTHER_UUID}|>",
            "3.14159265",
            "project_id",
        ]
    ),
)
_keys = st.sampled_from(["extra_body", "extra_query", "project_id", "stream_options", "k", "s"])
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(body=st.dictionaries(_keys, _json, max_size=5), url=st.sampled_from(sorted(URLS.values())))
def test_any_body_hashes_as_the_reference_hashes_it(body: dict[str, Any], url: str) -> None:
    assert inference_request_hash("POST", url, body, TEST_ID) == _reference_inference(
        url, body, TEST_ID
    )
    assert http_request_hash(url, "POST", body, None) == reference.http_hash(
        url, "POST", body, None
    )


def test_the_callers_body_is_never_changed() -> None:
    body = {"extra_body": {"project_id": "p"}, "stream_options": {"x": 1}, "s": "score: 1"}
    before = json.dumps(body)
    _both(BEDROCK, body)
    recorded_request_hashes(TEST_ID, {"test_id": TEST_ID, "url": BEDROCK, "payload": body})
    assert json.dumps(body) == before


def test_the_previous_generation_applies_only_the_float_rules() -> None:
    body = {"extra_body": {"project_id": "p"}, "stream_options": 1, "s": "score: 1 3.14159265"}
    previous = inference_request_hash(
        "POST", BEDROCK, {**body, "t": 0.1234567}, TEST_ID, generation=Generation.PREVIOUS
    )
    key = {
        "method": "POST",
        "endpoint": "/v1/v1/chat/completions",
        "body": {**body, "s": "score: 1 3.14159", "t": 0.12346},
        "test_id": TEST_ID,
    }
    assert previous == reference._sha256(key)


# -- the 2026 fixtures -----------------------------------------------------------------------


def _generations_in_readme() -> dict[str, str]:
    found = re.findall(
        r"^- `([^`]+\.json)`: (current|previous|both)\b", README_2026.read_text(), re.M
    )
    return dict(found)


def test_the_fixtures_are_unchanged_copies_and_all_listed() -> None:
    listed = _generations_in_readme()
    assert sorted(listed) == sorted(p.name for p in FIXTURES_2026.glob("*.json"))
    assert len(listed) == 8
    assert sorted(listed.values()).count("current") == 3
    assert sorted(listed.values()).count("previous") == 1


@pytest.mark.parametrize("name", sorted(_generations_in_readme()), ids=lambda n: n[:16])
def test_each_fixture_is_named_by_the_generation_its_readme_says(name: str) -> None:
    recording = load_recording(FIXTURES_2026 / name)
    current, previous = recorded_request_hashes(recording.test_id, recording.request)
    named = {"current": current, "previous": previous}
    claimed = name.split("-")[1] if name.startswith("models-") else name.removesuffix(".json")
    expected = _generations_in_readme()[name]
    if expected == "both":
        assert current == previous == claimed
    else:
        other = "previous" if expected == "current" else "current"
        assert named[expected] == claimed
        assert named[other] != claimed


def test_recorded_request_hash_takes_each_kind() -> None:
    tool = {"test_id": "t", "provider": "tavily", "tool_name": "search", "kwargs": {"q": 1.5}}
    assert recorded_request_hash("t", tool) == tool_request_hash("tavily", "search", {"q": 1.5})
    http = {"test_id": "t", "method": "post", "url": BEDROCK, "payload": {"stream_options": 1}}
    assert recorded_request_hash("t", http) == reference.http_hash(
        BEDROCK, "POST", {"stream_options": 1}, "t"
    )
    inference = {"method": "POST", "url": BEDROCK, "body": {"stream_options": 1}}
    assert recorded_request_hash(None, inference) == reference.inference_hash(
        "POST", BEDROCK, {"stream_options": 1}, None
    )


# -- lookups find either name ----------------------------------------------------------------


def _copy(name: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(FIXTURES_2026 / name, folder / name))


PREVIOUS_ONLY = "008c7f9317b753a832cc8ccd2f0edb02c3f3e1c627674b60562eea08af29953d.json"
WATSONX = "models-83953d70762b611d7b1e6ff232b53374ee7c35538fb0392cf9d92f27815c4fc6-c99eb79a.json"


def test_storage_finds_a_previous_generation_name_after_the_current_one(tmp_path: Path) -> None:
    path = _copy(PREVIOUS_ONLY, tmp_path)
    recording = load_recording(path)
    current, previous = recorded_request_hashes(recording.test_id, recording.request)
    storage = Storage(tmp_path, flat=True)
    assert storage.find(current, recording.test_id) is None
    found = storage.find(current, recording.test_id, also=[previous])
    assert found is not None and found.path == path
    # With both names on disk, the current one wins.
    newer = tmp_path / f"{current}.json"
    newer.write_bytes(path.read_bytes())
    found = storage.find(current, recording.test_id, also=[previous])
    assert found is not None and found.path == newer


def test_storage_finds_model_lists_under_a_previous_name(tmp_path: Path) -> None:
    path = _copy(WATSONX, tmp_path)
    recording = load_recording(path)
    current, previous = recorded_request_hashes(None, recording.request)
    storage = Storage(tmp_path, flat=True)
    assert storage.find_model_lists(previous, None) == []  # the file has the current name
    assert [r.path for r in storage.find_model_lists(previous, None, also=[current])] == [path]


# -- the CLI -------------------------------------------------------------------------------


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the 2026 fixtures in the current folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    return Path(shutil.copytree(FIXTURES_2026, tmp_path / "r"))


def test_verify_accepts_both_generations_and_names_the_old_ones(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "verify", "r")
    assert code == 0
    assert out == (
        f"r/{PREVIOUS_ONLY}: named by the previous hash rules (valid; rehash renames it)\n"
        "8 recordings checked: no problems; 1 named by the previous hash rules "
        "(apirecorder rehash --apply renames them).\n"
    )
    code, out, _ = _run(capsys, "verify", "r", "--json")
    report = json.loads(out)
    assert (code, report["problems"], report["previous_generation"]) == (
        0,
        [],
        [str(Path("r") / PREVIOUS_ONLY)],
    )


def _current_name_of(path: Path) -> str:
    recording = load_recording(path)
    return f"{recorded_request_hash(recording.test_id, recording.request)}.json"


def test_rehash_is_a_dry_run_until_applied(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(p.name for p in corpus.iterdir())
    new_name = _current_name_of(corpus / PREVIOUS_ONLY)
    code, out, _ = _run(capsys, "rehash", "r")
    assert code == 0
    assert out == (
        f"would rename r/{PREVIOUS_ONLY} -> {new_name}\n"
        "1 file would be renamed; run with --apply to rename them.\n"
    )
    assert sorted(p.name for p in corpus.iterdir()) == before

    content = (corpus / PREVIOUS_ONLY).read_bytes()
    code, out, _ = _run(capsys, "rehash", "r", "--apply")
    assert code == 0
    assert (
        out == f"renamed r/{PREVIOUS_ONLY} -> {new_name}\n1 file renamed to current hash names.\n"
    )
    assert (corpus / new_name).read_bytes() == content  # renamed, not rewritten
    assert not (corpus / PREVIOUS_ONLY).exists()
    code, out, _ = _run(capsys, "verify", "r")
    assert (code, out) == (0, "8 recordings checked: no problems.\n")
    code, out, _ = _run(capsys, "rehash", "r")
    assert (code, out) == (0, "8 recordings checked: all named by the current hash rules.\n")


def test_rehash_never_overwrites_a_different_file(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new_name = _current_name_of(corpus / PREVIOUS_ONLY)
    other = corpus / "0886708d3ab00b528c88c7b002c3079bb9002f37afd2718eed71c90b04499c86.json"
    (corpus / new_name).write_bytes(other.read_bytes())  # some other recording holds the name
    code, out, err = _run(capsys, "rehash", "r", "--apply")
    assert code == 1
    assert err == (
        f"refused r/{PREVIOUS_ONLY} -> {new_name}: {new_name} exists with other content; "
        "compare them (apirecorder diff) and delete one\n"
    )
    assert out == "0 files renamed to current hash names.\n"
    assert (corpus / PREVIOUS_ONLY).exists()
    assert (corpus / new_name).read_bytes() == other.read_bytes()


def test_rehash_removes_an_old_name_whose_bytes_exist_under_the_new_one(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new_name = _current_name_of(corpus / PREVIOUS_ONLY)
    shutil.copy(corpus / PREVIOUS_ONLY, corpus / new_name)
    code, out, _ = _run(capsys, "rehash", "r", "--apply")
    assert code == 0
    assert out == (
        f"removed r/{PREVIOUS_ONLY}: the same bytes exist as {new_name}\n"
        "1 file renamed to current hash names.\n"
    )
    assert not (corpus / PREVIOUS_ONLY).exists()
