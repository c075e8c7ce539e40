"""Tests of the agent example, replayed from the recordings next to this file.

The chat completions are recorded by the OpenAI layer, the searches by ``patch_tool`` on the
real Tavily client: both kinds of recording sit side by side in ``recordings/``.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from agent import Agent

pytestmark = pytest.mark.apirecorder(tools=["tavily:TavilyClient.search tavily web_search"])


def test_agent_searches_then_streams_the_answer(agent: Agent) -> None:
    pieces = list(agent.stream("What is new with Saturn's rings?"))
    assert agent.searches == ["What is new with Saturn's rings?"]
    assert len(pieces) > 1  # streamed word by word
    answer = "".join(pieces)
    prefix = "Echo: "
    assert answer.startswith(prefix)
    found = json.loads(answer.removeprefix(prefix))
    assert found["query"] == "What is new with Saturn's rings?"
    assert [r["url"] for r in found["results"]] == [
        "https://example.com/what-is-new-with-saturn-s-rings/1",
        "https://example.com/what-is-new-with-saturn-s-rings/2",
    ]


def test_agent_answers_without_searching_when_search_is_off(agent: Agent) -> None:
    assert agent.answer("Name a gas giant", allow_search=False) == "Echo: Name a gas giant"
    assert agent.searches == []


def test_conversation_id_is_the_same_in_every_run(
    agent: Agent, request: pytest.FixtureRequest
) -> None:
    import apirecorder

    # The agent took the first "conversation" id of this test; the next one follows it.
    start = int(hashlib.sha256(request.node.nodeid.encode()).hexdigest(), 16) % 10**12
    agent.answer("Name a moon of Mars", allow_search=False)
    assert apirecorder.deterministic_id("conversation", "conv_") == f"conv_{start + 2}"
