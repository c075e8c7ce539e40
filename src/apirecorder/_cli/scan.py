"""``apirecorder scan [PATH...]``: fail when a recording holds a secret-looking string."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from .._scan import ScanReport, scan_paths, secret_env_values
from .._settings import ini_lines

__all__ = ["register", "run"]

DESCRIPTION = """\
Look for secrets in recordings, with the rules redaction uses: known key formats (sk-...,
sk-ant-..., xai-..., ghp_..., AKIA..., JWTs, bearer tokens, webhook and bot tokens, ...),
values held by secret names (headers, JSON fields, query and form parameters, multipart
fields, URL passwords) and the values of secret environment variables set now
(OPENAI_API_KEY, *_KEY, *_TOKEN, *_SECRET, *_PASSWORD, ...). Folders are searched for
recordings (*.json files; a file that does not parse is read line by line and reported);
hidden and tool folders inside a walk are skipped unless --include-hidden, symlinked folders
are followed, and a folder named on the command line is always walked. Files named on the
command line are always scanned. The project's own rules count too: the
apirecorder_redact_patterns and apirecorder_secret_env_vars of the pytest ini file (pytest.ini,
pyproject.toml, tox.ini, setup.cfg) found from the current folder up, and every
--redact-pattern. Rules: docs/security.md.
"""
EPILOG = (
    "Exit codes: 0 no finding, 1 secrets found, 2 usage error (such as a missing path), "
    "nothing scanned (see --allow-empty) or a file that could not be read."
)


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
        "--redact-pattern",
        action="append",
        default=[],
        metavar="REGEX",
        help="also report what this redact_patterns regular expression finds (repeatable; "
        "added to the ini file's apirecorder_redact_patterns)",
    )
    parser.add_argument(
        "--no-config",
        action="store_true",
        help="ignore the redaction settings of the project's pytest ini file",
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
    parser.add_argument(
        "--include-hidden",
        action="store_true",
        help="also walk hidden folders and tool folders (.git, venv, node_modules...)",
    )
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="exit 0 when the paths hold no file to scan (default: exit 2)",
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
    # The project's redaction rules, as its tests apply them (ini), then the command line's.
    configured = {} if args.no_config else {
        key: ini_lines(Path.cwd(), f"apirecorder_{key}")
        for key in ("redact_patterns", "secret_env_vars")
    }  # fmt: skip
    patterns = []
    for where, pattern in [
        *(("apirecorder_redact_patterns", p) for p in configured.get("redact_patterns", [])),
        *(("--redact-pattern", p) for p in args.redact_pattern),
    ]:
        try:
            patterns.append(re.compile(pattern))
        except re.error as exc:
            return _usage_error(f"{where}: invalid regular expression {pattern!r}: {exc}")
    paths = [Path(p) for p in (args.paths or ["."])]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        return _usage_error(f"no such file or folder: {', '.join(missing)}")
    extra_env = [*configured.get("secret_env_vars", []), *args.secret_env_var]
    env = {} if args.no_env else secret_env_values(extra=extra_env)
    try:
        report = scan_paths(
            paths,
            allow=allow,
            env_values=env,
            include_hidden=args.include_hidden,
            patterns=patterns,
        )
    except OSError as exc:
        return _usage_error(f"cannot read {exc.filename or exc}: {exc.strerror or exc}")
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        _print_report(report)
    if report.findings:
        return 1
    if report.unreadable:
        return 2
    if report.files_scanned == 0 and not args.allow_empty:
        if not args.json:
            shown = ", ".join(str(p) for p in paths)
            print(
                f"apirecorder scan: error: no file to scan in {shown} "
                "(pass --allow-empty when that is expected)",
                file=sys.stderr,
            )
        return 2
    return 0


def _print_report(report: ScanReport) -> None:
    for finding in report.findings:
        print(finding)
    for file in report.unparsed:
        print(f"{file}: not valid JSON; scanned as text, line by line", file=sys.stderr)
    for file, reason in report.unreadable:
        print(f"{file}: cannot read: {reason}", file=sys.stderr)
    if report.skipped_dirs:
        print(
            f"skipped {len(report.skipped_dirs)} hidden or tool folder(s) "
            "(--include-hidden walks them).",
            file=sys.stderr,
        )
    if report.not_recordings:
        print(
            f"skipped {len(report.not_recordings)} JSON file(s) that are not recordings "
            "(name a file to scan it).",
            file=sys.stderr,
        )
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
