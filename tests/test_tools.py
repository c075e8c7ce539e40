"""Any Python callable as a recorded tool: keys, result types, errors, generators, patching, ids."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import shutil
import typing
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pydantic
import pytest

import apirecorder
from apirecorder._exceptions import SerializationError, UnsafeTypeError
from apirecorder._hashing import tool_request_hash
from apirecorder._ids import id_counter_start

FIXTURES = Path(__file__).parent / "fixtures" / "reference-sample"
TAVILY_FIXTURE = "6d9cbffef9f5654b2a520171ac36175f6886d64f0c6c1eb94c9b4d86d718b606.json"
TEST_ID = "tests/test_tools.py::example"


# -- tools under test ------------------------------------------------------------------------

calls: list[str] = []


class Hit(pydantic.BaseModel):
    url: str
    score: float


@dataclasses.dataclass
class Page:
    hits: list[Hit]
    total: int
    note: str = dataclasses.field(default="", init=False)


@dataclasses.dataclass(frozen=True)
class Summary:
    page: Page
    words: tuple[str, ...]


class SearchFailedError(Exception):
    """An application error with a message."""


class RetryLaterError(Exception):
    """Its constructor takes a number; its message is a sentence."""

    def __init__(self, seconds: int) -> None:
        super().__init__(f"retry in {seconds} seconds")
        self.seconds = seconds


@apirecorder.tool("web", name="search")
def search(query: str, max_results: int = 3) -> Page:
    calls.append(f"search:{query}")
    if query == "fail":
        raise SearchFailedError(f"search for {query!r} failed")
    if query == "later":
        raise RetryLaterError(7)
    if query == "value":
        raise ValueError("bad query")
    if query == "json":
        json.loads("{oops")
    page = Page(
        [Hit(url=f"https://example.com/{query}/{i}", score=0.5 / (i + 1)) for i in range(2)], 2
    )
    page.note = "two hits"
    return page


@apirecorder.tool("web")
async def fetch(url: str) -> dict[str, Any]:
    calls.append(f"fetch:{url}")
    await asyncio.sleep(0)
    return {"url": url, "status": 200, "tags": ["a", "b"], "size": 1.5, "extra": None}


@apirecorder.tool("web")
def summarize(url: str) -> Summary:
    calls.append(f"summarize:{url}")
    return Summary(Page([Hit(url=url, score=1.0)], 1), ("short", "text"))


@apirecorder.tool("stream")
def count(n: int) -> Iterator[dict[str, int]]:
    calls.append(f"count:{n}")
    for i in range(n):
        if i == 2 and n == 99:
            raise SearchFailedError("stream broke at 2")
        yield {"i": i}


@apirecorder.tool("stream")
async def acount(n: int) -> AsyncIterator[Hit]:
    calls.append(f"acount:{n}")
    for i in range(n):
        await asyncio.sleep(0)
        yield Hit(url=f"u{i}", score=float(i))


class Client:
    """Something a tool needs that is not part of the call's key."""

    def __init__(self, name: str) -> None:
        self.name = name


@apirecorder.tool("web", exclude=("client",))
def lookup(client: Client, term: str) -> str:
    calls.append(f"lookup:{client.name}:{term}")
    return f"{term} via {client.name}"


@apirecorder.tool("web")
def lookup_strict(client: Client, term: str) -> str:
    return term


@apirecorder.tool("web")
def leaky(term: str) -> object:
    return object()


class Searcher:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @apirecorder.tool("web")
    def search(self, query: str) -> str:
        calls.append(f"method:{query}")
        return f"{self.prefix}{query}"

    @apirecorder.tool("web")
    async def asearch(self, query: str) -> list[str]:
        calls.append(f"amethod:{query}")
        return [self.prefix, query]

    @apirecorder.tool("web")
    @classmethod
    def build(cls, query: str) -> str:
        calls.append(f"classmethod:{query}")
        return f"{cls.__name__}:{query}"

    @apirecorder.tool("web")
    @staticmethod
    def plain(query: str) -> str:
        calls.append(f"staticmethod:{query}")
        return query.upper()


def third_party_search(query: str, *, limit: int = 5, **options: Any) -> dict[str, Any]:
    """Stands for a library function the user cannot decorate."""
    calls.append(f"third:{query}")
    return {"query": query, "limit": limit, "options": options}


