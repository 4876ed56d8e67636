"""Help that fits its readers: every default said, every line within 80 columns."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from genbatch.cli import build_parser


def _walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))


COMMANDS = [path for path, _ in _walk(build_parser())]


def test_every_option_with_a_default_says_it() -> None:
    missing = []
    for path, parser in _walk(build_parser()):
        for a in parser._actions:
            if not a.option_strings or a.help == argparse.SUPPRESS:
                continue
            if isinstance(a, argparse._HelpAction | argparse._VersionAction):
                continue
            if a.default in (None, False, argparse.SUPPRESS) or a.default == []:
                continue
            if "default" not in (a.help or ""):
                missing.append(f"{' '.join(path)} {a.option_strings[0]} = {a.default!r}")
    assert missing == []


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "genbatch")
def test_help_fits_80_columns(path: tuple[str, ...]) -> None:
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run(
        [sys.executable, "-m", "genbatch", *path, "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    long = [line for line in done.stdout.splitlines() if len(line) > 80]
    assert long == [] and "usage:" in done.stdout


def test_the_command_table_says_what_each_module_registers() -> None:
    from genbatch.cli import COMMANDS

    registered = {}
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            registered = {a.dest: a.help for a in action._choices_actions}
    assert registered == {name: summary for name, (_, summary) in COMMANDS.items()}


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "genbatch")
def test_help_loads_no_http_stack_models_or_dataframes(path: tuple[str, ...]) -> None:
    """A command imports what it needs when it runs, not to print its help."""
    probe = (
        "import sys\n"
        "from genbatch.cli import main\n"
        "try:\n"
        f"    main({[*path, '--help']!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('polars', 'pydantic', 'aiohttp', 'genbatch.engine.runner')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr
