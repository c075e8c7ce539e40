"""A replayed MCP answer that the MCP SDK refuses is the recorder's error, naming the file.

The session checks an answer after ``send_request`` hands it back: ``call_tool`` validates
structured content against the tool's output schema (a ``RuntimeError``) and refuses a result
of another class (``UnexpectedClaimedResult``). Over a replayed file those are raised as
``RecordingFormatError`` naming it, chained from the SDK's exception; a recorded protocol
error still replays as ``MCPError`` (tests/test_mcp.py), and a valid file as recorded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mcp.types as types
import pytest
from mcp import ClientSession
from mcp.client.extension import UnexpectedClaimedResult
from mcp.client.streamable_http import streamable_http_client

import apirecorder
from apirecorder import RecordingFormatError
from tests.mcp_servers import notes_server

TEST_ID = "tests/test_mcp_refusals.py::session"
OFFLINE = "http://127.0.0.1:9/mcp"


async def _add(url: str, tool: str = "add") -> Any:
    """``tool`` called once; an error is returned, caught inside the session's block."""
    async with (
        apirecorder.mcp_client(streamable_http_client(url)) as (read, write),
        ClientSession(read, write) as session,
    ):
        try:
            await session.initialize()
            return await session.call_tool(tool, {"a": 2, "b": 3})
        except Exception as exc:
            return exc


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mcp-refusals")
    with (
        notes_server.serve() as url,
        apirecorder.recording("record", folder),
        apirecorder.test_context(TEST_ID),
    ):
        assert isinstance(asyncio.run(_add(url)), types.CallToolResult)
        assert asyncio.run(_add(url, "no_such_tool")).is_error
    return folder


def _copy(recorded: Path, folder: Path) -> dict[str, Path]:
    """The recordings copied into ``folder``, by their request's tool_name (and tool)."""
    found = {}
    for path in recorded.glob("*.json"):
        request = json.loads(path.read_text("utf-8"))["request"]
        tool = (request["kwargs"] or {}).get("name", "")
        found[f"{request['tool_name']} {tool}".strip()] = target = folder / path.name
        target.write_bytes(path.read_bytes())
    return found


def _replay(folder: Path, tool: str = "add") -> Any:
    with (
        apirecorder.recording("replay", folder, block_network=True),
        apirecorder.test_context(TEST_ID),
    ):
        return asyncio.run(_add(OFFLINE, tool))


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text("utf-8"))
    change(data)
    path.write_text(json.dumps(data), "utf-8")


def _structured(value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["response"]["body"]["__data__"].update(structured_content=value)


def _body(value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["response"].update(body=value)


REFUSED = {
    "structured content breaking the output schema": (_structured({"result": "x"}), RuntimeError),
    "structured content missing": (
        lambda data: data["response"]["body"]["__data__"].pop("structured_content"),
        RuntimeError,
    ),
    "a null body": (_body(None), UnexpectedClaimedResult),
    "another result class": (
        lambda data: data["response"]["body"].update(__type__="mcp_types._types.EmptyResult"),
        UnexpectedClaimedResult,
    ),
}


@pytest.mark.parametrize("label", REFUSED)
def test_an_answer_the_sdk_refuses_is_the_recorders_error_by_name(
    recorded: Path, tmp_path: Path, label: str
) -> None:
    files = _copy(recorded, tmp_path)
    change, sdk_error = REFUSED[label]
    _edit(files["tools/call add"], change)
    error = _replay(tmp_path)
    assert isinstance(error, RecordingFormatError), repr(error)
    message = str(error)
    assert message.startswith(f"{files['tools/call add']}: response.body")
    assert "call_tool" in message and "re-record" in message
    assert isinstance(error.__cause__, sdk_error)
    assert str(error.__cause__)[:60] in message  # the SDK's text is kept


def test_a_valid_file_and_a_recorded_tool_error_replay_as_recorded(
    recorded: Path, tmp_path: Path
) -> None:
    _copy(recorded, tmp_path)
    answer = _replay(tmp_path)
    assert isinstance(answer, types.CallToolResult)
    assert answer.structured_content == {"result": 5}
    # An isError result skips the output schema (the protocol errors that replay as
    # MCPError are tests/test_mcp.py's).
    error = _replay(tmp_path, "no_such_tool")
    assert isinstance(error, types.CallToolResult) and error.is_error
    assert error.content[0].text == "Unknown tool: no_such_tool"
