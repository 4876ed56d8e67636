"""``genbatch demo``: the bundled campaign, end to end, offline, in under a minute.

Runs ``inputs/demo.csv`` exactly as ``genbatch run inputs/demo.csv --sim
--fresh --out outputs/demo`` would, then says where the videos and the
result table are.  It is the quickest proof that a fresh clone works.

Its simulator is private and fresh every time: no state dir (``open_target``
without ``sim_state``), so the demo neither depends on the world the user's
own ``--sim`` commands keep in ``.genbatch/sim/`` nor adds to it.  A demo
run is always ``--fresh``, so a kept world would give it nothing.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from genbatch.cli import UsageError
from genbatch.cli.run import print_summary, run_options, run_report
from genbatch.cli.target import ENGINE_SIM_TIME_SCALE, open_target

if TYPE_CHECKING:
    from genbatch.engine.runner import RunSummary

#: `genbatch demo`: the bundled table and where its outputs go.
ENGINE_DEMO_TABLE: Final = "inputs/demo.csv"
ENGINE_DEMO_OUT: Final = "outputs/demo"

__all__ = ["register"]


async def _demo_run(args: argparse.Namespace) -> RunSummary:
    from genbatch.engine.runner import execute  # the engine: not for --help

    # sim_state=None: a fresh world of its own (module docstring).
    async with open_target(sim=True, sim_time_scale=args.sim_time_scale, sim_state=None) as t:
        return await execute(
            run_options(
                t,
                table=Path(args.table),
                out_dir=Path(args.out),
                fresh=True,
                progress=not args.quiet,
            )
        )


def _demo(args: argparse.Namespace) -> int:
    table = Path(args.table)
    if not table.is_file():
        raise UsageError(
            f"{table} not found; run `genbatch demo` from the repository root "
            "(where inputs/ is) or pass --table"
        )
    summary = asyncio.run(_demo_run(args))
    print_summary(summary)
    out = Path(args.out)
    report = run_report(out)
    print(f"\nThe demo's videos are in {out / 'videos'}/ and its table in {out / 'results.csv'}")
    if report is not None:
        print(f"Open {report} in a browser to see them all.")
    return summary.exit_code


def register(subparsers: Any) -> None:
    """Add ``genbatch demo``."""
    p = subparsers.add_parser(
        "demo",
        help="run the bundled demo table against the built-in simulator",
        description="Run the bundled demo table against an in-process simulator (no key, "
        "nothing spent) and print where the videos are: what `make demo` does.",
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
