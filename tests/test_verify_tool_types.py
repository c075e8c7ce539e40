"""``apirecorder verify`` judges a tool recording's types by the rule replay uses (issue 15.6).

A ``@apirecorder.tool`` result may name classes of the tool's own module (and of its return
annotation): replay trusts them, so verify must not call them "not in the allow-list". A class
the tool does not trust is refused by both, with the same words.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import apirecorder

TOOL_TEST = """
import dataclasses

import apirecorder
import pytest

from helpers import Elsewhere

pytestmark = pytest.mark.apirecorder


@dataclasses.dataclass
class Forecast:
    city: str
    sky: str


@apirecorder.tool("weather")
def forecast(city: str) -> Forecast:
    return Forecast(city, "sunny")


@apirecorder.tool("weather")
def elsewhere(city: str):
    return Elsewhere(city)


def test_forecast():
    assert forecast("Paris") == Forecast("Paris", "sunny")


def test_elsewhere():
    assert elsewhere("Oslo") == Elsewhere("Oslo")
"""

HELPERS = """
import dataclasses


@dataclasses.dataclass
class Elsewhere:
    city: str
"""


@pytest.fixture(scope="module", autouse=True)
def _import_interceptors_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    # As in test_pytest_plugin: import the client libraries before pytester snapshots modules.
    with apirecorder.recording("live", tmp_path_factory.mktemp("warm")):
        pass


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:hypothesispytest", *args)


def _verify(cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "apirecorder"
    return subprocess.run(
        [str(script), "verify", "recordings"], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_verify_accepts_the_tool_types_replay_accepts_and_refuses_the_others(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("APIRECORDER_MODE", raising=False)
    monkeypatch.delenv("APIRECORDER_DIR", raising=False)
    pytester.makepyfile(test_weather=TOOL_TEST, helpers=HELPERS)
    _run(pytester, "--apirecorder-mode=record").assert_outcomes(passed=2)
    replayed = _run(pytester, "--apirecorder-mode=replay")
    # Replay takes the tool's own dataclass, and refuses the one from a module it never named.
    replayed.assert_outcomes(passed=1, failed=1)
    replayed.stdout.fnmatch_lines(["*__type__ 'helpers.Elsewhere' is not in the allow-list*"])

    folder = pytester.path / "recordings"
    files = {json.loads(p.read_text())["request"]["tool_name"]: p for p in folder.glob("*.json")}
    assert json.loads(files["forecast"].read_text())["response"]["trusted_types"] == [
        "test_weather"
    ]
    done = _verify(pytester.path)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"recordings/{files['elsewhere'].name}: __type__ 'helpers.Elsewhere' is not in the "
        "allow-list; replay would refuse it (if your tests call apirecorder.allow_types for "
        "it, pass --allow-type helpers)",
        "2 recordings checked: 1 problem.",
    ]
    files["elsewhere"].unlink()
    done = _verify(pytester.path)
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        "1 recording checked: no problems.\n",
        "",
    )
