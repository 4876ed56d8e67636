"""10,000 rows through ``genbatch run`` against the simulator as its own process.

Targets (issue 4), from one run:

* makespan / lower bound <= 1.2, where the lower bound is the requests a
  row needs at best (clone, fill, one POST and one poll per generation and
  render: 8 for ``tiktok-vo-broll``) times the rows, divided by the
  simulator's fixed rate limit — or the longest row, if that is larger;
* polls per generation <= 3 (``GET /v1/generations/:id`` in the simulator's
  ledger over the generations it created, renders included);
* peak RSS of the genbatch process <= 300 MB.

Both sides are subprocesses: ``python -m genbatch sim`` with ``--rate R``
(burst: 2 s worth, the ratio of its CLI defaults) and ``python -m genbatch
run ...`` told nothing (``--told`` passes ``--rate R``).  The makespan is
the wall time of the run process, start to exit; its peak RSS comes from
``getrusage(RUSAGE_CHILDREN)`` taken after it exits and before the
simulator does.  Afterwards the ledger is checked: every row completed,
credits reported = credits charged, no cell paid twice.

    .venv/bin/python benchmarks/engine_10k.py [--rows 10000] [--rate 400]
        [--burst-seconds 2] [--time-scale 0.01] [--max-concurrency 256] [--told] [--append-results]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genbatch.sim.config import SimConfig
from genbatch.sim.launch import SimProcess

KEY = "bench-engine-key-0123456789"
AGENT = "1000"
TEMPLATE = "tiktok-vo-broll"
#: Requests a tiktok-vo-broll row needs at best: clone, fill (one mass
#: update), 2 generations and a render, each one POST + one poll.
REQUESTS_PER_ROW = 1 + 1 + 2 * 3
#: The longest row at time scale 1: the slowest video (120 s; the speech runs
#: beside it) then the slowest render (55 s) — the latency profile's maxima.
LONGEST_ROW_SECONDS = 120.0 + 55.0
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_table(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["row_id", "hook", "script"])
        for i in range(rows):
            w.writerow(
                [
                    f"row-{i:05d}",
                    f"Idea {i}: the one coffee habit that changes everything",
                    f"Script {i}. Grind fresh, weigh your beans, and drink it within a month.",
                ]
            )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=400.0, help="the simulator's rate limit")
    ap.add_argument(
        "--burst-seconds",
        type=float,
        default=2.0,
        help="the simulator's bucket size in seconds of its rate (its CLI default: 2)",
    )
    ap.add_argument("--time-scale", type=float, default=0.01)
    ap.add_argument("--max-concurrency", type=int, default=None, help="rows in flight")
    ap.add_argument("--told", action="store_true", help="tell genbatch the limit (--rate)")
    ap.add_argument("--append-results", action="store_true", help="append to RESULTS.md")
    args = ap.parse_args()

    burst = max(1, int(args.rate * args.burst_seconds))
    spec = SimConfig(
        api_keys=(KEY,), rate=args.rate, burst=burst, time_scale=args.time_scale,
        credits=1_000_000_000, seed=1,
    )  # fmt: skip
    # RUSAGE_CHILDREN counts reaped children: the run, not the simulator (reaped after).
    with (
        SimProcess(spec, stop_timeout=30) as sim,
        tempfile.TemporaryDirectory(prefix="genbatch-bench-") as tmp,
    ):
        table = Path(tmp) / "ideas.csv"
        out = Path(tmp) / "out"
        write_table(table, args.rows)
        cmd = [
            sys.executable, "-m", "genbatch", "run", str(table), "--template", TEMPLATE,
            "--base-url", sim.api_url, "--agent-url", sim.agent_url,
            "--agent", AGENT, "--out", str(out),
            "--json",
        ]  # fmt: skip
        if args.told:
            cmd += ["--rate", f"{args.rate:g}"]
        if args.max_concurrency:
            cmd += ["--max-concurrency", str(args.max_concurrency)]
        env = dict(os.environ, GEN_API_KEY=KEY)
        started = time.monotonic()
        run = subprocess.run(cmd, env=env, capture_output=True, text=True)
        makespan = time.monotonic() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_rss_mb = usage.ru_maxrss / 1024
        cpu_s = usage.ru_utime + usage.ru_stime
        if run.returncode != 0:
            print(run.stdout[-3000:], run.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"genbatch run exited {run.returncode}")
        summary = json.loads(run.stdout)
        ledger = sim.ledger(timeout=300)
        with (out / "results.csv").open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))

    gens = ledger["generations"]
    by_route = ledger["requests"]["by_route"]
    polls = by_route.get("GET /v1/generations/{id}", 0)
    api_requests = sum(n for r, n in by_route.items() if r.split(" ", 1)[1].startswith("/v1/"))
    statuses = Counter(r["status"] for r in rows)
    credits_reported = sum(float(r["credits"] or 0) for r in rows)
    credits_charged = ledger["credits"]["charged"] - ledger["credits"]["refunded"]
    alive = Counter(g["cell_id"] for g in gens if g["status"] != "failed")
    required = REQUESTS_PER_ROW * args.rows
    bound = max(required / args.rate, LONGEST_ROW_SECONDS * args.time_scale)
    figures = {
        "rows": args.rows,
        "rate": args.rate,
        "burst": burst,
        "time_scale": args.time_scale,
        "makespan_s": round(makespan, 1),
        "lower_bound_s": round(bound, 1),
        "ratio": round(makespan / bound, 3),
        "api_requests": api_requests,
        "required_requests": required,
        "rate_limited_429": ledger["requests"]["by_status"].get("429", 0),
        "generations": len(gens),
        "polls": polls,
        "polls_per_generation": round(polls / len(gens), 3) if gens else None,
        "peak_rss_mb": round(peak_rss_mb, 1),
        "genbatch_cpu_s": round(cpu_s, 1),
        "completed": statuses.get("completed", 0),
        "credits_reported": credits_reported,
        "credits_charged": credits_charged,
        "cells_paid_twice": sum(1 for n in alive.values() if n > 1),
        "engine_polls_by_kind": summary.get("polls"),
    }
    print(json.dumps(figures, indent=2))
    ok = (
        figures["ratio"] <= 1.2
        and (figures["polls_per_generation"] or 99) <= 3
        and peak_rss_mb <= 300
        and figures["completed"] == args.rows
        and abs(credits_reported - credits_charged) < 1e-6
        and figures["cells_paid_twice"] == 0
    )
    if args.append_results:
        append_results(figures, " ".join(["benchmarks/engine_10k.py", *sys.argv[1:]]))
    print("PASS" if ok else "FAIL", file=sys.stderr)
    return 0 if ok else 1


def append_results(f: dict[str, Any], command: str) -> None:
    """Add one measured line to the Engine section of RESULTS.md (created once)."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    machine = (
        f"`nproc` {os.cpu_count()}, Python {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    line = (
        f"| {datetime.now(UTC):%Y-%m-%d} | {machine} | {f['rows']:,} | {f['rate']:g}/s "
        f"(burst {f['burst']}) | {f['time_scale']:g} | {f['makespan_s']} s | "
        f"{f['lower_bound_s']} s | **{f['ratio']:.2f}** | **{f['polls_per_generation']}** | "
        f"**{f['peak_rss_mb']} MB** | {f['completed']:,} | {f['rate_limited_429']} |\n"
    )
    if "## Engine" not in text:
        text = text.rstrip("\n") + "\n\n" + ENGINE_SECTION + TABLE_HEAD
        RESULTS.write_text(text, encoding="utf-8")
        text = RESULTS.read_text(encoding="utf-8")
    # Insert after the last line of our table, inside our section only.
    start = text.index("## Engine")
    nxt = text.find("\n## ", start + 1)
    end = len(text) if nxt == -1 else nxt + 1
    section = text[start:end].rstrip("\n").split("\n")
    last = max(i for i, ln in enumerate(section) if ln.startswith("|"))
    section.insert(last + 1, line.rstrip("\n"))
    body = "\n".join(section) + "\n"
    text = text[:start] + body + ("\n" + text[end:] if nxt != -1 else "")
    RESULTS.write_text(text, encoding="utf-8")
    print(f"appended to {RESULTS} ({command})", file=sys.stderr)


ENGINE_SECTION = """## Engine

Targets (issue 4): 10,000 rows against the simulator as its own process with
a fixed rate limit — makespan / lower bound <= 1.2 (lower bound: required
requests / rate limit, or the longest row if larger), polls per generation
<= 3, peak RSS of the genbatch process <= 300 MB.

Command (from the repo root):

```
.venv/bin/python benchmarks/engine_10k.py --append-results
```

The simulator's token bucket holds 2 s of its rate (`--burst 2R`, the ratio of
its own CLI defaults); at most 2R requests of head start over a 200 s bound.
`tiktok-vo-broll` rows (hook, script): clone, one mass update, speech +
video in parallel, render, download — 8 API requests per row at best, so
80,000 for 10,000 rows.  Both `genbatch sim` and `genbatch run` are
subprocesses; the makespan is the run process's wall time, start to exit;
peak RSS is its `ru_maxrss`.  The script also checks every row completed,
credits reported = credits charged, and no cell paid twice.

"""
TABLE_HEAD = (
    "| date (UTC) | machine | rows | sim rate limit | time scale | makespan | lower bound "
    "| ratio | polls / generation | peak RSS | completed | 429s |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)


if __name__ == "__main__":
    raise SystemExit(main())
