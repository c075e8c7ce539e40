"""``apirecorder scan [PATH...]``: fail when a recording holds a secret-looking string."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from .._scan import scan_paths, secret_env_values

__all__ = ["register", "run"]

DESCRIPTION = """\
Look for secrets in recordings: known key formats (sk-..., sk-ant-..., tvly-..., AKIA...,
ghp_..., ...), bearer tokens, JWTs, credential headers and key-like query parameters or
fields that hold a random-looking value, and the values of secret environment variables
set now (OPENAI_API_KEY, *_API_KEY, *_TOKEN, ...). Folders are searched for recordings
(JSON files with "request" and "response"); files named on the command line are always
scanned. Rules: docs/security.md.
"""
EPILOG = "Exit codes: 0 no finding, 1 secrets found, 2 usage error (such as a missing path)."


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="find secrets in recordings (for CI and pre-commit)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="recording files or folders to scan (default: the current folder)",
    )
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="REGEX",
        help="ignore secrets this regular expression finds (repeatable)",
    )
    parser.add_argument(
        "--no-env",
        action="store_true",
        help="do not look for the values of secret environment variables",
    )
    parser.add_argument(
        "--secret-env-var",
        action="append",
        default=[],
        metavar="NAME",
        help="also look for the value of this environment variable (repeatable)",
    )
    parser.set_defaults(handler=run)


def _usage_error(message: str) -> int:
    print(f"apirecorder scan: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Scan, print the findings, and return the exit code."""
    try:
        allow = [re.compile(pattern) for pattern in args.allow]
    except re.error as exc:
        return _usage_error(f"--allow: invalid regular expression: {exc}")
    paths = [Path(p) for p in (args.paths or ["."])]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        return _usage_error(f"no such file or folder: {', '.join(missing)}")
    env = {} if args.no_env else secret_env_values(extra=args.secret_env_var)
    try:
        report = scan_paths(paths, allow=allow, env_values=env)
    except OSError as exc:
        return _usage_error(f"cannot read {exc.filename or exc}: {exc.strerror or exc}")
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        for finding in report.findings:
            print(finding)
        files = len({f.file for f in report.findings})
        if report.findings:
            print(
                f"{len(report.findings)} possible secret(s) in {files} of "
                f"{report.files_scanned} file(s) scanned. Re-record with redaction "
                "(see docs/security.md) or remove them before committing.",
                file=sys.stderr,
            )
        else:
            print(f"no secrets found in {report.files_scanned} file(s).", file=sys.stderr)
    return 1 if report.findings else 0
