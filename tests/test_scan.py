"""``apirecorder scan``: secrets found, named and masked; clean recordings stay clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from apirecorder._cli import main
from apirecorder._redaction import is_secret_env_name

FIXTURES = Path(__file__).parent / "fixtures"
OPENAI_KEY = "sk-proj-Q3vLw8XnT2bRk9YpZ4mC7hJd1sFg6aUe0iOy5tWq8rEz3xNc"


@pytest.fixture(autouse=True)
def _no_secrets_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The scan also looks for the values of secret environment variables; the machine
    # running the tests must not change what these tests see.
    for name in list(os.environ):
        if is_secret_env_name(name):
            monkeypatch.delenv(name)


def _scan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["scan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _recording(**response_body: Any) -> dict[str, Any]:
    return {
        "test_id": "tests/test_x.py::test_y",
        "request": {
            "method": "POST",
            "url": "https://api.openai.com/v1/v1/chat/completions",
            "headers": {},
            "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            "endpoint": "/v1/chat/completions",
            "model": "gpt-4o",
        },
        "response": {"body": response_body, "is_streaming": False},
    }


def _write(folder: Path, name: str, data: Any) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def test_the_reference_fixtures_scan_clean(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _scan(capsys, str(FIXTURES))
    assert (code, out) == (0, "")
    assert err == "no secrets found in 23 file(s).\n"


def test_the_console_script_exits_1_on_a_planted_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.json", _recording(text=f"key: {OPENAI_KEY}"))
    done = subprocess.run(
        [Path(sys.executable).with_name("apirecorder"), "scan", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == f"{path}: $.response.body.text: openai-key: sk-pro******** (56 chars)\n"


PLANTED: dict[str, tuple[Any, str, str]] = {
    "openai key": ({"text": f"use {OPENAI_KEY} here"}, "$.response.body.text", "openai-key"),
    "anthropic key": (
        {"a": ["x", {"b": "sk-ant-api03-Xp9Lm2Qw7Rt4Yk8Zn3Bv6Hc1Jd5Fs0Ga"}]},
        "$.response.body.a[1].b",
        "anthropic-key",
    ),
    "tavily key": ({"k": "tvly-dev-4Kq8Zp2Xw7Lm9Rt3Yb6Nc1Vd5"}, "$.response.body.k", "tavily-key"),
    "aws key id": ({"k": "AKIAIOSFODNN7EXAMPLE"}, "$.response.body.k", "aws-access-key-id"),
    "github token": (
        {"k": "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"},
        "$.response.body.k",
        "github-token",
    ),
    "bearer token": (
        {"log": "curl -H 'Authorization: Bearer abc123def456ghi789jkl'"},
        "$.response.body.log",
        "bearer-token",
    ),
    "jwt": (
        {"t": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n"},
        "$.response.body.t",
        "jwt",
    ),
    "private key": (
        {"pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"},
        "$.response.body.pem",
        "private-key",
    ),
    "credential header": (
        {"headers": {"X-Api-Key": "a-plain-looking-value"}},
        '$.response.body.headers["X-Api-Key"]',
        "credential-header",
    ),
    "header named like a token": (
        {"headers": {"x-session-token": "Zq8Lw3Xp7Nm2Rt6Yb1Vc"}},
        '$.response.body.headers["x-session-token"]',
        "credential-header",
    ),
    "header pairs": (
        {"headers": [["Set-Cookie", "session=abc123def456"]]},
        "$.response.body.headers[0][1]",
        "credential-header",
    ),
    "random value in a secret field": (
        {"client_secret": "Zq8Lw3Xp7Nm2Rt6Yb1Vc"},
        "$.response.body.client_secret",
        "credential-field",
    ),
    "query parameter": (
        {"next": "https://x.example/a?page=2&api_key=abcd1234efgh"},
        "$.response.body.next",
        "query-parameter",
    ),
    "odd key name": (
        {"odd key": f"{OPENAI_KEY}"},
        '$.response.body["odd key"]',
        "openai-key",
    ),
}


@pytest.mark.parametrize("case", PLANTED)
def test_a_planted_secret_is_named_with_file_path_and_rule(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body, json_path, rule = PLANTED[case]
    path = _write(tmp_path / "tests" / "recordings", "abc.json", _recording(**body))
    code, out, err = _scan(capsys, str(tmp_path))
    assert code == 1
    (line,) = out.splitlines()
    assert line.startswith(f"{path}: {json_path}: {rule}: ")
    assert "********" in line
    assert err.startswith("1 possible secret(s) in 1 of 1 file(s) scanned.")


def test_previews_never_show_the_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "r.json", _recording(**{k: v[0] for k, v in PLANTED.items()}))
    code, out, _ = _scan(capsys, str(tmp_path))
    assert code == 1
    assert len(out.splitlines()) == len(PLANTED)
    assert OPENAI_KEY[6:] not in out
    assert "EXAMPLE" not in out and "Zq8Lw3" not in out


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "r.json", _recording(text=OPENAI_KEY))
    _write(tmp_path, "clean.json", _recording(text="nothing here"))
    code, out, err = _scan(capsys, "--json", str(tmp_path))
    assert (code, err) == (1, "")
    assert json.loads(out) == {
        "files_scanned": 2,
        "findings": [
            {
                "file": str(path),
                "path": "$.response.body.text",
                "rule": "openai-key",
                "preview": "sk-pro******** (56 chars)",
            }
        ],
        "unparsed": [],
        "unreadable": [],
        "skipped_dirs": [],
        "not_recordings": [],
    }
    code, out, _ = _scan(capsys, "--json", str(tmp_path / "clean.json"))
    assert code == 0
    assert json.loads(out)["findings"] == []


def test_the_environment_values_are_looked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYCORP_API_KEY", "mycorp-plain-words")
    monkeypatch.setenv("OTHER_VALUE", "other-plain-words")
    _write(tmp_path, "r.json", _recording(a="x MYCORP-PLAIN-WORDS y", b="other-plain-words"))
    code, out, _ = _scan(capsys, str(tmp_path))
    assert code == 1
    assert out.splitlines() == [
        f"{tmp_path / 'r.json'}: $.response.body.a: env:MYCORP_API_KEY: MYCO******** (18 chars)"
    ]
    code, out, _ = _scan(capsys, "--secret-env-var", "OTHER_VALUE", str(tmp_path))
    assert len(out.splitlines()) == 2
    assert _scan(capsys, "--no-env", str(tmp_path))[0] == 0


def test_allow_silences_a_known_false_positive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, "r.json", _recording(text=OPENAI_KEY, other="AKIAIOSFODNN7EXAMPLE"))
    code, out, _ = _scan(capsys, "--allow", "EXAMPLE$", str(tmp_path))
    assert code == 1
    assert "openai-key" in out and "aws" not in out
    assert _scan(capsys, "--allow", "EXAMPLE$", "--allow", "^sk-proj-Q3", str(tmp_path))[0] == 0


def test_folders_hold_recordings_files_are_always_scanned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # In a folder walk only recordings count: package.json and hidden folders are skipped.
    _write(tmp_path, "package.json", {"token": OPENAI_KEY})
    _write(tmp_path / ".git", "r.json", _recording(text=OPENAI_KEY))
    _write(tmp_path / "node_modules" / "x", "r.json", _recording(text=OPENAI_KEY))
    _write(tmp_path / "tests" / "recordings", "ok.json", _recording(text="fine"))
    assert _scan(capsys, str(tmp_path))[:2] == (0, "")
    # Named on the command line, any file is scanned, JSON or not.
    code, out, _ = _scan(capsys, str(tmp_path / "package.json"))
    assert code == 1 and f"{tmp_path / 'package.json'}: $.token: " in out
    notes = tmp_path / "notes.txt"
    notes.write_text(f"line one\nexport OPENAI_API_KEY={OPENAI_KEY}\n", encoding="utf-8")
    code, out, _ = _scan(capsys, str(notes))
    assert code == 1
    assert out.startswith(f"{notes}: line 2: openai-key: ")


def test_a_broken_recording_is_still_scanned_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "truncated.json"
    path.write_text('{"request": {"headers": {"x": "' + OPENAI_KEY, encoding="utf-8")
    code, out, _ = _scan(capsys, str(path))
    assert code == 1
    assert out.startswith(f"{path}: line 1: openai-key")


def test_deep_nesting_does_not_crash_the_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "deep.json").write_text(deep, encoding="utf-8")
    nested: Any = OPENAI_KEY
    for _ in range(900):
        nested = [nested]
    _write(tmp_path, "nested.json", {"request": {}, "response": {"body": nested}})
    code, out, _ = _scan(capsys, str(tmp_path / "deep.json"), str(tmp_path / "nested.json"))
    assert code == 1
    assert out.startswith(f"{tmp_path / 'nested.json'}: $.response.body[0][0]")


def test_default_path_is_the_current_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "recordings", "r.json", _recording(text=OPENAI_KEY))
    monkeypatch.chdir(tmp_path)
    code, out, _ = _scan(capsys)
    assert code == 1
    assert out.startswith("recordings/r.json: $.response.body.text")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing-folder"], "apirecorder scan: error: no such file or folder: missing-folder\n"),
        (["--allow", "(", "."], "apirecorder scan: error: --allow: invalid regular expression"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _scan(capsys, *args)
    assert (code, out) == (2, "")
    assert err.startswith(message)


def test_unknown_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["scan", "--bogus"])
    assert exit_info.value.code == 2


# -- no false positives on what recordings are full of -------------------------------

LOOKALIKES = {
    "normalized ids": {"id": "rec-0a2adfcbd0a2", "chunks": ["rec-36968c3ac66b"]},
    "hashes and digests": {
        "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
        "sha256": "sha256:195a8c01d91ec3cb1e0aad4624a51f2602c51fa7d96110f8ab5a20c84081804d",
    },
    "base64 embedding": {
        "embedding": "AAAAAIA/AAAAQAAAQEAAAIBAAACgQAAAwEAAAOBAAAAAQQAAEEEAACBBAAAwQQAAQEEAAFBB" * 20
    },
    "uuids and request ids": {
        "x-request-id": "req_8f3a9b2c1d8e4f6a0b5c3d2e",
        "trace": "550e8400-e29b-41d4-a716-446655440000",
    },
    "tool call ids": {"tool_calls": [{"id": "call_Zq8Lw3Xp7Nm2Rt6Yb1Vc4Kd9", "type": "function"}]},
    "slugs and prose": {
        "url": "https://example.com/sk-learn-tutorial-for-beginners-2024",
        "text": "The bearer bonds were signed by the key holder; tokens: 12345.",
        "logprobs": [{"token": " Saturn", "logprob": -0.01}],
    },
    "placeholders": {
        "headers": {"authorization": "<redacted>", "set-cookie": ["<redacted>", "<redacted>"]},
        "url": "https://x.example/?api_key=<redacted>&q=1",
        "auth": "Bearer <redacted>",
    },
    "thinking signature": {"type": "thinking", "signature": "EqQBCkgIARABGAIiQL7X9mZ2KpW"},
    "ratelimit headers": {
        "headers": {
            "x-ratelimit-remaining-tokens": "149984",
            "x-ratelimit-reset-tokens": "6m0s",
            "anthropic-ratelimit-tokens-reset": "2024-01-01T00:00:00Z",
        }
    },
}


@pytest.mark.parametrize("case", LOOKALIKES)
def test_lookalikes_are_not_findings(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, "r.json", _recording(**LOOKALIKES[case]))
    assert _scan(capsys, str(tmp_path))[:2] == (0, "")
