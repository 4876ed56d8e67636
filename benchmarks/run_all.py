"""Every benchmark in one invocation, and the "Head-to-head and bench" section of RESULTS.md.

Runs, each as its own process, on this machine:

1. simulator throughput — ``benchmarks/sim_throughput.py`` (median of its runs);
2. client CPU per request vs raw aiohttp — ``benchmarks/client_cpu.py``;
3. 1 GiB upload and download vs raw — ``benchmarks/transfer_1gib.py``;
4. the 10,000-row run — ``benchmarks/engine_10k.py``;
5. genbatch vs the naive baseline at 1,000 rows with the same rate limit —
   ``genbatch bench`` and ``benchmarks/baseline_naive.py`` alternately,
   ``--runs`` times each, every run against a fresh simulator process with
   the same settings.  Ratios are taken within this one invocation.

The head-to-head scales the rate limit with the time scale (``--real-rate``
÷ ``--time-scale``): a workspace limited to 10 requests/s with GEN's real
latencies, compressed 50×, keeps the proportions of a real night's batch
(how many polls fit between two jobs, how long a 429 sleep is) while it
finishes in minutes.  Burst is 2 s of the real rate, in tokens.

Then it replaces its own section of ``benchmarks/RESULTS.md`` (re-read just
before writing; other sections untouched; a hand-written ``### Notes``
subsection at the end of the section is kept).

    .venv/bin/python benchmarks/run_all.py [--runs 3] [--skip transfer,engine10k] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## Head-to-head and bench"
NOTES = "### Notes"
PY = ".venv/bin/python"
PARTS = ("sim", "client", "transfer", "engine10k", "h2h")
#: Figures of engine_10k.py's JSON repeated in our section.
TEN_K_KEYS = (
    "rows",
    "rate",
    "burst",
    "time_scale",
    "makespan_s",
    "lower_bound_s",
    "ratio",
    "api_requests",
    "required_requests",
    "rate_limited_429",
    "polls_per_generation",
    "peak_rss_mb",
    "genbatch_cpu_s",
    "completed",
)


# --------------------------------------------------------------------------
# Running things
# --------------------------------------------------------------------------
def run(argv: list[str], timeout: float) -> tuple[int, str, str, float]:
    """Run a command from the repo root; (exit code, stdout, stderr, seconds)."""
    print(f"$ {shlex.join(argv)}", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable if a == PY else a for a in argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0


def last_json(text: str) -> dict[str, Any]:
    """The JSON object a script printed last (scripts may print lines before it)."""
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON in output")
    data: dict[str, Any] = json.loads(text[start:])
    return data


def machine() -> dict[str, Any]:
    mem_kb = 0
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": nproc or str(os.cpu_count()),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "cpu": model,
        "python": platform.python_version(),
        "aiohttp": metadata.version("aiohttp"),
        "load": os.getloadavg(),
    }


# --------------------------------------------------------------------------
# The parts
# --------------------------------------------------------------------------
def part_sim() -> dict[str, Any]:
    cmd = [PY, "benchmarks/sim_throughput.py"]
    code, out, err, secs = run(cmd, 600)
    m = re.search(r"median: ([\d,]+) req/s", out)
    runs = [float(x.replace(",", "")) for x in re.findall(r"run \d+: ([\d,]+) req/s", out)]
    return {
        "command": shlex.join(cmd),
        "exit": code,
        "median_req_s": float(m.group(1).replace(",", "")) if m else None,
        "runs": runs,
        "seconds": round(secs),
        "error": None if m else (err or out)[-500:],
    }


def part_json(cmd: list[str], timeout: float) -> dict[str, Any]:
    code, out, err, secs = run(cmd, timeout)
    try:
        data = last_json(out)
        error = None
    except ValueError:
        data, error = {}, (err or out)[-800:]
    return {
        "command": shlex.join(cmd),
        "exit": code,
        "seconds": round(secs),
        "data": data,
        "error": error,
    }


def part_h2h(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    rate = args.real_rate / args.time_scale
    burst = max(1, round(args.real_rate * 2))
    common = [
        "--rows",
        str(args.rows),
        "--rate",
        f"{rate:g}",
        "--burst",
        str(burst),
        "--time-scale",
        f"{args.time_scale:g}",
    ]
    genbatch_cmd = [PY, "-m", "genbatch", "bench", *common, "--json", "--out"]
    naive_cmd = [PY, "benchmarks/baseline_naive.py", *common, "--json"]
    runs: list[dict[str, Any]] = []
    for i in range(args.runs):
        out = work / f"bench-{i}"
        pair: dict[str, Any] = {}
        order = ("genbatch", "naive") if i % 2 == 0 else ("naive", "genbatch")
        for who in order:
            cmd = [*genbatch_cmd, str(out)] if who == "genbatch" else naive_cmd
            code, stdout, stderr, secs = run(cmd, 3600)
            try:
                pair[who] = last_json(stdout)
            except ValueError:
                pair[who] = {"error": (stderr or stdout)[-800:], "exit": code}
            pair[who]["_exit"] = code
            pair[who]["_seconds"] = round(secs, 1)
        g, n = pair["genbatch"], pair["naive"]
        if "makespan_s" in g and "makespan_s" in n:
            pair["ratio"] = round(n["makespan_s"] / g["makespan_s"], 3)
        runs.append(pair)
        print(f"head-to-head run {i + 1}: ratio {pair.get('ratio')}", file=sys.stderr, flush=True)
    return {
        "genbatch_command": shlex.join([*genbatch_cmd, "DIR"]),
        "naive_command": shlex.join(naive_cmd),
        "rate": rate,
        "burst": burst,
        "real_rate": args.real_rate,
        "runs": runs,
    }


# --------------------------------------------------------------------------
# The section
# --------------------------------------------------------------------------
def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def verdict(ok: bool | None, miss: str) -> str:
    if ok is None:
        return "not measured"
    return "**met**" if ok else f"**missed** — {miss}"


def fmt(v: Any, spec: str = "") -> str:
    if v is None:
        return "—"
    return format(v, spec) if spec else str(v)


def h2h_rows(h: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    lines = [
        "| run | genbatch makespan | naive makespan | naive ÷ genbatch | 429s genbatch · naive | "
        "polls genbatch · naive | polls per generation genbatch · naive | API requests "
        "genbatch · naive | MP4s genbatch · naive |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ratios, gm, nm = [], [], []
    for i, p in enumerate(h["runs"], 1):
        g, n = p["genbatch"], p["naive"]
        if "makespan_s" not in g or "makespan_s" not in n:
            lines.append(f"| {i} | failed: {g.get('error') or n.get('error')!r:.200} |")
            continue
        ratios.append(p["ratio"])
        gm.append(g["makespan_s"])
        nm.append(n["makespan_s"])
        lines.append(
            f"| {i} | {g['makespan_s']:.1f} s | {n['makespan_s']:.1f} s | {p['ratio']:.2f}× | "
            f"{g['rate_limited']['ledger']} · {n['rate_limited']} | "
            f"{g['polls']['polls']:,} · {n['polls']:,} | "
            f"{g['polls']['per_generation']:.2f} · {n['polls_per_generation']:.2f} | "
            f"{g['requests']['api']:,} · {n['api_requests']:,} | "
            f"{g['rows'].get('completed', 0):,} · {n['verified_mp4']:,} |"
        )
    summary = {
        "ratio_median": med(ratios),
        "genbatch_median": med(gm),
        "naive_median": med(nm),
        "ratio_of_medians": (med(nm) or 0) / (med(gm) or 1) if gm and nm else None,
    }
    if ratios:
        lines.append(
            f"| **median** | **{summary['genbatch_median']:.1f} s** | "
            f"**{summary['naive_median']:.1f} s** | **{summary['ratio_median']:.2f}×** | | | | | |"
        )
    return lines, summary


def bench_naive_rows_per_hour(h: dict[str, Any] | None) -> float | None:
    """Median completed rows per hour of the naive runs (at the run's time scale)."""
    if h is None:
        return None
    rates = [
        p["naive"]["verified_mp4"] * 3600 / p["naive"]["makespan_s"]
        for p in h["runs"]
        if p["naive"].get("makespan_s")
    ]
    return med(rates)


def median_bench(h: dict[str, Any]) -> dict[str, Any] | None:
    good = [p["genbatch"] for p in h["runs"] if "makespan_s" in p["genbatch"]]
    if not good:
        return None
    good.sort(key=lambda g: float(g["makespan_s"]))
    chosen: dict[str, Any] = good[len(good) // 2]
    return chosen


def section(res: dict[str, Any], args: argparse.Namespace, command: str, notes: str) -> str:
    m = res["machine"]
    out: list[str] = [
        SECTION,
        "",
        f"Written by `benchmarks/run_all.py` (issue 5) on {res['date']}; every figure below "
        f"was measured in that one invocation ({res['minutes']:.0f} minutes).",
        "",
        f"Machine: `nproc` {m['nproc']} ({m['cpu']}), {m['memory_gb']} GB RAM, Python "
        f"{m['python']}, aiohttp {m['aiohttp']}; shared with other jobs (load average "
        f"{res['load_start'][0]:.1f} at the start, {res['load_end'][0]:.1f} at the end).",
        "",
        "Command (from the repo root):",
        "",
        "```",
        command,
        "```",
        "",
    ]
    if res.get("rendered_from"):
        out += [
            f"(This text was rendered afterwards from that run's saved figures with "
            f"`benchmarks/run_all.py --from-json {res['rendered_from']}`; nothing re-measured.)",
            "",
        ]
    missed: list[str] = []
    rows: list[str] = ["| figure | target | measured | verdict |", "|---|---|---|---|"]

    h = res.get("h2h")
    hl: list[str] = []
    bench = None
    if h is not None:
        hl, hs = h2h_rows(h)
        bench = median_bench(h)
        r = hs["ratio_median"]
        ok = None if r is None else r >= 5
        why = ""
        if r is not None and r < 5 and bench is not None:
            lb, d = bench["lower_bound"], bench["detection_delay"] or {}
            why = (
                f"by a factor {5 / r:.2f}: genbatch's median makespan would have to be "
                f"{(hs['naive_median'] or 0) / 5:.1f} s; it was {hs['genbatch_median']:.1f} s, "
                f"{lb['ratio']:.2f}× its own lower bound of {lb['bound_s']:.1f} s "
                f"(detection delay p95 {d.get('p95_s', 0):.2f} s on jobs of at most "
                f"{120 * args.time_scale:.1f} s); a run at that bound would have been "
                f"{(hs['naive_median'] or 0) / lb['bound_s']:.1f}× faster than the baseline"
            )
            missed.append(f"**genbatch vs naive ({r:.2f}×, target ≥ 5×)** — missed {why}.")
        rows.append(
            f"| genbatch vs naive baseline, {args.rows:,} rows, same rate limit | ≥ 5× | "
            f"{fmt(r, '.2f')}× (median of {len(h['runs'])}) | {verdict(ok, 'see below')} |"
        )
    if bench is not None:
        ppg = bench["polls"]["per_generation"]
        rows.append(
            f"| polls per generation (genbatch, {args.rows:,} rows) | ≤ 3 | {ppg:.2f} | "
            f"{verdict(ppg <= 3, 'see below')} |"
        )
        d = bench["detection_delay"] or {}
        frac = d.get("p50_fraction")
        rows.append(
            f"| median detection delay ÷ the job's duration ({args.rows:,} rows) | ≤ 10 % | "
            f"{fmt(None if frac is None else frac * 100, '.1f')} % "
            f"(p50 {d.get('p50_s', 0) * 1000:.0f} ms"
            f" on jobs of p50 {d.get('p50_job_s', 0) * 1000:.0f} ms) | "
            f"{verdict(None if frac is None else frac <= 0.10, 'see below')} |"
        )
        if frac is not None and frac > 0.10:
            kinds = ", ".join(
                f"{k} {v['p50_fraction'] * 100:.0f} %" for k, v in d.get("by_kind", {}).items()
            )
            missed.append(
                f"**median detection delay ({frac * 100:.1f} % of the job, target ≤ 10 %)** — "
                f"missed by {frac * 100 - 10:.1f} points ({frac / 0.10:.1f}× the target); "
                f"per kind: {kinds}."
            )
    e = res.get("engine10k")
    if e is not None:
        ed = e["data"]
        ok = None if "ratio" not in ed else ed["ratio"] <= 1.2
        rows.append(
            f"| makespan ÷ lower bound, {ed.get('rows', 10000):,} rows (engine_10k.py) | ≤ 1.2 | "
            f"{fmt(ed.get('ratio'), '.2f')} ({fmt(ed.get('makespan_s'))} s vs "
            f"{fmt(ed.get('lower_bound_s'))} s; polls/generation "
            f"{fmt(ed.get('polls_per_generation'))}; RSS {fmt(ed.get('peak_rss_mb'))} MB) | "
            f"{verdict(ok, 'see below')} |"
        )
        if ok is False:
            missed.append(
                f"**10,000-row makespan ({ed['ratio']:.2f}× the bound, target ≤ 1.2×)** — "
                f"missed by {ed['ratio'] / 1.2:.2f}× ({ed['makespan_s']} s against an allowed "
                f"{1.2 * ed['lower_bound_s']:.0f} s)."
            )
    c = res.get("client")
    if c is not None:
        cd = c["data"]
        ok = None if "ratio" not in cd else cd["ratio"] <= 1.5
        rows.append(
            f"| client CPU per request ÷ raw aiohttp | ≤ 1.5× | {fmt(cd.get('ratio'), '.2f')}× "
            f"({fmt(cd.get('client_median_us'))} vs {fmt(cd.get('raw_median_us'))} µs) | "
            f"{verdict(ok, 'see below')} |"
        )
    t = res.get("transfer")
    if t is not None:
        td = t["data"]
        for direction in ("upload", "download"):
            x = td.get(direction)
            if not x:
                rows.append(f"| 1 GiB {direction} | ≥ 0.8× raw, RSS < 100 MB | — | not measured |")
                continue
            ok = x["ratio"] >= 0.8 and x["client_peak_rss_mb"] < 100
            rows.append(
                f"| 1 GiB {direction} ÷ raw | ≥ 0.8×, peak RSS < 100 MB | {x['ratio']:.2f}× "
                f"({x['client_mb_s']} vs {x['raw_mb_s']} MB/s), {x['client_peak_rss_mb']} MB | "
                f"{verdict(ok, 'see below')} |"
            )
    s = res.get("sim")
    if s is not None:
        v = s.get("median_req_s")
        rows.append(
            f"| simulator `GET /v1/generations/:id` | ≥ 3,000 req/s | {fmt(v, ',.0f')} req/s | "
            f"{verdict(None if v is None else v >= 3000, 'see below')} |"
        )

    out += ["### Against the targets", "", *rows, ""]
    if h is not None:
        out += [
            f"### Head-to-head: genbatch vs the naive baseline, {args.rows:,} rows",
            "",
            f"Both sides run against their own fresh `genbatch sim` process with `--rate "
            f"{h['rate']:g} --burst {h['burst']} --time-scale {args.time_scale:g}`: a workspace "
            f"limited to {h['real_rate']:g} requests/s with GEN's real latencies, everything "
            f"compressed {1 / args.time_scale:g}× (rate × {1 / args.time_scale:g}, latencies ÷ "
            f"{1 / args.time_scale:g}), so a poll every 5 s is a poll every "
            f"{5 * args.time_scale:g} s here and the naive 429 sleep is {5 * args.time_scale:g} s. "
            "The same rows (`tiktok-vo-broll` default recipe: clone, fill hook+script, "
            "voiceover + b-roll, render, download) and the same cards: the baseline checks its "
            "cards against genbatch's recipe before it starts and every MP4 after it ends. "
            "genbatch is told the limit (`--rate`); the baseline PATCHes each cell (the "
            "walkthrough's call) where genbatch sends one mass update. Runs alternate which "
            "side goes first. Counts come from each simulator's ledger (429 answers included "
            "in the route counts).",
            "",
            "```",
            h["genbatch_command"],
            h["naive_command"],
            "```",
            "",
            *hl,
            "",
        ]
    if bench is not None:
        lb, rq, cl, rh = (
            bench["lower_bound"],
            bench["requests"],
            bench["client"],
            bench["rows_per_hour"],
        )
        d = bench["detection_delay"] or {}
        routes = ", ".join(
            f"{r} {n:,}" for r, n in sorted(rq["by_route"].items(), key=lambda kv: -kv[1])
        )
        out += [
            "### `genbatch bench` figures (the median genbatch run above)",
            "",
            f"- makespan {bench['makespan_s']:.1f} s; lower bound {lb['bound_s']:.1f} s "
            f"({lb['which']}: ({lb['required_requests']:,} required requests − {lb['burst']} "
            f"burst) ÷ {lb['rate']:g}/s; longest row's chain of jobs "
            f"{lb['critical_path_s']:.2f} s); "
            f"ratio **{lb['ratio']:.2f}**",
            f"- requests: {rq['api']:,} to the API + {rq['cdn']:,} CDN ({routes}); by status "
            + ", ".join(f"{k}: {v:,}" for k, v in sorted(rq["by_status"].items())),
            f"- polls per generation **{bench['polls']['per_generation']:.2f}** "
            f"({bench['polls']['polls']:,} / {bench['polls']['generations']:,}); 429s "
            f"{bench['rate_limited']['ledger']}",
            f"- detection delay p50 {d.get('p50_s', 0) * 1000:.0f} ms, p95 "
            f"{d.get('p95_s', 0) * 1000:.0f} ms; p50 **{d.get('p50_fraction', 0) * 100:.1f} %** "
            f"of the job's duration (p95 {d.get('p95_fraction', 0) * 100:.0f} %)",
            f"- client: {cl['cpu_us_per_request']:.0f} µs CPU per request (interpreter start "
            f"excluded; {cl['cpu_s']:.1f} s in all), peak RSS {cl['peak_rss_mb']:.0f} MB",
            f"- rows/hour: {rh['measured']:,.0f} at this time scale; the whole clock (rate "
            f"limit included) was compressed {1 / args.time_scale:g}×, so a workspace limited "
            f"to {h['real_rate'] if h else 0:g} requests/s would make "
            f"{rh['measured'] * args.time_scale:,.0f} rows/hour in real time (the naive "
            f"baseline: {(bench_naive_rows_per_hour(h) or 0) * args.time_scale:,.0f})",
            f"- where the time goes (`genbatch bench --from`): {bench['analysis']['bottleneck']}",
            "",
        ]
    others: list[str] = []
    if s is not None:
        others.append(
            f"- simulator throughput: runs {', '.join(f'{x:,.0f}' for x in s['runs'])} req/s, "
            f"median {fmt(s['median_req_s'], ',.0f')} (`{s['command']}`)"
        )
    if c is not None:
        cd = c["data"]
        others.append(
            f"- client CPU: raw {cd.get('raw_us_per_request')} µs, client "
            f"{cd.get('client_us_per_request')} µs per request (`{c['command']}`)"
        )
    if t is not None:
        td = t["data"]
        for direction in ("upload", "download"):
            x = td.get(direction) or {}
            others.append(
                f"- 1 GiB {direction}: seconds raw {x.get('seconds', {}).get('raw')}, client "
                f"{x.get('seconds', {}).get('client')}; raw RSS {x.get('raw_peak_rss_mb')} MB "
                f"(`{t['command']}`)"
            )
    if e is not None:
        ed = e["data"]
        others.append(
            f"- 10,000 rows: {json.dumps({k: ed.get(k) for k in TEN_K_KEYS})} (`{e['command']}`)"
        )
    for part in ("sim", "client", "transfer", "engine10k"):
        p = res.get(part)
        if p is not None and p.get("error"):
            others.append(f"- {part} did not report: `{p['error'][-300:]!s}`")
    if others:
        out += ["### The other benchmarks, same invocation", "", *others, ""]
    if missed:
        out += ["### Missed targets: by how much", "", *(f"- {m}" for m in missed), ""]
    out.append(notes.rstrip() + "\n" if notes else "")
    return "\n".join(out).rstrip() + "\n"


def write_section(text: str) -> None:
    """Replace (or append) our section; re-read the file right before writing."""
    current = RESULTS.read_text(encoding="utf-8")
    start = current.find("\n" + SECTION + "\n")
    if start < 0:
        new = current.rstrip("\n") + "\n\n" + text
    else:
        nxt = current.find("\n## ", start + 1)
        tail = current[nxt:] if nxt >= 0 else ""
        new = current[: start + 1] + text + tail
    RESULTS.write_text(new, encoding="utf-8")


def kept_notes() -> str:
    """The hand-written ``### Notes`` of our section, if any (kept across reruns)."""
    current = RESULTS.read_text(encoding="utf-8")
    start = current.find("\n" + SECTION + "\n")
    if start < 0:
        return ""
    nxt = current.find("\n## ", start + 1)
    mine = current[start : nxt if nxt >= 0 else len(current)]
    at = mine.find("\n" + NOTES + "\n")
    return mine[at + 1 :] if at >= 0 else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="head-to-head runs per side")
    ap.add_argument("--rows", type=int, default=1000, help="head-to-head rows")
    ap.add_argument("--real-rate", type=float, default=10.0, help="real requests/s to model")
    ap.add_argument("--time-scale", type=float, default=0.02)
    ap.add_argument("--skip", default="", help=f"comma-separated parts to skip: {','.join(PARTS)}")
    ap.add_argument("--no-write", action="store_true", help="print the section, leave RESULTS.md")
    ap.add_argument("--json", type=Path, help="also write every raw figure to this file")
    ap.add_argument(
        "--from-json",
        type=Path,
        metavar="FILE",
        help="measure nothing: write the section from the figures a previous --json saved "
        "(the section names that run's command and date)",
    )
    args = ap.parse_args()
    if args.from_json is not None:
        old: dict[str, Any] = json.loads(args.from_json.read_text())
        old["rendered_from"] = str(args.from_json)
        saved = old.get("args") or _args_of(old)
        for key, value in saved.items():
            setattr(args, key, value)
        return _finish(old, args, old.get("command") or saved["command"])
    skip = {s for s in args.skip.split(",") if s}
    if skip - set(PARTS):
        ap.error(f"unknown parts: {', '.join(sorted(skip - set(PARTS)))}")
    command = shlex.join([PY, "benchmarks/run_all.py", *sys.argv[1:]])
    t0 = time.monotonic()
    res: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_start": os.getloadavg(),
    }
    if "sim" not in skip:
        res["sim"] = part_sim()
    if "client" not in skip:
        res["client"] = part_json([PY, "benchmarks/client_cpu.py"], 1800)
    if "transfer" not in skip:
        res["transfer"] = part_json([PY, "benchmarks/transfer_1gib.py"], 3600)
    if "engine10k" not in skip:
        res["engine10k"] = part_json([PY, "benchmarks/engine_10k.py"], 7200)
    if "h2h" not in skip:
        with tempfile.TemporaryDirectory(prefix="genbatch-runall-") as work:
            res["h2h"] = part_h2h(args, Path(work))
    res["load_end"] = os.getloadavg()
    res["minutes"] = (time.monotonic() - t0) / 60
    res["command"] = command
    res["args"] = {"rows": args.rows, "time_scale": args.time_scale, "real_rate": args.real_rate}
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))
    return _finish(res, args, command)


def _args_of(res: dict[str, Any]) -> dict[str, Any]:
    """Head-to-head settings recovered from a saved run's own figures."""
    h = res["h2h"]
    bench = median_bench(h) or {}
    rows = bench.get("options", {}).get("rows", 1000)
    scale = h["real_rate"] / h["rate"]
    runs = len(h["runs"])
    return {
        "rows": rows,
        "time_scale": scale,
        "real_rate": h["real_rate"],
        "command": shlex.join([PY, "benchmarks/run_all.py", "--runs", str(runs)]),
    }


def _finish(res: dict[str, Any], args: argparse.Namespace, command: str) -> int:
    text = section(res, args, command, kept_notes())
    if args.no_write:
        print(text)
    else:
        write_section(text)
        print(f"wrote {SECTION!r} to {RESULTS}", file=sys.stderr)
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
