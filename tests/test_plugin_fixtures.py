"""The pytest plugin with what real suites do: API calls in fixtures, runs from other folders."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.upstream import Upstream

pytest_plugins = ["pytester", "tests.pytester_support"]
pytestmark = pytest.mark.usefixtures("interceptors_imported")


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:hypothesispytest", *args)


CLIENT = """
import os
import openai
import pytest

def ask(text):
    client = openai.OpenAI(base_url=os.environ["UPSTREAM"] + "/v1", api_key="k", max_retries=0)
    messages = [{"role": "user", "content": text}]
    answer = client.chat.completions.create(model="gpt-4o", messages=messages)
    return answer.choices[0].message.content
"""

CONFTEST = (
    CLIENT
    + """
@pytest.fixture(scope="session")
def session_answer():
    yield ask("asked once per session")
    assert ask("said in the teardown") == "Echo: said in the teardown"
"""
)

MODULE_TEST = """
import pytest
from conftest import ask

pytestmark = pytest.mark.apirecorder

@pytest.fixture(scope="module")
def module_answer():
    return ask("asked once per module")

class TestGroup:
    @pytest.fixture(scope="class")
    @classmethod
    def class_answer(cls):
        return ask("asked once per class")

    def test_in_class(self, class_answer):
        assert class_answer == "Echo: asked once per class"

def test_first(module_answer, session_answer):
    assert module_answer == "Echo: asked once per module"
    assert session_answer == "Echo: asked once per session"

def test_second(module_answer):
    assert module_answer == "Echo: asked once per module"

def test_third(session_answer):
    assert session_answer == "Echo: asked once per session"
"""


def _recording_project(pytester: pytest.Pytester, **test_files: str) -> None:
    """A project in record mode (from its ini file) whose test files get ``pytest`` and
    ``ask`` imported."""
    pytester.makeini("[pytest]\napirecorder_mode = record\n")
    pytester.makeconftest(CLIENT)
    header = "import pytest\nfrom conftest import ask\n"
    pytester.makepyfile(
        **{name: header + textwrap.dedent(source) for name, source in test_files.items()}
    )


def _recorded(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in pytester.path.glob("recordings/*.json")]


def _suite(pytester: pytest.Pytester) -> Path:
    folder = pytester.path / "tests"
    folder.mkdir()
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "test_fixtures.py").write_text(MODULE_TEST)
    return folder


def test_calls_in_module_class_and_session_fixtures_record_and_replay(
    pytester: pytest.Pytester, env_upstream: Upstream
) -> None:
    folder = _suite(pytester)
    _run(pytester, "--apirecorder-mode=record", str(folder)).assert_outcomes(passed=4)
    assert len(env_upstream.requests_to("/v1/chat/completions")) == 4
    recordings = [json.loads(p.read_text()) for p in folder.glob("recordings/*.json")]
    assert sorted(
        (r["test_id"], r["request"]["body"]["messages"][0]["content"]) for r in recordings
    ) == [
        ("tests/conftest.py::session_answer", "asked once per session"),
        ("tests/conftest.py::session_answer", "said in the teardown"),
        ("tests/test_fixtures.py::TestGroup::class_answer", "asked once per class"),
        ("tests/test_fixtures.py::module_answer", "asked once per module"),
    ]
    env_upstream.stop()
    # Whichever test comes first, its fixtures find the recordings made in the full run.
    for pick in ("test_third", "test_second", "test_in_class", "test_first"):
        _run(pytester, str(folder), "-k", pick, "--apirecorder-block-network").assert_outcomes(
            passed=1
        )
    _run(pytester, str(folder)).assert_outcomes(passed=4)
    # xdist: each worker sets the fixtures up again, and finds the same recordings.
    _run(pytester, str(folder), "-n", "2").assert_outcomes(passed=4)


def test_the_same_test_has_the_same_id_from_any_folder(
    pytester: pytest.Pytester, env_upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    (pytester.path / ".git").mkdir()  # no ini file: the repository pins the test ids
    folder = _suite(pytester)
    _run(pytester, "--apirecorder-mode=record").assert_outcomes(passed=4)
    recorded = sorted(p.name for p in folder.rglob("recordings/*.json"))
    env_upstream.stop()
    monkeypatch.chdir(folder)
    _run(pytester).assert_outcomes(passed=4)
    assert sorted(p.name for p in folder.rglob("recordings/*.json")) == recorded
    test_ids = {json.loads(p.read_text())["test_id"] for p in folder.rglob("recordings/*.json")}
    assert all(not os.path.isabs(test_id) for test_id in test_ids if test_id)


def test_parametrized_fixtures_are_keyed_by_param_and_unmarked_users_stay_live(
    pytester: pytest.Pytester, env_upstream: Upstream
) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(
        CLIENT
        + """
