"""A replay miss explains itself: the nearest recording and what changed, pinned word for word."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest

import apirecorder
from apirecorder._diagnostics import (
    Difference,
    diff_values,
    format_differences,
    word_diff,
)
from apirecorder._recording import engine_of
from tests.upstream import Upstream

pytest_plugins = ["pytester"]

TEST_ID = "tests/test_chat.py::test_saturn"
RECORD = "  pytest tests/test_chat.py::test_saturn --apirecorder-mode=record-if-missing"


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)


def _chat(client: openai.OpenAI, prompt: str, **params: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": prompt}], **params
    )


def _record(folder: Path, upstream: Upstream, test_id: str, prompt: str, **params: Any) -> Path:
    before = set(folder.glob("*.json"))
    with apirecorder.recording("record", folder), apirecorder.test_context(test_id):
        _chat(_client(upstream.url), prompt, **params)
    (written,) = set(folder.glob("*.json")) - before
    return written


def _miss(folder: Path, test_id: str, prompt: str, **params: Any) -> str:
    with (
        apirecorder.recording("replay", folder),
        apirecorder.test_context(test_id),
        pytest.raises(apirecorder.RecordingNotFoundError) as caught,
    ):
        _chat(_client("http://127.0.0.1:9"), prompt, **params)
    return f"{caught.value}\nHASH={caught.value.request_hash}"


def _header(kind: str, folder: Path, request_hash: str, **fields: str) -> list[str]:
    return [
        f"No recording for this {kind} call (mode: replay).",
        f"  test id:  {fields.get('test_id', TEST_ID)}",
        f"  endpoint: {fields.get('endpoint', '/v1/chat/completions')}",
        f"  model:    {fields.get('model', 'gpt-4o')}",
        f"  hash:     {request_hash}",
        f"  searched: {folder}",
    ]


def _split(message: str) -> tuple[list[str], str]:
    text, _, request_hash = message.rpartition("\nHASH=")
    return text.splitlines(), request_hash


def test_a_changed_prompt_word_and_parameters_show_as_a_field_level_diff(
    tmp_path: Path, upstream: Upstream
) -> None:
    recorded = _record(
        tmp_path, upstream, TEST_ID, "Which planet has rings?", temperature=0.2, max_tokens=50
    )
    upstream.stop()
    lines, request_hash = _split(
        _miss(tmp_path, TEST_ID, "Which planet has moons?", temperature=0.7, top_p=0.5)
    )
    assert lines == [
        *_header("inference", tmp_path, request_hash),
        f"Nearest recording (same test and endpoint): {recorded}",
        "  changes since it was recorded (recorded -> now):",
        "    messages[0].content:",
        "      - Which planet has rings?",
        "      + Which planet has moons?",
        "      ~ Which planet has [-rings-]{+moons+}?",
        "    temperature: 0.2 -> 0.7",
        "    max_tokens: removed (was 50)",
        "    top_p: added 0.5",
        "To record it, run:",
        RECORD,
    ]


def test_only_the_test_id_changed(tmp_path: Path, upstream: Upstream) -> None:
    old_id = "tests/test_chat.py::test_old_name"
    recorded = _record(tmp_path, upstream, old_id, "Which planet has rings?")
    upstream.stop()
    lines, request_hash = _split(_miss(tmp_path, TEST_ID, "Which planet has rings?"))
    assert lines == [
        *_header("inference", tmp_path, request_hash),
        f"Nearest recording (same endpoint, recorded by {old_id}): {recorded}",
        "  the test id changed; the request is otherwise the same.",
        "To record it, run:",
        RECORD,
    ]


def test_the_same_test_is_preferred_over_another_tests_closer_recording(
    tmp_path: Path, upstream: Upstream
) -> None:
    mine = _record(tmp_path, upstream, TEST_ID, "Which planet has rings?")
    _record(tmp_path, upstream, "tests/test_chat.py::test_other", "Which planet is red?")
    upstream.stop()
    lines, _ = _split(_miss(tmp_path, TEST_ID, "Which planet is red?"))
    assert lines[6] == f"Nearest recording (same test and endpoint): {mine}"
    assert lines[9:11] == ["      - Which planet has rings?", "      + Which planet is red?"]


def test_another_endpoint_is_never_the_nearest(tmp_path: Path, upstream: Upstream) -> None:
    _record(tmp_path, upstream, TEST_ID, "Which planet has rings?")
    upstream.stop()
    with (
        apirecorder.recording("replay", tmp_path),
        apirecorder.test_context(TEST_ID),
        pytest.raises(apirecorder.RecordingNotFoundError) as caught,
    ):
        _client("http://127.0.0.1:9").embeddings.create(model="emb", input="rings")
    assert str(caught.value).splitlines() == [
        *_header(
            "inference",
            tmp_path,
            caught.value.request_hash,
            endpoint="/v1/embeddings",
            model="emb",
        ),
        "Nearest recording: none for /v1/embeddings in the searched folders.",
        "To record it, run:",
        RECORD,
    ]


def test_a_multi_line_prompt_shows_a_unified_diff(tmp_path: Path, upstream: Upstream) -> None:
    system = "You are terse.\nAnswer in one word.\nNever apologize."
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "Planet?"}]
    with apirecorder.recording("record", tmp_path), apirecorder.test_context(TEST_ID):
        _client(upstream.url).chat.completions.create(model="gpt-4o", messages=messages)
    upstream.stop()
    messages[0]["content"] = system.replace("one word", "two words")
    with (
        apirecorder.recording("replay", tmp_path),
        apirecorder.test_context(TEST_ID),
        pytest.raises(apirecorder.RecordingNotFoundError) as caught,
    ):
        _client("http://127.0.0.1:9").chat.completions.create(model="gpt-4o", messages=messages)
    lines = str(caught.value).splitlines()
    start = lines.index("    messages[0].content:")
    assert lines[start : start + 6] == [
        "    messages[0].content:",
        "      @@ -1,3 +1,3 @@",
        "       You are terse.",
        "      -Answer in one word.",
        "      +Answer in two words.",
        "       Never apologize.",
    ]


def test_a_tool_call_miss_diffs_the_keyword_arguments(tmp_path: Path) -> None:
    with apirecorder.recording("record", tmp_path) as view, apirecorder.test_context(TEST_ID):
        session = engine_of(view)
        call = session.tool_call("tavily", "search", {"query": "rings of saturn", "max_results": 3})
        recorded = session.save(call, {"body": {"results": []}, "is_streaming": False})
    with apirecorder.recording("replay", tmp_path) as view, apirecorder.test_context(TEST_ID):
        session = engine_of(view)
        call = session.tool_call("tavily", "search", {"query": "moons of saturn", "max_results": 5})
        with pytest.raises(apirecorder.RecordingNotFoundError) as caught:
            session.lookup(call)
    assert str(caught.value).splitlines() == [
        *_header("tool", tmp_path, call.request_hash, endpoint="tavily.search", model="-"),
        f"Nearest recording (same test and endpoint): {recorded}",
        "  changes since it was recorded (recorded -> now):",
        "    query:",
        "      - rings of saturn",
        "      + moons of saturn",
        "      ~ [-rings-]{+moons+} of saturn",
        "    max_results: 3 -> 5",
        "To record it, run:",
        RECORD,
    ]


def test_an_http_call_miss_shows_a_changed_port_and_payload(tmp_path: Path) -> None:
    old_url = "http://127.0.0.1:5001/misc/echo?x=1"
    new_url = "http://127.0.0.1:6002/misc/echo?x=1"
    with apirecorder.recording("record", tmp_path) as view, apirecorder.test_context(TEST_ID):
        session = engine_of(view)
        call = session.http_call(method="POST", url=old_url, headers={}, payload={"n": 1})
        recorded = session.save(
            call, {"body": {"ok": True}, "status": 200, "headers": {}, "is_streaming": False}
        )
    with apirecorder.recording("replay", tmp_path) as view, apirecorder.test_context(TEST_ID):
        session = engine_of(view)
        call = session.http_call(method="POST", url=new_url, headers={}, payload={"n": 2})
        with pytest.raises(apirecorder.RecordingNotFoundError) as caught:
            session.lookup(call)
    assert str(caught.value).splitlines() == [
        *_header("http", tmp_path, call.request_hash, endpoint=f"POST {new_url}", model="-"),
        f"Nearest recording (same test and endpoint): {recorded}",
        "  changes since it was recorded (recorded -> now):",
        f'    url: "{old_url}" -> "{new_url}"',
        "    n: 1 -> 2",
        "To record it, run:",
        RECORD,
    ]


def test_unreadable_files_in_the_folder_do_not_hide_the_nearest(
    tmp_path: Path, upstream: Upstream
) -> None:
    recorded = _record(tmp_path, upstream, TEST_ID, "Which planet has rings?")
    upstream.stop()
    (tmp_path / ("0" * 64 + ".json")).write_text("{ truncated")
    lines, _ = _split(_miss(tmp_path, TEST_ID, "Which planet has moons?"))
    assert f"Nearest recording (same test and endpoint): {recorded}" in lines


# -- the diff itself ---------------------------------------------------------------------


def test_lists_of_different_lengths_are_aligned_by_content() -> None:
    old = {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}
    new = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
        ]
    }
    assert diff_values(old, new) == [
        Difference("messages[0]", "added", new={"role": "system", "content": "be brief"})
    ]
    assert format_differences(diff_values(old, new)) == [
        'messages[0]: added {"role": "system", "content": "be brief"}'
    ]


def test_types_keys_and_long_values_are_rendered_readably() -> None:
    differences = diff_values(
        {"stream": False, "n": 1, "stop": ["a"], "odd key": 1, "seed": 1},
        {"stream": True, "n": "1", "stop": ["a", "b"], "odd key": 2, "seed": 1},
    )
    assert format_differences(differences) == [
        "stream: false -> true",
        'n: 1 -> "1"',
        'stop[1]: added "b"',
        '["odd key"]: 1 -> 2',
    ]
    many = diff_values({f"k{i}": i for i in range(15)}, {f"k{i}": -i for i in range(1, 15)})
    assert format_differences(many)[-1] == "... and 3 more differences"


def test_floats_that_hash_alike_are_not_differences(tmp_path: Path, upstream: Upstream) -> None:
    _record(tmp_path, upstream, TEST_ID, "Which planet has rings?", temperature=0.1234561)
    upstream.stop()
    lines, _ = _split(_miss(tmp_path, TEST_ID, "Which planet has moons?", temperature=0.1234564))
    assert not any("temperature" in line for line in lines)


def test_word_diff_keeps_context_around_changes_in_long_text() -> None:
    words = " ".join(f"w{i}" for i in range(60))
    changed = words.replace("w30", "CHANGED")
    assert word_diff(words, changed) == (
        "...w25 w26 w27 w28 w29 [-w30-]{+CHANGED+} w31 w32 w33 w34 w35..."
    )
    assert word_diff("a b", "a c") == "a [-b-]{+c+}"


# -- end to end through pytest ---------------------------------------------------------

CHAT_TEST = """
import os
import openai
import pytest

