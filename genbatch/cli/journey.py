"""``genbatch agents apply | ideas | research | train`` — Steps 1 and 2 in bulk.

The journey as commands (each writes a table the next one reads)::

    genbatch agents apply agents.csv --create      # Step 1, idempotent
    genbatch ideas --table outputs/agents/agents_results.csv --out outputs/ideas/
    genbatch run outputs/ideas/ideas.parquet       # Steps 3-5

Exit codes like ``genbatch run``: 0 every row/run completed (or, with
``--dry-run``, was planned); 1 some failed or wait for approval (the table
says why); 2 could not start (bad table or flags, no key, 401, an output that
cannot be written) — raised, and said in one line by :func:`genbatch.cli.main`.

Where the API is: ``GEN_API_KEY`` / ``GEN_API_URL`` / ``GEN_AGENT_URL`` from
the environment, ``--base-url``/``--agent-url``, or ``--sim`` (an in-process
simulator with the demo key and agent; state ends with the command;
``--sim-time-scale S`` sets its speed).  Latencies and the rate are learned.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from genbatch._constants import ENGINE_RUN_MAX_WAIT, SIM_DEMO_AGENT_ID
from genbatch.agents.defaults import ENGINE_AGENTS_CONCURRENCY, ENGINE_IDEAS_CONCURRENCY
from genbatch.cli import UsageError
from genbatch.cli.target import ENGINE_DEFAULT_OUT_ROOT, Target, add_target_args, target

if TYPE_CHECKING:
    from genbatch.agents import apply as AA
    from genbatch.agents import ideas as IB
    from genbatch.agents import research as RS
    from genbatch.agents import train as TR
    from genbatch.engine.watch import HubWatcher

#: Result table of `genbatch agents apply` (<stem>.parquet + <stem>.csv in --out).
ENGINE_AGENTS_RESULTS_STEM: Final = "agents_results"
#: A dry run's report: never the results file the next step (ideas) reads.
ENGINE_AGENTS_PLAN_STEM: Final = "agents_plan"
#: Idea run message when neither --message nor the table gives one (the reference's).
ENGINE_IDEAS_DEFAULT_MESSAGE: Final = "Generate 5 content ideas grounded in this week trends"
#: Output files of `genbatch ideas` (ideas table), its per-run report, research, train.
ENGINE_IDEAS_STEM: Final = "ideas"
ENGINE_IDEAS_RUNS_STEM: Final = "idea_runs"
ENGINE_RESEARCH_STEM: Final = "research"
ENGINE_TRAIN_RESULTS_STEM: Final = "train_results"

__all__ = ["register"]


# --------------------------------------------------------------------------
# Where the API is, and the client every command shares
# --------------------------------------------------------------------------
@asynccontextmanager
async def _session(
    args: argparse.Namespace, seeds: Mapping[str, float] | None = None
) -> AsyncIterator[tuple[Target, HubWatcher]]:
    """The target, a rate-gated client and the poll hub, for one command."""
    from genbatch.client import GenClient
    from genbatch.engine.limits import Limits
    from genbatch.engine.poller import PollHub
    from genbatch.engine.runner import make_hooks
    from genbatch.engine.watch import HubWatcher

    async with target(args) as t:
        limits = Limits.create(rate=t.rate)
        async with (
            GenClient(
                t.api_key, api_url=t.api_url, agent_url=t.agent_url, hooks=make_hooks(limits)
            ) as client,
            PollHub(seeds=seeds) as hub,
        ):
            max_wait = getattr(args, "max_wait", ENGINE_RUN_MAX_WAIT)
            yield t, HubWatcher.for_runs(client, hub, max_wait)


# --------------------------------------------------------------------------
# Output tables
# --------------------------------------------------------------------------
def _out_dir(args: argparse.Namespace, default: str) -> Path:
    return Path(args.out) if args.out else Path(ENGINE_DEFAULT_OUT_ROOT) / default


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _ids(values: Sequence[str] | None) -> list[str]:
    """``--agents 1,2 --agents 3`` → ["1", "2", "3"] (order kept, duplicates dropped)."""
    out: list[str] = []
    for value in values or ():
        for part in value.split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


# --------------------------------------------------------------------------
# agents apply
# --------------------------------------------------------------------------
def cmd_agents_apply(args: argparse.Namespace) -> int:
    from genbatch.agents import apply as AA
    from genbatch.agents.agents_table import read_agents_table
    from genbatch.agents.tables import TableData

    async def go() -> AA.ApplyReport:
        specs = read_agents_table(args.table)  # validated before any connection
        async with _session(args) as (_t, waiter):
            return await AA.apply_agents(
                waiter.client,
                specs,
                create=args.create,
                dry_run=args.dry_run,
                concurrency=args.concurrency,
            )

    report = asyncio.run(go())
    out_dir = _out_dir(args, Path(args.table).stem or "agents")
    frame = report.to_frame()
    stem = ENGINE_AGENTS_PLAN_STEM if report.dry_run else ENGINE_AGENTS_RESULTS_STEM
    parquet, csv_path = TableData(frame, frame.to_dicts()).write(out_dir, stem)
    counts = report.counts()
    if args.json:
        _print_json(
            {
                "dry_run": report.dry_run,
                "counts": counts,
                "results": str(csv_path),
                "rows": [o.record() for o in report.outcomes],
                "diff": {
                    str(o.row): [{"field": c.field, "old": c.old, "new": c.new} for c in o.changes]
                    for o in report.outcomes
                    if o.changes
                },
            }
        )
    else:
        for line in report.lines():
            print(line)
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        mode = " (dry run: nothing was sent)" if report.dry_run else ""
        print(f"{len(report.outcomes)} agents: {summary}{mode}")
        label = "plan" if report.dry_run else "results"
        print(f"{label}: {csv_path}  ({parquet.name})")
    return 1 if report.failed else 0


# --------------------------------------------------------------------------
# ideas
# --------------------------------------------------------------------------
def _ideas_paths(args: argparse.Namespace) -> tuple[Path, str]:
    """``--out`` is a directory, or a ``.parquet``/``.csv`` file naming the ideas table."""
    if args.out and Path(args.out).suffix.lower() in {".parquet", ".csv"}:
        path = Path(args.out)
        return path.parent, path.stem
    return _out_dir(args, ENGINE_IDEAS_STEM), ENGINE_IDEAS_STEM


def _check_publish_at(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(
            f"--publish-at {value!r} is not ISO 8601 (e.g. 2026-04-20T15:00:00Z)"
        ) from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise UsageError("--publish-at needs a timezone (e.g. 2026-04-20T15:00:00Z)")
    if when <= datetime.now(UTC):
        raise UsageError(f"--publish-at {value} is in the past")
    return when.isoformat().replace("+00:00", "Z")


def _idea_requests(args: argparse.Namespace, sim: bool) -> list[IB.IdeaRequest]:
    from genbatch.agents import ideas as IB

    message = args.refine or args.message or ENGINE_IDEAS_DEFAULT_MESSAGE
    conversations = _ids(args.conversation)
    agents = _ids(args.agents)
    if args.refine:
        if not conversations:
            raise UsageError("--refine needs --conversation ID (the conversation to refine)")
        agent = agents[0] if len(agents) == 1 else None
        return [IB.IdeaRequest(agent, message, c) for c in conversations]
    if conversations:
        agent = agents[0] if len(agents) == 1 else None
        return [IB.IdeaRequest(agent, message, c) for c in conversations]
    if args.table:
        return IB.read_requests_table(args.table, message)
    if not agents and sim:
        agents = [str(SIM_DEMO_AGENT_ID)]
    if not agents:
        raise UsageError(
            "say which agents: --agents ID[,ID...] or --table FILE (agent_id, message)"
        )
    return [IB.IdeaRequest(a, message) for a in agents]


def cmd_ideas(args: argparse.Namespace) -> int:
    from genbatch.agents import ideas as IB
    from genbatch.agents import runs as AR
    from genbatch.agents.video_types import parse_overrides

    try:
        overrides = parse_overrides(args.template_map)
    except ValueError as exc:
        raise UsageError(f"--template-map: {exc}") from None
    publish_at = _check_publish_at(args.publish_at)
    approve_only = bool(args.approve_run) and not (args.agents or args.table or args.conversation)

    async def go() -> IB.IdeasReport:
        async with _session(args) as (t, waiter):
            runs: list[AR.RunOutcome] = []
            if args.approve_run:
                runs += await AR.approve_runs(waiter, _ids(args.approve_run))
            if approve_only:
                return IB.IdeasReport(runs, [])
            requests = _idea_requests(args, t.sim)
            report = await IB.generate_ideas(
                waiter,
                requests,
                remember=args.remember,
                ideas=not args.no_ideas,
                approve=args.approve,
                concurrency=args.concurrency,
            )
            report.runs[:0] = runs
            return report

    report = asyncio.run(go())
    out_dir, stem = _ideas_paths(args)
    runs_csv = AR.runs_table(report.runs).write(out_dir, ENGINE_IDEAS_RUNS_STEM)[1]
    ideas_paths: tuple[Path, Path] | None = None
    if report.ideas:
        table = IB.build_ideas_table(
            report.ideas, overrides=overrides, template=args.template, publish_at=publish_at
        )
        ideas_paths = table.write(out_dir, stem)
    if args.json:
        _print_json(
            {
                "runs": [r.record() for r in report.runs],
                "ideas": len(report.ideas),
                "rejected": report.rejected,
                "ideas_table": str(ideas_paths[0]) if ideas_paths else None,
                "runs_table": str(runs_csv),
            }
        )
    else:
        for r in report.runs:
            head = f"{r.kind} agent {r.agent_id or '?'} run {r.run_id or '-'}: {r.status}"
            extra = f", {r.ideas} ideas" if r.kind in ("ideas", "refine") and r.ideas else ""
            conv = f" (conversation {r.conversation_id})" if r.conversation_id else ""
            print(head + extra + conv + (f" — {r.reason}" if r.reason else ""))
        if report.rejected:
            print(f"{report.rejected} rejected idea(s) left out of the table")
        if ideas_paths:
            parquet, csv_path = ideas_paths
            sim = " --sim" if args.sim else ""
            print(f"ideas: {parquet}  ({csv_path.name}); next: genbatch run {parquet}{sim}")
        print(f"runs:  {runs_csv}")
    return 0 if report.ok else 1


# --------------------------------------------------------------------------
# research
# --------------------------------------------------------------------------
def cmd_research(args: argparse.Namespace) -> int:
    from genbatch.agents import research as RS

    async def go() -> list[RS.ResearchOutcome]:
        async with _session(args, seeds=RS.research_seeds()) as (t, waiter):
            agents = _ids(args.agents) or ([str(SIM_DEMO_AGENT_ID)] if t.sim else [])
            if not agents:
                raise UsageError("say which agents: --agents ID[,ID...]")
            return await RS.research(
                waiter, agents, args.topic, args.depth, concurrency=args.concurrency
            )

    outcomes = asyncio.run(go())
    paths = RS.research_table(outcomes).write(
        _out_dir(args, ENGINE_RESEARCH_STEM), ENGINE_RESEARCH_STEM
    )
    if args.json:
        _print_json({"research": [o.record() for o in outcomes], "table": str(paths[0])})
    else:
        for o in outcomes:
            rec = o.record()
            text = rec["summary"] or rec["reason"] or ""
            print(f"agent {o.agent_id} {o.topic!r} ({o.depth}): {o.run.status} — {text}")
        print(f"research: {paths[0]}  ({paths[1].name})")
    return 0 if all(o.run.status == "completed" for o in outcomes) else 1


# --------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from genbatch.agents import train as TR

    async def go() -> list[TR.TrainOutcome]:
        default_agent = args.agent
        if default_agent is None and args.sim:
            default_agent = str(SIM_DEMO_AGENT_ID)
        specs = TR.read_train_table(args.table, default_agent)
        async with _session(args) as (_t, waiter):
            return await TR.train(
                waiter, specs, wait=not args.no_wait, concurrency=args.concurrency
            )

    outcomes = asyncio.run(go())
    out_dir = _out_dir(args, Path(args.table).stem or "train")
    paths = TR.train_table(outcomes).write(out_dir, ENGINE_TRAIN_RESULTS_STEM)
    if args.json:
        _print_json({"jobs": [o.record() for o in outcomes], "results": str(paths[1])})
    else:
        for o in outcomes:
            d = o.spec.data
            what = f"{d.get('platform', '?')} {d.get('type', '?')} {d.get('value', '?')!r}"
            job = f" job {o.user_job_id}" if o.user_job_id else ""
            print(
                f"row {o.spec.row}: agent {o.spec.agent_id} {what}{job}: {o.status}"
                + (f" — {o.reason}" if o.reason else "")
            )
        print(f"results: {paths[1]}  ({paths[0].name})")
    ok = {"completed", "monitoring", "submitted"}
    return 0 if all(o.status in ok for o in outcomes) else 1


# --------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------
def _add_target_args(p: argparse.ArgumentParser) -> None:
    add_target_args(
        p,
        rate_help="most requests/s to send to each host (default: discover the server's limit)",
        json_help="print a JSON report on stdout",
    )


def _add_wait_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-wait",
        type=float,
        default=ENGINE_RUN_MAX_WAIT,
        metavar="S",
        help=f"give up waiting on one run after S seconds (default {ENGINE_RUN_MAX_WAIT:g})",
    )
    p.add_argument(
        "--max-concurrency",
        "--concurrency",
        dest="concurrency",
        type=int,
        default=ENGINE_IDEAS_CONCURRENCY,
        metavar="N",
        help=f"agents in flight at once (default {ENGINE_IDEAS_CONCURRENCY})",
    )


def register(subparsers: Any) -> None:
    """Add ``agents``, ``ideas``, ``research`` and ``train`` to the CLI."""
    p = subparsers.add_parser(
        "agents",
        help="set up many agents from a table (Agent Core)",
        description="Agent setup in bulk (Step 1).",
    )
    sub = p.add_subparsers(dest="agents_command", metavar="ACTION", required=True)
    a = sub.add_parser(
        "apply",
        help="write Agent Core for every row of a table (only what differs)",
        description="One row per agent; columns are Agent Core fields (lists/objects as JSON "
        "cells or Parquet lists/structs), plus agent_id and workspace_id. An empty cell leaves "
        "the field as it is. Reads each core, compares, and PATCHes only the fields that differ.",
    )
    a.add_argument("table", type=Path, help="agents table (.csv or .parquet)")
    a.add_argument(
        "--create",
        action="store_true",
        help="rows without agent_id: reuse the agent named brand_name, else create it",
    )
    a.add_argument("--dry-run", action="store_true", help="show the diff; send no POST/PATCH")
    a.add_argument("--out", type=Path, metavar="DIR", help="result dir (default outputs/<table>/)")
    a.add_argument(
        "--max-concurrency",
        "--concurrency",
        dest="concurrency",
        type=int,
        default=ENGINE_AGENTS_CONCURRENCY,
        metavar="N",
        help=f"agents in flight at once (default {ENGINE_AGENTS_CONCURRENCY})",
    )
    _add_target_args(a)
    a.set_defaults(func=cmd_agents_apply)

    p = subparsers.add_parser(
        "ideas",
        help="ask many agents for ideas; write one table row per idea (a run input)",
        description="Trigger idea runs (Step 2), wait, read the conversations and write "
        "ideas.parquet/.csv: one row per idea with every documented field, plus row_id, "
        "template (from video_type) and script, so `genbatch run ideas.parquet` works as is.",
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument("--agents", action="append", metavar="IDS", help="agent ids, comma-separated")
    who.add_argument(
        "--table", type=Path, metavar="F", help="table with agent_id (and message, conversation_id)"
    )
    p.add_argument(
        "--message", metavar="TEXT", help=f"run message (default {ENGINE_IDEAS_DEFAULT_MESSAGE!r})"
    )
    p.add_argument("--refine", metavar="TEXT", help="refine the ideas of --conversation with TEXT")
    p.add_argument(
        "--conversation", action="append", metavar="IDS", help="conversation id(s) to continue"
    )
    p.add_argument(
        "--remember", metavar="TEXT", help="set a lasting preference first ('remember: TEXT')"
    )
    p.add_argument("--no-ideas", action="store_true", help="only --remember; start no idea run")
    p.add_argument("--approve", action="store_true", help="approve runs that ask for approval")
    p.add_argument(
        "--approve-run", action="append", metavar="IDS", help="approve these waiting run ids"
    )
    p.add_argument(
        "--template-map",
        action="append",
        metavar="TYPE=SLUG",
        help="override the video type → template mapping (e.g. montage=ig-reel-story)",
    )
    p.add_argument("--template", metavar="SLUG", help="one template for every idea")
    p.add_argument(
        "--publish-at",
        metavar="ISO",
        help="add a publish_at column (ISO 8601 with timezone) so `run` schedules posts",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="dir, or ideas .parquet/.csv path (default outputs/ideas/)",
    )
    _add_wait_args(p)
    _add_target_args(p)
    p.set_defaults(func=cmd_ideas)

    p = subparsers.add_parser(
        "research",
        help="standalone research for one or more agents and topics",
        description="POST /v1/research per agent and topic; wait; write findings and summary.",
    )
    p.add_argument(
        "--topic", action="append", required=True, metavar="TEXT", help="topic (repeatable)"
    )
    p.add_argument(
        "--depth",
        choices=("quick", "default", "deep"),
        default="default",
        help="how far the research goes (default: GEN's default depth)",
    )
    p.add_argument("--agents", action="append", metavar="IDS", help="agent ids, comma-separated")
    p.add_argument("--out", type=Path, metavar="DIR", help="output dir (default outputs/research/)")
    _add_wait_args(p)
    _add_target_args(p)
    p.set_defaults(func=cmd_research)

    p = subparsers.add_parser(
        "train",
        help="train_social scraping jobs in bulk from a table of sources",
        description="One train_social user job per row: agent_id, platform, type, value, days, "
        "max_results, monitoring. Rows are checked against the reference before sending.",
    )
    p.add_argument("table", type=Path, help="sources table (.csv or .parquet)")
    p.add_argument("--agent", metavar="ID", help="agent id for rows without one")
    p.add_argument("--no-wait", action="store_true", help="submit the jobs; do not wait")
    p.add_argument("--out", type=Path, metavar="DIR", help="result dir (default outputs/<table>/)")
    _add_wait_args(p)
    _add_target_args(p)
    p.set_defaults(func=cmd_train)
