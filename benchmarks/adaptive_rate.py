"""The adaptive rate gate against a server limit genbatch is not told.

The simulator runs as its own process with a 15 req/s token bucket (burst 15,
its Retry-After in whole seconds as a real server's); ``genbatch run`` of a
40-row ``tiktok-vo-broll`` table runs once told nothing (``--rates none``:
the gate must find the limit), once with ``--rate 200`` (a ceiling far
above it) and once with ``--rate 15`` (the limit is known).  From the
simulator's ledger: API requests by status, the 429s, and the achieved rate
— API requests the server accepted (not 429) per second of the run's wall
time — against the 15 req/s limit.  Median of ``--runs``.

    .venv/bin/python benchmarks/adaptive_rate.py [--rows 40] [--limit 15]
        [--rates none,200,15] [--runs 3] [--time-scale 0.01]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from genbatch.sim.config import SimConfig
from genbatch.sim.launch import SimProcess

KEY = "bench-adaptive-key-0123456789"
AGENT = "1000"


def write_table(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["row_id", "hook", "script"])
        for i in range(rows):
            w.writerow([f"r{i:03d}", f"Hook {i}: cold brew in 60s", f"Script {i}. Steep, strain."])


def one_run(args: argparse.Namespace, rate: float | None) -> dict[str, Any]:
    spec = SimConfig(
        api_keys=(KEY,), rate=args.limit, burst=args.burst, time_scale=args.time_scale,
        credits=1_000_000, seed=1,
    )  # fmt: skip
    with (
        SimProcess(spec, stop_timeout=30) as sim,
        tempfile.TemporaryDirectory(prefix="genbatch-adaptive-") as tmp,
    ):
        table = Path(tmp) / "ideas.csv"
        write_table(table, args.rows)
        cmd = [
            sys.executable, "-m", "genbatch", "run", str(table), "--template", args.template,
            "--base-url", sim.api_url, "--agent-url", sim.agent_url,
            "--agent", AGENT, "--out", str(Path(tmp) / "out"),
            "--json",
        ]  # fmt: skip
        if rate is not None:
            cmd += ["--rate", f"{rate:g}"]
        env = dict(os.environ, GEN_API_KEY=KEY)
        started = time.monotonic()
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
        if run.returncode != 0:
            print(run.stdout[-2000:], run.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f"genbatch run exited {run.returncode}")
        summary = json.loads(run.stdout)
        book = sim.ledger(timeout=60)
    by_route = book["requests"]["by_route"]
    api = sum(n for r, n in by_route.items() if r.split(" ", 1)[1].startswith("/v1/"))
    limited = book["requests"]["by_status"].get("429", 0)
    return {
        "rate_flag": rate,
        "seconds": round(seconds, 2),
        "api_requests": api,
        "429": limited,
        "achieved_rps": round((api - limited) / seconds, 2),
        "of_limit": round((api - limited) / seconds / args.limit, 3),
        "summary": {k: v for k, v in summary.items() if not isinstance(v, dict | list)},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=40)
    ap.add_argument("--limit", type=float, default=15.0, help="the simulator's rate limit")
    ap.add_argument("--burst", type=int, default=15, help="the simulator's bucket size")
    ap.add_argument(
        "--rates", default="none,200,15", help="genbatch --rate values to compare (none: untold)"
    )
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--template", default="tiktok-vo-broll")
    ap.add_argument("--time-scale", type=float, default=0.01)
    args = ap.parse_args()
    out: dict[str, Any] = {}
    for rate in (None if r == "none" else float(r) for r in args.rates.split(",")):
        runs = [one_run(args, rate) for _ in range(args.runs)]
        for r in runs:
            print(json.dumps(r), file=sys.stderr)
        med = {
            k: statistics.median(r[k] for r in runs)
            for k in ("seconds", "api_requests", "429", "achieved_rps", "of_limit")
        }
        out["untold" if rate is None else f"--rate {rate:g}"] = {"median": med, "runs": runs}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
