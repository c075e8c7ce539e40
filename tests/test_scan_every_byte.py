"""``apirecorder scan`` reads every byte, finds every kind redaction knows, and says what it
could not read.

Scan runs the redaction code in a reporting mode, so the cross-check is direct: every leak
of test_redaction_wire, written unredacted, is found; written redacted, it scans clean.
"""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import apirecorder
from apirecorder._cli import main
from apirecorder._redaction import KEY_FORMATS, redact_recording
from tests.test_redaction_wire import CASES, KEY_FORMAT_SAMPLES, OPENAI_KEY, SECRET

# The machine's own secret variables must not change what these tests see.
from tests.test_scan import _no_secrets_in_the_environment  # noqa: F401 - autouse fixture

LEAK = f"Bearer {OPENAI_KEY}"


def _scan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["scan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _recording(text: str = "fine") -> dict[str, Any]:
    return {
        "test_id": "tests/test_x.py::test_y",
        "request": {"method": "GET", "url": "https://x.example/", "headers": {}, "payload": None},
        "response": {"status": 200, "headers": {}, "body": {"text": text}},
    }


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"


# -- every kind -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_every_leak_redaction_knows_is_found_and_clean_once_redacted(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record, _secret = CASES[case]
    leaked = tmp_path / "leaked" / "r.json"
    leaked.parent.mkdir()
    leaked.write_text(_dump(record), encoding="utf-8")
    code, out, _ = _scan(capsys, str(leaked.parent))
    assert code == 1, out
    assert out.startswith(f"{leaked}: $.")

    with apirecorder.recording("record", tmp_path / "unused") as session:
        redacted = redact_recording(record, session)
    clean = tmp_path / "clean" / "r.json"
    clean.parent.mkdir()
    clean.write_text(_dump(redacted), encoding="utf-8")
    assert _scan(capsys, str(clean.parent))[:2] == (0, "")


def _rule_of(sample: str) -> str:
    return next(
        key_format.name
        for key_format in KEY_FORMATS
        if any(True for _ in key_format.spans(f" {sample} "))
    )


SAMPLES = {
    **{name: (value, _rule_of(value)) for name, value in KEY_FORMAT_SAMPLES.items()},
    "AWS": ("AKIAIOSFODNN7EXAMPLE", "aws-access-key-id"),
    "Google": ("AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "google-api-key"),
    "Tavily": ("tvly-dev-4Kq8Zp2Xw7Lm9Rt3Yb6Nc1Vd5", "tavily-key"),
    "Groq": ("gsk_7Hq2Lp9Xz4Wm8Rt3Yk6Nb1Vc5Jd0Fs2Ga", "groq-key"),
    "Hugging Face": ("hf_" + "aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT0uV1wX", "huggingface-token"),
    "Slack token": ("xoxb-123456789012-abcdefABCDEF123456", "slack-token"),
    "Slack webhook": (
        "https://hooks.slack.com/services/T0001/B0002/Zq8Lw3Xp7Nm2Rt6Yb1Vc",
        "slack-webhook",
    ),
    "Discord webhook": (f"https://discord.com/api/webhooks/123456/{SECRET}", "discord-webhook"),
    "Telegram": (f"https://api.telegram.org/bot123456789:AAH{SECRET}/getMe", "telegram-bot-token"),
    "PEM": ("-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----", "private-key"),
    "Basic": ("Authorization: Basic YWRhOmh1bnRlcjI=", "basic-auth"),
    "query": (f"https://x.example/?subscription-key={SECRET}", "query-parameter"),
    "JSON text": ('{"clientSecret" : "' + SECRET + '"}', "credential-field"),
    "header line": (f"X-Api-Key: {SECRET}", "credential-header"),
    "userinfo": (f"postgres://ada:{SECRET}@db.example.com/x", "url-userinfo"),
    "multipart": (
        'Content-Disposition: form-data; name="password"\r\n\r\nhunter2-x\r\n--b--',
        "multipart-field",
    ),
}


def test_the_samples_cover_every_kind() -> None:
    rules = {rule for _, rule in SAMPLES.values()}
    assert {key_format.name for key_format in KEY_FORMATS} <= rules


@pytest.mark.parametrize("kind", SAMPLES)
@pytest.mark.parametrize("container", ["recording", "plain JSON", "text file"])
def test_every_kind_in_every_container(
    kind: str, container: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample, rule = SAMPLES[kind]
    path = tmp_path / "f.json"
    if container == "recording":
        path.write_text(_dump(_recording(f"x {sample} y")), encoding="utf-8")
    elif container == "plain JSON":
        path.write_text(_dump({"notes": [f"x {sample} y"]}), encoding="utf-8")
    else:
        path = tmp_path / "notes.txt"
        path.write_text(f"first line\nx {sample} y\n", encoding="utf-8")
    code, out, _ = _scan(capsys, str(path))
    assert code == 1
    assert f": {rule}: " in out.splitlines()[0]


def test_environment_values_of_secret_looking_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_KEY", "azure-plain-words")
    (tmp_path / "r.json").write_text(_dump(_recording("AZURE-PLAIN-WORDS")), encoding="utf-8")
    code, out, _ = _scan(capsys, str(tmp_path))
    assert code == 1
    assert ": env:AZURE_OPENAI_KEY: " in out


# -- every byte of every file ---------------------------------------------------------------

CONFLICTED = (
    '{\n  "request": {\n<<<<<<< HEAD\n    "headers": {"authorization": "'
    + LEAK
    + '"},\n=======\n    "headers": {},\n>>>>>>> other\n  },\n  "response": {}\n}\n'
)


def _encoded(text: str, encoding: str, bom: bytes = b"") -> bytes:
    return bom + text.encode(encoding)


CONTAINERS: dict[str, bytes] = {
    "merge conflict": CONFLICTED.encode(),
    "truncated": _dump(_recording(LEAK))[:-30].encode(),
    "UTF-8 with BOM": _encoded(_dump(_recording(LEAK)), "utf-8", codecs.BOM_UTF8),
    "UTF-16 LE with BOM": _encoded(_dump(_recording(LEAK)), "utf-16-le", codecs.BOM_UTF16_LE),
    "UTF-16 BE with BOM": _encoded(_dump(_recording(LEAK)), "utf-16-be", codecs.BOM_UTF16_BE),
    "UTF-16 without BOM": _encoded(_dump(_recording(LEAK)), "utf-16-le"),
    "UTF-32 LE with BOM": _encoded(_dump(_recording(LEAK)), "utf-32-le", codecs.BOM_UTF32_LE),
    "UTF-32 BE without BOM": _encoded(_dump(_recording(LEAK)), "utf-32-be"),
    "a duplicated key hides the first value": (
        '{"request": {}, "response": {"body": {"t": "' + LEAK + '", "t": "fine"}}}'
    ).encode(),
    "not UTF-8 at all": b"\xc3\x28\xfa" + LEAK.encode() + b"\xc3",
    "set-cookie list": _dump(
        {
            "request": {},
            "response": {"headers": {"set-cookie": ["theme=dark", f"sid={SECRET}"]}},
        }
    ).encode(),
    "body stored as base64": _dump(
        {
            "request": {},
            "response": {
                "body_format": "base64",
                "body": __import__("base64").b64encode(b"\x00\x01" + LEAK.encode()).decode(),
            },
        }
    ).encode(),
    "key split across stream chunks": _dump(
        {
            "request": {},
            "response": {
                "is_streaming": True,
                "body": [
                    {"__data__": {"delta": {"content": OPENAI_KEY[:12]}}},
                    {"__data__": {"delta": {"content": OPENAI_KEY[12:]}}},
                ],
            },
        }
    ).encode(),
}


@pytest.mark.parametrize("container", CONTAINERS)
def test_every_container_is_read_in_a_folder_walk(
    container: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()
    path = folder / "r.json"
    path.write_bytes(CONTAINERS[container])
    code, out, err = _scan(capsys, str(tmp_path))
    assert code == 1, (out, err)
    assert out.startswith(f"{path}: ")
    assert OPENAI_KEY[8:] not in out and SECRET not in out


@pytest.mark.parametrize("container", ["merge conflict", "truncated", "not UTF-8 at all"])
def test_files_that_do_not_parse_are_reported(
    container: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(CONTAINERS[container])
    code, out, err = _scan(capsys, str(tmp_path))
    assert code == 1
    assert f"{path}: not valid JSON; scanned as text, line by line\n" in err
    code, out, _ = _scan(capsys, "--json", str(tmp_path))
    assert json.loads(out)["unparsed"] == [str(path)]


# -- folders --------------------------------------------------------------------------------


def _plant(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "r.json"
    path.write_text(_dump(_recording(LEAK)), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", [".recordings", "venv", "node_modules", "__pycache__"])
def test_a_hidden_or_tool_folder_given_explicitly_is_walked(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _plant(tmp_path / name)
    code, out, err = _scan(capsys, str(tmp_path))
    assert code == 2 and out == ""  # skipped inside the walk: nothing was scanned
    assert "skipped 1 hidden or tool folder(s) (--include-hidden walks them)." in err
    assert _scan(capsys, str(tmp_path / name))[0] == 1
    assert _scan(capsys, "--include-hidden", str(tmp_path))[0] == 1


def test_symlinked_folders_are_followed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = _plant(tmp_path / "elsewhere" / "recordings")
    walked = tmp_path / "tests"
    walked.mkdir()
    (walked / "recordings").symlink_to(real.parent, target_is_directory=True)
    (walked / "loop").symlink_to(walked, target_is_directory=True)  # a cycle ends
    code, out, _ = _scan(capsys, str(walked))
    assert code == 1
    assert out.splitlines()[0].startswith(f"{walked / 'recordings' / 'r.json'}: ")
    assert len(out.splitlines()) == 1


def test_an_empty_walk_fails_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _scan(capsys, str(tmp_path))
    assert (code, out) == (2, "")
    assert err.endswith(
        f"apirecorder scan: error: no file to scan in {tmp_path} "
        "(pass --allow-empty when that is expected)\n"
    )
    assert _scan(capsys, "--allow-empty", str(tmp_path))[0] == 0


def test_a_fifo_is_reported_not_opened(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "ok.json").write_text(_dump(_recording()), encoding="utf-8")
    code, _, err = _scan(capsys, str(tmp_path))
    assert code == 2
    assert f"{tmp_path / 'fifo.json'}: cannot read: " in err


def test_the_console_script_reads_a_merge_conflict(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(CONFLICTED, encoding="utf-8")
    done = subprocess.run(
        [Path(sys.executable).with_name("apirecorder"), "scan", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout.startswith(f"{path}: line 4: ")
    assert OPENAI_KEY[8:] not in done.stdout + done.stderr


def test_a_broken_recording_in_a_recordings_folder_is_scanned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Hand-edited: "response" lost. Elsewhere a JSON file that is no recording is skipped.
    broken = tmp_path / "tests" / "recordings" / "r.json"
    broken.parent.mkdir(parents=True)
    broken.write_text(_dump({"request": {"headers": {"authorization": LEAK}}}), encoding="utf-8")
    (tmp_path / "package.json").write_text(_dump({"token": OPENAI_KEY}), encoding="utf-8")
    code, out, err = _scan(capsys, str(tmp_path))
    assert code == 1
    assert out.startswith(f"{broken}: $.request.headers.authorization: ")
    assert len(out.splitlines()) == 1
    assert "skipped 1 JSON file(s) that are not recordings (name a file to scan it)." in err
