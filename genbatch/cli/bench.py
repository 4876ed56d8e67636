"""``genbatch bench`` — how many videos an hour, and what holds them back.

``genbatch bench [--rows N --rate R|none --burst B --time-scale S --faults SPEC]``
runs a synthetic table through ``genbatch run`` against a simulator process
and prints the figures (:mod:`genbatch.bench.run`).  The run is untold: it
gets no ``--rate`` and discovers the limit, unless ``--told`` (tell it the
simulator's limit) or ``--client-rate R`` (tell it R).  ``genbatch bench
--from OUT_DIR`` prints the "where the time goes" analysis of any finished
run, real or simulated, from its journal.  Exit 0 when the figures were
produced (whatever they say), 2 when they could not be.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from genbatch.bench.analysis import analyze
from genbatch.bench.run import (
    ENGINE_BENCH_BURST,
    ENGINE_BENCH_RATE,
    ENGINE_BENCH_ROWS,
    ENGINE_BENCH_TEMPLATE,
    ENGINE_BENCH_TIME_SCALE,
    BenchOptions,
    bench_sim,
    run_bench,
)
from genbatch.engine.templates import default_recipe_slugs

__all__ = ["register"]


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _sim_rate(text: str) -> float | None:
    """The simulator's limit: a positive rate, or ``none`` (no rate limit at all)."""
    if text.strip().lower() == "none":
        return None
    value: float = _positive(float)(text)
    return value


def cmd_bench(args: argparse.Namespace) -> int:
    if args.from_dir is not None:
        analysis = analyze(args.from_dir)
        print(json.dumps(analysis.to_json(), indent=2) if args.json else analysis.render())
        if not args.json:
            print("\njournal gaps (what this analysis cannot see):")
            for gap in analysis.gaps:
                print(f"  - {gap}")
        return 0
    opts = BenchOptions(
        rows=args.rows,
        sim=bench_sim(
            rate=args.rate,
            burst=args.burst,
            time_scale=args.time_scale,
            faults=args.faults,
            seed=args.seed,
        ),
        template=args.template,
        out_dir=args.out,
        told=args.told,
        client_rate=args.client_rate,
        max_concurrency=args.max_concurrency,
    )
    report = run_bench(opts, log=sys.stderr)
    print(json.dumps(report.to_json(), indent=2) if args.json else report.render())
    return 0


def register(subparsers: Any) -> None:
    """Add ``bench`` to the CLI."""
    p = subparsers.add_parser(
        "bench",
        help="measure throughput against a simulator, or analyse a finished run (--from)",
        description="Run N synthetic rows through `genbatch run` against a simulator process "
        "and print makespan vs the lower bound, requests, polls, 429s, detection delay, "
        "client CPU and memory, rows/hour.  With --from OUT_DIR: where a finished run's "
        "time went, from its journal.",
    )
    p.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="OUT_DIR",
        help="analyse this finished run's output dir instead of running a bench",
    )
    p.add_argument(
        "--rows",
        type=_positive(int),
        default=ENGINE_BENCH_ROWS,
        metavar="N",
        help=f"rows of the synthetic table (default {ENGINE_BENCH_ROWS:,})",
    )
    p.add_argument(
        "--rate",
        type=_sim_rate,
        default=ENGINE_BENCH_RATE,
        metavar="R",
        help=f"simulator rate limit, requests/s, or 'none' for no limit (default "
        f"{ENGINE_BENCH_RATE:g})",
    )
    p.add_argument(
        "--burst",
        type=_positive(int),
        default=ENGINE_BENCH_BURST,
        metavar="B",
        help=f"simulator token bucket size (default {ENGINE_BENCH_BURST})",
    )
    p.add_argument(
        "--time-scale",
        type=_positive(float),
        default=ENGINE_BENCH_TIME_SCALE,
        metavar="S",
        help=f"job latency multiplier (default {ENGINE_BENCH_TIME_SCALE:g}: a 90 s video "
        "takes 0.9 s)",
    )
    p.add_argument(
        "--faults", default="", metavar="SPEC", help="simulator fault mix (default: none)"
    )
    p.add_argument("--seed", type=int, default=0, metavar="N", help="simulator seed (default 0)")
    p.add_argument(
        "--template",
        default=ENGINE_BENCH_TEMPLATE,
        choices=default_recipe_slugs(),
        metavar="SLUG",
        help=f"starter template whose default recipe every row runs "
        f"(default {ENGINE_BENCH_TEMPLATE}; `genbatch templates --sim` lists them)",
    )
    p.add_argument(
        "--told",
        action="store_true",
        help="tell genbatch run the simulator's limit (--rate); default: untold, the run "
        "discovers it",
    )
    p.add_argument(
        "--client-rate",
        type=_positive(float),
        default=None,
        metavar="R",
        help="tell genbatch run --rate R instead (implies --told)",
    )
    p.add_argument(
        "--max-concurrency",
        type=_positive(int),
        default=None,
        metavar="N",
        help="rows in flight at once (default: sized from the measured rate and row time)",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="output dir (default outputs/bench/…)")
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    p.set_defaults(func=cmd_bench)
