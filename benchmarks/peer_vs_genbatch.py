"""Head-to-head: the competent asyncio peer (told the limit) vs ``genbatch run`` (told nothing).

Alternates ``--runs`` times (default 3; the first of each pair alternates
too): ``benchmarks/peer_async.py``'s peer, told ``--rate``, and ``genbatch
run`` through ``genbatch.bench.run.run_bench`` without ``--rate`` — each
against a fresh ``genbatch sim`` process serving the same config — on
``--rows`` rows of ``tiktok-vo-broll``.  Per run: both makespans and their
ratio (peer / genbatch, within the pair); medians over the runs of
makespan, the rate-limit lower bound (genbatch's report: required requests
less the burst, over the limit) and makespan over it, API requests, 429s,
polls per generation, detection delay, CPU (seconds in the run and µs per
request: the peer's around its run, genbatch's less its interpreter start)
and peak RSS (each side's own ``VmHWM``: the peer reports its own, and a
watcher samples ``genbatch run``'s; ``wait4``'s ``ru_maxrss`` is shown too,
but Linux floors it at the harness's peak when it spawned the child).
Prints a markdown table ready for RESULTS.md; ``--json`` for machine output.

    .venv/bin/python benchmarks/peer_vs_genbatch.py --rows 1000 --rate 500 --burst 20 \\
        --time-scale 0.02 [--runs 3] [--profile NAME] [--poll-profile reference|sdk] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peer_async import add_sim_args, poll_seconds, run_peer, spec_and_told

if TYPE_CHECKING:
    from genbatch.bench.run import BenchOptions
    from genbatch.sim.config import SimConfig


def bench_options(
    *, rows: int, spec: SimConfig, rate: float | None, out_dir: Path, template: str
) -> BenchOptions:
    """``genbatch run``'s bench options; ``rate=None``: told nothing (no ``--rate``)."""
    from genbatch.bench.run import BenchOptions

    if "told" not in {f.name for f in dataclasses.fields(BenchOptions)}:
        raise SystemExit("BenchOptions has no `told` field: this genbatch cannot run untold")
    return BenchOptions(
        rows=rows, sim=spec, out_dir=out_dir, template=template, told=False, client_rate=rate
    )


class ChildPeak:
    """The peak RSS (``VmHWM``) of our ``genbatch run`` child, sampled every ``period`` s.

    ``os.wait4``'s ``ru_maxrss`` (what ``run_bench`` reports) is at least the
    *harness's* peak when it spawned the child (Linux keeps the parent's
    high-water mark across ``execve``), so it cannot be compared with the
    peer's own ``VmHWM``.  This reads the child's own ``VmHWM`` while it runs
    (monotonic, so the last sample is within ``period`` of the true peak).
    """

    def __init__(self, period: float = 0.05) -> None:
        self.period = period
        self.peak_kib: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ChildPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(self.period):
            for pid in _children():
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    if b"genbatch" not in cmd or b"run" not in cmd:
                        continue
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            kib = int(line.split()[1])
                            self.peak_kib = max(self.peak_kib or 0, kib)
                except (OSError, ValueError, IndexError):
                    continue  # it exited between the listing and the read


def _children() -> list[int]:
    pids: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return pids


def run_genbatch(
    spec: SimConfig, *, rows: int, rate: float | None, template: str, keep: Path | None
) -> dict[str, Any]:
    """One ``genbatch run`` bench against a fresh simulator; the figures we compare."""
    from genbatch.bench.run import run_bench

    work = Path(tempfile.mkdtemp(prefix="genbatch-h2h-", dir=keep))
    try:
        opts = bench_options(rows=rows, spec=spec, rate=rate, out_dir=work, template=template)
        harness_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with ChildPeak() as peak:
            report = run_bench(opts).to_json()
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    lb, rq, cl = report["lower_bound"], report["requests"], report["client"]
    det = report.get("detection_delay") or {}
    api = int(rq["api"])
    limited = int(report["rate_limited"]["ledger"])
    return {
        "told": report["options"].get("client_rate"),
        "completed": int(report["rows"].get("completed", 0)),
        "failed": int(report["rows"].get("failed", 0)),
        "makespan_s": float(report["makespan_s"]),
        "lower_bound_s": lb.get("bound_s"),
        "lower_bound_which": lb.get("which"),
        "rate_bound_s": lb.get("rate_bound_s"),
        "api_requests": api,
        "rate_limited": limited,
        "share_429": round(limited / api, 5) if api else 0.0,
        "polls_per_generation": report["polls"]["per_generation"],
        "detection_p50_fraction": det.get("p50_fraction"),
        "detection_p50_s": det.get("p50_s"),
        "cpu_s": round(float(cl["cpu_s"]) - float(cl["startup_cpu_s"]), 3),
        "cpu_total_s": cl["cpu_s"],
        "cpu_us_per_request": cl["cpu_us_per_request"],
        "peak_rss_mb": round(peak.peak_kib / 1024, 1) if peak.peak_kib else None,
        "peak_rss_wait4_mb": cl["peak_rss_mb"],
        "harness_rss_mb": round(harness_rss / 1024, 1),
        "rate": report.get("rate"),
        "out_dir": report["out_dir"] if keep is not None else None,
    }


def peer_figures(r: dict[str, Any]) -> dict[str, Any]:
    det = r["detection_delay"] or {}
    return {
        "told": r["told_rate"],
        "completed": r["verified_mp4"],
        "failed": r["rows"] - r["verified_mp4"],
        "makespan_s": r["makespan_s"],
        "lower_bound_s": r["lower_bound"]["bound_s"],
        "lower_bound_which": r["lower_bound"]["which"],
        "rate_bound_s": r["lower_bound"]["rate_bound_s"],
        "api_requests": r["api_requests"],
        "rate_limited": r["rate_limited"],
        "share_429": r["share_429"],
        "polls_per_generation": r["polls_per_generation"],
        "detection_p50_fraction": det.get("p50_fraction"),
        "detection_p50_s": det.get("p50_s"),
        "cpu_s": r["cpu_s"],
        "cpu_total_s": r["cpu_total_s"],
        "cpu_us_per_request": r["cpu_us_per_request"],
        "peak_rss_mb": r["peak_rss_mb"],
        "peak_rss_wait4_mb": r["peak_rss_wait4_mb"],
        "harness_rss_mb": r["harness_rss_mb"],
    }


def median(values: list[Any]) -> float | None:
    got = [float(v) for v in values if v is not None]
    return round(statistics.median(got), 4) if got else None


#: (key, label, format) of the summary table's rows.
SUMMARY = (
    ("makespan_s", "makespan (s)", "{:.2f}"),
    ("lower_bound_s", "lower bound, own run (s)", "{:.2f}"),
    ("over_bound", "makespan / own lower bound", "{:.2f}"),
    ("api_requests", "API requests", "{:,.0f}"),
    ("rate_limited", "429s", "{:,.0f}"),
    ("share_429", "429 share", "{:.2%}"),
    ("polls_per_generation", "polls per generation", "{:.2f}"),
    ("detection_p50_fraction", "detection delay p50 (of the job)", "{:.1%}"),
    ("cpu_s", "CPU in the run (s)", "{:.2f}"),
    ("cpu_us_per_request", "CPU per request (µs)", "{:.0f}"),
    ("peak_rss_mb", "peak RSS, own VmHWM (MB)", "{:.1f}"),
    ("peak_rss_wait4_mb", "peak RSS, wait4 ru_maxrss (MB)", "{:.1f}"),
    ("completed", "rows completed", "{:.0f}"),
)


def summarize(args: argparse.Namespace, runs: list[dict[str, Any]]) -> dict[str, Any]:
    bound = median([r["lower_bound_s"] for r in runs])
    out: dict[str, Any] = {"lower_bound_s": bound, "rate_bound_s": median(
        [r["genbatch"]["rate_bound_s"] for r in runs]
    )}  # fmt: skip
    for side in ("peer", "genbatch"):
        figures = {key: median([r[side].get(key) for r in runs]) for key, _, _ in SUMMARY}
        figures["over_bound"] = median(  # each side over its own run's bound
            [r[side]["makespan_s"] / r[side]["lower_bound_s"] for r in runs
             if r[side]["lower_bound_s"]]
        )  # fmt: skip
        figures["told"] = runs[0][side]["told"]
        out[side] = figures
    out["ratio_peer_over_genbatch"] = median([r["ratio"] for r in runs])
    out["ratios"] = [r["ratio"] for r in runs]
    return out


