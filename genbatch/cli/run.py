"""``genbatch run | plan | status | templates`` — the batch engine's command line.

Exit codes (docs/design.md §6): 0 every row completed; 1 some rows failed, were
skipped or are still pending (the result table says why); 2 the run could
not start (bad table or recipe, no key, 401, output dir in use) — always
with one line saying what to do.

``--sim`` runs an in-process simulator (the seeded demo key, workspace and
agent) with a fast time scale (``--sim-time-scale``, default
``ENGINE_SIM_TIME_SCALE``: a 90 s video takes under a second), so a table
can be rehearsed offline.  Against any other server (``--base-url``, a
separate ``genbatch sim``, GEN itself) nothing about it is passed: the run
discovers the rate limit and learns each job kind's latency as it goes;
``--rate`` only imposes a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.table import Table as RichTable

from genbatch._constants import CLIENT_ENV_API_KEY, SIM_DEMO_AGENT_ID
from genbatch.cli import UsageError
from genbatch.cli.target import (
    ENGINE_DEFAULT_OUT_ROOT,
    ENGINE_SIM_RATE,
    Target,
    add_target_args,
    target,
)
from genbatch.client import GenClient
from genbatch.engine.journal import Journal, journal_table, live_holder
from genbatch.engine.limits import ENGINE_RATE_CEILING, ENGINE_RATE_DEFAULT
from genbatch.engine.plan import plan_rows, prepare
from genbatch.engine.recipe import Recipe, default_recipe_slugs
from genbatch.engine.runner import RunOptions, RunSummary, execute

__all__ = ["register"]


def _add_table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("table", type=Path, help="input table (.csv or .parquet)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--recipe", type=Path, metavar="F", help="recipe TOML for every row")
    which.add_argument(
        "--template", metavar="SLUG", help="template (default recipe) for rows without one"
    )
    p.add_argument("--agent", metavar="ID", help="agent id for rows without an agent_id")
    p.add_argument("--pricing", type=Path, metavar="F", help="pricing TOML (credits per type)")
    p.add_argument("--limit", type=int, metavar="N", help="run only the first N rows")


# --------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------
def default_out(table: Path) -> Path:
    """``outputs/<table name>/``, unless another table's run is there (two
    ``ideas.csv`` in different folders): then ``outputs/<name>-<path hash>/``."""
    stem = table.stem or "run"
    base = Path(ENGINE_DEFAULT_OUT_ROOT) / stem
    owner = journal_table(base)
    resolved = table.resolve()
    if owner is None or owner == resolved:
        return base
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:8]
    return Path(ENGINE_DEFAULT_OUT_ROOT) / f"{stem}-{digest}"


async def _run(args: argparse.Namespace) -> RunSummary:
    async with target(args) as t:
        return await execute(
            run_options(
                t,
                table=args.table,
                out_dir=args.out or default_out(args.table),
                recipe=args.recipe,
                template=args.template,
                max_concurrency=args.max_concurrency,
                max_credits=args.max_credits,
                pricing=args.pricing,
                fresh=args.fresh,
                limit=args.limit,
                progress=not args.json and not args.quiet,
            )
        )


def run_options(t: Target, **choices: Any) -> RunOptions:
    """The run the flags ask for, against the API ``t`` names."""
    return RunOptions(
        api_key=t.api_key,
        api_url=t.api_url,
        agent_url=t.agent_url,
        agent=t.agent,
        rate=t.rate,
        **choices,
    )


def print_summary(summary: RunSummary, console: Console | None = None) -> None:
    """The end-of-run table and where everything is."""
    console = console or Console()
    table = RichTable(
        title=f"genbatch run {summary.run_id}" + (" (resumed)" if summary.resumed else "")
    )
    for name in ("rows", "ok", "failed", "skipped", "pending", "credits", "requests", "429s", "s"):
        table.add_column(name, justify="right")
    c = summary.counts
    table.add_row(
        str(summary.total),
        str(c.get("completed", 0)),
        str(c.get("failed", 0)),
        str(c.get("skipped", 0)),
        str(c.get("pending", 0)),
        f"{summary.credits:g}",
        str(summary.requests),
        str(summary.rate_limited),
        f"{summary.seconds:.1f}",
    )
    console.print(table)
    if summary.rate:
        console.print(f"rate:    {summary.rate['text']}", highlight=False)
    ident = summary.identity
    if ident.get("kept") or ident.get("redone") or ident.get("resumed"):
        parts = [f"{ident.get(k, 0):,} {k}" for k in ("kept", "redone", "resumed", "new")]
        console.print(
            f"rows:    {', '.join(parts)} (redone: input or recipe changed; "
            "earlier videos kept as NAME.vN.mp4)"
            if ident.get("redone")
            else f"rows:    {', '.join(parts)}",
            highlight=False,
        )
    out = summary.out_dir
    console.print(f"videos:  {out / 'videos'}", highlight=False)
    if summary.results is not None:
        console.print(
            f"results: {out / summary.results.csv.name}  ({summary.results.parquet.name})",
            highlight=False,
        )
    if summary.aborted:
        console.print(f"[red]aborted:[/red] {summary.aborted}")
    elif summary.interrupted:
        console.print("interrupted: rerun the same command to resume")
    elif summary.exit_code:
        console.print("some rows did not complete (the reason column says why):")
        for line in hints(summary.reasons):
            console.print(f"  {line}", highlight=False)


#: What to do about rows that ended with these error codes: a rerun alone fixes
#: only the transient ones.
_FIXES: Final = (
    (("max_credits",), "raise --max-credits, then rerun"),
    (
        ("insufficient_credits_for_job", "no_active_credits"),
        "top up the workspace's credits, then rerun",
    ),
    (
        ("invalid_row", "pricing", "unsafe_path", "request_validation", "validation_error"),
        "fix those rows or the recipe (a rerun alone will not change them)",
    ),
    (
        ("agent_not_found", "http_403", "http_404", "not_found"),
        "check the agent or template the reason names, then rerun",
    ),
)


def count(n: int, noun: str) -> str:
    """``1 row``, ``1,000 rows``: how a person reads a count."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 20 min``: how a person reads a duration."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    h, m = divmod(minutes, 60)
    return f"{h:,} h {m} min" if m else f"{h:,} h"