class ThirdPartyClient:
    def search(self, query: str, limit: int = 5) -> list[str]:
        calls.append(f"third-method:{query}")
        return [query] * limit


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


def record(tmp_path: Path, test_id: str = TEST_ID, **options: Any) -> Any:
    return _session(tmp_path, "record", test_id, **options)


def replay(tmp_path: Path, test_id: str = TEST_ID, **options: Any) -> Any:
    return _session(tmp_path, "replay", test_id, **options)


@contextmanager
def _session(tmp_path: Path, mode: str, test_id: str, **options: Any) -> Iterator[None]:
    """A recording() block with a test id, as one context manager."""
    with apirecorder.recording(mode, tmp_path, **options), apirecorder.test_context(test_id):
        yield


def only_recording(folder: Path) -> dict[str, Any]:
    files = sorted(folder.glob("*.json"))
    assert len(files) == 1, files
    data: dict[str, Any] = json.loads(files[0].read_text())
    return data


# -- the key ---------------------------------------------------------------------------------


def test_positional_and_keyword_arguments_make_one_recording(tmp_path: Path) -> None:
    with record(tmp_path):
        search("saturn", max_results=3)
        search(query="saturn", max_results=3)
    # One key: the second is the same call made again, its recording <hash>-2.json.
    expected = tool_request_hash("web", "search", {"query": "saturn", "max_results": 3})
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{expected}-2.json", f"{expected}.json"]
    (tmp_path / f"{expected}-2.json").unlink()
    data = only_recording(tmp_path)
    assert data["request"] == {
        "test_id": TEST_ID,
        "provider": "web",
        "tool_name": "search",
        "kwargs": {"query": "saturn", "max_results": 3},
    }


def test_defaults_are_not_part_of_the_key(tmp_path: Path) -> None:
    with record(tmp_path):
        search("saturn")
    assert only_recording(tmp_path)["request"]["kwargs"] == {"query": "saturn"}
    with replay(tmp_path), pytest.raises(apirecorder.RecordingNotFoundError) as miss:
        search("saturn", max_results=3)
    assert "web.search" in str(miss.value)


def test_reference_tool_recording_name_is_reproduced(tmp_path: Path) -> None:
    @apirecorder.tool("tavily", name="web_search")
    def web_search(query: str, max_results: int | None = None) -> dict[str, Any]:
        return {"query": query}

    with record(tmp_path):
        web_search("test query 0")
    assert [p.name for p in tmp_path.iterdir()] == [TAVILY_FIXTURE]


def test_reference_tool_recording_type_outside_allow_list_is_refused(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / TAVILY_FIXTURE, tmp_path / TAVILY_FIXTURE)

    @apirecorder.tool("tavily", name="web_search")
    def web_search(query: str) -> dict[str, Any]:
        raise AssertionError("replay must not call the tool")

    with replay(tmp_path), pytest.raises(UnsafeTypeError) as refused:
        web_search(query="test query 0")
    message = str(refused.value)
    assert TAVILY_FIXTURE in message
    assert "'ogx_api.tools.ToolInvocationResult' is not in the allow-list" in message
    assert "apirecorder.allow_types('<module prefix>')" in message


def test_self_and_excluded_arguments_stay_out_of_the_key(tmp_path: Path) -> None:
    with record(tmp_path):
        assert lookup(Client("live"), "moon") == "moon via live"
    assert only_recording(tmp_path)["request"]["kwargs"] == {"term": "moon"}
    with replay(tmp_path):
        assert lookup(Client("replay"), term="moon") == "moon via live"
    assert calls == ["lookup:live:moon"]


def test_argument_that_cannot_be_serialized_names_tool_and_argument(tmp_path: Path) -> None:
    with record(tmp_path), pytest.raises(SerializationError) as error:
        lookup_strict(Client("x"), "moon")
    assert str(error.value) == (
        "tool web.lookup_strict: argument 'client' is a value of type Client, which cannot be "
        "part of a recording's key. Pass JSON-able values (str, numbers, lists, dicts, pydantic "
        "models, dataclasses), or leave the argument out of the key with exclude=('client',)."
    )
    assert list(tmp_path.iterdir()) == []


def test_return_value_that_cannot_be_serialized_names_the_tool(tmp_path: Path) -> None:
    with record(tmp_path), pytest.raises(SerializationError, match=r"tool web\.leaky .* object"):
        leaky("x")
    assert list(tmp_path.iterdir()) == []


