"""``apirecorder stats [PATH...]``: how many recordings of what, how big, how many tokens."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._files import collect_recordings, existing_paths
from ._summary import stats, summarize
from ._views import display_path, table

__all__ = ["register", "run"]

DESCRIPTION = """\
Count the recordings under PATH (default: the current folder) by kind, endpoint, model and
test; add up their size on disk and the tokens in and out per model, as recorded in each
response's usage (OpenAI prompt/completion tokens, Responses and Anthropic input/output
tokens, Ollama prompt_eval_count/eval_count).
"""
EPILOG = "Exit codes: 0 success, 1 some recordings could not be read, 2 usage error."


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="counts by kind, endpoint, model and test; bytes; tokens per model",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to count")
    parser.add_argument(
        "--limit",
        type=int,
        default=10,
        metavar="N",
        help="show the N largest groups of each list (default 10, 0 for all)",
    )
    parser.add_argument("--json", action="store_true", help="print every count as JSON")
    parser.set_defaults(handler=run)


def _size(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{count} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} bytes"  # pragma: no cover - the loop always returns


def _group(title: str, counts: dict[str, int], limit: int) -> list[str]:
    items = list(counts.items())
    shown = items if limit <= 0 else items[:limit]
    lines = ["", f"{title} ({len(items)})"]
    lines += [f"  {line}" for line in table(["COUNT", "NAME"], [[str(n), k] for k, n in shown])[1:]]
    if len(shown) < len(items):
        lines.append(f"  ... and {len(items) - len(shown)} more (--limit 0 shows all)")
    return lines


def run(args: argparse.Namespace) -> int:
    """Print the statistics."""
    paths = existing_paths("stats", args.paths)
    if paths is None:
        return 2
    recordings, problems = collect_recordings(paths, label="counting")
    for problem in problems:
        print(
            f"apirecorder stats: skipped {display_path(problem.path)}: {problem.message}",
            file=sys.stderr,
        )
    result = stats([summarize(r) for r in recordings])
    if args.json:
        result["unreadable"] = [problem.as_json() for problem in problems]
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 1 if problems else 0
    noun = "recording" if result["files"] == 1 else "recordings"
    lines = [f"{result['files']} {noun}, {_size(result['bytes'])}"]
    lines += _group("By kind", result["by_kind"], 0)
    lines += _group("By endpoint", result["by_endpoint"], args.limit)
    lines += _group("By model", result["by_model"], args.limit)
    lines += _group("By test", result["by_test"], args.limit)
    tokens = result["tokens"]
    lines += ["", f"Tokens by model ({len(tokens)})"]
    rows = [[str(t["input_tokens"]), str(t["output_tokens"]), model] for model, t in tokens.items()]
    lines += (
        [f"  {line}" for line in table(["IN", "OUT", "MODEL"], rows)]
        if rows
        else ["  none recorded"]
    )
    print("\n".join(lines))
    return 1 if problems else 0
