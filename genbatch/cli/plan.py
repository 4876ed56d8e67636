"""``genbatch plan TABLE`` — validate a table and estimate a run, spending nothing.

Without ``--check`` nothing is sent: every row is checked against its recipe
and the credits, requests and time are added up from GEN's published typical
costs and latencies.  ``--check`` adds the run's own preflight (the key, each
agent, template and workspace balance, one read each), so a table can be
proven runnable the evening before.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import textwrap
from typing import TYPE_CHECKING, Any

from genbatch._constants import SIM_DEMO_AGENT_ID
from genbatch.cli.options import add_table_args
from genbatch.cli.target import ENGINE_SIM_RATE, ENGINE_SIM_TIME_SCALE, add_target_args, target
from genbatch.cli.text import count, duration
from genbatch.engine.limits import ENGINE_RATE_DEFAULT

if TYPE_CHECKING:
    from genbatch.engine.plan import PlanReport
    from genbatch.engine.preflight import Preflight
    from genbatch.engine.table import Table

__all__ = ["register"]


async def _check(args: argparse.Namespace, table: Table) -> Preflight:
    from genbatch.client import GenClient
    from genbatch.engine.preflight import preflight

    async with (
        target(args) as t,
        GenClient(t.api_key, api_url=t.api_url, agent_url=t.agent_url) as client,
    ):
        return await preflight(client, table)


def _print(report: PlanReport, rate: float, scale: float, checked: Preflight | None) -> None:
    print(f"{count(report.rows, 'row')}: {report.valid:,} valid, {len(report.invalid):,} invalid")
    for row_id, why in report.invalid[:20]:
        print(f"  {row_id}: {why}")
    if len(report.invalid) > 20:
        print(f"  ... and {len(report.invalid) - 20:,} more")
    print(f"credits (estimate): {report.credits:,.0f}")
    print(f"requests (at least): {report.requests:,}")
    print(f"time (about): {duration(report.estimate(rate, scale))}")
    print(f"  the requests at {rate:g}/s: at least {duration(report.lower_bound(rate))}")
    print(f"  then the last rows' own jobs: about {duration(report.row_seconds * scale)}")
    if checked is None:
        print("nothing was sent (--check reads the key, agents, templates, balance)")
        return
    print(
        f"checked: the key, {count(len(checked.agents), 'agent')}, "
        f"{count(len(checked.templates), 'template')}"
    )
    if checked.balance is not None:
        enough = "" if checked.balance >= report.credits else " (less than the estimate)"
        print(f"balance: {checked.balance:,.0f} credits{enough}")
    for error in checked.errors:
        print(textwrap.fill(f"could not check: {error}", 79, subsequent_indent="  "))


def cmd_plan(args: argparse.Namespace) -> int:
    from genbatch.engine.plan import plan_rows, prepare  # polars, pydantic: not for --help

    table, book, pricing = prepare(
        args.table,
        recipe=args.recipe,
        template=args.template,
        agent=args.agent or (str(SIM_DEMO_AGENT_ID) if args.sim else None),
        pricing=args.pricing,
        # Without --check plan sends nothing: the agent is the run's business.
        require_agent=args.check,
    )
    report = plan_rows(table, book, pricing, args.limit)
    checked = asyncio.run(_check(args, table)) if args.check else None
    rate = args.rate or (ENGINE_SIM_RATE if args.sim else ENGINE_RATE_DEFAULT)
    scale = (args.sim_time_scale or ENGINE_SIM_TIME_SCALE) if args.sim else 1.0
    if args.json:
        data: dict[str, Any] = {
            "rows": report.rows,
            "valid": report.valid,
            "invalid": [{"row_id": r, "reason": why} for r, why in report.invalid],
            "credits": report.credits,
            "requests": report.requests,
            "rate": rate,
            "lower_bound_seconds": round(report.lower_bound(rate), 1),
            "row_seconds": round(report.row_seconds * scale, 1),
            "estimate_seconds": round(report.estimate(rate, scale), 1),
            "checked": None
            if checked is None
            else {
                "agents": checked.agents,
                "templates": checked.templates,
                "balances": checked.balances,
                "errors": checked.errors,
            },
        }
        print(json.dumps(data, indent=2))
    else:
        _print(report, rate, scale, checked)
    if checked is not None and checked.errors:
        return 2  # asked to check and could not: not a table to run tonight
    return 0 if not report.invalid else 1


def register(subparsers: Any) -> None:
    """Add ``plan`` to the CLI."""
    p = subparsers.add_parser(
        "plan",
        help="validate a table and estimate credits, requests and time (spends nothing)",
        description="Validate every row of a table against its recipe and estimate the "
        "credits (GEN's published typical costs), requests and time (the rate and GEN's "
        "typical job latencies) a run takes. Sends nothing and needs no key or agent, "
        "unless --check: then the key (GEN_API_KEY), each agent, template and workspace "
        "balance are read once each, as a run does before its first row.",
    )
    add_table_args(p)
    add_target_args(
        p,
        rate_help=f"requests/s for the time estimate (default {ENGINE_RATE_DEFAULT:g}; "
        f"with --sim {ENGINE_SIM_RATE:g})",
        json_help="print a JSON summary on stdout",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="also check the key, agents, templates and balance against the API "
        "(reads only; GEN_API_KEY, or --sim)",
    )
    p.set_defaults(func=cmd_plan)
