"""``apirecorder scan`` applies the project's own ``redact_patterns``, as its tests redact.

The patterns come from the pytest ini file above the current folder (``pyproject.toml``,
``pytest.ini``...) and from ``--redact-pattern``; a recording made without them is flagged
where the pattern matches, one made with them scans clean.
"""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

import apirecorder
from apirecorder._cli import main
from tests.upstream import Upstream

PATTERN = r"order-\d{6}"
ORDER = "order-424242"


def _record(upstream: Upstream, folder: Path, **options: object) -> Path:
    client = openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="sk-test", max_retries=0)
    with (
        apirecorder.recording("record", folder, **options),  # type: ignore[arg-type]
        apirecorder.test_context("tests/test_scan_patterns.py::t"),
    ):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"Track {ORDER}"}]
        )
    (path,) = folder.glob("*.json")
    return path


def _scan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["scan", "--no-env", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture
def unredacted(upstream: Upstream, tmp_path: Path) -> Path:
    """A recording whose request and echoed answer hold an order number."""
    path = _record(upstream, tmp_path / "plain")
    assert ORDER in path.read_text("utf-8")
    return path


def test_redact_pattern_option_flags_what_the_pattern_would_replace(
    unredacted: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _scan(capsys, str(unredacted))[0] == 0
    code, output = _scan(capsys, "--redact-pattern", PATTERN, str(unredacted))
    assert code == 1
    assert "$.request.body.messages[0].content: redact-pattern: " in output
    assert ORDER not in output  # a finding is masked, never printed


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "pyproject.toml",
            f'[tool.pytest.ini_options]\napirecorder_redact_patterns = ["{PATTERN}"]\n'.replace(
                "\\", "\\\\"
            ),
        ),
        ("pytest.ini", f"[pytest]\napirecorder_redact_patterns =\n    {PATTERN}\n"),
        ("setup.cfg", f"[tool:pytest]\napirecorder_redact_patterns =\n    {PATTERN}\n"),
    ],
)
def test_the_ini_files_patterns_apply_from_the_folder_scan_runs_in(
    unredacted: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    text: str,
) -> None:
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(project / "sub")  # found from the current folder up, as pytest does
    code, output = _scan(capsys, str(unredacted))
    assert code == 1, output
    assert "redact-pattern" in output
    assert _scan(capsys, "--no-config", str(unredacted))[0] == 0


def test_a_recording_made_with_the_pattern_scans_clean(
    upstream: Upstream,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = _record(upstream, tmp_path / "redacted", redact_patterns=[PATTERN])
    assert ORDER not in path.read_text("utf-8")
    monkeypatch.chdir(tmp_path)
    code, output = _scan(capsys, "--redact-pattern", PATTERN, str(path))
    assert code == 0, output


def test_groups_report_only_the_group_and_lines_are_read_when_the_file_does_not_parse(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    broken = tmp_path / ("ab" * 32 + ".json")
    broken.write_text('{"request": {"body": "phone=+15551234567"\n<<<<<<< HEAD\n', "utf-8")
    code, output = _scan(capsys, "--redact-pattern", r"phone=(\+?\d+)", str(broken))
    assert code == 1
    assert f"{broken}: line 1: redact-pattern: +15******** (12 chars)" in output
    assert "not valid JSON" in output


def test_an_invalid_pattern_is_a_usage_error_naming_where_it_came_from(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\napirecorder_redact_patterns = order-(\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.json").write_text(json.dumps({"request": {}, "response": {}}))
    code, output = _scan(capsys, str(tmp_path / "r.json"))
    assert code == 2
    assert "apirecorder_redact_patterns: invalid regular expression 'order-('" in output
    code, output = _scan(capsys, "--no-config", "--redact-pattern", "[", str(tmp_path / "r.json"))
    assert code == 2
    assert "--redact-pattern: invalid regular expression '['" in output
