"""The plugin's settings: the config fixture, merged lists, rewrite mode, usage errors, debug."""

from __future__ import annotations

import json

import pytest

from tests.upstream import Upstream

pytest_plugins = ["pytester", "tests.pytester_support"]
pytestmark = pytest.mark.usefixtures("interceptors_imported")


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:hypothesispytest", *args)


VALID_KEYWORDS = (
    "allow_hosts, allowed_types, before_record_response, block_network, hosts_under_test, "
    "ignore_fields, ignore_hosts, match_origin, mode, normalizers, redact_headers, "
    "redact_json_paths, redact_patterns, secret_env_vars, shared_dir, storage_dir, tools"
)

ONE_CALL = """
import os
import openai
import pytest

@pytest.mark.apirecorder
def test_x():
    client = openai.OpenAI(base_url=os.environ["UPSTREAM"] + "/v1", api_key="k")
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
"""

SHOW = """
def show(label, session):
    hosts = ",".join(sorted(session.ignore_hosts))
    print(label, session.mode.value, session.storage.root.name, hosts)
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("APIRECORDER_MODE", "APIRECORDER_DIR", "APIRECORDER_DEBUG", "APIRECORDER_ROOT"):
        monkeypatch.delenv(name, raising=False)


def test_config_fixture_per_conftest_module_and_class_merged_with_the_ini(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        "[pytest]\napirecorder_mode = record\napirecorder_ignore_hosts =\n    ini.example\n"
    )
    pytester.makeconftest(
        SHOW
        + """
import pytest

@pytest.fixture(scope="session")
def apirecorder_config():
    return {"mode": "record-if-missing", "storage_dir": "from_conftest",
            "ignore_hosts": ["conftest.example"]}
