"""Volatile request fields left out of the hash, and a response edited before it is written."""

from __future__ import annotations

import json

import pytest

from apirecorder._cli import main
from tests.upstream import Upstream

pytest_plugins = ["pytester", "tests.pytester_support"]
pytestmark = pytest.mark.usefixtures("interceptors_imported")


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:hypothesispytest", *args)


SUITE = """
import os
import uuid

import openai
import pytest

pytestmark = pytest.mark.apirecorder


def redact_answer(response):
    response["body"]["__data__"]["choices"][0]["message"]["content"] = "(edited)"
    return response


@pytest.fixture
def apirecorder_config():
    return {"before_record_response": redact_answer}


def test_volatile():
    client = openai.OpenAI(base_url=os.environ["UPSTREAM"] + "/v1", api_key="k", max_retries=0)
    answer = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hello"}],
        metadata={"request_id": uuid.uuid4().hex, "team": "a"},
        user=uuid.uuid4().hex,
    )
    print("ANSWER", answer.choices[0].message.content)
"""


def test_ignored_fields_replay_with_new_values_and_the_cli_hashes_alike(
    pytester: pytest.Pytester,
    upstream: Upstream,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("UPSTREAM", upstream.url)
    monkeypatch.delenv("APIRECORDER_MODE", raising=False)
    pytester.makeini("[pytest]\napirecorder_ignore_fields =\n    metadata.request_id\n    user\n")
    pytester.makepyfile(test_v=SUITE)
    recorded = _run(pytester, "-s", "--apirecorder-mode=record")
    recorded.assert_outcomes(passed=1)
    recorded.stdout.fnmatch_lines(["*ANSWER Echo: hello"])  # the test saw the real answer
    (path,) = (pytester.path / "recordings").glob("*.json")
    data = json.loads(path.read_text())
    assert data["response"]["body"]["__data__"]["choices"][0]["message"]["content"] == "(edited)"
    upstream.stop()
    # New request id and user on every run: the hash leaves them out, so replay finds it.
    replayed = _run(pytester, "-s")
    replayed.assert_outcomes(passed=1)
    replayed.stdout.fnmatch_lines(["*ANSWER (edited)"])

    monkeypatch.chdir(pytester.path)
    capsys.readouterr()
    assert main(["verify", "recordings"]) == 0
    assert capsys.readouterr().out == "1 recording checked: no problems.\n"
    body = dict(data["request"]["body"], user="someone else")
    body["metadata"] = {"request_id": "another", "team": "a"}
    (pytester.path / "body.json").write_text(json.dumps(body))
    code = main(
        [
            "explain",
            "body.json",
            "--root",
            ".",
            "--test-id",
            "test_v.py::test_volatile",
            "--endpoint",
            "/v1/chat/completions",
        ]
    )
    assert (code, capsys.readouterr().out.splitlines()[0]) == (
        0,
        f"Replay would read recordings/{path.name}",
    )


def test_a_dotted_path_with_an_empty_part_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\napirecorder_ignore_fields = metadata..id\n")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        "ERROR: the ini file: ignore_fields: 'metadata..id' is not a dotted path"
    )
