"""Hostile files named like recordings: a named ApiRecorderError, promptly, in bounded memory.

Each case runs in a child process with a memory limit and a timeout, through the loader
(``load_recording``), the replay lookup (``Storage.find``) and the CLI, so a hang or a memory
blow-up fails the test instead of the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from apirecorder._exceptions import ApiRecorderError, RecordingFormatError
from apirecorder._storage import MAX_RECORDING_BYTES, load_recording

HASH = "ab" * 32
NAME = f"{HASH}.json"
ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 60
MEMORY_LIMIT = 1536 * 1024 * 1024  # far below what reading /dev/zero to the end takes


def _recording(**response: object) -> dict[str, object]:
    return {
        "test_id": None,
        "request": {"method": "POST", "url": "http://h/v1/v1/chat/completions", "body": {}},
        "response": {"body": {"text": "x" * 64}, "is_streaming": False, **response},
    }


def _text(data: object) -> str:
    return json.dumps(data, indent=2) + "\n"


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _symlink_to(device: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.symlink_to(device)

    return make


def _writes(text: str, encoding: str = "utf-8") -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.write_bytes(text.encode(encoding))

    return make


def _big_mapping() -> str:
    data = _recording()
    data["id_normalization_mapping"] = {f"rec-{i}": f"orig-{i}" for i in range(100_000)}
    return _text(data)


def _doubling_mapping() -> str:
    # About 2 KB of mapping whose chained replacements double the "z"s 40 times (a terabyte):
    # each entry turns every "z" into "zz" plus a marker that keeps the keys distinct.
    data = _recording()
    data["id_normalization_mapping"] = {"zz" + "q" * i: "z" for i in range(40)}
    return _text(data)


def _exception_with(body_literal: str) -> str:
    data = _recording(is_exception=True, exception_data={"type": "E", "body": "@BODY@"})
    return _text(data).replace('"@BODY@"', body_literal)


#: case -> (how to make the file, words the error must hold).
CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "fifo": (_fifo, "a named pipe (FIFO), not a regular file"),
    "symlink to /dev/urandom": (_symlink_to("/dev/urandom"), "a character device"),
    "symlink to /dev/zero": (_symlink_to("/dev/zero"), "a character device"),
    "mapping of 100,000 entries": (_writes(_big_mapping()), "100000 entries"),
    "mapping that doubles the text": (_writes(_doubling_mapping()), "would make the recording"),
    "mapping of an empty string": (
        _writes(_text({**_recording(), "id_normalization_mapping": {"a": ""}})),
        "maps an empty string",
    ),
    "utf-16 with a bom": (_writes(_text(_recording()), "utf-16"), "UTF-16 text"),
    "utf-16 without a bom": (_writes(_text(_recording()), "utf-16-le"), "UTF-16 or UTF-32"),
    "utf-32 with a bom": (_writes(_text(_recording()), "utf-32"), "UTF-32 text"),
    "utf-8 with a bom": (_writes(_text(_recording()), "utf-8-sig"), "byte-order mark"),
    "latin-1": (_writes(_text(_recording()).replace("xx", "é"), "latin-1"), "not UTF-8"),
    "NaN in an exception body": (_writes(_exception_with('{"score": NaN}')), "NaN, Infinity"),
    "Infinity in an exception body": (_writes(_exception_with("-Infinity")), "NaN, Infinity"),
}

CHILD = """
import json, resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from apirecorder._storage import Storage, load_recording
from apirecorder._exceptions import ApiRecorderError
folder = Path(sys.argv[1])
try:
    if sys.argv[2] == "load":
        load_recording(folder / "{name}")
    else:
        Storage(folder, flat=True).find("{hash}", None)
except ApiRecorderError as exc:
    print(json.dumps({{"error": type(exc).__name__, "message": str(exc)}}))
else:
    print(json.dumps({{"error": None}}))
"""


def _child(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=TIMEOUT_S, env=env, check=False, cwd=ROOT
    )


@pytest.mark.parametrize("how", ["load", "find"])
@pytest.mark.parametrize("case", CASES)
def test_hostile_file_is_a_named_error_promptly_and_in_bounded_memory(
    case: str, how: str, tmp_path: Path
) -> None:
    make, words = CASES[case]
    make(tmp_path / NAME)
    script = CHILD.format(limit=MEMORY_LIMIT, name=NAME, hash=HASH)
    done = _child(sys.executable, "-c", script, str(tmp_path), how)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["error"] == "RecordingFormatError"
    assert result["message"].startswith(f"{tmp_path / NAME}: ")
    if how == "find" and case.startswith("symlink"):
        # The lookup knows its root: a link leading out of it is refused for that first.
        words = "outside the storage root"
    assert words in result["message"]


#: Each command given the folder holding the file, or the file itself (show takes one file).
CLI_RUNS = [
    *(
        (command, given)
        for command in ("verify", "ls", "stats", "normalize", "rehash")
        for given in ("its folder", "the file")
    ),
    ("show", "the file"),
]


@pytest.mark.parametrize(("command", "given"), CLI_RUNS)
@pytest.mark.parametrize("case", ["fifo", "symlink to /dev/zero", "mapping that doubles the text"])
def test_the_cli_names_a_hostile_file_and_goes_on(
    case: str, command: str, given: str, tmp_path: Path
) -> None:
    make, words = CASES[case]
    make(tmp_path / NAME)
    good = tmp_path / ("cd" * 32 + ".json")
    good.write_text(_text(_recording()))
    script = (
        f"import resource, sys; resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT},) * 2)\n"
        "from apirecorder._cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    target = tmp_path / NAME if given == "the file" else tmp_path
    done = _child(sys.executable, "-c", script, command, str(target))
    assert "Traceback" not in done.stderr
    assert f"{tmp_path / NAME}: " in done.stdout + done.stderr
    assert words in done.stdout + done.stderr
    assert done.returncode in (0, 1)


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apirecorder import _loading

    path = tmp_path / NAME
    path.write_text(_text(_recording()))
    monkeypatch.setattr(_loading, "MAX_RECORDING_BYTES", path.stat().st_size - 1)
    with pytest.raises(RecordingFormatError, match="MiB, more than any recording"):
        load_recording(path)
    assert MAX_RECORDING_BYTES >= 64 * 1024 * 1024  # embeddings recordings can be large


def test_nan_outside_an_exception_body_still_round_trips(tmp_path: Path) -> None:
    # A float NaN in a response (a logprob, say) is data the SDK rebuilds; only an error
    # body, which replay turns into HTTP bytes, cannot hold one.
    path = tmp_path / NAME
    data = _recording()
    data["response"] = {"body": {"nan": float("nan")}, "is_streaming": False}
    path.write_text(_text(data))  # json.dumps writes the NaN literal
    value = load_recording(path).response["body"]["nan"]
    assert value != value
    assert issubclass(RecordingFormatError, ApiRecorderError)
