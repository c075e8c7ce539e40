"""Every Python snippet in the README runs, offline, from the repository root."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import apirecorder
from tests.upstream import Upstream

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
# The first snippet is a test module, those that start "# conftest.py" are its conftest, the
# rest are programs.
CONFTESTS = [s for s in SNIPPETS[1:] if s.startswith("# conftest.py")]
PROGRAMS = [s for s in SNIPPETS[1:] if s not in CONFTESTS]
BASH = re.findall(r"```bash\n(.*?)```", README, flags=re.DOTALL)
(INSTALL,) = [block for block in BASH if "python -m build" in block]


@pytest.fixture(scope="module", autouse=True)
def _import_interceptors_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Import the interceptors before pytester snapshots sys.modules (see test_pytest_plugin)."""
    with apirecorder.recording("live", tmp_path_factory.mktemp("warm")):
        pass


def test_readme_starts_with_the_two_commands() -> None:
    commands = re.search(r"```bash\n(.*?)```", README, flags=re.DOTALL)
    assert commands is not None
    lines = commands.group(1).strip().splitlines()
    assert lines == [
        'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/pytest examples',
        "npm ci --prefix tests/js && .venv/bin/pytest -n 2 tests examples",
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install --quiet -e ".[test]"' in ci
    assert "npm ci --prefix tests/js" in ci
    assert ".venv/bin/python -m pytest -n 2 tests examples" in ci


def test_first_snippet_records_then_replays_offline(
    pytester: pytest.Pytester, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"{upstream.url}/v1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    pytester.makepyfile(test_readme_snippet=SNIPPETS[0])
    flags = ("-p", "no:hypothesispytest")
    pytester.runpytest(*flags, "--apirecorder-mode=record").assert_outcomes(passed=1)
    assert len(list((pytester.path / "recordings").glob("*.json"))) == 1
    upstream.stop()
    pytester.runpytest(*flags).assert_outcomes(passed=1)


def test_the_migration_conftest_records_then_replays_offline(
    pytester: pytest.Pytester, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    (conftest,) = CONFTESTS
    monkeypatch.setenv("OPENAI_BASE_URL", f"{upstream.url}/v1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    pytester.makeconftest(conftest)
    pytester.makepyfile(test_readme_snippet=SNIPPETS[0])
    flags = ("-p", "no:hypothesispytest", "-s")
    pytester.runpytest(*flags, "--apirecorder-mode=record").assert_outcomes(passed=1)
    upstream.stop()
    pytester.runpytest(*flags).assert_outcomes(passed=1)


def _copy_of_the_repository(target: Path) -> Path:
    ignored = shutil.ignore_patterns(
        ".git", ".venv", "node_modules", ".pytest_cache", ".mypy_cache", ".ruff_cache", "dist"
    )
    copy = target / "apirecorder"
    shutil.copytree(ROOT, copy, ignore=ignored)
    git = ["git", "-c", "user.name=readme", "-c", "user.email=readme@test"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "copy"]):
        subprocess.run([*git, *command], cwd=copy, check=True, capture_output=True)
    return copy


def test_the_install_commands_install_a_working_package(tmp_path: Path) -> None:
    # Builds need the build tools from the package index, as they do for a user.
    copy = _copy_of_the_repository(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    lines = [line.split("  #", 1)[0].strip() for line in INSTALL.strip().splitlines()]
    for line in lines:
        command = (
            re.sub(r"(?:python -m )?pip install", "PIP", line)
            .replace("python -m", f"{python} -m")
            .replace("PIP", f"{python} -m pip install --quiet")
            .replace("/path/to/apirecorder", str(copy))
            .replace("git+<repository URL>", f"git+file://{copy}")
        )
        done = subprocess.run(command, shell=True, cwd=copy, capture_output=True, text=True)
        assert done.returncode == 0, (line, done.stderr[-2000:])
        if "pip install build" in line:
            continue
        version = subprocess.run(
            [str(venv / "bin" / "apirecorder"), "--version"], capture_output=True, text=True
        )
        assert version.stdout.strip() == "apirecorder 0.1.0", line
        plugin = subprocess.run(
            [
                python,
                "-c",
                "from importlib.metadata import entry_points as e; "
                "print([p.value for p in e(group='pytest11')])",
            ],
            capture_output=True,
            text=True,
        )
        assert plugin.stdout.strip() == "['apirecorder.pytest_plugin']", line
        subprocess.run([python, "-m", "pip", "uninstall", "-q", "-y", "apirecorder"], check=True)


@pytest.mark.parametrize("source", PROGRAMS, ids=lambda s: s.splitlines()[0][:40])
def test_snippet_runs(source: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", source], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Echo: Name a gas giant"
