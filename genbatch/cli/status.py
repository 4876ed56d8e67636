"""``genbatch status OUT`` — a run's rows by state, live or interrupted."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from genbatch.cli.text import count
from genbatch.engine.journal import Journal, live_holder

__all__ = ["register"]


def cmd_status(args: argparse.Namespace) -> int:
    from genbatch.distributed.merge import sharded_status  # polars: not for --help

    sharded = sharded_status(Path(args.dir))
    if sharded is not None:  # genbatch run --ray: one journal per shard
        if args.json:
            data: dict[str, Any] = {
                "sharded": True,
                "state": "live" if sharded.live else "idle",
                "pid": sharded.live,
                "counts": sharded.counts,
                "shards": [
                    {"shard": s.index, "key": s.key, "counts": s.counts, "live": s.live}
                    for s in sharded.shards
                ],
            }
            print(json.dumps(data, indent=2))
        else:
            print("\n".join(sharded.lines()))
        return 0 if sharded.counts.get("completed", 0) == sum(sharded.counts.values()) else 1
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


def register(subparsers: Any) -> None:
    """Add ``status`` to the CLI."""
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