def test_exclude_of_an_unknown_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match=r"tool web\.f: exclude names 'clinet', which is not a"):

        @apirecorder.tool("web", exclude=("clinet",))
        def f(client: object, q: str) -> str:
            return q


def test_arguments_of_pydantic_and_dataclass_types_are_stored_as_json(tmp_path: Path) -> None:
    @apirecorder.tool("web")
    def rank(hit: Hit, page: Page, tags: tuple[str, ...]) -> float:
        return hit.score

    with record(tmp_path):
        rank(Hit(url="u", score=0.25), Page([], 0), ("a", "b"))
    assert only_recording(tmp_path)["request"]["kwargs"] == {
        "hit": {"url": "u", "score": 0.25},
        "page": {"hits": [], "total": 0, "note": ""},
        "tags": ["a", "b"],
    }


# -- results ---------------------------------------------------------------------------------


def test_pydantic_and_dataclass_results_replay_as_their_types(tmp_path: Path) -> None:
    with record(tmp_path):
        live = search("saturn")
        live_summary = summarize("https://example.com")
    with replay(tmp_path):
        replayed = search("saturn")
        replayed_summary = summarize("https://example.com")
    assert calls == ["search:saturn", "summarize:https://example.com"]
    assert type(replayed) is Page and all(type(h) is Hit for h in replayed.hits)
    assert replayed == live and replayed.note == "two hits"
    assert type(replayed_summary) is Summary and type(replayed_summary.page) is Page
    assert replayed_summary.page == live_summary.page
    # Tuples are JSON arrays: they come back as lists.
    words: Any = replayed_summary.words
    assert words == ["short", "text"]


def test_async_function_replays_json_value(tmp_path: Path) -> None:
    with record(tmp_path):
        live = asyncio.run(fetch("https://example.com/a"))
    with replay(tmp_path):
        replayed = asyncio.run(fetch(url="https://example.com/a"))
    assert (
        replayed
        == live
        == {
            "url": "https://example.com/a",
            "status": 200,
            "tags": ["a", "b"],
            "size": 1.5,
            "extra": None,
        }
    )
    assert calls == ["fetch:https://example.com/a"]


def test_methods_classmethods_and_staticmethods(tmp_path: Path) -> None:
    async def both(searcher: Searcher) -> tuple[str, list[str], str, str]:
        return (
            searcher.search("a"),
            await searcher.asearch("b"),
            Searcher.build("c"),
            Searcher.plain("d"),
        )

    with record(tmp_path):
        live = asyncio.run(both(Searcher("live:")))
    with replay(tmp_path):
        replayed = asyncio.run(both(Searcher("other:")))
    assert replayed == live == ("live:a", ["live:", "b"], "Searcher:c", "D")
    assert calls == ["method:a", "amethod:b", "classmethod:c", "staticmethod:d"]
    names = sorted(json.loads(p.read_text())["request"]["tool_name"] for p in tmp_path.iterdir())
    assert names == ["Searcher.asearch", "Searcher.build", "Searcher.plain", "Searcher.search"]
    assert all(
        "self" not in json.loads(p.read_text())["request"]["kwargs"] for p in tmp_path.iterdir()
    )


def test_outside_recording_and_in_live_mode_the_tool_just_runs(tmp_path: Path) -> None:
    assert search("free").total == 2
    with apirecorder.recording("live", tmp_path):
        assert search("live").total == 2
    assert calls == ["search:free", "search:live"]
    assert list(tmp_path.iterdir()) == []


# -- exceptions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "error_type", "message"),
    [
        ("fail", SearchFailedError, "search for 'fail' failed"),
        ("later", RetryLaterError, "retry in 7 seconds"),
        ("value", ValueError, "bad query"),
    ],
)
def test_exception_replays_as_its_type_with_its_message(
    tmp_path: Path, query: str, error_type: type[Exception], message: str
) -> None:
    with record(tmp_path), pytest.raises(error_type) as live:
        search(query)
    with replay(tmp_path), pytest.raises(error_type) as replayed:
        search(query)
    assert type(replayed.value) is error_type
    assert str(replayed.value) == str(live.value) == message
    assert calls == [f"search:{query}"]
    data = only_recording(tmp_path)["response"]
    assert data["is_exception"] is True
    assert data["exception_message"] == message
    assert data["exception_data"]["type"] == error_type.__qualname__
    if error_type is RetryLaterError:
        assert replayed.value.seconds == 7  # type: ignore[attr-defined]


