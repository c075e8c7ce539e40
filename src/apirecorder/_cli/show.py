"""``apirecorder show HASH|FILE``: one recording as a person reads it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .._exceptions import RecordingFormatError
from .._storage import load_recording
from ._files import resolve_recording_arg
from ._readers import response_view
from ._summary import summarize
from ._views import Style, display_path, request_lines

__all__ = ["register", "run"]

DESCRIPTION = """\
Show one recording: what was asked (messages, prompt, parameters, tool arguments), the
response with streamed text reassembled (OpenAI chat and completion chunks, Responses events,
Ollama chunks, Anthropic server-sent events), the tool calls the model asked for, token usage
and any recorded error. Give a file, or a request hash or the start of one: it is looked up
recursively under --dir (default: the current folder). Colour is used only when the output is
a terminal and NO_COLOR is not set.
"""
EPILOG = (
    "Exit codes: 0 shown, 1 the file is not a readable recording, "
    "2 usage error (no such file or hash, or a hash prefix that matches several files)."
)

#: Lines of a non-text response value (a tool result, plain JSON) shown before cutting.
MAX_VALUE_LINES = 60


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "show",
        help="show one recording: request, reassembled response, tool calls, usage, errors",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", metavar="HASH|FILE", help="a recording file, or a hash prefix")
    parser.add_argument(
        "--dir", default=".", metavar="PATH", help="where to look a hash up (default: .)"
    )
    parser.add_argument("--json", action="store_true", help="print the same facts as JSON")
    parser.set_defaults(handler=run)


def _value_lines(value: Any) -> list[str]:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    lines = text.splitlines() or [""]
    if len(lines) > MAX_VALUE_LINES:
        more = len(lines) - MAX_VALUE_LINES
        lines = [*lines[:MAX_VALUE_LINES], f"... ({more} more lines)"]
    return lines


def _expand_json_strings(value: Any) -> Any:
    # Tool results often carry JSON as a string field; show it as JSON, not as escapes.
    if isinstance(value, dict):
        return {key: _expand_json_strings(item) for key, item in value.items()}
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def render(path: Path, style: Style) -> list[str]:
    """The lines ``show`` prints for the recording at ``path``."""
    recording = load_recording(path)
    summary = summarize(recording)
    view = response_view(recording)
    request = recording.request

    def field(label: str, value: str) -> str:
        return f"{style.bold(label.ljust(9))} {value}"

    kind = summary.kind
    if summary.streaming:
        kind += f", streaming, {view.chunks} chunk{'s' if view.chunks != 1 else ''}"
    lines = [
        field("file", display_path(path)),
        field("kind", kind),
        field("test", summary.test_id or "-"),
        field("endpoint", summary.endpoint),
    ]
    if summary.kind == "inference":
        lines.append(field("url", f"{request.get('method', 'POST')} {request.get('url', '')}"))
    if summary.model:
        lines.append(field("model", summary.model))
    lines += ["", style.bold("Request")]
    lines += [f"  {line}" for line in request_lines(request)] or ["  (empty)"]
    lines += ["", style.bold("Response")]
    if view.status is not None:
        lines.append(f"  status {view.status}")
    if view.texts:
        for index in sorted(view.texts):
            if len(view.texts) > 1:
                lines.append(f"  {style.dim(f'choice {index}:')}")
            lines += [f"  {style.green(line)}" for line in view.texts[index].splitlines() or [""]]
    for note in view.notes:
        lines.append(f"  {style.dim(note)}")
    if not view.texts and not view.tool_calls and not view.notes and view.value is not None:
        lines += [f"  {line}" for line in _value_lines(_expand_json_strings(view.value))]
    if lines[-1] == style.bold("Response"):
        lines.append("  (no text)")
    if view.tool_calls:
        lines += ["", style.bold("Tool calls")]
        for number, call in enumerate(view.tool_calls, 1):
            ident = f"  {style.dim(f'(id {call.id})')}" if call.id else ""
            lines.append(f"  {number}. {call.name} {call.arguments}{ident}")
    if view.input_tokens is not None or view.output_tokens is not None:
        usage = f"{_count(view.input_tokens)} tokens in, {_count(view.output_tokens)} out"
        lines += ["", field("usage", usage)]
    if view.error:
        lines += ["", field("error", style.red(view.error))]
    return lines


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def run(args: argparse.Namespace) -> int:
    """Print one recording."""
    path, error = resolve_recording_arg(args.target, Path(args.dir))
    if path is None:
        print(f"apirecorder show: error: {error}", file=sys.stderr)
        return 2
    try:
        if args.json:
            recording = load_recording(path)
            data = summarize(recording).as_json()
            data["request"] = recording.request
            data["response"] = response_view(recording).as_json()
            print(json.dumps(data, indent=2, ensure_ascii=False))
            return 0
        lines = render(path, Style.for_stream(sys.stdout))
    except RecordingFormatError as exc:
        print(f"apirecorder show: {exc}", file=sys.stderr)
        return 1
    except RecursionError:
        # The loader reads what the parser reads; showing walks it again, recursively.
        print(
            f"apirecorder show: {path}: the recording is nested too deeply to show", file=sys.stderr
        )
        return 1
    print("\n".join(line.rstrip() for line in lines))
    return 0
