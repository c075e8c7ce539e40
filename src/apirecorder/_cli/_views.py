"""Terminal output of the CLI: colour, tables, paths, and a request as lines to read."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .._diagnostics import recording_kind, render_value
from ._readers import arguments_text

__all__ = ["Style", "display_path", "request_lines", "table"]


@dataclass(frozen=True)
class Style:
    """ANSI colour for a terminal; plain text when ``enabled`` is False."""

    enabled: bool

    @classmethod
    def for_stream(cls, stream: TextIO) -> Style:
        """Colour only on a terminal, and never when ``NO_COLOR`` is set."""
        return cls(stream.isatty() and not os.environ.get("NO_COLOR"))

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled and text else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def diff_line(self, line: str) -> str:
        """Colour one line of a text diff by its first character."""
        stripped = line.lstrip()
        if stripped.startswith("- "):
            return self.red(line)
        if stripped.startswith("+ "):
            return self.green(line)
        return line


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows in left-aligned columns two spaces apart; the last column is never padded."""
    widths = [len(h) for h in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    lines = []
    for row in [list(headers), *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


def display_path(path: Path) -> str:
    """A path relative to the current folder when it lies below it, else absolute."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop (3.11, 3.12)
        return str(path)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return render_value(content, 200) if content is not None else ""
    parts: list[str] = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict):
            kind = str(part.get("type", ""))
            if isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif kind == "tool_use":
                parts.append(f"<tool use {part.get('name')} {arguments_text(part.get('input'))}>")
            elif kind == "tool_result":
                parts.append(f"<tool result: {_content_text(part.get('content'))}>")
            elif "image" in kind:
                parts.append("<image>")
            else:
                parts.append(f"<{kind or 'part'}>")
    return " ".join(parts)


def _message_lines(message: Any) -> list[str]:
    if not isinstance(message, dict):
        return [render_value(message, 200)]
    role = str(message.get("role") or message.get("type") or "?")
    if message.get("tool_call_id"):
        role = f"{role} {message['tool_call_id']}"
    text = _content_text(message.get("content"))
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            text += f"{' ' if text else ''}-> {function.get('name')}"
            text += f"({arguments_text(function.get('arguments'))})"
    if message.get("type") == "function_call_output":
        text = _content_text(message.get("output"))
    elif message.get("type") == "function_call":
        text = f"-> {message.get('name')}({arguments_text(message.get('arguments'))})"
    head = f"[{role}] "
    lines = text.splitlines() or [""]
    return [head + lines[0], *(" " * len(head) + line for line in lines[1:])]


def request_lines(request: dict[str, Any]) -> list[str]:
    """A request as lines a person reads: messages by role, prompt or input, then parameters."""
    kind = recording_kind(request)
    if kind == "tool":
        kwargs = request.get("kwargs")
        items = kwargs.items() if isinstance(kwargs, dict) else []
        return [f"{key}: {render_value(value, 200)}" for key, value in items]
    body = request.get("body", request.get("payload"))
    lines: list[str] = []
    if kind == "http":
        lines.append(f"{str(request.get('method', '')).upper()} {request.get('url', '')}")
    if not isinstance(body, dict):
        if body is not None:
            lines += [str(line) for line in _content_text(body).splitlines()]
        return lines
    shown = {"messages", "prompt", "input", "system", "instructions", "tools"}
    for key in ("system", "instructions"):
        if body.get(key):
            lines += _message_lines({"role": key, "content": body[key]})
    for message in body.get("messages") or []:
        lines += _message_lines(message)
    for key in ("prompt", "input"):
        value = body.get(key)
        values = value if isinstance(value, list) else [value] if value is not None else []
        for item in values:
            lines += (
                _message_lines(item)
                if isinstance(item, dict)
                else _message_lines({"role": key, "content": item})
            )
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        names = []
        for tool in tools:
            if isinstance(tool, dict):
                function = tool.get("function")
                name = function.get("name") if isinstance(function, dict) else tool.get("name")
                names.append(str(name or tool.get("type", "?")))
        lines.append(f"tools: {', '.join(names)}")
    for key, value in body.items():
        if key not in shown:
            lines.append(f"{key}: {render_value(value, 200)}")
    return lines
