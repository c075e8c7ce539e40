"""``apirecorder rekey``: a renamed or moved test replays its recordings without calling the API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apirecorder._cli import main
from tests.upstream import Upstream

pytest_plugins = ["pytester", "tests.pytester_support"]
pytestmark = pytest.mark.usefixtures("interceptors_imported")


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:hypothesispytest", *args)


SUITE = """
import os
import openai
import pytest

pytestmark = pytest.mark.apirecorder

def ask(text):
    client = openai.OpenAI(base_url=os.environ["UPSTREAM"] + "/v1", api_key="k", max_retries=0)
    answer = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": text}]
    )
    return answer.choices[0].message.content

@pytest.fixture(scope="module")
def greeting():
    return ask("hello module")

def test_OLDNAME(greeting):
    assert greeting == "Echo: hello module"
    assert ask("which planet") == "Echo: which planet"
    assert ask("and its moons") == "Echo: and its moons"
"""


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().out.splitlines()


def _test_ids(folder: Path) -> list[str]:
    return sorted(json.loads(p.read_text())["test_id"] for p in folder.glob("*.json"))


@pytest.fixture
def recorded(
    pytester: pytest.Pytester, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A suite recorded in tests/test_old.py, the upstream then stopped."""
    monkeypatch.setenv("UPSTREAM", upstream.url)
    monkeypatch.delenv("APIRECORDER_MODE", raising=False)
    pytester.makeini("[pytest]\n")
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_old.py").write_text(SUITE.replace("OLDNAME", "old"))
    _run(pytester, "--apirecorder-mode=record").assert_outcomes(passed=1)
    upstream.stop()
    monkeypatch.chdir(pytester.path)
    return pytester.path


def test_a_renamed_test_is_rekeyed_in_place(
    recorded: Path, pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = recorded / "tests" / "recordings"
    path = recorded / "tests" / "test_old.py"
    path.write_text(SUITE.replace("OLDNAME", "new"))
    _run(pytester).assert_outcomes(failed=1)  # the old recordings are keyed by the old name
    before = sorted(p.name for p in folder.glob("*.json"))

    code, out = _cli(capsys, "rekey", "tests/test_old.py::test_old", "tests/test_old.py::test_new")
    assert code == 0
    assert out[-1] == (
        "2 recordings would be rekeyed to tests/test_old.py::test_new; "
        "run again with --apply to write."
    )
    assert sorted(p.name for p in folder.glob("*.json")) == before  # a dry run

    code, out = _cli(
        capsys, "rekey", "tests/test_old.py::test_old", "tests/test_old.py::test_new", "--apply"
    )
    assert (code, out[-1]) == (0, "2 recordings rekeyed to tests/test_old.py::test_new.")
    assert _test_ids(folder) == [
        "tests/test_old.py::greeting",
        "tests/test_old.py::test_new",
        "tests/test_old.py::test_new",
    ]
    _run(pytester).assert_outcomes(passed=1)  # upstream stopped: replayed
    assert _cli(capsys, "verify", "tests")[0] == 0


def test_a_moved_test_file_takes_its_recordings_and_its_fixtures_along(
    recorded: Path, pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    (recorded / "tests" / "test_old.py").unlink()
    (recorded / "tests" / "chat").mkdir()
    (recorded / "tests" / "chat" / "test_moved.py").write_text(SUITE.replace("OLDNAME", "old"))

    code, out = _cli(capsys, "rekey", "tests/test_old.py", "tests/chat/test_moved.py", "--apply")
    assert (code, out[-1]) == (0, "3 recordings rekeyed to tests/chat/test_moved.py.")
    assert not list((recorded / "tests" / "recordings").glob("*.json"))
    assert _test_ids(recorded / "tests" / "chat" / "recordings") == [
        "tests/chat/test_moved.py::greeting",
        "tests/chat/test_moved.py::test_old",
        "tests/chat/test_moved.py::test_old",
    ]
    _run(pytester).assert_outcomes(passed=1)


def test_rekey_refuses_to_overwrite_a_different_file(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = recorded / "tests" / "recordings"
    code, out = _cli(capsys, "rekey", "tests/test_old.py::test_old", "tests/test_old.py::test_new")
    source, target = out[0].strip().split(" -> ")
    Path(target).write_text('{"request": {}, "response": {}}\n')
    code, out = _cli(
        capsys, "rekey", "tests/test_old.py::test_old", "tests/test_old.py::test_new", "--apply"
    )
    assert code == 1
    assert out[0] == f"  {source}: {target} exists with other content; left alone"
    assert out[-1] == "1 recording rekeyed to tests/test_old.py::test_new."
    assert Path(target).read_text() == '{"request": {}, "response": {}}\n'
    assert Path(source).exists()
    assert len(list(folder.glob("*.json"))) == 4


def test_rekey_of_an_unknown_test_id_says_so(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["rekey", "tests/test_old.py::test_gone", "tests/x.py::test_y"]) == 1
    assert capsys.readouterr().err == (
        "apirecorder rekey: no recording under . has the test id tests/test_old.py::test_gone\n"
    )