def fmt(value: Any, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def markdown(args: argparse.Namespace, result: dict[str, Any]) -> str:
    s, runs = result["summary"], result["runs"]
    peer_told = f"told {s['peer']['told']:g}/s"
    gb = s["genbatch"]["told"]
    gb_told = "untold" if gb is None else f"told {gb:g}/s"
    lines = [
        f"{args.rows} rows of tiktok-vo-broll, sim "
        + (f"profile `{args.profile}`, " if args.profile else "")
        + (
            f"limit {result['sim']['rate']:g}/s burst {result['sim']['burst']}"
            if result["sim"]["rate"]
            else "no rate limit"
        )
        + ", time scale "
        f"{args.time_scale:g}; peer polls every {result['poll_s']:g} s "
        f"({args.poll_profile}); {len(runs)} alternating run pair(s), fresh simulator each, "
        f"{result['date']}, `nproc` {result['nproc']}, Python {result['python']}.",
        "",
        "| run | first | peer makespan (s) | genbatch makespan (s) | peer / genbatch |",
        "|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs, 1):
        lines.append(
            f"| {i} | {r['first']} | {r['peer']['makespan_s']:.2f} | "
            f"{r['genbatch']['makespan_s']:.2f} | {r['ratio']:.2f}× |"
        )
    lines += [
        "",
        f"Medians (genbatch's lower bound {fmt(s['lower_bound_s'], '{:.2f}')} s, its "
        f"rate-limit part {fmt(s['rate_bound_s'], '{:.2f}')} s; a side's lower bound is the "
        "longer of the rate-limit bound and its slowest row's chain of jobs):",
        "",
        f"| | peer ({peer_told}) | genbatch ({gb_told}) |",
        "|---|---|---|",
    ]
    for key, label, pattern in SUMMARY:
        lines.append(
            f"| {label} | {fmt(s['peer'].get(key), pattern)} | "
            f"{fmt(s['genbatch'].get(key), pattern)} |"
        )
    lines.append(
        f"| **makespan peer / genbatch** (median of per-run ratios) | "
        f"**{fmt(s['ratio_peer_over_genbatch'], '{:.2f}')}×** | |"
    )
    rates = [(r["genbatch"].get("rate") or {}).get("text") for r in runs]
    lines += ["", "genbatch's rate at the end of each run: " + ", ".join(map(str, rates)) + "."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_sim_args(parser, rows=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--template", default="tiktok-vo-broll")
    parser.add_argument("--keep", type=Path, default=None, help="keep genbatch's out dirs here")
    args = parser.parse_args()
    if args.template != "tiktok-vo-broll":
        raise SystemExit("the peer only knows tiktok-vo-broll")
    spec, told = spec_and_told(args)
    poll = poll_seconds(args.poll, args.poll_profile, args.time_scale)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    for i in range(args.runs):
        first = "peer" if i % 2 == 0 else "genbatch"
        got: dict[str, dict[str, Any]] = {}
        for side in ("peer", "genbatch") if first == "peer" else ("genbatch", "peer"):
            print(f"run {i + 1}/{args.runs}: {side} ...", file=sys.stderr, flush=True)
            if side == "peer":
                got["peer"] = peer_figures(
                    run_peer(
                        spec,
                        rows=args.rows,
                        rate=told,
                        poll=poll,
                        rows_in_flight=args.rows_in_flight,
                        profile=args.profile,
                    )
                )
            else:
                got["genbatch"] = run_genbatch(
                    spec, rows=args.rows, rate=None, template=args.template, keep=args.keep
                )
            print(f"  {side}: {got[side]['makespan_s']:.2f} s", file=sys.stderr, flush=True)
        gb = got["genbatch"]
        runs.append(
            {
                "first": first,
                "peer": got["peer"],
                "genbatch": gb,
                "ratio": round(got["peer"]["makespan_s"] / gb["makespan_s"], 4),
                "lower_bound_s": gb["lower_bound_s"],
            }
        )
    result: dict[str, Any] = {
        "rows": args.rows,
        "profile": args.profile,
        "sim": {"rate": spec.rate, "burst": spec.burst, "time_scale": spec.time_scale},
        "poll_s": poll,
        "poll_profile": args.poll_profile,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "runs": runs,
    }
    result["summary"] = summarize(args, runs)
    if any(r["genbatch"]["told"] is not None for r in runs):
        print("warning: genbatch was told a --rate; this is not the untold comparison",
              file=sys.stderr)  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(markdown(args, result))
    ok = all(r[side]["completed"] == args.rows for r in runs for side in ("peer", "genbatch"))
    if not ok:
        print("NOT every row completed on both sides", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
