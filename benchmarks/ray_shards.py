"""One process against shards on Ray, under one key's rate limit and under two keys'.

The simulator runs as its own process, 100 requests/s per key (burst 20, fast
time).  The same 400-row ``tiktok-vo-broll`` table runs:

1. in one process (``genbatch run``'s engine, told nothing: it discovers the limit);
2. in 4 shards on a private loopback Ray (``genbatch run --ray --shards 4``),
   one key: the shards share that key's limit, so the makespan should match
   the single process (target: within 10 %);
3. in 4 shards with half the rows naming a second key (``api_key_env``): two
   limits of 100/s, so the makespan should be about half (target: <= 0.55x
   the one-key sharded run).

Makespan is each run's own wall time less Ray's start-up, which is reported
apart: Ray is started once, before the runs; each sharded run then starts its
keys' budget actors and loads the engine into its shards' workers
(``ShardedSummary.ray_seconds``, the ``start`` figure).  The one process runs in
this already-loaded interpreter.  From the simulator's ledger: API requests
and 429s.  Medians of ``--runs``, and of the per-run ratios (runs alternate).

    .venv/bin/python benchmarks/ray_shards.py [--rows 400] [--limit 100] [--runs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from genbatch.distributed.cluster import connect
from genbatch.distributed.driver import ShardedRun, run_sharded
from genbatch.engine.runner import RunOptions, execute
from genbatch.sim.config import SimConfig
from genbatch.sim.launch import SimProcess

KEY_A = "bench-ray-key-a-0123456789"
KEY_B = "bench-ray-key-b-0123456789"
KEY_B_ENV = "GB_BENCH_RAY_KEY_B"
AGENT = "1000"
TEMPLATE = "tiktok-vo-broll"


def write_table(path: Path, rows: int, two_keys: bool) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["row_id", "hook", "script", "api_key_env"])
        for i in range(rows):
            key = KEY_B_ENV if two_keys and i % 2 else ""
            w.writerow([f"r{i:04d}", f"Hook {i}: cold brew in 60s", f"Script {i}.", key])
    return path


def ledger_numbers(sim: SimProcess) -> dict[str, Any]:
    led = sim.ledger()
    status = led["requests"]["by_status"]
    return {"requests": sum(status.values()), "429s": status.get("429", 0)}


def one_process(sim: SimProcess, table: Path, out: Path) -> dict[str, Any]:
    opts = RunOptions(
        table=table, out_dir=out, api_key=KEY_A, api_url=sim.api_url,
        agent_url=sim.agent_url, agent=AGENT, template=TEMPLATE, progress=False,
    )  # fmt: skip
    started = time.monotonic()
    summary = asyncio.run(execute(opts))
    seconds = time.monotonic() - started
    assert summary.counts["completed"] == summary.total, summary.to_json()
    return {"makespan": seconds, "rate": summary.rate.get("text"), **ledger_numbers(sim)}


def sharded(sim: SimProcess, table: Path, out: Path, shards: int) -> dict[str, Any]:
    run = ShardedRun(
        table=table, out_dir=out, api_key=KEY_A, api_url=sim.api_url,
        agent_url=sim.agent_url, agent=AGENT, template=TEMPLATE, shards=shards,
    )  # fmt: skip
    started = time.monotonic()
    result = asyncio.run(run_sharded(run))
    seconds = time.monotonic() - started
    summary = result.summary
    assert summary.counts["completed"] == summary.total, result.to_json()
    return {
        "makespan": seconds - result.ray_seconds,
        "start": round(result.ray_seconds, 2),
        "rate": summary.rate.get("text"),
        "shard_seconds": [round((s.result or {}).get("seconds", 0.0), 2) for s in result.shards],
        **ledger_numbers(sim),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=400)
    ap.add_argument("--limit", type=float, default=100.0, help="requests/s per key")
    ap.add_argument("--burst", type=int, default=20)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--time-scale", type=float, default=0.01)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    os.environ[KEY_B_ENV] = KEY_B
    spec = SimConfig(
        api_keys=(KEY_A, KEY_B), rate=args.limit, burst=args.burst,
        time_scale=args.time_scale, credits=1e12, seed=1,
    )  # fmt: skip
    runs: dict[str, list[dict[str, Any]]] = {"one_process": [], "one_key": [], "two_keys": []}
    with (
        SimProcess(spec, stop_timeout=30) as sim,
        tempfile.TemporaryDirectory(prefix="genbatch-ray-bench-") as tmp,
    ):
        root = Path(tmp)
        one = write_table(root / "one.csv", args.rows, two_keys=False)
        two = write_table(root / "two.csv", args.rows, two_keys=True)
        started = time.monotonic()
        conn = connect(None, cpus=max(args.shards, os.cpu_count() or 1))
        ray_startup = time.monotonic() - started
        try:
            for n in range(args.runs):
                for name, fn in (
                    ("one_process", lambda out: one_process(sim, one, out)),
                    ("one_key", lambda out: sharded(sim, one, out, args.shards)),
                    ("two_keys", lambda out: sharded(sim, two, out, args.shards)),
                ):
                    sim.reset()
                    figures = fn(root / f"{name}-{n}")
                    runs[name].append(figures)
                    print(f"{name:12s} run {n + 1}: {json.dumps(figures)}", flush=True)
        finally:
            conn.close()

    def median(name: str) -> float:
        return statistics.median(r["makespan"] for r in runs[name])

    def ratios(a: str, b: str) -> list[float]:
        return [x["makespan"] / y["makespan"] for x, y in zip(runs[a], runs[b], strict=True)]

    report = {
        "rows": args.rows,
        "limit_per_key": args.limit,
        "shards": args.shards,
        "ray_startup_seconds": round(ray_startup, 2),
        "makespan_one_process": round(median("one_process"), 2),
        "makespan_one_key_sharded": round(median("one_key"), 2),
        "makespan_two_keys_sharded": round(median("two_keys"), 2),
        "ratio_one_key_vs_one_process": round(median("one_key") / median("one_process"), 3),
        "ratio_two_keys_vs_one_key": round(median("two_keys") / median("one_key"), 3),
        "start_seconds_sharded": [r["start"] for r in runs["one_key"] + runs["two_keys"]],
        "per_run_one_key_vs_one_process": [round(r, 3) for r in ratios("one_key", "one_process")],
        "per_run_two_keys_vs_one_key": [round(r, 3) for r in ratios("two_keys", "one_key")],
        "median_per_run_two_keys_vs_one_key": round(
            statistics.median(ratios("two_keys", "one_key")), 3
        ),
        "runs": runs,
    }
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
