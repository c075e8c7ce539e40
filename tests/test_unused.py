"""Unused recordings: the end-of-run report, --apirecorder-fail-unused, and `apirecorder prune`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import apirecorder
from apirecorder._cli import main as cli
from tests.upstream import Upstream

pytest_plugins = ["pytester"]

THREE_TESTS = """
import os
import openai
import pytest

pytestmark = pytest.mark.apirecorder

def ask(prompt):
    client = openai.OpenAI(base_url=os.environ["UPSTREAM"] + "/v1", api_key="k", max_retries=0)
    answer = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": prompt}]
    )
    return answer.choices[0].message.content

def test_one():
    assert ask("ONE") == "Echo: ONE"

def test_two():
    assert ask("TWO") == "Echo: TWO"

def test_three():
    assert ask("THREE") == "Echo: THREE"
"""

REPORT_TITLE = "*= apirecorder: unused recordings =*"


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # The hypothesis plugin's session summary alone costs a second per inline run.
    return pytester.runpytest("-p", "no:hypothesispytest", *args)


@pytest.fixture(scope="module", autouse=True)
def _import_interceptors_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Import the client libraries before pytester snapshots sys.modules."""
    with apirecorder.recording("live", tmp_path_factory.mktemp("warm")):
        pass


@pytest.fixture
def suite(pytester: pytest.Pytester, upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three recorded tests in ``suite/test_three.py``; the upstream is stopped afterwards."""
    monkeypatch.setenv("UPSTREAM", upstream.url)
    monkeypatch.delenv("APIRECORDER_MODE", raising=False)
    monkeypatch.delenv("APIRECORDER_DIR", raising=False)
    monkeypatch.chdir(pytester.path)
    folder = pytester.path / "suite"
    folder.mkdir()
    (folder / "test_three.py").write_text(THREE_TESTS)
    _run(pytester, "--apirecorder-mode=record").assert_outcomes(passed=3)
    upstream.stop()  # everything below is replay, offline
    return folder


def _recordings(folder: Path) -> dict[str, Path]:
    """Recording files of a folder by the test name that made them."""
    found = {}
    for path in (folder / "recordings").glob("*.json"):
        test_id = json.loads(path.read_text())["test_id"]
        found[test_id.split("::")[1]] = path
    return found


def _drop_test(folder: Path, name: str) -> None:
    path = folder / "test_three.py"
    source = path.read_text()
    start = source.index(f"def {name}():")
    end = source.find("\ndef ", start + 1)
    path.write_text(source[:start] + (source[end + 1 :] if end != -1 else ""))


def _ledger(pytester: pytest.Pytester) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (pytester.path / ".pytest_cache" / "v" / "apirecorder" / "ledger").read_text()
    )
    return data


def test_a_full_replay_run_that_uses_everything_reports_nothing(
    pytester: pytest.Pytester, suite: Path
) -> None:
    result = _run(pytester, "--apirecorder-fail-unused")
    result.assert_outcomes(passed=3)
    assert result.ret == 0
    assert "unused recordings" not in result.stdout.str()
    ledger = _ledger(pytester)
    assert ledger["computed"] is True
    assert ledger["unused"] == []
    assert len(ledger["used"]) == 3  # type: ignore[arg-type]


def test_a_deleted_test_leaves_an_orphan_that_is_reported_failed_and_pruned(
    pytester: pytest.Pytester, suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _recordings(suite)
    orphan = files["test_two"]
    _drop_test(suite, "test_two")

    result = _run(pytester)
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            REPORT_TITLE,
            "1 recording in the searched folders was used by no test:",
            f"  suite/recordings/{orphan.name}  "
            "(suite/test_three.py::test_two: its test no longer exists)",
            "Delete them with `apirecorder prune --yes` (`apirecorder prune` only lists).",
        ]
    )

    failing = _run(pytester, "--apirecorder-fail-unused")
    failing.assert_outcomes(passed=2)
    assert failing.ret == pytest.ExitCode.TESTS_FAILED
    failing.stdout.fnmatch_lines(["--apirecorder-fail-unused: the run fails because of them."])

    capsys.readouterr()
    assert cli(["prune"]) == 0
    dry_run = capsys.readouterr().out
    assert "Would delete 1 unused recording:" in dry_run
    assert f"  suite/recordings/{orphan.name}  (suite/test_three.py::test_two:" in dry_run
    assert orphan.exists()

    assert cli(["prune", "--yes"]) == 0
    assert "Deleting 1 unused recording:" in capsys.readouterr().out
    assert sorted(p.name for p in (suite / "recordings").glob("*.json")) == sorted(
        [files["test_one"].name, files["test_three"].name]
    )

    after = _run(pytester, "--apirecorder-fail-unused")
    after.assert_outcomes(passed=2)
    assert after.ret == 0
    assert "unused recordings" not in after.stdout.str()


def test_deselected_and_skipped_tests_keep_their_recordings(
    pytester: pytest.Pytester, suite: Path
) -> None:
    result = _run(pytester, "-k", "test_one", "--apirecorder-fail-unused")
    result.assert_outcomes(passed=1, deselected=2)
    assert result.ret == 0
    assert "unused recordings" not in result.stdout.str()
    assert _ledger(pytester)["unused"] == []

    by_node_id = _run(pytester, "suite/test_three.py::test_two", "--apirecorder-fail-unused")
    by_node_id.assert_outcomes(passed=1)
    assert by_node_id.ret == 0

    source = (suite / "test_three.py").read_text()
    (suite / "test_three.py").write_text(
        source.replace("def test_three", "@pytest.mark.skip\ndef test_three")
    )
    skipped = _run(pytester, "--apirecorder-fail-unused")
    skipped.assert_outcomes(passed=2, skipped=1)
    assert skipped.ret == 0
    assert "unused recordings" not in skipped.stdout.str()


def test_a_stale_recording_of_a_changed_prompt_is_reported_unless_deselected(
    pytester: pytest.Pytester, suite: Path, upstream: Upstream
) -> None:
    stale = _recordings(suite)["test_two"]
    source = (suite / "test_three.py").read_text()
    (suite / "test_three.py").write_text(
        source.replace('"TWO") == "Echo: TWO"', '"TWO!") == "Echo: TWO!"')
    )
    upstream.start()
    _run(pytester, "--apirecorder-mode=record-if-missing").assert_outcomes(passed=3)
    upstream.stop()

    assert "unused recordings" not in _run(pytester, "-m", "not apirecorder").stdout.str()
    deselected = _run(pytester, "-k", "not test_two")
    deselected.assert_outcomes(passed=2, deselected=1)
    assert "unused recordings" not in deselected.stdout.str()

    full = _run(pytester)
    full.assert_outcomes(passed=3)
    full.stdout.fnmatch_lines(
        [
            REPORT_TITLE,
            f"  suite/recordings/{stale.name}  "
            "(suite/test_three.py::test_two: its test passed without reading it)",
        ]
    )


def test_a_failing_test_keeps_its_recordings(pytester: pytest.Pytester, suite: Path) -> None:
    source = (suite / "test_three.py").read_text()
    (suite / "test_three.py").write_text(source.replace('ask("ONE")', 'ask("CHANGED")'))
    result = _run(pytester, "--apirecorder-fail-unused")
    result.assert_outcomes(passed=2, failed=1)
    assert "unused recordings" not in result.stdout.str()
    assert _ledger(pytester)["unused"] == []


def test_record_runs_write_no_report_and_prune_says_why(
    pytester: pytest.Pytester, suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _drop_test(suite, "test_two")
    result = _run(pytester, "--apirecorder-mode=record-if-missing", "--apirecorder-fail-unused")
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    assert "unused recordings" not in result.stdout.str()
    capsys.readouterr()
    assert cli(["prune", "--yes"]) == 1
    assert "not a replay run (modes: record-if-missing)" in capsys.readouterr().err
    assert len(list((suite / "recordings").glob("*.json"))) == 3


def test_prune_without_a_ledger_explains_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli(["prune"]) == 1
    assert "no ledger found in .pytest_cache here or above" in capsys.readouterr().err
    bad = tmp_path / "ledger.json"
    bad.write_text("[]")
    assert cli(["prune", "--ledger", str(bad)]) == 2
    assert f"{bad}: not an apirecorder ledger of version 1" in capsys.readouterr().err


def test_prune_keeps_a_file_changed_since_the_run(
    pytester: pytest.Pytester, suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orphan = _recordings(suite)["test_two"]
    _drop_test(suite, "test_two")
    _run(pytester).assert_outcomes(passed=2)
    orphan.write_text(orphan.read_text() + " ")  # touched after the run
    capsys.readouterr()
    assert cli(["prune", "--yes"]) == 0
    captured = capsys.readouterr()
    assert "No unused recordings to delete." in captured.out
    assert "changed since the test run; run the tests again" in captured.err
    assert orphan.exists()


def test_under_xdist_the_workers_facts_are_merged(pytester: pytest.Pytester, suite: Path) -> None:
    orphan = _recordings(suite)["test_two"]
    _drop_test(suite, "test_two")
    result = _run(pytester, "-n", "2", "--apirecorder-fail-unused")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # Each worker ran one test: only the merged facts know both remaining files were used.
    result.stdout.fnmatch_lines(
        [
            REPORT_TITLE,
            "1 recording in the searched folders was used by no test:",
            f"  suite/recordings/{orphan.name}  *",
        ]
    )


def test_prune_never_deletes_a_file_that_is_not_a_recording(
    pytester: pytest.Pytester, suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orphan = _recordings(suite)["test_two"]
    _drop_test(suite, "test_two")
    _run(pytester).assert_outcomes(passed=2)
    # Someone edits the ledger to point at another file (same mtime, so only the name tells).
    precious = pytester.path / "settings.json"
    precious.write_text("{}")
    ledger_path = pytester.path / ".pytest_cache" / "v" / "apirecorder" / "ledger"
    ledger = json.loads(ledger_path.read_text())
    ledger["unused"][0]["path"] = str(precious)
    ledger["unused"][0]["mtime_ns"] = precious.stat().st_mtime_ns
    ledger_path.write_text(json.dumps(ledger))
    capsys.readouterr()
    assert cli(["prune", "--yes"]) == 0
    assert "not named like a recording" in capsys.readouterr().err
    assert precious.exists()
    assert orphan.exists()
