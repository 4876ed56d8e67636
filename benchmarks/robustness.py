"""Robustness matrix: ``genbatch run`` told nothing vs told the truth, per simulator profile.

For each named sim profile (``genbatch.sim.profile``: ``today``, ``limit-60``,
``queue-50``, ``fast-models``, ``slow-render``, ``timestamps``; ``--profiles``
to choose), ``--rows`` rows of ``tiktok-vo-broll`` through
``genbatch.bench.run.run_bench``, each run against a fresh ``genbatch sim``
process serving the profile:

* **untold**: no ``--rate`` (genbatch discovers the limit, if any);
* **told**: ``--rate`` = the profile's limit, or — for a profile with no
  limit — genbatch's documented ceiling
  (``genbatch.engine.limits.ENGINE_RATE_CEILING``).

Neither is told the time scale: only the simulator gets ``--time-scale``.
Told and untold alternate (the first of each pair alternates too),
``--runs`` pairs per profile.  Per profile: median makespan untold and told,
the median per-pair ratio untold / told (target <= 1.25), polls per
generation (target <= 3) and the share of API requests answered 429
(target <= 1 %), both for the untold run, which the targets are about (the
told run's are in ``--json``).  Prints a markdown table; ``--json`` for
machine output.

    .venv/bin/python benchmarks/robustness.py [--rows 300] [--time-scale 0.02] [--runs 1] \\
        [--profiles today,limit-60,...] [--keep DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from genbatch.bench.analysis import BenchError
from genbatch.bench.run import ENGINE_BENCH_CREDITS, BenchOptions, run_bench
from genbatch.engine.limits import ENGINE_RATE_CEILING
from genbatch.sim.config import SimConfig
from genbatch.sim.profile import ProfileError, profile_names

TEMPLATE: Final = "tiktok-vo-broll"
PROFILES: Final = ("today", "limit-60", "queue-50", "fast-models", "slow-render", "timestamps")
#: Issue 12's targets for the untold run.
TARGET_RATIO: Final = 1.25
TARGET_POLLS: Final = 3.0
TARGET_429: Final = 0.01


def sim_for(profile: str, *, time_scale: float, seed: int) -> SimConfig:
    """The simulator a profile describes, at our time scale, with credits that never run out."""
    try:
        return SimConfig.from_profile(
            profile, time_scale=time_scale, seed=seed, credits=ENGINE_BENCH_CREDITS
        )
    except (ProfileError, ValueError) as exc:
        raise SystemExit(f"sim profile {profile}: {exc}") from None


def told_rate(spec: SimConfig) -> float:
    """The truth to tell: the profile's limit, or genbatch's documented ceiling without one."""
    return float(spec.rate) if spec.rate is not None else float(ENGINE_RATE_CEILING)


def one_run(
    spec: SimConfig, *, rows: int, rate: float | None, keep: Path | None, label: str
) -> dict[str, Any]:
    """One ``genbatch run`` bench (``rate`` None: untold) against a fresh simulator."""
    work = Path(tempfile.mkdtemp(prefix=f"genbatch-robust-{label}-", dir=keep))
    t0 = time.monotonic()
    try:
        opts = BenchOptions(
            rows=rows, sim=spec, template=TEMPLATE, out_dir=work, told=False, client_rate=rate
        )
        report = run_bench(opts).to_json()
    except BenchError as exc:
        return {"error": str(exc)[:500], "wall_s": round(time.monotonic() - t0, 3)}
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    api = int(report["requests"]["api"])
    limited = int(report["rate_limited"]["ledger"])
    lb = report["lower_bound"]
    return {
        "told": report["options"].get("client_rate"),
        "completed": int(report["rows"].get("completed", 0)),
        "failed": int(report["rows"].get("failed", 0)),
        "makespan_s": float(report["makespan_s"]),
        "lower_bound_s": lb.get("bound_s"),
        "lower_bound_which": lb.get("which"),
        "api_requests": api,
        "rate_limited": limited,
        "share_429": round(limited / api, 5) if api else 0.0,
        "polls_per_generation": float(report["polls"]["per_generation"]),
        "detection_p50_fraction": (report.get("detection_delay") or {}).get("p50_fraction"),
        "cpu_us_per_request": report["client"]["cpu_us_per_request"],
        "rate": report.get("rate"),  # what genbatch settled on (final, source, ceiling)
        "out_dir": report["out_dir"] if keep is not None else None,
    }


def median(values: list[Any]) -> float | None:
    got = [float(v) for v in values if v is not None]
    return round(statistics.median(got), 4) if got else None


def profile_row(profile: str, spec: SimConfig, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """A profile's medians over its told/untold pairs, and the targets met (None: unknown)."""
    ok = [p for p in pairs if "error" not in p["untold"] and "error" not in p["told"]]
    untold = [p["untold"] for p in pairs if "error" not in p["untold"]]
    told = [p["told"] for p in pairs if "error" not in p["told"]]
    ratio = median([p["untold"]["makespan_s"] / p["told"]["makespan_s"] for p in ok])
    polls = median([r["polls_per_generation"] for r in untold])
    share = median([r["share_429"] for r in untold])
    complete = all(
        "error" not in p[side] and p[side]["completed"] == p["rows"]
        for p in pairs
        for side in ("untold", "told")
    )
    return {
        "profile": profile,
        "sim": {
            "rate": spec.rate,
            "burst": spec.burst,
            "job_cap": spec.job_cap,
            "rate_headers": spec.rate_headers,
            "timestamps": spec.timestamps,
            "latency": {k: list(v) for k, v in spec.latency},
            "time_scale": spec.time_scale,
        },
        "told_rate": told_rate(spec),
        "makespan_untold_s": median([r["makespan_s"] for r in untold]),
        "makespan_told_s": median([r["makespan_s"] for r in told]),
        "ratio_untold_over_told": ratio,
        "polls_per_generation_untold": polls,
        "polls_per_generation_told": median([r["polls_per_generation"] for r in told]),
        "share_429_untold": share,
        "share_429_told": median([r["share_429"] for r in told]),
        "lower_bound_s": median([r["lower_bound_s"] for r in untold + told]),
        "untold_rates": [(r.get("rate") or {}).get("text") for r in untold],
        "all_rows_completed": complete,
        "targets": {
            "ratio": None if ratio is None else ratio <= TARGET_RATIO,
            "polls": None if polls is None else polls <= TARGET_POLLS,
            "share_429": None if share is None else share <= TARGET_429,
        },
        "errors": [p[s]["error"] for p in pairs for s in ("untold", "told") if "error" in p[s]],
        "pairs": pairs,
    }


