"""Redaction and scan stay linear on hostile input.

Each crafted 1 MB input repeats a prefix of some rule, the shape that made the old regexes
quadratic (``sk-sk-sk-...`` took 37 s per 100 KB, so hours per MB). Redaction and a scan of
the input as a file run in a fresh interpreter; the 60 s timeout only turns a hang into a
failure (a linear pass over 1 MB takes about a second), it is not a measurement.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SIZE = 1_000_000

CRAFTED = {
    "sk- repeated": "sk-",
    "sk-ant- repeated": "sk-ant-",
    "sk-proj- repeated": "sk-proj-",
    "ghp_ repeated": "ghp_",
    "AIza repeated": "AIza",
    "xoxb-1- repeated": "xoxb-1-",
    "eyJ- repeated": "eyJ-",
    "a JWT without its last part": "eyJaaaaaaaaaa.eyJbbbbbbbbbb.",
    "Bearer repeated": "Bearer ",
    "Basic repeated": "Basic QUJD ",
    "percent-escaped keys": "%20sk-",
    "JSON-escaped keys": "\\u0026sk-",
    "telegram-like": "bot123456:",
    "query names": "api_key=a&",
    "a name without its =": "a",
    "escaped separators": "\\u0026key",
    "JSON pairs without an end": '"api_key": "\\',
    "quotes": '"',
    "header lines": "X-Api-Key: ",
    "colons": "a:",
    "schemes": "a://",
    "userinfo without @": "https://user:pass",
    "PEM begin": "-----BEGIN PRIVATE KEY-----",
    "multipart headers": 'Content-Disposition: form-data; name="password"',
    "multipart headers without names": "Content-Disposition: form-data;",
    "webhooks": "hooks.slack.com/services/",
}

SCRIPT = """
import sys, time
from pathlib import Path
from apirecorder._redaction import Redactor
from apirecorder._cli import main

text = Path(sys.argv[1]).read_text(encoding="utf-8")
start = time.perf_counter()
Redactor().text(text)
redacted = time.perf_counter() - start
start = time.perf_counter()
main(["scan", "--no-env", sys.argv[1]])
scanned = time.perf_counter() - start
print(f"redact {redacted:.2f}s scan {scanned:.2f}s", file=sys.stderr)
"""


def _run(script: str, path: Path) -> subprocess.CompletedProcess[str]:
    # A fresh interpreter, so a runaway regex is killed by the timeout, not left running.
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_input_is_redacted_and_scanned_in_linear_time(case: str, tmp_path: Path) -> None:
    unit = CRAFTED[case]
    path = tmp_path / "crafted.json"
    path.write_text(unit * (SIZE // len(unit)), encoding="utf-8")
    done = _run(SCRIPT, path)
    assert done.stderr.splitlines()[-1].startswith("redact ")


RECORD_SCRIPT = """
import json, sys
from pathlib import Path
from apirecorder._redaction import Redactor
from apirecorder._cli import main

record = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
Redactor().record(record)
sys.exit(main(["scan", "--no-env", sys.argv[1]]))
"""


@pytest.mark.parametrize("piece", ["sk-", "Bearer ", '"k": "'])
def test_a_stream_of_many_chunks_is_redacted_and_scanned_in_linear_time(
    piece: str, tmp_path: Path
) -> None:
    # Strings at the same place in successive chunks are read joined: 1 MB of them here.
    chunks = [{"__data__": {"delta": {"content": piece}}} for _ in range(SIZE // len(piece) // 8)]
    record = {"request": {}, "response": {"is_streaming": True, "body": chunks}}
    path = tmp_path / "stream.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    _run(RECORD_SCRIPT, path)
