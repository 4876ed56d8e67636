"""The `genbatch` command line: the only place that parses argv, prints for people
and turns errors into exit codes.

Each command module exposes ``register(subparsers)``; this file assembles them
and runs the chosen command under :func:`main`'s one error handler: an error
that ends a command (a :class:`~genbatch.errors.GenError`, which carries its
``exit_code``, or an ``OSError`` writing the output) becomes one line on
stderr, never a traceback.  Exit codes (docs/design.md §6): 0 every attempted
row completed, 1 some rows failed or were skipped, 2 could not start,
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from genbatch import __version__
from genbatch._constants import CLIENT_ENV_API_KEY
from genbatch.errors import AuthenticationError, GenError, InputError

__all__ = ["EXIT_INTERRUPTED", "UsageError", "build_parser", "fail", "main"]

#: Every command: the module that registers it and its one line in ``genbatch --help``,
#: in the order the help lists them.  ``genbatch CMD …`` imports only CMD's module,
#: so a command's ``--help`` costs what that command needs (a test checks this
#: table against what each module registers).
COMMANDS: dict[str, tuple[str, str]] = {
    "sim": (
        "genbatch.cli.sim",
        "run the offline GEN simulator (API host and agent host on two ports)",
    ),
    "run": ("genbatch.cli.run", "turn every row of a table into a video (resumable)"),
    "plan": (
        "genbatch.cli.plan",
        "validate a table and estimate credits, requests and time (spends nothing)",
    ),
    "status": ("genbatch.cli.status", "rows by state of a run's output dir"),
    "templates": ("genbatch.cli.templates", "list the templates you can clone"),
    "demo": ("genbatch.cli.demo", "run the bundled demo table against the built-in simulator"),
    "agents": ("genbatch.cli.journey", "set up many agents from a table (Agent Core)"),
    "ideas": (
        "genbatch.cli.journey",
        "ask many agents for ideas; write one table row per idea (a run input)",
    ),
    "research": ("genbatch.cli.journey", "standalone research for one or more agents and topics"),
    "train": ("genbatch.cli.journey", "train_social scraping jobs in bulk from a table of sources"),
    "bench": (
        "genbatch.cli.bench",
        "measure throughput against a simulator, or analyse a finished run (--from)",
    ),
    "report": (
        "genbatch.cli.report",
        "write OUT_DIR/report.html: every video, failures by reason, the timeline",
    ),
}
#: Modules that contribute subcommands, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(m for m, _ in COMMANDS.values()))
#: The conventional status of a process stopped by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130
#: ... and of one whose reader closed the pipe (128 + SIGPIPE), as a shell reports it.
EXIT_BROKEN_PIPE = 141


class UsageError(InputError):
    """A flag or flag combination that cannot work."""


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: only the named command's module is imported (every
    command's, when ``argv`` is None); without a command, one line per command."""
    parser = argparse.ArgumentParser(
        prog="genbatch",
        description="Turn a table of video ideas into GEN videos, in bulk.",
    )
    parser.add_argument("--version", action="version", version=f"genbatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    if argv is None:
        for module in COMMAND_MODULES:
            importlib.import_module(module).register(sub)
        return parser
    chosen = next((w for w in argv if not w.startswith("-")), None)
    if chosen in COMMANDS:
        importlib.import_module(COMMANDS[chosen][0]).register(sub)
    else:
        for name, (_, summary) in COMMANDS.items():
            sub.add_parser(name, help=summary)
    return parser


def fail(exc: BaseException) -> int:
    """Say why a command stopped, in one line on stderr; its exit code."""
    if isinstance(exc, AuthenticationError):
        message = f"the API key was refused (401): {exc}; check {CLIENT_ENV_API_KEY}"
    elif isinstance(exc, OSError):
        message = str(exc)
    else:
        message = str(exc)
    print(f"genbatch: {message}", file=sys.stderr)
    return exc.exit_code if isinstance(exc, GenError) else 2


def _command_parser(
    parser: argparse.ArgumentParser, argv: Sequence[str]
) -> argparse.ArgumentParser:
    """The (sub)command's own parser for ``argv``: its usage is the one to show."""
    words = list(argv)
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        chosen = next((w for w in words if subs and w in subs[0].choices), None)
        if chosen is None:
            return parser
        parser = subs[0].choices[chosen]
        words = words[words.index(chosen) + 1 :]


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words)
    args, extras = parser.parse_known_args(words)
    if extras:
        # An unknown option: say it with the usage of the command it was given to.
        _command_parser(parser, words).error(f"unrecognized arguments: {' '.join(extras)}")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args))
    except BrokenPipeError:
        # The reader went away (`genbatch status OUT | head`): stop quietly, and
        # point stdout at /dev/null so the interpreter's final flush stays quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (GenError, OSError) as exc:
        return fail(exc)