def fmt(value: Any, pattern: str, met: bool | None = None) -> str:
    if value is None:
        return "–"
    text = pattern.format(value)
    return text if met is None or met else f"**{text}** ✗"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"{result['rows']} rows of {TEMPLATE} per run, simulator time scale "
        f"{result['time_scale']:g} (genbatch is not told it), {result['runs']} told/untold "
        f"pair(s) per profile, fresh simulator each run; told = the profile's limit, or "
        f"{ENGINE_RATE_CEILING:g}/s (genbatch's ceiling) without one; {result['date']}, "
        f"`nproc` {result['nproc']}, Python {result['python']}.",
        "",
        "| profile | sim limit | makespan untold (s) | makespan told (s) | untold / told "
        f"(≤ {TARGET_RATIO:g}) | polls per generation (≤ {TARGET_POLLS:g}) | 429 share "
        f"(≤ {TARGET_429:.0%}) | untold's rate at the end | rows |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["profiles"]:
        sim, t = row["sim"], row["targets"]
        limit = f"{sim['rate']:g}/s" if sim["rate"] else "none"
        if sim["job_cap"]:
            limit += f", {sim['job_cap']} jobs"
        rows = "all" if row["all_rows_completed"] else "**missing** ✗"
        if row["errors"]:
            rows += f" ({len(row['errors'])} run(s) failed)"
        lines.append(
            f"| `{row['profile']}` | {limit} | {fmt(row['makespan_untold_s'], '{:.2f}')} | "
            f"{fmt(row['makespan_told_s'], '{:.2f}')} | "
            f"{fmt(row['ratio_untold_over_told'], '{:.2f}×', t['ratio'])} | "
            f"{fmt(row['polls_per_generation_untold'], '{:.2f}', t['polls'])} | "
            f"{fmt(row['share_429_untold'], '{:.2%}', t['share_429'])} | "
            f"{', '.join(str(x) for x in row['untold_rates']) or '–'} | {rows} |"
        )
    lines += [
        "",
        "Polls per generation and 429 share are the untold run's (medians); ✗ marks a "
        "figure over its target.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--time-scale", type=float, default=0.02)
    parser.add_argument("--runs", type=int, default=1, help="told/untold pairs per profile")
    parser.add_argument(
        "--profiles",
        default=",".join(PROFILES),
        help=f"comma-separated sim profiles (named: {', '.join(profile_names())}) or TOML files",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="keep genbatch's out dirs here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    specs = {p: sim_for(p, time_scale=args.time_scale, seed=args.seed) for p in profiles}
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    rows_out: list[dict[str, Any]] = []
    for profile, spec in specs.items():
        pairs: list[dict[str, Any]] = []
        for i in range(args.runs):
            order = ("untold", "told") if i % 2 == 0 else ("told", "untold")
            pair: dict[str, Any] = {"first": order[0], "rows": args.rows}
            for side in order:
                rate = None if side == "untold" else told_rate(spec)
                print(f"{profile} {i + 1}/{args.runs}: {side} ...", file=sys.stderr, flush=True)
                got = one_run(
                    spec, rows=args.rows, rate=rate, keep=args.keep, label=f"{profile}-{side}"
                )
                pair[side] = got
                said = got.get("error") or f"{got['makespan_s']:.2f} s"
                print(f"  {side}: {said}", file=sys.stderr, flush=True)
            pairs.append(pair)
        rows_out.append(profile_row(profile, spec, pairs))
    result: dict[str, Any] = {
        "rows": args.rows,
        "time_scale": args.time_scale,
        "runs": args.runs,
        "rate_ceiling": ENGINE_RATE_CEILING,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "profiles": rows_out,
    }
    print(json.dumps(result, indent=2) if args.json else markdown(result))
    ok = all(r["all_rows_completed"] for r in rows_out)
    if not ok:
        print("NOT every run completed every row", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
