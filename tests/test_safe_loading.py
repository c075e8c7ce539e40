"""A recording is data, never code, and a broken one fails with a clear ApiRecorderError.

Every bad file is tried through the real replay path (an OpenAI client replaying with the
upstream stopped) and through ``load_recording``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

import apirecorder
from apirecorder._exceptions import RecordingFormatError, UnsafeTypeError
from apirecorder._serialization import from_json
from apirecorder._storage import load_recording
from tests.upstream import Upstream

TEST_ID = "tests/test_safe_loading.py::scenario"
MARKER_MODULE = "evil_marker_mod"
CHAT_TYPE = "openai.types.chat.chat_completion.ChatCompletion"


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)


def _chat(client: openai.OpenAI, stream: bool = False) -> Any:
    return client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Name a ringed planet"}],
        stream=stream,
    )


@pytest.fixture
def recorded(upstream: Upstream, tmp_path: Path) -> tuple[Path, str]:
    """One recorded chat completion (non-streaming), with the upstream stopped afterwards."""
    folder = tmp_path / "recordings"
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", folder):
        _chat(_client(upstream.url))
    (path,) = folder.glob("*.json")
    url = upstream.url
    upstream.stop()
    return path, url


@pytest.fixture
def marker_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module on sys.path that leaves a flag file behind when it is imported."""
    flag = tmp_path / "imported.flag"
    package = tmp_path / "marker_path"
    package.mkdir()
    (package / f"{MARKER_MODULE}.py").write_text(
        "import pathlib\n"
        "import pydantic\n"
        f"pathlib.Path({str(flag)!r}).write_text('imported')\n"
        "class Thing(pydantic.BaseModel):\n"
        "    model_config = pydantic.ConfigDict(extra='allow')\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(package))
    monkeypatch.delitem(sys.modules, MARKER_MODULE, raising=False)
    return flag


def _replay(path: Path, url: str, *, stream: bool = False, **options: Any) -> Any:
    with (
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("replay", path.parent, **options),
    ):
        result = _chat(_client(url), stream=stream)
        return list(result) if stream else result


def _rewrite(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


# -- __type__ and the allow-list ------------------------------------------------------


def _set_type(type_path: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["response"]["body"]["__type__"] = type_path

    return change


def test_os_system_type_is_refused_by_the_replay_path(recorded: tuple[Path, str]) -> None:
    path, url = recorded
    _rewrite(path, _set_type("os.system"))
    with pytest.raises(UnsafeTypeError) as err:
        _replay(path, url)
    message = str(err.value)
    assert str(path) in message
    assert "'os.system' is not in the allow-list" in message
    assert "nothing was imported" in message


def test_unlisted_module_is_never_imported(recorded: tuple[Path, str], marker_module: Path) -> None:
    path, url = recorded
    _rewrite(path, _set_type(f"{MARKER_MODULE}.Thing"))
    with pytest.raises(UnsafeTypeError, match=f"'{MARKER_MODULE}.Thing' is not in the allow"):
        _replay(path, url)
    assert MARKER_MODULE not in sys.modules
    assert not marker_module.exists()


def test_marker_module_is_imported_once_allowed(
    recorded: tuple[Path, str], marker_module: Path
) -> None:
    # The control experiment: the marker does fire when the module is allowed, so the
    # test above would notice an import.
    path, url = recorded
    _rewrite(path, _set_type(f"{MARKER_MODULE}.Thing"))
    # Imported and built, then refused: a Thing is no answer of a chat call.
    with pytest.raises(RecordingFormatError, match=r"evil_marker_mod\.Thing where this call"):
        _replay(path, url, allowed_types=[MARKER_MODULE])
    assert marker_module.read_text() == "imported"


def test_an_allowed_session_does_not_open_the_door_for_the_next(
    marker_module: Path,
) -> None:
    value = {"__type__": f"{MARKER_MODULE}.Thing", "__data__": {"a": 1}}
    assert type(from_json(value, extra=[MARKER_MODULE])).__name__ == "Thing"
    with pytest.raises(UnsafeTypeError):
        from_json(value, source="next.json")


@pytest.mark.parametrize(
    "type_path",
    [
        "openai.typesevil.Thing",  # a prefix of the name, not of the module path
        "openai.types.chat.chat_completion.os.PathLike",  # a module reached through one
        "openai.types.chat.ChatCompletion.__class__",  # pydantic's metaclass
        "openai.types.chat.chat_completion.ChatCompletion.__init__",
        "builtins.object",
        "",
    ],
)
def test_types_reached_through_an_allowed_module_are_refused(type_path: str) -> None:
    value = {"__type__": type_path, "__data__": {}}
    with pytest.raises(UnsafeTypeError) as err:
        from_json(value, source="x.json")
    assert "x.json" in str(err.value)


@pytest.mark.parametrize("type_value", [5, None, ["openai.types.x"], {"a": 1}])
def test_type_that_is_not_a_string_is_a_format_error(type_value: Any) -> None:
    if type_value is None:
        # {"__type__": null, ...} is plain data, as the reference recorder writes it.
        assert from_json({"__type__": None, "__data__": 1}) == {"__type__": None, "__data__": 1}
        return
    with pytest.raises(RecordingFormatError, match=r"x\.json"):
        from_json({"__type__": type_value, "__data__": {}}, source="x.json")


# -- malformed files ------------------------------------------------------------------

BAD_FILES: dict[str, tuple[Callable[[Path], None], str]] = {
    "not JSON": (
        lambda p: p.write_text("this is not json\n", encoding="utf-8"),
        "not valid JSON",
    ),
    "truncated": (
        lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
        "not valid JSON",
    ),
    "empty": (lambda p: p.write_bytes(b""), "not valid JSON"),
    "not UTF-8": (lambda p: p.write_bytes(b'{"request": "\xff\xfe"}'), "not UTF-8"),
    "a list": (lambda p: p.write_text("[1, 2]", encoding="utf-8"), "must be a JSON object"),
    "no request": (
        lambda p: _rewrite(p, lambda d: d.pop("request")),
        'the "request" field is missing',
    ),
    "no response": (
        lambda p: _rewrite(p, lambda d: d.pop("response")),
        'the "response" field is missing',
    ),
    "response is a string": (
        lambda p: _rewrite(p, lambda d: d.update(response="oops")),
        'the "response" field must be an object',
    ),
    "unknown format_version": (
        lambda p: _rewrite(p, lambda d: d.update(format_version=99)),
        "format_version 99 is not known",
    ),
    "streaming with an object body": (
        lambda p: _rewrite(p, lambda d: d["response"].update(is_streaming=True)),
        "response.body must be a list of chunks when is_streaming is true",
    ),
    "not a stream though the call asked for one": (
        lambda p: _rewrite(p, lambda d: d["request"]["body"].update(stream=True)),
        "request.body.stream is true but response.is_streaming is not",
    ),
    "is_streaming not a boolean": (
        lambda p: _rewrite(p, lambda d: d["response"].update(is_streaming="yes")),
        "response.is_streaming must be true or false",
    ),
    "__data__ of the wrong type": (
        lambda p: _rewrite(p, lambda d: d["response"]["body"].update(__data__="oops")),
        f"cannot build {CHAT_TYPE} from its recorded __data__",
    ),
    "id mapping that breaks the JSON": (
        lambda p: _rewrite(p, lambda d: d.update(id_normalization_mapping={"x": '"'})),
        "id_normalization_mapping",
    ),
    "a status code that is not a number": (
        lambda p: _rewrite(
            p,
            lambda d: d["response"].update(
                is_exception=True,
                exception_data={"type": "BadRequestError", "status_code": "abc", "body": None},
            ),
        ),
        "response.exception_data.status_code must be a whole number or null, found 'abc'",
    ),
    "a number too long to read": (
        lambda p: p.write_text('{"request": {}, "response": {"n": ' + "1" * 5000 + "}}"),
        "not valid JSON",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_file_fails_the_replay_with_a_named_error(
    case: str, recorded: tuple[Path, str]
) -> None:
    path, url = recorded
    damage, problem = BAD_FILES[case]
    damage(path)
    with pytest.raises(apirecorder.ApiRecorderError) as err:
        _replay(path, url)
    assert isinstance(err.value, RecordingFormatError)
    assert str(err.value).startswith(f"{path}: ")
    assert problem in str(err.value)


@pytest.mark.parametrize("case", [c for c in BAD_FILES if c != "__data__ of the wrong type"])
def test_bad_file_fails_load_recording_with_a_named_error(
    case: str, recorded: tuple[Path, str]
) -> None:
    path, _ = recorded
    damage, problem = BAD_FILES[case]
    damage(path)
    with pytest.raises(RecordingFormatError) as err:
        load_recording(path)
    assert str(err.value).startswith(f"{path}: ")
    assert problem in str(err.value)


def test_missing_file_fails_load_recording_with_a_named_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(RecordingFormatError, match=f"{path}: cannot read the file"):
        load_recording(path)


def test_streaming_body_of_the_wrong_shape_fails_a_streaming_replay(
    upstream: Upstream, tmp_path: Path
) -> None:
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        _chat(_client(upstream.url), stream=True)
    (path,) = tmp_path.glob("*.json")
    url = upstream.url
    upstream.stop()
    _rewrite(path, lambda d: d["response"].update(body={"not": "a list"}))
    with pytest.raises(RecordingFormatError, match="must be a list of chunks"):
        _replay(path, url, stream=True)


def test_reference_files_without_format_version_still_load() -> None:
    for path in Path("tests/fixtures").rglob("*.json"):
        recording = load_recording(path)
        assert "format_version" not in recording.data


# -- size and depth -------------------------------------------------------------------


def test_huge_recording_loads_and_replays(recorded: tuple[Path, str]) -> None:
    path, url = recorded
    big = "x" * (50 * 1024 * 1024)

    def enlarge(data: dict[str, Any]) -> None:
        data["response"]["body"]["__data__"]["choices"][0]["message"]["content"] = big

    _rewrite(path, enlarge)
    assert path.stat().st_size > 50 * 1024 * 1024
    result = _replay(path, url)
    assert len(result.choices[0].message.content) == len(big)


def test_huge_garbage_file_is_a_named_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.json"
    path.write_bytes(b'{"request": {"a": "' + b"\x00\xff" * (25 * 1024 * 1024))
    with pytest.raises(RecordingFormatError, match=r"garbage\.json"):
        load_recording(path)


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deeply_nested_file_is_a_named_error(opener: str, tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text(opener * 100_000, encoding="utf-8")
    with pytest.raises(RecordingFormatError, match=r"deep\.json"):
        load_recording(path)


def test_value_too_deep_to_rebuild_is_a_named_error() -> None:
    deep: Any = []
    for _ in range(50_000):
        deep = [deep]
    with pytest.raises(RecordingFormatError, match=r"deep\.json: the recorded value is nested"):
        from_json({"body": deep}, source="deep.json")


def test_nesting_near_the_limit_never_escapes_as_recursion_error(
    recorded: tuple[Path, str],
) -> None:
    # From as deep as the parser refuses down to shallow: each replay either rebuilds the
    # value or fails with a RecordingFormatError; a RecursionError never reaches the test.
    path, url = recorded
    data = json.loads(path.read_text(encoding="utf-8"))
    data["response"]["body"] = "NESTED"
    template = json.dumps(data)
    outcomes: set[str] = set()
    for depth in range(sys.getrecursionlimit(), 0, -50):
        nested = "[" * depth + "]" * depth
        path.write_text(template.replace('"NESTED"', nested), encoding="utf-8")
        try:
            _replay(path, url)
            outcomes.add("replayed")
        except RecordingFormatError as err:
            # The first line names the problem; the next ones, the command that re-records.
            outcomes.add(str(err).replace(f"{path}: ", "named: ", 1).splitlines()[0])
    # A shallow list rebuilds, and is then refused as no answer of a chat call.
    assert outcomes == {
        "named: it answers with a builtins.list where this call returns "
        "openai.types.chat.chat_completion.ChatCompletion: it is not a recording of this call; "
        "re-record it",
        "named: the JSON is nested too deeply to read",
        "named: the recorded value is nested too deeply to rebuild",
    }