def test_exception_class_outside_the_allow_list_gives_a_clear_error(tmp_path: Path) -> None:
    with record(tmp_path), pytest.raises(json.JSONDecodeError):
        search("json")
    with replay(tmp_path), pytest.raises(UnsafeTypeError) as refused:
        search("json")
    message = str(refused.value)
    assert "tool web.search raised json.decoder.JSONDecodeError when it was recorded" in message
    assert "allowed_types=('json.decoder',)" in message
    with replay(tmp_path, allowed_types=("json.decoder",)), pytest.raises(json.JSONDecodeError):
        search("json")


# -- generators ------------------------------------------------------------------------------


def test_generator_items_replay_in_order_even_when_the_consumer_stops_early(
    tmp_path: Path,
) -> None:
    with record(tmp_path):
        first = next(iter(count(4)))
    assert first == {"i": 0}
    data = only_recording(tmp_path)["response"]
    assert data["is_streaming"] is True and len(data["body"]) == 4
    with replay(tmp_path):
        assert list(count(n=4)) == [{"i": 0}, {"i": 1}, {"i": 2}, {"i": 3}]
    assert calls == ["count:4"]


def test_generator_that_fails_midway_replays_items_then_the_error(tmp_path: Path) -> None:
    def drain() -> list[Any]:
        seen: list[Any] = []
        with pytest.raises(SearchFailedError, match="stream broke at 2"):
            for item in count(99):
                seen.append(item)
        return seen

    with record(tmp_path):
        assert drain() == [{"i": 0}, {"i": 1}]
    with replay(tmp_path):
        assert drain() == [{"i": 0}, {"i": 1}]
    assert calls == ["count:99"]


def test_async_generator_items_replay_as_their_types(tmp_path: Path) -> None:
    async def collect() -> list[Hit]:
        return [hit async for hit in acount(3)]

    with record(tmp_path):
        live = asyncio.run(collect())
    with replay(tmp_path):
        replayed = asyncio.run(collect())
    assert replayed == live and all(type(h) is Hit for h in replayed)
    assert calls == ["acount:3"]


# -- patch_tool ------------------------------------------------------------------------------


def test_patch_tool_records_a_module_function_and_undoes_the_patch(tmp_path: Path) -> None:
    original = third_party_search
    target = f"{__name__}:third_party_search"
    with record(tmp_path), apirecorder.patch_tool(target, provider="lib", name="find"):
        live = globals()["third_party_search"]("x", limit=2, lang="en")
    assert globals()["third_party_search"] is original
    assert only_recording(tmp_path)["request"]["kwargs"] == {
        "query": "x",
        "limit": 2,
        "lang": "en",
    }
    with replay(tmp_path), apirecorder.patch_tool(target, provider="lib", name="find"):
        replayed = globals()["third_party_search"](query="x", lang="en", limit=2)
    assert replayed == live
    assert calls == ["third:x"]


def test_recording_tools_option_patches_a_method(tmp_path: Path) -> None:
    spec = f"{__name__}:ThirdPartyClient.search lib"
    with record(tmp_path, tools=[spec]):
        live = ThirdPartyClient().search("y", limit=2)
        assert getattr(ThirdPartyClient.search, "__apirecorder_tool__", None) is not None
    assert getattr(ThirdPartyClient.search, "__apirecorder_tool__", None) is None
    data = only_recording(tmp_path)["request"]
    assert (data["provider"], data["tool_name"]) == ("lib", "ThirdPartyClient.search")
    with replay(tmp_path, tools=[(f"{__name__}:ThirdPartyClient.search", "lib")]):
        assert ThirdPartyClient().search("y", 2) == live == ["y", "y"]
    assert calls == ["third-method:y"]