@pytest.fixture(scope="session")
def only_for_unmarked():
    return ask("nobody records me")
"""
    )
    pytester.makepyfile(
        test_params="""
        import pytest
        from conftest import ask

        @pytest.fixture(scope="module", params=["small", "large"])
        def sized(request):
            return ask(request.param)

        @pytest.mark.apirecorder
        def test_sized(sized):
            assert sized.startswith("Echo: ")

        def test_unmarked(only_for_unmarked):
            assert only_for_unmarked == "Echo: nobody records me"
        """
    )
    _run(pytester, "--apirecorder-mode=record").assert_outcomes(passed=3)
    assert sorted(r["test_id"] for r in _recorded(pytester)) == [
        "test_params.py::sized[large]",
        "test_params.py::sized[small]",
    ]


def test_a_narrower_config_fixture_is_left_to_the_tests(
    pytester: pytest.Pytester, env_upstream: Upstream
) -> None:
    _recording_project(
        pytester,
        test_narrow="""
        pytestmark = pytest.mark.apirecorder

        @pytest.fixture
        def apirecorder_config():
            return {"mode": "live"}

        @pytest.fixture(scope="module")
        def answer():
            return ask("from the module fixture")

        def test_it(answer):
            assert ask("from the test") == "Echo: from the test"
        """,
    )
    _run(pytester).assert_outcomes(passed=1)
    # The test ran live (its config); the module fixture recorded (the ini's mode).
    assert [r["test_id"] for r in _recorded(pytester)] == ["test_narrow.py::answer"]


def test_a_tests_block_spans_its_own_fixtures_and_no_wider_teardown(
    pytester: pytest.Pytester, env_upstream: Upstream
) -> None:
    _recording_project(
        pytester,
        test_span="""
        @pytest.fixture(scope="module")
        def unmarked_only():
            yield
            # Torn down after the marked test below, once its block has closed: live.
            assert ask("module teardown") == "Echo: module teardown"

        def test_unmarked(unmarked_only):
            pass

        @pytest.fixture
        def function_answer():
            yield ask("function set-up")
            assert ask("function teardown") == "Echo: function teardown"

        @pytest.mark.apirecorder
        def test_marked(function_answer):
            assert function_answer == "Echo: function set-up"
            assert ask("the test") == "Echo: the test"
        """,
    )
    _run(pytester).assert_outcomes(passed=2)
    assert len(env_upstream.requests_to("/v1/chat/completions")) == 4
    assert sorted(
        (r["test_id"], r["request"]["body"]["messages"][0]["content"]) for r in _recorded(pytester)
    ) == [
        ("test_span.py::test_marked", "function set-up"),
        ("test_span.py::test_marked", "function teardown"),
        ("test_span.py::test_marked", "the test"),
    ]


def test_a_function_scoped_config_shares_the_fixtures_it_needs_with_the_test(
    pytester: pytest.Pytester, env_upstream: Upstream
) -> None:
    pytester.makepyfile(
        test_config="""
        import pytest

        @pytest.fixture
        def apirecorder_config(tmp_path):
            return {"mode": "record", "storage_dir": str(tmp_path / "recordings")}

        @pytest.mark.apirecorder
        def test_with_the_fixture(tmp_path, apirecorder):
            # One tmp_path, set up before the block that the config configures.
            assert apirecorder.mode.value == "record"
            assert apirecorder.storage_dir == tmp_path / "recordings"

        @pytest.mark.apirecorder
        def test_without_fixtures():
            pass

        def test_unmarked(apirecorder_config, tmp_path):
            assert apirecorder_config["storage_dir"] == str(tmp_path / "recordings")
        """
    )
    _run(pytester).assert_outcomes(passed=3)
