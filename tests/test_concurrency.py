"""Crash and concurrency safety: atomic writes, racing processes, kill -9, pytest -n 2.

Each child process is a real Python process recording through the OpenAI SDK against the
local upstream; the parent only starts, synchronizes, kills and inspects.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

import apirecorder
from apirecorder._storage import load_recording
from tests.upstream import Request, Response, Upstream, json_response

ROOT = Path(__file__).resolve().parents[1]

RECORD_ONE = textwrap.dedent(
    """
    import sys
    import openai
    import apirecorder

    url, folder, writer = sys.argv[1], sys.argv[2], sys.argv[3]
    count, peers = int(sys.argv[4]), int(sys.argv[5])
    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
    # Wait for the siblings, so all processes write the same file at the same time.
    open(f"{folder}/../{writer}.ready", "w").close()
    import os, time
    while len([n for n in os.listdir(f"{folder}/..") if n.endswith(".ready")]) < peers:
        time.sleep(0.001)
    for _ in range(count):  # a block each: the same call again in one block is the n-th
        with apirecorder.test_context("tests/test_race.py::race"), \\
                apirecorder.recording("record", folder):
            client.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": "race"}],
                extra_headers={"X-Writer": writer},
            )
    """
)

READ_LOOP = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from apirecorder._storage import load_recording

    folder, done = Path(sys.argv[1]), Path(sys.argv[2])
    reads = 0
    while not done.exists():
        for path in folder.glob("*.json"):
            load_recording(path)  # a partial file would raise and fail the process
            reads += 1
    print(reads)
    """
)


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out


PADDING = 300_000


def _writer_reply(request: Request) -> Response:
    # Each writer gets a different, big answer for the same request (hash): a torn or
    # interleaved file would mix the two letters, or fail to parse.
    writer = request.headers.get("x-writer", "?")
    message = {"role": "assistant", "content": writer * PADDING, "refusal": None}
    return json_response(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
            ],
        }
    )


@pytest.fixture
def race_upstream(upstream: Upstream) -> Upstream:
    upstream.add_route("POST", "/v1/chat/completions", _writer_reply)
    return upstream


def test_two_processes_recording_the_same_hash_leave_one_complete_file(
    race_upstream: Upstream, tmp_path: Path
) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()
    done = tmp_path / "done"
    reader = _python(READ_LOOP, str(folder), str(done))
    writers = [_python(RECORD_ONE, race_upstream.url, str(folder), name, "5", "2") for name in "AB"]
    for writer in writers:
        _finish(writer)
    done.touch()
    reads = int(_finish(reader))
    assert len(race_upstream.requests_to("/v1/chat/completions")) == 10

    assert sorted(p.name for p in folder.iterdir()) == [
        next(folder.glob("*.json")).name
    ]  # one file, no temp files left behind
    (path,) = folder.glob("*.json")
    content = load_recording(path).response["body"]["__data__"]["choices"][0]["message"]
    assert content["content"] in ("A" * PADDING, "B" * PADDING)
    assert reads > 0  # and every read found a complete recording


# -- kill -9 in the middle of a write -------------------------------------------------

KILLED_WRITER = textwrap.dedent(
    """
    import os, sys, time
    import openai
    import apirecorder

    url, folder, flag, stage = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]

    def hang():
        open(flag, "w").close()
        time.sleep(120)

    real_fdopen, real_replace = os.fdopen, os.replace

    class HalfWriter:
        # Writes half of the recording, then hangs until the parent kills the process.
        def __init__(self, handle):
            self.handle = handle
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)
        def write(self, data):
            if not data.startswith(b"{"):
                return self.handle.write(data)
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            hang()
        def __getattr__(self, name):
            return getattr(self.handle, name)

    def slow_fdopen(*args, **kwargs):
        return HalfWriter(real_fdopen(*args, **kwargs))

    def slow_replace(src, dst):
        if not str(dst).endswith(".json"):
            return real_replace(src, dst)
        hang()  # the whole file is written and synced, not yet renamed

    if stage == "writing":
        os.fdopen = slow_fdopen
    else:
        os.replace = slow_replace

    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
    # The same call as RECORD_ONE makes: the same file, answered with other content.
    with apirecorder.test_context("tests/test_race.py::race"), \\
            apirecorder.recording("record", folder):
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "race"}],
            extra_headers={"X-Writer": "B"},
        )
    """
)


def _record_old_file(url: str, folder: Path) -> Path:
    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
    with (
        apirecorder.test_context("tests/test_race.py::race"),
        apirecorder.recording("record", folder),
    ):
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "race"}],
            extra_headers={"X-Writer": "A"},
        )
    (path,) = folder.glob("*.json")
    return path


