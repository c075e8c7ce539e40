"""Agent frameworks on the OpenAI SDK: a tool loop recorded live, replayed offline.

Each framework drives a model that calls a function tool, then answers from the tool's
result; the replay runs with the upstream stopped and the network blocked and must end with
the same final output. openai-agents also sends a fresh ``prompt_cache_key`` on every
``Runner.run``, which the built-in normalizer hashes as one value.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

import apirecorder
from apirecorder._hashing import AGENTS_RUN_KEY_MASK, inference_request_hash
from tests.upstream import Upstream

TEST_ID = "tests/test_agent_frameworks.py::scenario"


def record_then_replay(
    tmp_path: Path, upstream: Upstream, scenario: Callable[[str], Any]
) -> tuple[Any, Any]:
    url = upstream.url
    with apirecorder.test_context(TEST_ID), apirecorder.recording("record", tmp_path):
        live = scenario(url)
    upstream.stop()
    with (
        apirecorder.test_context(TEST_ID),
        apirecorder.recording("replay", tmp_path, block_network=True),
    ):
        replayed = scenario(url)
    return live, replayed


def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


# -- openai-agents ------------------------------------------------------------------------


class _ToUpstream(httpx2.AsyncBaseTransport):
    """Sends what the client addresses to api.openai.com to the local upstream instead."""

    def __init__(self, url: str) -> None:
        self.origin = httpx2.URL(url)
        self.inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        origin = self.origin
        request.url = request.url.copy_with(
            scheme=origin.scheme, host=origin.host, port=origin.port
        )
        return await self.inner.handle_async_request(request)


def openai_agents_run(url: str) -> Any:
    from agents import Agent, RunConfig, Runner, function_tool
    from agents.models.openai_responses import OpenAIResponsesModel

    # The official base URL, as an application has it: openai-agents adds its per-run
    # prompt_cache_key only there. The transport takes the calls to the local upstream.
    client = openai.AsyncOpenAI(
        base_url="https://api.openai.com/v1",
        api_key="sk-test",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=_ToUpstream(url)),
    )
    agent = Agent(
        name="forecaster",
        instructions="Answer with the tool's result.",
        tools=[function_tool(weather)],
        model=OpenAIResponsesModel("gpt-4o", client),
    )
    # No group_id: every run gets its own prompt_cache_key, as in an application.
    run = Runner.run(agent, "Weather in Paris?", run_config=RunConfig(tracing_disabled=True))
    result = asyncio.run(run)
    return result.final_output, [type(item).__name__ for item in result.new_items]


def test_openai_agents_runner_with_a_function_tool_replays(
    upstream: Upstream, tmp_path: Path
) -> None:
    live, replayed = record_then_replay(tmp_path, upstream, openai_agents_run)
    assert replayed == live
    assert "ToolCallOutputItem" in live[1]
    bodies = [json.loads(p.read_text())["request"]["body"] for p in tmp_path.glob("*.json")]
    assert len(bodies) == 2
    # The live key is kept in the file; only the hash sees it masked.
    assert all(b["prompt_cache_key"].startswith("agents-sdk:run:") for b in bodies)
    assert all(b["prompt_cache_key"] != AGENTS_RUN_KEY_MASK for b in bodies)


def _hash(body: dict[str, Any]) -> str:
    return inference_request_hash("POST", "http://h/v1/responses", body, "t::x")


def test_agents_run_key_is_hashed_as_one_value_and_nothing_else_changes() -> None:
    run = "agents-sdk:run:" + "0123456789abcdef" * 2
    other = "agents-sdk:run:" + "fedcba9876543210" * 2
    assert _hash({"model": "m", "prompt_cache_key": run}) == _hash(
        {"model": "m", "prompt_cache_key": other}
    )
    assert _hash({"model": "m", "extra_body": {"prompt_cache_key": run}}) == _hash(
        {"model": "m", "extra_body": {"prompt_cache_key": other}}
    )
    # The application's own keys, a group's stable key and any other field keep their value.
    for key in ("my-key", "agents-sdk:group:abc", run.upper(), run + "0"):
        assert _hash({"model": "m", "prompt_cache_key": key}) != _hash(
            {"model": "m", "prompt_cache_key": other}
        )
    assert _hash({"model": "m", "user": run}) != _hash({"model": "m", "user": other})


# -- pydantic-ai ----------------------------------------------------------------------------


def pydantic_ai_run(url: str) -> Any:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
    model = OpenAIChatModel("gpt-4o", provider=OpenAIProvider(openai_client=client))
    agent = Agent(model, instructions="Answer with the tool's result.", tools=[weather])
    result = asyncio.run(agent.run("Weather in Paris?"))
    return result.output, [
        type(part).__name__ for message in result.all_messages() for part in message.parts
    ]


def test_pydantic_ai_agent_with_a_tool_replays(upstream: Upstream, tmp_path: Path) -> None:
    pytest.importorskip("pydantic_ai")
    live, replayed = record_then_replay(tmp_path, upstream, pydantic_ai_run)
    assert replayed == live
    assert "ToolReturnPart" in live[1]


# -- langchain-openai -----------------------------------------------------------------------


def langchain_tool_loop(url: str) -> Any:
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    get_weather = tool(weather)
    model = ChatOpenAI(
        model="gpt-4o", base_url=f"{url}/v1", api_key="sk-test", max_retries=0
    ).bind_tools([get_weather])
    messages: list[Any] = [HumanMessage("Weather in Paris?")]
    answer = model.invoke(messages)
    messages.append(answer)  # the AI message itself goes back, as LangChain's guide does
    for call in answer.tool_calls:
        messages.append(ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"]))
    final = model.invoke(messages)
    return [call["name"] for call in answer.tool_calls], final.content


def test_langchain_openai_tool_loop_replays(upstream: Upstream, tmp_path: Path) -> None:
    pytest.importorskip("langchain_openai")
    live, replayed = record_then_replay(tmp_path, upstream, langchain_tool_loop)
    assert replayed == live
    assert live[0] == ["weather"]
