"""``apirecorder prune``: delete the recordings the last test run used for nothing."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .._exceptions import ApiRecorderError
from .._ledger import LEDGER_CACHE_KEY, default_ledger_path, load_ledger, plan_prune
from ._views import display_path

__all__ = ["register", "run"]

DESCRIPTION = f"""\
Delete the recordings that the last pytest run in replay mode reported as unused. The plugin
writes what each run used into a ledger in pytest's cache (.pytest_cache/v/{LEDGER_CACHE_KEY}
under the rootdir); prune reads it (found in the current folder or above, or given with
--ledger) and deletes exactly the files it lists, skipping any that changed since.

Recordings of tests that were deselected (-k, -m, --deselect), skipped, failed or not run
are never listed; nor are recordings any test may share (tool calls, model lists, calls
with no test id) unless the run was complete. A dry run by default: --yes deletes.
"""
EPILOG = (
    "Exit codes: 0 success (dry run or deleted), 1 no usable ledger (run pytest in replay "
    "mode first), 2 usage error."
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "prune",
        help="delete recordings the last replay run did not use (dry run unless --yes)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--ledger", metavar="FILE", help="the ledger file to read")
    parser.add_argument("--yes", action="store_true", help="delete (default: only list)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """List, or delete, the unused recordings of the last run."""
    path = Path(args.ledger) if args.ledger else default_ledger_path(Path.cwd())
    if path is None:
        print(
            "apirecorder prune: no ledger found in .pytest_cache here or above; run pytest in "
            "replay mode first (with the cache provider on), or pass --ledger FILE",
            file=sys.stderr,
        )
        return 1
    try:
        ledger = load_ledger(path)
    except ApiRecorderError as exc:
        print(f"apirecorder prune: {exc}", file=sys.stderr)
        return 2 if args.ledger else 1
    if not ledger.computed:
        print(
            f"apirecorder prune: the last run ({ledger.finished}) did not look for unused "
            f"recordings: {ledger.why_not}; run pytest in replay mode first",
            file=sys.stderr,
        )
        return 1
    plan = plan_prune(ledger)
    if args.json:
        report = {
            "ledger": str(path),
            "finished": ledger.finished,
            "delete": [item.as_json() for item in plan.delete],
            "keep": [{**item.as_json(), "why": why} for item, why in plan.keep],
            "deleted": bool(args.yes),
        }
    for item, why in plan.keep:
        print(f"keeping {display_path(item.path)}: {why}", file=sys.stderr)
    count = len(plan.delete)
    noun = "recording" if count == 1 else "recordings"
    if not args.json:
        print(f"Ledger {display_path(path)} of the run that ended {ledger.finished}.")
        if not count:
            print("No unused recordings to delete.")
        else:
            print(f"{'Deleting' if args.yes else 'Would delete'} {count} unused {noun}:")
    for item in plan.delete:
        if args.yes:
            item.path.unlink(missing_ok=True)
        if not args.json:
            print(f"  {display_path(item.path)}  ({item.test_id or 'no test id'}: {item.reason})")
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    elif count and not args.yes:
        print("Run `apirecorder prune --yes` to delete them.")
    return 0