"""
    )
    pytester.makepyfile(
        test_a="""
        import pytest
        from conftest import show

        pytestmark = pytest.mark.apirecorder

        def test_conftest(apirecorder):
            show("CONFTEST", apirecorder)
        """,
        test_b="""
        import pytest
        from conftest import show

        pytestmark = pytest.mark.apirecorder

        @pytest.fixture(scope="module")
        def apirecorder_config():
            return {"mode": "live", "ignore_hosts": "module.example"}

        def test_module(apirecorder):
            show("MODULE", apirecorder)

        class TestGroup:
            @pytest.fixture
            def apirecorder_config(self):
                return {"mode": "replay", "ignore_hosts": ["class.example"]}

            def test_class(self, apirecorder):
                show("CLASS", apirecorder)

            @pytest.mark.apirecorder(mode="record", ignore_hosts=["marker.example"])
            def test_marker(self, apirecorder):
                show("MARKER", apirecorder)
        """,
    )
    result = _run(pytester, "-s")
    result.assert_outcomes(passed=4)
    root = pytester.path.name
    result.stdout.fnmatch_lines_random(
        [
            "*CONFTEST record-if-missing from_conftest conftest.example,ini.example",
            f"*MODULE live {root} ini.example,module.example",
            f"*CLASS replay {root} class.example,ini.example",
            # The marker's list adds to the ini's and the config's, its mode wins over both.
            f"*MARKER record {root} class.example,ini.example,marker.example",
        ]
    )
    # The command line wins over all of them.
    result = _run(pytester, "-s", "--apirecorder-mode=replay", "-k", "marker or conftest")
    result.stdout.fnmatch_lines_random(["*CONFTEST replay *", "*MARKER replay *"])


def test_record_mode_removes_what_a_passing_test_no_longer_makes(
    pytester: pytest.Pytester, env_upstream: Upstream
) -> None:
    source = """
        import os
        import openai
        import pytest

        pytestmark = pytest.mark.apirecorder

        def ask(text):
            client = openai.OpenAI(base_url=os.environ["UPSTREAM"] + "/v1", api_key="k")
            return client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": text}]
            )

        def test_kept():
            ask("PROMPT")
            ask("always")

        def test_failing():
            ask("PROMPT")
            assert FAIL
        """
    pytester.makepyfile(test_rw=source.replace("PROMPT", "old").replace("FAIL", "True"))
    _run(pytester, "--apirecorder-mode=record").assert_outcomes(passed=2)
    folder = pytester.path / "recordings"
    before = {p.name for p in folder.glob("*.json")}
    assert len(before) == 3
    pytester.makepyfile(test_rw=source.replace("PROMPT", "new").replace("FAIL", "False"))
    for mode in ("replay", "record-if-missing"):  # never removed outside record mode
        _run(pytester, f"--apirecorder-mode={mode}", "-k", "kept")
        assert before <= {p.name for p in folder.glob("*.json")}
    result = _run(pytester, "--apirecorder-mode=record")
    result.assert_outcomes(passed=1, failed=1)
    files = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    kept = sorted(
        f["request"]["body"]["messages"][0]["content"]
        for f in files
        if f["test_id"] == "test_rw.py::test_kept"
    )
    failing = sorted(
        f["request"]["body"]["messages"][0]["content"]
        for f in files
        if f["test_id"] == "test_rw.py::test_failing"
    )
    assert kept == ["always", "new"]
    assert failing == ["new", "old"]
    result.stdout.fnmatch_lines(
        [
            "*= apirecorder: rewritten tests =*",
            "record mode deleted 1 recording that passing tests no longer make:",
            "  recordings/*.json  (test_rw.py::test_kept)",
        ]
    )


def test_a_bad_mode_in_the_environment_is_one_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n\ndef test_y():\n    pass\n")
    monkeypatch.setenv("APIRECORDER_MODE", "bogus")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines == [
        "ERROR: $APIRECORDER_MODE: unknown apirecorder mode 'bogus'; valid modes are "
        "'live', 'record', 'replay', 'record-if-missing'",
        "",
    ]
    assert "Traceback" not in result.stdout.str()


def test_a_bad_mode_in_the_ini_file_is_one_usage_error(pytester: pytest.Pytester) -> None:
    ini = pytester.makeini("[pytest]\napirecorder_mode = recrod\n")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines == [
        f"ERROR: apirecorder_mode in {ini}: unknown apirecorder mode 'recrod'; valid modes are "
        "'live', 'record', 'replay', 'record-if-missing'",
        "",
    ]


def test_a_positional_marker_argument_names_the_fix(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_m="""
        import pytest

        @pytest.mark.apirecorder("record")
        def test_x():
            pass

        def test_y():
            pass
        """
    )
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines == [
        "ERROR: test_m.py::test_x: @pytest.mark.apirecorder('record'): the marker takes "
        "keywords only; write @pytest.mark.apirecorder(mode='record')",
        "",
    ]


def test_an_unknown_marker_keyword_lists_the_valid_ones(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_m="""
        import pytest

        @pytest.mark.apirecorder(storage="tests/recordings")
        def test_x():
            pass
        """
    )
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines == [
        "ERROR: test_m.py::test_x: @pytest.mark.apirecorder: unknown keyword storage; "
        f"valid keywords: {VALID_KEYWORDS}",
        "",
    ]


def test_an_unknown_config_fixture_keyword_fails_the_test_naming_the_fixture(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_m="""
        import pytest

        @pytest.fixture
        def apirecorder_config():
            return {"record_mode": "once"}

        def test_x(apirecorder):
            pass
        """
    )
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "the apirecorder_config fixture: unknown keyword record_mode; "
            f"valid keywords: {VALID_KEYWORDS}"
        ]
    )


def test_a_corrupt_recording_names_the_command_that_re_records_it(
    pytester: pytest.Pytester, env_upstream: Upstream
) -> None:
    pytester.makepyfile(test_c=ONE_CALL)
    _run(pytester, "--apirecorder-mode=record").assert_outcomes(passed=1)
    (recorded,) = (pytester.path / "recordings").glob("*.json")
    recorded.write_text(recorded.read_text()[:40])
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            f"E       apirecorder.RecordingFormatError: {recorded}: the file is not valid JSON *; "
            "it may be truncated or hand-edited: re-record it",
            "E       To re-record it, run:",
            "E         pytest test_c.py::test_x --apirecorder-mode=record",
        ]
    )
    for internal in ("JSONDecodeError", "Session(", "Storage(", "_storage.py", "_recorder.py"):
        assert internal not in output, internal


def test_a_miss_shows_no_recorder_internals(
    pytester: pytest.Pytester, env_upstream: Upstream
) -> None:
    pytester.makepyfile(test_c=ONE_CALL)
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "RecordingNotFoundError: No recording for this inference call" in output
    for internal in ("Session(", "Storage(", "_flow.py", "_recorder.py"):
        assert internal not in output, internal


def test_debug_lines_reach_the_terminal_with_s(
    pytester: pytest.Pytester, env_upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_d=ONE_CALL)
    monkeypatch.setenv("APIRECORDER_DEBUG", "1")
    result = pytester.runpytest_subprocess(
        "-p", "no:hypothesispytest", "-s", "--apirecorder-mode=record"
    )
    result.assert_outcomes(passed=1)
    result.stderr.fnmatch_lines(
        [
            "apirecorder: inference call test_id='test_d.py::test_x' endpoint=/v1/chat/*",
            "apirecorder: wrote *recordings*.json",
        ]
    )


def test_the_ledger_keeps_no_secret_from_a_test_id(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_l="""
        import pytest

        @pytest.mark.parametrize("url", ["https://api.example/v1?key=sk-proj-abcdefghijklmnopqrstuvwxyz012345"])
        @pytest.mark.apirecorder
        def test_x(url):
            assert False
        """
    )
    _run(pytester).assert_outcomes(failed=1)
    ledger = (pytester.path / ".pytest_cache" / "v" / "apirecorder" / "ledger").read_text()
    assert "sk-proj-abcdefghijklmnopqrstuvwxyz012345" not in ledger
    assert json.loads(ledger)["protected_tests"] == [
        "test_l.py::test_x[https://api.example/v1?key=<redacted>"
    ]


def test_a_test_file_without_ini_or_repository_gets_a_header_warning(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_w="def test_x():\n    pass\n")
    result = _run(pytester)
    result.stdout.fnmatch_lines(
        [
            f"apirecorder: test ids are relative to {pytester.path}, the folder pytest started "
            "from (no ini file, setup.py or .git found); add a pytest.ini or "
            "[tool.pytest.ini_options], or set APIRECORDER_ROOT, to keep them stable"
        ]
    )
    pytester.makeini("[pytest]\n")
    assert "test ids are relative" not in _run(pytester).stdout.str()


def test_fixture_recordings_are_not_reported_unused_when_their_tests_are_deselected(
    pytester: pytest.Pytester, env_upstream: Upstream
) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(
        test_f="""
        import os
        import openai
        import pytest

        pytestmark = pytest.mark.apirecorder

        @pytest.fixture(scope="module")
        def answer():
            client = openai.OpenAI(base_url=os.environ["UPSTREAM"] + "/v1", api_key="k")
            return client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )

        def test_uses(answer):
            pass

        def test_other():
            pass
        """
    )
    _run(pytester, "--apirecorder-mode=record").assert_outcomes(passed=2)
    result = _run(pytester, "-k", "other")
    result.assert_outcomes(passed=1)
    assert "unused recordings" not in result.stdout.str()
    result = _run(pytester)
    result.assert_outcomes(passed=2)
    assert "unused recordings" not in result.stdout.str()


def test_a_miss_names_the_test_as_seen_from_the_folder_pytest_started_in(
    pytester: pytest.Pytester, env_upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    (pytester.path / ".git").mkdir()  # no ini file: the repository pins the test ids
    tests = pytester.path / "tests"
    tests.mkdir()
    (tests / "test_m.py").write_text(ONE_CALL)
    monkeypatch.chdir(tests)
    missed = _run(pytester)
    missed.assert_outcomes(failed=1)
    missed.stdout.fnmatch_lines(
        [
            "*  test id:  tests/test_m.py::test_x",
            "*To record it, run:",
            "*  pytest test_m.py::test_x --apirecorder-mode=record-if-missing",
        ]
    )
    # The command it names works from there, and records under the stable id.
    _run(pytester, "test_m.py::test_x", "--apirecorder-mode=record-if-missing").assert_outcomes(
        passed=1
    )
    (recorded,) = (tests / "recordings").glob("*.json")
    assert json.loads(recorded.read_text())["test_id"] == "tests/test_m.py::test_x"