def _kill_mid_write(url: str, folder: Path, tmp_path: Path, stage: str) -> None:
    flag = tmp_path / f"{stage}.flag"
    child = _python(KILLED_WRITER, url, str(folder), str(flag), stage)
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert child.poll() is None, child.communicate()[1]
            assert time.monotonic() < deadline, "the child never reached the write"
            time.sleep(0.01)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.communicate()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("stage", ["writing", "renaming"])
def test_killed_writer_leaves_the_old_file(
    stage: str, race_upstream: Upstream, tmp_path: Path
) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()
    old = _record_old_file(race_upstream.url, folder)
    before = old.read_bytes()
    _kill_mid_write(race_upstream.url, folder, tmp_path, stage)
    assert old.read_bytes() == before
    assert [p.name for p in folder.glob("*.json")] == [old.name]
    # The half-written temp file stays behind under a name no lookup or scan reads.
    (stray,) = [p for p in folder.iterdir() if p != old]
    assert stray.name.startswith(f".{old.name}.") and stray.name.endswith(".tmp")


@pytest.mark.parametrize("stage", ["writing", "renaming"])
def test_killed_first_writer_leaves_no_file(
    stage: str, race_upstream: Upstream, tmp_path: Path
) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()
    _kill_mid_write(race_upstream.url, folder, tmp_path, stage)
    assert list(folder.glob("*.json")) == []


# -- pytest -n 2 writes what a serial run writes --------------------------------------

SUITE = {
    "tests/conftest.py": """
        import os
        import openai
        import pytest

        @pytest.fixture
        def client():
            return openai.OpenAI(
                base_url=os.environ["UPSTREAM"] + "/v1", api_key="k", max_retries=0
            )
    """,
    "tests/chat/test_chat.py": """
        import os

        import ollama
        import pytest

        pytestmark = pytest.mark.apirecorder

        @pytest.mark.parametrize("n", range(6))
        def test_chat(client, n):
            answer = client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": f"question {n}"}]
            )
            assert answer.choices[0].message.content == f"Echo: question {n}"

        def test_stream(client):
            chunks = client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "a b c"}], stream=True
            )
            assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: a b c"

        def test_models(client):
            assert [m.id for m in client.models.list()]

        # Ollama's model list (/api/tags) is shared by every test: both tests write the
        # same file, from two workers at once under -n 2.
        def test_tags_a():
            assert ollama.Client(host=os.environ["UPSTREAM"]).list().models

        def test_tags_b():
            assert ollama.Client(host=os.environ["UPSTREAM"]).list().models
    """,
    "tests/other/test_other.py": """
        import pytest

        pytestmark = pytest.mark.apirecorder

        @pytest.mark.parametrize("n", range(6))
        def test_embed(client, n):
            client.embeddings.create(model="text-embedding-3-small", input=f"text {n}")

        def test_same_call_as_chat(client):
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "question 0"}]
            )
    """,
}


@pytest.fixture
def fixed_upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[Upstream]:
    """An upstream whose answers depend on the request alone, so two runs can be compared."""
    server = Upstream(volatile=False).start()
    monkeypatch.setenv("UPSTREAM", server.url)
    try:
        yield server
    finally:
        server.stop()


def _project(base: Path) -> Path:
    for name, text in SUITE.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    (base / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    return base


def _files(base: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(base)): p.read_bytes()
        for p in sorted(base.rglob("*.json"))
        if "recordings" in p.parts
    }


@pytest.fixture(scope="module", autouse=True)
def _import_interceptors_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Import the interceptors before pytester snapshots sys.modules (see test_pytest_plugin)."""
    with apirecorder.recording("live", tmp_path_factory.mktemp("warm")):
        pass


def _run(pytester: pytest.Pytester, base: Path, *args: str) -> None:
    # In a process of its own: CPython 3.11.7 can fail to compile the project's test modules
    # in-process, deep in this worker's stack ("AST constructor recursion depth mismatch").
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--rootdir", str(base),
        "-c", str(base / "pytest.ini"), str(base), *args,
    )  # fmt: skip
    result.assert_outcomes(passed=17)


def test_xdist_runs_write_exactly_what_serial_runs_write(
    pytester: pytest.Pytester, fixed_upstream: Upstream
) -> None:
    written: dict[str, dict[str, bytes]] = {}
    for mode in ("record", "record-if-missing"):
        for workers in ("serial", "parallel"):
            base = _project(pytester.path / f"{mode}-{workers}")
            extra = ["-n", "2"] if workers == "parallel" else []
            _run(pytester, base, f"--apirecorder-mode={mode}", *extra)
            written[f"{mode} {workers}"] = _files(base)
            assert [p for p in base.rglob("*") if p.name.endswith(".tmp")] == []
    for mode in ("record", "record-if-missing"):
        serial, parallel = written[f"{mode} serial"], written[f"{mode} parallel"]
        assert len(serial) == 16  # 17 tests, two of them sharing Ollama's model list
        assert parallel.keys() == serial.keys()
        assert parallel == serial
    assert written["record serial"] == written["record-if-missing serial"]
