"""``genbatch plan TABLE`` — validate a table and estimate a run, spending nothing."""

from __future__ import annotations

import argparse
import json
from typing import Any

from genbatch._constants import SIM_DEMO_AGENT_ID
from genbatch.cli.run import add_table_args
from genbatch.cli.target import ENGINE_SIM_RATE
from genbatch.cli.text import count, duration
from genbatch.engine.limits import ENGINE_RATE_DEFAULT
from genbatch.engine.plan import plan_rows, prepare

__all__ = ["register"]


def cmd_plan(args: argparse.Namespace) -> int:
    table, book, pricing = prepare(
        args.table,
        recipe=args.recipe,
        template=args.template,
        agent=args.agent or (str(SIM_DEMO_AGENT_ID) if args.sim else None),
        pricing=args.pricing,
        require_agent=False,  # plan sends nothing: the agent is the run's business
    )
    report = plan_rows(table, book, pricing, args.limit)
    rate = args.rate or (ENGINE_SIM_RATE if args.sim else ENGINE_RATE_DEFAULT)
    data: dict[str, Any] = {
        "rows": report.rows,
        "valid": report.valid,
        "invalid": [{"row_id": r, "reason": why} for r, why in report.invalid],
        "credits": report.credits,
        "requests": report.requests,
        "rate": rate,
        "lower_bound_seconds": round(report.lower_bound(rate), 1),
    }
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(
            f"{count(report.rows, 'row')}: {report.valid:,} valid, {len(report.invalid):,} invalid"
        )
        for row_id, why in report.invalid[:20]:
            print(f"  {row_id}: {why}")
        if len(report.invalid) > 20:
            print(f"  ... and {len(report.invalid) - 20} more")
        print(f"credits (estimate): {report.credits:,.0f}")
        print(
            f"requests (at least): {report.requests:,}; at {rate:g}/s that is "
            f"at least {duration(report.lower_bound(rate))}"
        )
    return 0 if not report.invalid else 1


def register(subparsers: Any) -> None:
    """Add ``plan`` to the CLI."""
    p = subparsers.add_parser(
        "plan",
        help="validate a table and estimate credits, requests and time (spends nothing)",
        description="Validate every row of a table against its recipe and estimate the "
        "credits (GEN's published typical costs) and the requests and time a run takes. "
        "Sends nothing and needs no key or agent.",
    )
    add_table_args(p)
    p.add_argument("--sim", action="store_true", help="assume the simulator's agent and rate")
    p.add_argument("--rate", type=float, metavar="R", help="requests/s for the time bound")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=cmd_plan)