@pytest.mark.apirecorder
def test_saturn():
    client = openai.OpenAI(base_url=os.environ["UPSTREAM"] + "/v1", api_key="k", max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Which planet has PLANET rings?"}],
        stream=True,
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream).startswith("Echo:")
"""


def test_a_pytest_failure_shows_the_diff_line_of_the_changed_word(
    pytester: pytest.Pytester, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPSTREAM", upstream.url)
    monkeypatch.delenv("APIRECORDER_MODE", raising=False)
    monkeypatch.delenv("APIRECORDER_DIR", raising=False)
    pytester.makepyfile(test_chat=CHAT_TEST.replace("PLANET", "bright"))
    recorded = pytester.runpytest("-p", "no:hypothesispytest", "--apirecorder-mode=record")
    recorded.assert_outcomes(passed=1)
    (recording,) = (pytester.path / "recordings").glob("*.json")
    assert json.loads(recording.read_text())["test_id"] == "test_chat.py::test_saturn"
    upstream.stop()

    pytester.makepyfile(test_chat=CHAT_TEST.replace("PLANET", "faint"))
    result = pytester.runpytest("-p", "no:hypothesispytest")
    result.assert_outcomes(failed=1)
    expected = [
        "*RecordingNotFoundError: No recording for this inference call (mode: replay).",
        "*  test id:  test_chat.py::test_saturn",
        f"*Nearest recording (same test and endpoint): {recording}",
        "*  changes since it was recorded (recorded -> now):",
        "*    messages[0].content:",
        "*      - Which planet has bright rings?",
        "*      + Which planet has faint rings?",
        "*      ~ Which planet has [-bright-]{+faint+} rings?",
        "*To record it, run:",
        "*  pytest test_chat.py::test_saturn --apirecorder-mode=record-if-missing",
    ]
    # In fnmatch patterns "[" opens a character class; "[[]" is a literal one.
    result.stdout.fnmatch_lines([line.replace("[", "[[]") for line in expected])


def test_a_failing_nearest_search_never_hides_the_miss(tmp_path: Path, upstream: Upstream) -> None:
    _record(tmp_path, upstream, TEST_ID, "Which planet has rings?")
    upstream.stop()

    def only_moons(body: dict[str, Any]) -> dict[str, Any]:
        if "moons" not in json.dumps(body):
            raise ValueError("not about moons")
        return body

    with (
        apirecorder.recording("replay", tmp_path, normalizers=[only_moons]),
        apirecorder.test_context(TEST_ID),
        pytest.raises(apirecorder.RecordingNotFoundError) as caught,
    ):
        _chat(_client("http://127.0.0.1:9"), "Which planet has moons?")
    lines = str(caught.value).splitlines()
    assert lines[6:] == [
        "Nearest recording: the search failed (ValueError: not about moons).",
        "To record it, run:",
        RECORD,
    ]