def test_patching_twice_records_once(tmp_path: Path) -> None:
    spec = f"{__name__}:ThirdPartyClient.search lib"
    with record(tmp_path, tools=[spec]), apirecorder.patch_tool(spec.split()[0], "lib"):
        ThirdPartyClient().search("z", limit=1)
    assert calls == ["third-method:z"]
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tests.test_tools.search lib", "must look like 'package.module:Class.method'"),
        ("tests.no_such_module:f lib", "cannot import 'tests.no_such_module'"),
        ("tests.test_tools:NoSuchClass.search lib", "tests.test_tools has no NoSuchClass.search"),
        ("tests.test_tools:ThirdPartyClient.search", "must be 'package.module:Class.method"),
    ],
)
def test_bad_tool_specs_are_explained(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message), record(tmp_path, tools=[spec]):
        pass


# -- deterministic ids -----------------------------------------------------------------------


def test_deterministic_ids_count_per_test_and_kind(tmp_path: Path) -> None:
    start = id_counter_start(TEST_ID)
    with record(tmp_path):
        first = apirecorder.deterministic_id("file", "file-")
        second = apirecorder.deterministic_id("file", "file-")
        call = apirecorder.deterministic_id("tool_call", "call_")
        with apirecorder.test_context("tests/test_tools.py::other"):
            other = apirecorder.deterministic_id("file", "file-")
    assert (first, second, call) == (f"file-{start + 1}", f"file-{start + 2}", f"call_{start + 1}")
    assert other == f"file-{id_counter_start('tests/test_tools.py::other') + 1}"
    with replay(tmp_path):  # a new session counts afresh: replay hands out the same ids
        assert apirecorder.deterministic_id("file", "file-") == first


def test_deterministic_ids_are_random_outside_recording(tmp_path: Path) -> None:
    outside = {apirecorder.deterministic_id("file", "file-") for _ in range(3)}
    with apirecorder.test_context(TEST_ID):
        outside.add(apirecorder.deterministic_id("file", "file-"))
    with apirecorder.recording("live", tmp_path), apirecorder.test_context(TEST_ID):
        outside.add(apirecorder.deterministic_id("file", "file-"))
    assert len(outside) == 5
    assert all(i.startswith("file-") and len(i) == len("file-") + 32 for i in outside)


DETERMINISTIC_TESTS = """
import json, pathlib
import apirecorder
import pytest

OUT = pathlib.Path(__file__).parent / "ids.jsonl"

def remember(name):
    ids = [apirecorder.deterministic_id("file", "file-") for _ in range(2)]
    ids.append(apirecorder.deterministic_id("tool_call", "call_"))
    with OUT.open("a") as out:
        out.write(json.dumps({"test": name, "ids": ids}) + "\\n")

@pytest.mark.apirecorder
def test_one():
    remember("one")

@pytest.mark.apirecorder
def test_two():
    remember("two")
"""


def test_deterministic_ids_equal_across_record_and_replay_runs(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_ids=DETERMINISTIC_TESTS)
    for mode in ("record", "replay"):
        result = pytester.runpytest_subprocess(
            f"--apirecorder-mode={mode}", "-p", "no:cacheprovider"
        )
        result.assert_outcomes(passed=2)
    runs = [json.loads(line) for line in (pytester.path / "ids.jsonl").read_text().splitlines()]
    by_test: dict[str, list[list[str]]] = {}
    for run in runs:
        by_test.setdefault(run["test"], []).append(run["ids"])
    one_record, one_replay = by_test["one"]
    two_record, two_replay = by_test["two"]
    assert one_record == one_replay and two_record == two_replay
    assert set(one_record).isdisjoint(two_record)
    start = id_counter_start("test_ids.py::test_one")
    assert one_record == [f"file-{start + 1}", f"file-{start + 2}", f"call_{start + 1}"]


# -- the pytest plugin's configuration ------------------------------------------------------

PLUGIN_TOOL_TESTS = """
import pytest
import thirdparty

@pytest.mark.apirecorder
def test_search():
    assert thirdparty.Engine().search("kepler") == {"query": "kepler", "answer": "42"}
"""

THIRD_PARTY = """
import os

class Engine:
    def search(self, query):
        answer = os.environ.get("ENGINE_ANSWER")
        if answer is None:
            raise RuntimeError("the engine is offline")
        return {"query": query, "answer": answer}
"""