def hints(reasons: Mapping[str, int]) -> list[str]:
    """One line per kind of fix, with how many rows it concerns."""
    lines, left = [], dict(reasons)
    for codes, fix in _FIXES:
        n = sum(left.pop(c, 0) for c in codes)
        if n:
            lines.append(f"{count(n, 'row')}: {fix}")
    n = sum(left.values())
    if n:
        lines.append(f"{count(n, 'row')}: rerun the same command to retry them")
    return lines or ["rerun the same command to retry them"]


def cmd_run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 0:
        raise UsageError("--limit must be >= 0")
    summary = asyncio.run(_run(args))
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
    else:
        print_summary(summary)
    if summary.aborted:
        print(f"genbatch: {summary.aborted}; check {CLIENT_ENV_API_KEY}", file=sys.stderr)
    return summary.exit_code


# --------------------------------------------------------------------------
# plan
# --------------------------------------------------------------------------
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


# --------------------------------------------------------------------------
# status
# --------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    with Journal.open(args.dir, read_only=True) as journal:
        counts = journal.counts()
        credits = journal.credits_total()
        problems = [
            {"row_id": r.row_id, "status": r.status, "reason": r.reason, "step": r.step}
            for status in ("failed", "skipped", "running")
            for r in journal.rows(status)
        ]
        run_id = journal.run_id
    holder = live_holder(args.dir)
    if holder is None:
        # Nothing holds the lock: rows still "running" were cut off mid-way.
        for p in problems:
            if p["status"] == "running":
                p["status"] = "interrupted"
    total = sum(counts.values())
    state = "live" if holder is not None else ("interrupted" if counts.get("running") else "idle")
    if args.json:
        out = {
            "run_id": run_id,
            "state": state,
            "pid": holder if holder and holder > 0 else None,
            "counts": counts,
            "credits": credits,
            "rows": problems,
        }
        print(json.dumps(out, indent=2))
    else:
        print(f"run {run_id}: {count(total, 'row')}, credits {credits:,.0f}")
        if holder is not None:
            who = f"pid {holder}" if holder > 0 else "another process"
            print(f"  live: {who} is running it; results.csv is written when it ends")
        elif state == "interrupted":
            print("  interrupted: no process is running it; rerun the same command to resume")
        print("  " + "  ".join(f"{k}={v}" for k, v in counts.items()))
        for p in problems[:20]:
            print(f"  {p['row_id']}: {p['status']} {p['reason'] or ('at ' + str(p['step']))}")
        if len(problems) > 20:
            print(f"  ... and {len(problems) - 20} more (see results.csv)")
    return 0 if counts.get("completed", 0) == total else 1


