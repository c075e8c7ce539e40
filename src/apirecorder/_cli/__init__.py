"""The ``apirecorder`` command: a thin shell over the core.

Each subcommand lives in its own module here and exposes ``register(subparsers)``, which adds
its parser and sets ``handler`` (a function taking the parsed namespace, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .. import __version__

__all__ = ["build_parser", "main"]

#: Subcommand modules, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    *("ls", "show", "stats", "verify", "rehash", "diff", "normalize", "explain", "prune"),
    *("scan", "rekey", "serve"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apirecorder",
        description="Inspect and maintain API recordings; serve them over HTTP.",
        epilog="Exit codes: 0 success, 1 problems found, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"apirecorder {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    try:
        code: int = handler(args)
    except BrokenPipeError:
        # The reader went away (`apirecorder show ... | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
