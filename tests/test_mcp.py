"""MCP: a ClientSession's requests recorded as tool calls and replayed with no server.

The real ``mcp-server-time`` server over stdio, and a FastMCP (``MCPServer``) server over
streamable HTTP on 127.0.0.1; each is recorded, then replayed with the server not started.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# anyio imports its subprocess module lazily, from inside a running loop; on CPython 3.11
# that import can race a worker thread's import lock (a KeyError in _ModuleLock seen in CI).
import anyio._core._subprocesses  # noqa: F401
import mcp.types as types
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client import Client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

import apirecorder
from apirecorder._interceptors._mcp import server_name
from tests.mcp_servers import notes_server

TEST_ID = "tests/test_mcp.py::session"
TIME_SERVER = StdioServerParameters(
    command=sys.executable, args=["-m", "mcp_server_time", "--local-timezone", "UTC"]
)
NOT_INSTALLED = StdioServerParameters(command="mcp-server-time-is-not-installed-here")
PAST = "2001-02-03T04:05:06+01:00"


@contextmanager
def session(folder: Path, mode: str) -> Iterator[None]:
    with apirecorder.recording(mode, folder), apirecorder.test_context(TEST_ID):
        yield


def recordings(folder: Path) -> dict[str, dict[str, Any]]:
    """Each recording by "<tool_name> <kwargs as JSON>"."""
    found: dict[str, dict[str, Any]] = {}
    for path in folder.glob("*.json"):
        data = json.loads(path.read_text())
        request = data["request"]
        found[f"{request['tool_name']} {json.dumps(request['kwargs'], sort_keys=True)}"] = data
    return found


# -- mcp-server-time over stdio ---------------------------------------------------------


async def use_time_server(params: StdioServerParameters) -> dict[str, Any]:
    async with (
        apirecorder.mcp_client(stdio_client(params), server="time") as (read, write),
        ClientSession(read, write) as mcp_session,
    ):
        out: dict[str, Any] = {"init": await mcp_session.initialize()}
        out["tools"] = await mcp_session.list_tools()
        out["now"] = await mcp_session.call_tool("get_current_time", {"timezone": "Europe/Paris"})
        out["converted"] = await mcp_session.call_tool(
            "convert_time",
            {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
        )
        out["bad_zone"] = await mcp_session.call_tool("get_current_time", {"timezone": "Mars/Base"})
        try:
            await mcp_session.call_tool("get_weather", {})
        except MCPError as exc:
            out["unknown_tool"] = exc
        return out


def test_time_server_replays_recorded_times_without_the_server(tmp_path: Path) -> None:
    with session(tmp_path, "record"):
        live = asyncio.run(use_time_server(TIME_SERVER))
    recorded = recordings(tmp_path)
    assert {key.split()[0] for key in recorded} == {"initialize", "tools/list", "tools/call"}
    assert all(data["request"]["provider"] == "mcp:time" for data in recorded.values())
    now_key = 'tools/call {"arguments": {"timezone": "Europe/Paris"}, "name": "get_current_time"}'
    live_now = live["now"].structured_content["datetime"]
    # Make the recording plainly not "now": replay must hand back what is on disk.
    now_path = tmp_path / f"{_hash_of(recorded[now_key])}.json"
    now_path.write_text(now_path.read_text().replace(live_now, PAST))

    with session(tmp_path, "replay"):
        replayed = asyncio.run(use_time_server(NOT_INSTALLED))

    assert isinstance(replayed["init"], types.InitializeResult)
    assert replayed["init"].server_info.name == "mcp-time"
    assert isinstance(replayed["tools"], types.ListToolsResult)
    assert [t.name for t in replayed["tools"].tools] == ["get_current_time", "convert_time"]
    now = replayed["now"]
    assert isinstance(now, types.CallToolResult) and not now.is_error
    assert now.structured_content == {**live["now"].structured_content, "datetime": PAST}
    assert isinstance(now.content[0], types.TextContent) and PAST in now.content[0].text
    assert replayed["converted"] == live["converted"]
    assert replayed["converted"].structured_content["time_difference"] == "+9.0h"
    bad_zone = replayed["bad_zone"]
    assert bad_zone.is_error and bad_zone == live["bad_zone"]
    assert "Invalid timezone" in bad_zone.content[0].text
    error = replayed["unknown_tool"]
    assert type(error) is MCPError and error.code == types.INVALID_PARAMS
    assert str(error) == str(live["unknown_tool"]) == "Unknown tool: get_weather"


def _hash_of(data: dict[str, Any]) -> str:
    from apirecorder._hashing import tool_request_hash

    request = data["request"]
    return tool_request_hash(request["provider"], request["tool_name"], request["kwargs"])


def test_high_level_client_takes_mcp_client_as_its_transport(tmp_path: Path) -> None:
    async def now(params: StdioServerParameters) -> types.CallToolResult:
        transport = apirecorder.mcp_client(stdio_client(params), server="time")
        async with Client(transport) as client:
            result = await client.call_tool("get_current_time", {"timezone": "UTC"})
            assert isinstance(result, types.CallToolResult)
            return result

    with session(tmp_path, "record"):
        live = asyncio.run(now(TIME_SERVER))
    with session(tmp_path, "replay"):
        assert asyncio.run(now(NOT_INSTALLED)) == live
    # Client negotiates with server/discover; that exchange is recorded and replayed too.
    assert "server/discover" in {key.split()[0] for key in recordings(tmp_path)}


def test_replay_miss_names_the_server_and_method(tmp_path: Path) -> None:
    async def call() -> str:
        async with (
            apirecorder.mcp_client(stdio_client(NOT_INSTALLED), server="time") as (read, write),
            ClientSession(read, write) as mcp_session,
        ):
            # Caught inside the block: the session's task group would wrap it in a group.
            with pytest.raises(apirecorder.RecordingNotFoundError) as miss:
                await mcp_session.initialize()
            return str(miss.value)

    with session(tmp_path, "replay"):
        message = asyncio.run(call())
    assert "endpoint: mcp:time.initialize" in message


def test_without_a_recording_session_the_transport_is_used_as_is() -> None:
    async def call() -> str:
        async with (
            apirecorder.mcp_client(stdio_client(TIME_SERVER)) as (read, write),
            ClientSession(read, write) as mcp_session,
        ):
            result = await mcp_session.initialize()
            return result.server_info.name

    assert asyncio.run(call()) == "mcp-time"


def test_server_names_come_from_the_transport() -> None:
    assert (
        server_name(stdio_client(TIME_SERVER)) == "python -m mcp_server_time --local-timezone UTC"
    )
    assert server_name(streamable_http_client("http://127.0.0.1:4242/mcp")) == "/mcp"
    assert server_name(object()) is None


# -- a FastMCP server over streamable HTTP ------------------------------------------------


async def use_notes_server(url: str) -> dict[str, Any]:
    async with (
        apirecorder.mcp_client(streamable_http_client(url)) as (read, write),
        ClientSession(read, write) as mcp_session,
    ):
        out: dict[str, Any] = {"init": await mcp_session.initialize()}
        out["tools"] = await mcp_session.list_tools()
        out["sum"] = await mcp_session.call_tool("add", {"a": 2, "b": 3})
        out["missing"] = await mcp_session.call_tool("find_note", {"title": "taxes"})
        out["resources"] = await mcp_session.list_resources()
        out["groceries"] = await mcp_session.read_resource("notes://groceries")
        out["prompts"] = await mcp_session.list_prompts()
        out["prompt"] = await mcp_session.get_prompt("summarize", {"title": "groceries"})
        return out


def test_fastmcp_server_over_http_records_then_replays_without_the_server(
    tmp_path: Path,
) -> None:
    notes_server.calls.clear()
    with notes_server.serve() as url, session(tmp_path, "record"):
        live = asyncio.run(use_notes_server(url))
    assert notes_server.calls == ["add", "find_note", "groceries", "summarize"]
    methods = sorted(key.split()[0] for key in recordings(tmp_path))
    assert methods == [
        "initialize",
        "prompts/get",
        "prompts/list",
        "resources/list",
        "resources/read",
        "tools/call",
        "tools/call",
        "tools/list",
    ]
    # The server is stopped and this port has no listener: the URL path names the server.
    with session(tmp_path, "replay"):
        replayed = asyncio.run(use_notes_server("http://127.0.0.1:9/mcp"))
    assert notes_server.calls == ["add", "find_note", "groceries", "summarize"]
    assert replayed == live
    assert replayed["init"].instructions == "A tiny notes server."
    assert isinstance(replayed["sum"], types.CallToolResult)
    assert replayed["sum"].structured_content == {"result": 5}
    assert replayed["missing"].is_error
    assert replayed["missing"].content[0].text.endswith("no note titled 'taxes'")
    assert isinstance(replayed["resources"], types.ListResourcesResult)
    assert [str(r.uri) for r in replayed["resources"].resources] == ["notes://groceries"]
    contents = replayed["groceries"].contents
    assert isinstance(replayed["groceries"], types.ReadResourceResult)
    assert isinstance(contents[0], types.TextResourceContents)
    assert contents[0].text == "milk, eggs, bread"
    assert isinstance(replayed["prompts"], types.ListPromptsResult)
    assert isinstance(replayed["prompt"], types.GetPromptResult)
    message = replayed["prompt"].messages[0].content
    assert isinstance(message, types.TextContent)
    assert message.text == "Summarize the note titled groceries in one sentence."
    for data in recordings(tmp_path).values():
        assert data["request"]["provider"] == "mcp:/mcp"


def test_a_recording_that_answers_with_another_mcp_class_is_refused_by_name(
    tmp_path: Path,
) -> None:
    # A hostile (or badly merged) file: the answer of tools/list holds an InitializeResult.
    # The session asked for a ListToolsResult, so replay refuses the file instead of handing
    # the client an object of the wrong class.
    with session(tmp_path, "record"):
        asyncio.run(use_time_server(TIME_SERVER))
    recorded = recordings(tmp_path)
    init_key = next(key for key in recorded if key.startswith("initialize "))
    list_path = tmp_path / f"{_hash_of(recorded['tools/list {}'])}.json"
    hostile = recorded["tools/list {}"]
    hostile["response"]["body"] = recorded[init_key]["response"]["body"]
    list_path.write_text(json.dumps(hostile))

    async def list_tools() -> str:
        async with (
            apirecorder.mcp_client(stdio_client(NOT_INSTALLED), server="time") as (read, write),
            ClientSession(read, write) as mcp_session,
        ):
            await mcp_session.initialize()
            # Caught inside the block: the session's task group would wrap it in a group.
            with pytest.raises(apirecorder.RecordingFormatError, match="ListToolsResult") as bad:
                await mcp_session.list_tools()
            return str(bad.value)

    with session(tmp_path, "replay"):
        message = asyncio.run(list_tools())
    assert str(list_path) in message
    assert "InitializeResult" in message
