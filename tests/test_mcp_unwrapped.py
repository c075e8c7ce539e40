"""MCP clients opened without ``apirecorder.mcp_client``: intercepted all the same.

The real ``mcp-server-time`` over a plain ``stdio_client`` (replayed with a command that does
not exist, so nothing is spawned), and the FastMCP notes server over a plain
``streamable_http_client`` (replayed with no server listening).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

# anyio imports its subprocess module lazily, from inside a running loop; on CPython 3.11
# that import can race a worker thread's import lock (see tests/test_mcp.py).
import anyio._core._subprocesses  # noqa: F401
import mcp.types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client import Client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

import apirecorder
from tests.mcp_servers import notes_server
from tests.offline import recordings

TEST_ID = "tests/test_mcp_unwrapped.py::session"
TIME_SERVER = StdioServerParameters(
    command=str(Path(sys.executable).with_name("mcp-server-time")),
    args=["--local-timezone", "UTC"],
)
NOT_INSTALLED = StdioServerParameters(command="mcp-server-time-is-not-installed-here")


async def use_time_server(params: StdioServerParameters) -> dict[str, Any]:
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        out: dict[str, Any] = {"init": await session.initialize()}
        out["tools"] = await session.list_tools()
        out["now"] = await session.call_tool("get_current_time", {"timezone": "Europe/Paris"})
        out["converted"] = await session.call_tool(
            "convert_time",
            {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
        )
        return out


def _replay(folder: Path) -> Any:
    return apirecorder.recording("replay", folder, block_network=True)


def test_plain_stdio_client_replays_without_spawning(tmp_path: Path) -> None:
    with apirecorder.recording("record", tmp_path), apirecorder.test_context(TEST_ID):
        live = asyncio.run(use_time_server(TIME_SERVER))
    with _replay(tmp_path), apirecorder.test_context(TEST_ID):
        replayed = asyncio.run(use_time_server(NOT_INSTALLED))
    assert replayed == live
    assert isinstance(replayed["now"], types.CallToolResult)
    assert "Asia/Tokyo" in replayed["converted"].content[0].text
    found = recordings(tmp_path)
    assert sorted(r["request"]["tool_name"] for r in found) == [
        "initialize",
        "tools/call",
        "tools/call",
        "tools/list",
    ]
    # The same format as the wrapper writes; a command is no stable name, so the key is "mcp".
    assert {r["request"]["provider"] for r in found} == {"mcp"}


async def use_notes_server(url: str) -> dict[str, Any]:
    async with (
        streamable_http_client(url) as (read, write),
        ClientSession(read, write) as session,
    ):
        out: dict[str, Any] = {"init": await session.initialize()}
        out["tools"] = await session.list_tools()
        out["sum"] = await session.call_tool("add", {"a": 2, "b": 3})
        out["groceries"] = await session.read_resource("notes://groceries")
        return out


def _record_notes(folder: Path) -> dict[str, Any]:
    """``use_notes_server`` recorded against the running notes server."""
    notes_server.calls.clear()
    with (
        notes_server.serve() as url,
        apirecorder.recording("record", folder),
        apirecorder.test_context(TEST_ID),
    ):
        live = asyncio.run(use_notes_server(url))
    assert notes_server.calls == ["add", "groceries"]
    return live


def test_plain_streamable_http_client_replays_with_no_server(tmp_path: Path) -> None:
    live = _record_notes(tmp_path)
    found = recordings(tmp_path)
    # Only the MCP layer recorded: the transport's POSTs, event stream and DELETE did not
    # reach the HTTP layer as exchanges of their own.
    assert all("tool_name" in r["request"] for r in found), [r["request"] for r in found]
    assert {r["request"]["provider"] for r in found} == {"mcp:/mcp"}
    with _replay(tmp_path), apirecorder.test_context(TEST_ID):
        replayed = asyncio.run(use_notes_server("http://127.0.0.1:9/mcp"))
    assert notes_server.calls == ["add", "groceries"]
    assert replayed == live
    assert replayed["sum"].structured_content == {"result": 5}


def test_the_wrapped_and_the_plain_http_client_share_recordings(tmp_path: Path) -> None:
    """The wrapper names an HTTP server by its URL path too: either replays the other."""
    live = _record_notes(tmp_path)

    async def wrapped(url: str) -> Any:
        async with (
            apirecorder.mcp_client(streamable_http_client(url)) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await session.call_tool("add", {"a": 2, "b": 3})

    with _replay(tmp_path), apirecorder.test_context(TEST_ID):
        assert asyncio.run(wrapped("http://127.0.0.1:9/mcp")) == live["sum"]
    assert notes_server.calls == ["add", "groceries"]  # the replay asked the server nothing


def test_the_high_level_client_opening_stdio_itself(tmp_path: Path) -> None:
    async def now(server: StdioServerParameters) -> types.CallToolResult:
        async with Client(server) as client:
            return await client.call_tool("get_current_time", {"timezone": "Europe/Paris"})

    with apirecorder.recording("record", tmp_path), apirecorder.test_context(TEST_ID):
        live = asyncio.run(now(TIME_SERVER))
    with _replay(tmp_path), apirecorder.test_context(TEST_ID):
        assert asyncio.run(now(NOT_INSTALLED)) == live