def test_ini_patch_tools_records_then_replays(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_plugin_tools=PLUGIN_TOOL_TESTS, thirdparty=THIRD_PARTY)
    pytester.makeini(
        "[pytest]\napirecorder_patch_tools =\n    thirdparty:Engine.search engine web_search\n"
    )
    pytester.syspathinsert()
    monkeypatch.setenv("ENGINE_ANSWER", "42")
    args = ("-p", "no:cacheprovider")
    pytester.runpytest("--apirecorder-mode=record", *args).assert_outcomes(passed=1)
    files = list((pytester.path / "recordings").glob("*.json"))
    assert len(files) == 1
    request = json.loads(files[0].read_text())["request"]
    assert request["provider"] == "engine" and request["tool_name"] == "web_search"
    assert request["kwargs"] == {"query": "kepler"}
    monkeypatch.delenv("ENGINE_ANSWER")  # the engine is offline from here on
    pytester.runpytest("--apirecorder-mode=replay", *args).assert_outcomes(passed=1)
    pytester.runpytest("--apirecorder-mode=live", *args).assert_outcomes(failed=1)


def _parse_strictly(text: str) -> Any:
    calls.append(f"parse:{text}")
    return json.loads(text)


@pytest.mark.parametrize("spelling", ["allowed_types", "allow_types"])
def test_a_tool_trusts_the_modules_given_as_allowed_types(tmp_path: Path, spelling: str) -> None:
    # allowed_types= is the spelling recording() uses; allow_types= still works, with a
    # DeprecationWarning, for code written before the two were one.
    options = {spelling: ("json.decoder",)}
    with (
        pytest.warns(DeprecationWarning, match="allowed_types=")
        if spelling == "allow_types"
        else contextlib.nullcontext()
    ):
        parse = apirecorder.tool("parser", name="parse", **options)(_parse_strictly)
    with record(tmp_path), pytest.raises(json.JSONDecodeError):
        parse("{oops")
    calls_before = len(calls)
    with replay(tmp_path), pytest.raises(json.JSONDecodeError) as replayed:
        parse("{oops")
    assert "Expecting property name" in str(replayed.value)
    assert len(calls) == calls_before == 1  # replayed: the function did not run again


def test_patch_tool_takes_allowed_types_and_warns_on_the_old_spelling() -> None:
    with pytest.warns(DeprecationWarning, match="allowed_types="):
        patched = apirecorder.patch_tool("json:loads", "json", allow_types=("json.decoder",))
    assert patched.allowed_types == ("json.decoder",)
    assert apirecorder.patch_tool("json:loads", "json").allowed_types == ()


def _page_of(query: str) -> Page | None:
    calls.append(f"page:{query}")
    if query == "none":
        return None
    if query == "dict":
        return {"hits": [], "total": 0}  # type: ignore[return-value]  # the bug to catch
    return Page([Hit(url=f"https://example.com/{query}", score=0.5)], 1)


page_of = apirecorder.tool("web", name="page_of")(_page_of)


def test_a_tool_answer_of_another_class_than_its_annotation_is_refused_by_name(
    tmp_path: Path,
) -> None:
    # `-> Page | None`: a Page and None replay; a dict (a function whose annotation is wrong,
    # or a file edited or written for another tool) is refused, naming the file, and the
    # live call that recorded it already warned.
    with record(tmp_path):
        page_of("rings")
        assert page_of("none") is None
        with pytest.warns(UserWarning, match="its replay will be refused"):
            page_of("dict")
    with replay(tmp_path):
        assert isinstance(page_of("rings"), Page)
        assert page_of("none") is None
        with pytest.raises(
            apirecorder.RecordingFormatError, match="where this call returns"
        ) as refused:
            page_of("dict")
    assert str(tmp_path) in str(refused.value)
    assert calls == ["page:rings", "page:none", "page:dict"]  # replay ran none of them


T = typing.TypeVar("T")


class Envelope(pydantic.BaseModel, typing.Generic[T]):
    items: list[T]


@apirecorder.tool("web", name="envelope")
def envelope(query: str) -> Envelope[Hit]:
    calls.append(f"envelope:{query}")
    return Envelope[Hit](items=[Hit(url=f"https://example.com/{query}", score=0.25)])


def test_a_tool_annotated_with_a_parametrized_generic_model_replays(tmp_path: Path) -> None:
    # `-> Envelope[Hit]`: the recording rebuilds that parametrized class, which the check accepts.
    with record(tmp_path):
        live = envelope("moons")
    with replay(tmp_path):
        replayed = envelope("moons")
    assert isinstance(replayed, Envelope)
    assert replayed.model_dump() == live.model_dump()
    assert calls == ["envelope:moons"]