# --------------------------------------------------------------------------
# templates
# --------------------------------------------------------------------------
async def _templates(args: argparse.Namespace) -> list[dict[str, Any]]:
    async with (
        target(args) as t,
        GenClient(t.api_key, api_url=t.api_url, agent_url=t.agent_url) as client,
    ):
        found = await client.templates.list()
    recipes = set(default_recipe_slugs())
    return [
        {
            "slug": tpl.slug,
            "title": tpl.title,
            "tags": tpl.tags,
            "default_recipe": tpl.slug in recipes,
            "columns": Recipe.default(tpl.slug).columns() if tpl.slug in recipes else None,
        }
        for tpl in found
    ]


def cmd_templates(args: argparse.Namespace) -> int:
    rows = asyncio.run(_templates(args))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    # Plain lines, never cut: a slug is what a person copies into --template.
    for r in rows:
        title = f"  {r['title']}" if r["title"] else ""
        print(f"{r['slug']}{title}")
        if r["columns"] is not None:
            print(f"    columns: row_id, {', '.join(r['columns'])}")
        else:
            print("    no default recipe: pass --recipe FILE")
        if r["tags"]:
            print(f"    tags: {', '.join(r['tags'])}")
    return 0


# --------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------
def register(subparsers: Any) -> None:
    """Add ``run``, ``plan``, ``status`` and ``templates`` to the CLI."""
    p = subparsers.add_parser(
        "run",
        help="turn every row of a table into a video (resumable)",
        description="Clone, fill, generate, render, download (and publish) one video per row. "
        "Rerunning the same command resumes; --fresh starts over.",
    )
    _add_table_args(p)
    add_target_args(
        p,
        rate_help="a ceiling in requests/s per host, started at (default: discover the "
        f"server's limit, never above {ENGINE_RATE_CEILING:g}/s)",
        json_help="print a JSON summary on stdout",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="output dir (default outputs/<table>/)")
    p.add_argument("--max-concurrency", type=int, metavar="N", help="rows in flight at once")
    p.add_argument("--max-credits", type=float, metavar="C", help="never spend more than C credits")
    p.add_argument("--fresh", action="store_true", help="start a new run instead of resuming")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser(
        "plan",
        help="validate a table and estimate credits, requests and time (spends nothing)",
        description="Validate every row of a table against its recipe and estimate the "
        "credits (GEN's published typical costs) and the requests and time a run takes. "
        "Sends nothing and needs no key or agent.",
    )
    _add_table_args(p)
    p.add_argument("--sim", action="store_true", help="assume the simulator's agent and rate")
    p.add_argument("--rate", type=float, metavar="R", help="requests/s for the time bound")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=cmd_plan)

    p = subparsers.add_parser(
        "status",
        help="rows by state of a run's output dir",
        description="Rows by state of a run's output dir, read from its journal (also "
        "during a run), and whether a process is running it now (live) or it was cut "
        "off (interrupted: rerun the same command). Exit 0 when every row completed.",
    )
    p.add_argument("dir", type=Path, help="the run's output dir")
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    p.set_defaults(func=cmd_status)

    p = subparsers.add_parser(
        "templates",
        help="list the templates you can clone",
        description="The templates your key can clone, each with the table columns its "
        "default recipe needs (--template SLUG); GEN_API_KEY, or --sim.",
    )
    add_target_args(p, rate_help=argparse.SUPPRESS, json_help="JSON on stdout")
    p.set_defaults(func=cmd_templates)
