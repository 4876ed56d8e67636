"""``genbatch demo``: the bundled campaign, end to end, offline, in under a minute.

Runs ``inputs/demo.csv`` exactly as ``genbatch run inputs/demo.csv --sim
--fresh --out outputs/demo`` would, then says where the videos and the
result table are.  It is the quickest proof that a fresh clone works.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from genbatch._constants import ENGINE_DEMO_OUT, ENGINE_DEMO_TABLE, ENGINE_SIM_TIME_SCALE
from genbatch.cli import run as commands

__all__ = ["register"]


def _demo(args: argparse.Namespace) -> int:
    table = Path(args.table)
    if not table.is_file():
        print(
            f"genbatch demo: {table} not found; run it from the repository root "
            "(where inputs/ is) or pass --table",
            file=sys.stderr,
        )
        return 2
    run_args = argparse.Namespace(
        table=table,
        recipe=None,
        template=None,
        agent=None,
        pricing=None,
        limit=None,
        json=False,
        quiet=args.quiet,
        sim=True,
        base_url=None,
        agent_url=None,
        sim_time_scale=args.sim_time_scale,
        out=Path(args.out),
        rate=None,
        max_concurrency=None,
        max_credits=None,
        fresh=True,
    )
    code = commands.cmd_run(run_args)
    out = Path(args.out)
    print(f"\nThe demo's videos are in {out / 'videos'}/ and its table in {out / 'results.csv'}")
    return code


def register(subparsers: Any) -> None:
    """Add ``genbatch demo``."""
    p = subparsers.add_parser(
        "demo", help="run the bundled demo table against the built-in simulator"
    )
    p.add_argument("--table", default=ENGINE_DEMO_TABLE, help="default %(default)s")
    p.add_argument("--out", default=ENGINE_DEMO_OUT, help="default %(default)s")
    p.add_argument(
        "--sim-time-scale",
        type=float,
        default=ENGINE_SIM_TIME_SCALE,
        metavar="S",
        help="simulator speed (default %(default)s: 100x faster than GEN)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=_demo)
