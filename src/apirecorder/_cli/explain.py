"""``apirecorder explain``: what a replay would do with one request."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .._exceptions import ApiRecorderError, RecordingNotFoundError
from ._views import display_path

__all__ = ["register", "run"]

DESCRIPTION = """\
Say what a replay would do with one request: its hash, and the file it would read, or, on a
miss, the same explanation a test would fail with (nearest recording and what differs).
The request body is a JSON file, or standard input when BODY is - or left out: the SDK call's
keyword arguments for an inference call, the tool's keyword arguments for --tool, the JSON
payload for --kind http.

An inference call is named by --endpoint (the logical endpoint, as in the recording's
"endpoint" field, for example /v1/chat/completions; an OpenAI client's base URL ending in /v1
is assumed for endpoints that start with /v1/, so the hashed path is /v1/v1/...) or by --url
(the exact URL, as in the recording's "url" field).
"""
EPILOG = (
    "Example: apirecorder explain request.json --dir tests/recordings "
    "--test-id 'tests/test_chat.py::test_saturn' --endpoint /v1/chat/completions\n"
    "Exit codes: 0 a recording would be read, 1 replay would miss, 2 usage error."
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="what a replay would do with a request: the hash, the file, or why it misses",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "body", nargs="?", default="-", metavar="BODY", help="request body JSON file, or -"
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--dir", metavar="PATH", help="the recordings folder (flat layout)")
    where.add_argument(
        "--root", metavar="PATH", help="the project root (recordings next to each test file)"
    )
    parser.add_argument("--test-id", default=None, metavar="ID", help="the pytest node id")
    parser.add_argument(
        "--kind", choices=["inference", "tool", "http"], default=None, help="default: inference"
    )
    parser.add_argument("--endpoint", metavar="PATH", help="logical endpoint of an inference call")
    parser.add_argument("--url", help="the exact URL (inference or http)")
    parser.add_argument("--method", default="POST", help="HTTP method (default POST)")
    parser.add_argument("--tool", metavar="PROVIDER.NAME", help="a tool call, e.g. tavily.search")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    parser.set_defaults(handler=run)


def _usage(message: str) -> int:
    print(f"apirecorder explain: error: {message}", file=sys.stderr)
    return 2


def _read_body(source: str) -> Any:
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    return json.loads(text)


def run(args: argparse.Namespace) -> int:
    """Explain what a replay would do."""
    kind = args.kind or ("tool" if args.tool else "inference")
    if kind == "tool" and (not args.tool or "." not in args.tool):
        return _usage("a tool call needs --tool PROVIDER.NAME")
    if kind == "http" and not args.url:
        return _usage("an http call needs --url")
    if kind == "inference" and not (args.endpoint or args.url):
        return _usage("an inference call needs --endpoint or --url")
    folder = Path(args.dir or args.root)
    if not folder.is_dir():
        return _usage(f"no such folder: {folder}")
    try:
        body = _read_body(args.body)
    except OSError as exc:
        return _usage(f"cannot read the body {args.body}: {exc.strerror or exc}")
    except ValueError as exc:
        return _usage(f"the body {args.body} is not JSON: {exc}")
    try:
        answer = explain_request(
            storage_dir=folder if args.dir else None,
            root=folder if args.root else None,
            kind=kind,
            test_id=args.test_id,
            body=body,
            endpoint=args.endpoint,
            url=args.url,
            method=args.method,
            tool=args.tool,
        )
    except ValueError as exc:
        return _usage(str(exc))
    except ApiRecorderError as exc:
        print(f"apirecorder explain: {exc}", file=sys.stderr)
        return 1
    if args.json:
        report = {
            "hash": answer.request_hash,
            "test_id": answer.test_id,
            "endpoint": answer.endpoint,
            "found": answer.path is not None,
            "path": str(answer.path) if answer.path else None,
            "explanation": answer.message or None,
        }
        print(json.dumps(report, indent=2, ensure_ascii=False))
    elif answer.path is not None:
        print(f"Replay would read {display_path(answer.path)}")
        print(f"  test id:  {answer.test_id}")
        print(f"  endpoint: {answer.endpoint}")
        print(f"  hash:     {answer.request_hash}")
    else:
        print(answer.message)
    return 0 if answer.path is not None else 1


# -- asking the replay lookup ------------------------------------------------------------


@dataclass(frozen=True)
class Explanation:
    """What a replay would do with one request: the hash, and the file read or why it misses."""

    request_hash: str
    test_id: str | None
    endpoint: str
    path: Path | None
    message: str


def explain_request(
    *,
    storage_dir: Path | None,
    root: Path | None,
    kind: str,
    test_id: str | None,
    body: Any,
    endpoint: str | None = None,
    url: str | None = None,
    method: str = "POST",
    tool: str | None = None,
) -> Explanation:
    """Describe ``body`` as the interceptors would and ask the replay lookup about it."""
    from .._context import test_context
    from .._modes import Mode
    from .._recorder import Session
    from .._storage import Storage

    storage = (
        Storage(storage_dir, flat=True)
        if storage_dir is not None
        else Storage(root if root is not None else Path.cwd(), flat=False)
    )
    session = Session(mode=Mode.REPLAY, storage=storage)
    with test_context(test_id):
        if kind == "tool":
            provider, _, tool_name = (tool or "").partition(".")
            call = session.tool_call(provider, tool_name, body if isinstance(body, dict) else {})
        elif kind == "http":
            call = session.http_call(method=method, url=url or "", headers={}, payload=body)
        else:
            if not isinstance(body, dict):
                raise ValueError("an inference request body must be a JSON object")
            label = endpoint or _logical_endpoint(url or "")
            base_url = url if url else _default_base(label)
            call = session.inference_call(
                base_url=base_url,
                endpoint="" if url else label,
                body=body,
                method=method,
                label=label,
            )
        try:
            found = session.lookup(call)
        except RecordingNotFoundError as exc:
            return Explanation(call.request_hash, test_id, call.endpoint, None, str(exc))
    path = found.path if found is not None else None
    return Explanation(call.request_hash, test_id, call.endpoint, path, "")


def _default_base(endpoint: str) -> str:
    # OpenAI clients have base URLs ending in /v1 and their endpoints start with /v1 too, which
    # is why recorded paths read /v1/v1/...; Ollama clients use the bare host.
    return "http://localhost/v1" if endpoint.startswith("/v1/") else "http://localhost"


def _logical_endpoint(url: str) -> str:
    path = urlparse(url).path
    return "/v1/" + path[len("/v1/v1/") :] if path.startswith("/v1/v1/") else path
