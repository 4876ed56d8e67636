"""``genbatch run TABLE`` — every row of a table to a video, resumable.

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

``--videos-to URL`` streams each video (and thumbnail) to object storage
right after its download (:mod:`genbatch.engine.objectstore`); the store is
proved writable before anything is sent to GEN, so a wrong bucket or missing
credentials cost nothing (exit 2).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from genbatch._constants import CLIENT_ENV_API_KEY
from genbatch.cli import UsageError
from genbatch.cli.options import add_table_args
from genbatch.cli.shards import add_ray_args, run_sharded, wants_ray
from genbatch.cli.target import (
    ENGINE_DEFAULT_OUT_ROOT,
    Target,
    add_target_args,
    target,
)
from genbatch.cli.text import count
from genbatch.engine.limits import ENGINE_RATE_CEILING

if TYPE_CHECKING:  # loaded when a run starts, not for --help
    from rich.console import Console

    from genbatch.engine.objectstore import VideoStore
    from genbatch.engine.runner import RunOptions, RunSummary

__all__ = ["add_table_args", "print_summary", "register", "run_options", "run_report"]


# --------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------
def default_out(table: Path) -> Path:
    """``outputs/<table name>/``, unless another table's run is there (two
    ``ideas.csv`` in different folders): then ``outputs/<name>-<path hash>/``."""
    from genbatch.engine.journal import journal_table

    stem = table.stem or "run"
    base = Path(ENGINE_DEFAULT_OUT_ROOT) / stem
    owner = journal_table(base)
    resolved = table.resolve()
    if owner is None or owner == resolved:
        return base
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:8]
    return Path(ENGINE_DEFAULT_OUT_ROOT) / f"{stem}-{digest}"


def video_store(args: argparse.Namespace) -> VideoStore | None:
    """``--videos-to`` as a store (None: videos stay in OUT/videos/); a URL that
    cannot work, or the storage extra missing, is refused here."""
    if args.videos_to is None:
        if args.keep_local:
            raise UsageError("--keep-local goes with --videos-to (videos are local anyway)")
        return None
    from genbatch.engine.objectstore import VideoStore

    return VideoStore(args.videos_to, keep_local=args.keep_local)


async def _run(args: argparse.Namespace, store: VideoStore | None) -> RunSummary:
    from genbatch.engine.runner import execute

    if store is not None:
        await store.acheck()  # before any call to GEN: a bad bucket costs nothing
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
                videos_to=store,
            )
        )


def run_options(t: Target, **choices: Any) -> RunOptions:
    """The run the flags ask for, against the API ``t`` names."""
    from genbatch.engine.runner import RunOptions

    return RunOptions(
        api_key=t.api_key,
        api_url=t.api_url,
        agent_url=t.agent_url,
        agent=t.agent,
        rate=t.rate,
        **choices,
    )


def print_summary(
    summary: RunSummary, console: Console | None = None, store: VideoStore | None = None
) -> None:
    """The end-of-run table and where everything is (``store``: ``--videos-to``)."""
    from rich.console import Console
    from rich.table import Table as RichTable

    console = console or Console()
    table = RichTable(
        title=f"genbatch run {summary.run_id}" + (" (resumed)" if summary.resumed else "")
    )
    for name in ("rows", "ok", "failed", "skipped", "pending", "credits", "requests", "429s", "s"):
        table.add_column(name, justify="right")
    c = summary.counts
    table.add_row(
        f"{summary.total:,}",
        f"{c.get('completed', 0):,}",
        f"{c.get('failed', 0):,}",
        f"{c.get('skipped', 0):,}",
        f"{c.get('pending', 0):,}",
        f"{summary.credits:,.0f}" if summary.credits.is_integer() else f"{summary.credits:,.2f}",
        f"{summary.requests:,}",
        f"{summary.rate_limited:,}",
        f"{summary.seconds:,.1f}",
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
    if store is None:
        console.print(f"videos:  {out / 'videos'}", highlight=False)
    else:
        local = f" (local copies kept in {out / 'videos'})" if store.keep_local else ""
        console.print(f"videos:  {store.url}{local}", highlight=False)
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
    (("store_refused",), "check --videos-to and the storage credentials, then rerun"),
)


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


#: The largest run `genbatch run` writes report.html for by itself: the page
#: holds every row (at 100,000 rows it is ~40 MB, and building it takes ~1.5 GB
#: of memory, ten times what the run itself needs); past it,
#: `genbatch report OUT` writes it on request.
ENGINE_REPORT_AUTO_ROWS: Final = 20_000


def run_report(out_dir: Path, rows: int = 0) -> str | None:
    """OUT/report.html for the run just ended (``rows``: the run's size); a report
    that cannot be made is said on stderr and never changes the run's exit code."""
    if rows > ENGINE_REPORT_AUTO_ROWS:
        print(
            f"genbatch: report not written for {rows:,} rows (more than "
            f"{ENGINE_REPORT_AUTO_ROWS:,}); `genbatch report {out_dir}` writes it",
            file=sys.stderr,
        )
        return None
    from genbatch.report import ReportError, write_report

    try:
        return str(write_report(out_dir))
    except (ReportError, OSError) as exc:
        print(f"genbatch: report not written: {exc}", file=sys.stderr)
        return None


def cmd_run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 0:
        raise UsageError("--limit must be >= 0")
    if wants_ray(args):
        return run_sharded(args)
    store = video_store(args)
    summary = asyncio.run(_run(args, store))
    report = run_report(summary.out_dir, summary.total)
    if args.json:
        print(json.dumps({**summary.to_json(), "report": report}, indent=2))
    else:
        print_summary(summary, store=store)
        if report is not None:
            print(f"report:  {report}")
    if summary.aborted:
        print(f"genbatch: {summary.aborted}; check {CLIENT_ENV_API_KEY}", file=sys.stderr)
    return summary.exit_code


# --------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------
def register(subparsers: Any) -> None:
    """Add ``run`` to the CLI."""
    p = subparsers.add_parser(
        "run",
        help="turn every row of a table into a video (resumable)",
        description="Clone, fill, generate, render, download (and publish) one video per row. "
        "Rerunning the same command resumes; --fresh starts over.",
    )
    add_table_args(p)
    add_target_args(
        p,
        rate_help="a ceiling in requests/s per host, started at (default: discover the "
        f"server's limit, never above {ENGINE_RATE_CEILING:g}/s)",
        json_help="print a JSON summary on stdout",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="output dir (default outputs/<table>/)")
    p.add_argument(
        "--max-concurrency",
        type=int,
        metavar="N",
        help="rows in flight at once (default: sized from the measured rate and row time)",
    )
    p.add_argument(
        "--max-credits",
        type=float,
        metavar="C",
        help="never spend more than C credits (default: the workspace balance)",
    )
    p.add_argument("--fresh", action="store_true", help="start a new run instead of resuming")
    p.add_argument(
        "--videos-to",
        metavar="URL",
        help="put each video and thumbnail in object storage once downloaded: "
        "s3://bucket/prefix/ (credentials and AWS_ENDPOINT_URL from the environment) or "
        "another fsspec URL; needs pip install 'genbatch[storage]' "
        "(default: none, videos stay in OUT/videos/)",
    )
    p.add_argument(
        "--keep-local",
        action="store_true",
        help="with --videos-to: keep the local copy too (default: removed once the "
        "upload is verified)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress display")
    add_ray_args(p)
    p.set_defaults(func=cmd_run)
