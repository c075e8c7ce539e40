"""The pytest plugin end to end: record in one run, replay offline in the next."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.upstream import Upstream

pytest_plugins = ["pytester", "tests.pytester_support"]
pytestmark = pytest.mark.usefixtures("interceptors_imported")

CHAT_TEST = """
import os
import openai
import pytest

pytestmark = pytest.mark.apirecorder

def client():
    return openai.OpenAI(base_url=os.environ["UPSTREAM"] + "/v1", api_key="k", max_retries=0)

def test_saturn():
    answer = client().chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "PROMPT"}]
    )
    assert answer.choices[0].message.content == "Echo: PROMPT"

def test_stream():
    stream = client().chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "Echo: one two three"
"""


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # The hypothesis plugin's session summary alone costs a second per inline run.
    return pytester.runpytest("-p", "no:hypothesispytest", *args)


def _write_chat_test(pytester: pytest.Pytester, prompt: str) -> Path:
    folder = pytester.path / "suite"
    folder.mkdir(exist_ok=True)
    path = folder / "test_chat.py"
    path.write_text(CHAT_TEST.replace("PROMPT", prompt))
    return path


def test_record_then_replay_then_a_changed_prompt_fails(
    pytester: pytest.Pytester, env_upstream: Upstream
) -> None:
    _write_chat_test(pytester, "Which planet has rings")
    recorded = _run(pytester, "--apirecorder-mode=record")
    recorded.assert_outcomes(passed=2)
    files = sorted((pytester.path / "suite" / "recordings").glob("*.json"))
    assert len(files) == 2
    test_ids = {json.loads(p.read_text())["test_id"] for p in files}
    assert test_ids == {"suite/test_chat.py::test_saturn", "suite/test_chat.py::test_stream"}

    env_upstream.stop()
    _run(
        pytester,
    ).assert_outcomes(passed=2)  # replay is the default mode

    _write_chat_test(pytester, "Which planet has moons")
    changed = _run(
        pytester,
    )
    changed.assert_outcomes(passed=1, failed=1)
    # The failure points at the test's own call, not at apirecorder's internals.
    assert "_recorder.py" not in changed.stdout.str()
    assert "apirecorder.RecordingNotFoundError: No recording" in changed.stdout.str()
    changed.stdout.fnmatch_lines(
        [
            "*RecordingNotFoundError: No recording for this inference call (mode: replay).",
            "*  test id:  suite/test_chat.py::test_saturn",
            "*  endpoint: /v1/chat/completions",
            "*  model:    gpt-4o",
            f"*  searched: {pytester.path / 'suite' / 'recordings'}",
            f"*            {pytester.path / 'recordings'}",
            "*To record it, run:",
            "*  pytest suite/test_chat.py::test_saturn --apirecorder-mode=record-if-missing",
        ]
    )


def test_unmarked_tests_are_not_intercepted_unless_autouse(
    pytester: pytest.Pytester, env_upstream: Upstream
) -> None:
    _write_chat_test(pytester, "hello")
    source = (pytester.path / "suite" / "test_chat.py").read_text()
    (pytester.path / "suite" / "test_chat.py").write_text(
        source.replace("pytestmark = pytest.mark.apirecorder", "")
    )
    _run(pytester, "--apirecorder-mode=record").assert_outcomes(passed=2)
    assert not (pytester.path / "suite" / "recordings").exists()

    pytester.makeini("[pytest]\napirecorder_autouse = true\n")
    _run(pytester, "--apirecorder-mode=record").assert_outcomes(passed=2)
    assert len(list((pytester.path / "suite" / "recordings").glob("*.json"))) == 2


def test_directory_option_marker_and_ini_precedence(
    pytester: pytest.Pytester, env_upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_prec="""
        import pytest
        import apirecorder

        @pytest.mark.apirecorder(mode="record-if-missing", storage_dir="from_marker")
        def test_marker(apirecorder):
            print("MODE", apirecorder.mode.value, "DIR", apirecorder.storage.root.name)

        @pytest.mark.apirecorder
        def test_plain(apirecorder):
            print("MODE", apirecorder.mode.value, "DIR", apirecorder.storage.root.name)
        """
    )
    pytester.makeini("[pytest]\napirecorder_mode = live\napirecorder_dir = from_ini\n")
    monkeypatch.setenv("APIRECORDER_MODE", "record")
    result = _run(pytester, "-s")
    result.stdout.fnmatch_lines(
        ["*MODE record-if-missing DIR from_marker*", "*MODE live DIR from_ini*"]
    )
    result = _run(pytester, "-s", "--apirecorder-mode=replay", "--apirecorder-dir=cli_dir")
    result.stdout.fnmatch_lines(["*MODE replay DIR cli_dir*", "*MODE replay DIR cli_dir*"])
    pytester.makeini("[pytest]\n")
    result = _run(pytester, "-s", "-k", "plain")
    result.stdout.fnmatch_lines(["*MODE record DIR *"])  # the environment, below the ini


def test_mode_option_rejects_unknown_values(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = _run(pytester, "--apirecorder-mode=replya")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*invalid choice: 'replya'*"])


def test_fixture_gives_the_session_and_sets_the_test_id(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fix="""
        import apirecorder

        def test_uses_fixture(apirecorder):
            assert apirecorder.mode.value == "replay"

        def test_id_is_the_node_id(apirecorder):
            import apirecorder as ar
            assert ar.current_test_id() == "test_fix.py::test_id_is_the_node_id"
        """
    )
    _run(
        pytester,
    ).assert_outcomes(passed=2)


def test_interceptors_stay_installed_between_tests_and_pass_unmarked_calls_through(
    pytester: pytest.Pytester, env_upstream: Upstream
) -> None:
    from openai.resources.chat.completions.completions import Completions

    original = Completions.create
    pytester.makepyfile(
        test_order="""
        import os
        import openai
        import pytest
        from openai.resources.chat.completions.completions import Completions

        ORIGINAL = Completions.create  # taken at collection, before any test records

        def ask():
            client = openai.OpenAI(base_url=os.environ["UPSTREAM"] + "/v1", api_key="k")
            return client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )

        def test_1_unmarked_before():
            assert Completions.create is ORIGINAL

        @pytest.mark.apirecorder
        def test_2_marked():
            assert Completions.create is not ORIGINAL
            ask()

        def test_3_unmarked_after():
            assert Completions.create is not ORIGINAL  # kept, but passing through
            assert ask().choices[0].message.content == "Echo: hi"
        """
    )
    _run(pytester, "--apirecorder-mode=record").assert_outcomes(passed=3)
    assert len(list((pytester.path / "recordings").glob("*.json"))) == 1
    assert len(env_upstream.requests_to("/v1/chat/completions")) == 2
    assert Completions.create is original  # removed when the run ended


def test_ignored_hosts_from_the_ini_file_always_go_live(
    pytester: pytest.Pytester, env_upstream: Upstream
) -> None:
    pytester.makeini("[pytest]\napirecorder_ignore_hosts =\n    127.0.0.1\n")
    pytester.makepyfile(
        test_db="""
        import os
        import httpx
        import pytest

        @pytest.mark.apirecorder
        def test_database_api_is_left_alone(apirecorder):
            assert apirecorder.ignore_hosts == ("127.0.0.1",)
            response = httpx.get(os.environ["UPSTREAM"] + "/misc/json")
            assert response.status_code == 200
        """
    )
    _run(pytester, "--apirecorder-mode=record").assert_outcomes(passed=1)
    _run(pytester).assert_outcomes(passed=1)  # replay: still live, nothing was recorded
    assert not (pytester.path / "recordings").exists()
    assert len(env_upstream.requests_to("/misc/json")) == 2
