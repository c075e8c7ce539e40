"""The pytest fixture ``apirecorder_server``: one server for the session, in its mode."""

from __future__ import annotations

import pytest

import apirecorder
from tests.upstream import Upstream

pytest_plugins = ["pytester"]

SUITE = """
import openai

def ask(url, prompt):
    client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0)
    answer = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": prompt}]
    )
    return answer.choices[0].message.content

def test_through_the_server(apirecorder_server, request):
    url = apirecorder_server.base_url(request.node.nodeid)
    assert ask(url, "via the server") == "Echo: via the server"

def test_with_the_header(apirecorder_server, request):
    import httpx
    answer = httpx.post(
        f"{apirecorder_server.url}/v1/chat/completions",
        headers={"X-Apirecorder-Test-Id": request.node.nodeid, "Authorization": "Bearer k"},
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "by header"}]},
    ).json()
    assert answer["choices"][0]["message"]["content"] == "Echo: by header"
"""


@pytest.fixture(scope="module", autouse=True)
def _import_interceptors_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Import the interceptors before pytester snapshots sys.modules (see test_pytest_plugin)."""
    with apirecorder.recording("live", tmp_path_factory.mktemp("warm")):
        pass


def test_the_server_fixture_records_then_replays_the_sessions_tests(
    pytester: pytest.Pytester, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APIRECORDER_UPSTREAM_OPENAI", upstream.url)
    monkeypatch.delenv("APIRECORDER_MODE", raising=False)
    folder = pytester.mkpydir("suite")
    (folder / "test_server.py").write_text(SUITE)
    run = pytester.runpytest_subprocess("--apirecorder-mode=record", "-p", "no:hypothesispytest")
    run.assert_outcomes(passed=2)
    recorded = sorted(p.name for p in (folder / "recordings").glob("*.json"))
    assert len(recorded) == 2
    upstream.stop()
    pytester.runpytest_subprocess("-p", "no:hypothesispytest").assert_outcomes(passed=2)
    assert sorted(p.name for p in (folder / "recordings").glob("*.json")) == recorded
