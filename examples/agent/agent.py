"""A small agent: the model may ask for a web search, the app runs it, the answer streams.

Configuration comes from the environment: ``OPENAI_API_KEY`` and ``TAVILY_API_KEY``, and
``AGENT_OPENAI_BASE_URL`` / ``AGENT_TAVILY_BASE_URL`` to point at other servers (the defaults
are the real services).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import openai
import tavily  # type: ignore[import-untyped]
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

import apirecorder

OPENAI_BASE_URL = "https://api.openai.com/v1"
TAVILY_BASE_URL = "https://api.tavily.com"
MAX_ROUNDS = 3

WEB_SEARCH: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "web_search",
        "description": "Search the web; returns the top results with their URLs.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "What to search for."}},
            "required": ["query"],
        },
    },
}


@dataclass
class ToolCall:
    """One function call the model asked for, assembled from its streamed pieces."""

    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class Agent:
    """Answers questions with a chat model that can call a web-search tool."""

    client: openai.OpenAI
    search_client: tavily.TavilyClient
    model: str = "gpt-4o-mini"
    searches: list[str] = field(default_factory=list)

    @classmethod
    def from_environment(cls) -> Agent:
        client = openai.OpenAI(
            base_url=os.environ.get("AGENT_OPENAI_BASE_URL", OPENAI_BASE_URL), max_retries=0
        )
        search_client = tavily.TavilyClient(
            api_base_url=os.environ.get("AGENT_TAVILY_BASE_URL", TAVILY_BASE_URL)
        )
        return cls(client, search_client)

    def stream(self, question: str, *, allow_search: bool = True) -> Iterator[str]:
        """Yield the answer to ``question`` as the model writes it, searching when it asks."""
        # An id the app makes up and sends to the model: deterministic under test, so the
        # request (and its recording) is the same in every run; random in production.
        conversation = apirecorder.deterministic_id("conversation", "conv_")
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": "Answer briefly. Search the web for recent facts."},
            {"role": "user", "content": question},
        ]
        tools: list[ChatCompletionToolParam] | openai.Omit = (
            [WEB_SEARCH] if allow_search else openai.omit
        )
        for _ in range(MAX_ROUNDS):
            calls: list[ToolCall] = []
            stream = self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                tools=tools,
                prompt_cache_key=conversation,
                stream=True,
            )
            with stream:
                for chunk in stream:
                    if not chunk.choices:
                        continue
                    delta = chunk.choices[0].delta
                    if delta.content:
                        yield delta.content
                    for piece in delta.tool_calls or []:
                        while len(calls) <= piece.index:
                            calls.append(ToolCall())
                        call = calls[piece.index]
                        call.id = piece.id or call.id
                        if piece.function is not None:
                            call.name = piece.function.name or call.name
                            call.arguments += piece.function.arguments or ""
            if not calls:
                return
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments},
                        }
                        for c in calls
                    ],
                }
            )
            for call in calls:
                result = self.run_tool(call)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})

    def answer(self, question: str, *, allow_search: bool = True) -> str:
        """The whole answer to ``question``."""
        return "".join(self.stream(question, allow_search=allow_search))

    def run_tool(self, call: ToolCall) -> str:
        """Run one tool call and return its result as the JSON text the model reads."""
        if call.name != "web_search":
            return json.dumps({"error": f"unknown tool {call.name}"})
        query = str(json.loads(call.arguments or "{}").get("query", ""))
        self.searches.append(query)
        found = self.search_client.search(query, max_results=2)
        results = [{"title": r["title"], "url": r["url"]} for r in found["results"]]
        return json.dumps({"query": query, "results": results})
