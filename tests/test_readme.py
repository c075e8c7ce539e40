"""Every Python snippet in the README runs, offline, from the repository root."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.upstream import Upstream

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
# The first snippet is a test module, the rest are programs.
PROGRAMS = SNIPPETS[1:]


def test_readme_starts_with_the_two_commands() -> None:
    commands = re.search(r"```bash\n(.*?)```", README, flags=re.DOTALL)
    assert commands is not None
    lines = commands.group(1).strip().splitlines()
    assert lines == [
        'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/pytest examples',
        ".venv/bin/pytest -n 2 tests examples",
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install --quiet -e ".[test]"' in ci
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


@pytest.mark.parametrize("source", PROGRAMS, ids=lambda s: s.splitlines()[0][:40])
def test_snippet_runs(source: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", source], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Echo: Name a gas giant"
