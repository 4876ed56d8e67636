"""The `genbatch` command line.

Each subcommand lives in the module that owns its concern and exposes
``register(subparsers)``; this file only assembles them, so adding a command
never touches another command's code.  Exit codes (DESIGN §6): 0 all rows
completed, 1 some rows failed or were skipped, 2 could not start.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from genbatch import __version__

#: Modules that contribute subcommands, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "genbatch.cli.sim",
    "genbatch.cli.run",
    "genbatch.cli.demo",
    "genbatch.cli.journey",
    "genbatch.cli.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genbatch",
        description="Turn a table of video ideas into GEN videos, in bulk.",
    )
    parser.add_argument("--version", action="version", version=f"genbatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
