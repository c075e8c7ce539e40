"""A FastMCP (``MCPServer``) server over streamable HTTP: tools, a resource and a prompt.

``serve()`` runs it with uvicorn on 127.0.0.1 in a daemon thread and hands back its URL; every
answer depends on the request alone, and the ``calls`` counter shows whether it was asked.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

calls: list[str] = []


def create_server() -> MCPServer:
    server = MCPServer("notes", version="1.0.0", instructions="A tiny notes server.")

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        calls.append("add")
        return a + b

    @server.tool(description="Look up a note by title.")
    def find_note(title: str) -> str:
        calls.append("find_note")
        if title != "groceries":
            raise ToolError(f"no note titled {title!r}")
        return "milk, eggs, bread"

    @server.resource("notes://groceries", name="groceries", mime_type="text/plain")
    def groceries() -> str:
        calls.append("groceries")
        return "milk, eggs, bread"

    @server.prompt(description="Ask for a summary of a note.")
    def summarize(title: str) -> str:
        calls.append("summarize")
        return f"Summarize the note titled {title} in one sentence."

    return server


@contextmanager
def serve() -> Iterator[str]:
    """Run the server on a free loopback port; yields its MCP endpoint URL."""
    app = create_server().streamable_http_app()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the notes MCP server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
