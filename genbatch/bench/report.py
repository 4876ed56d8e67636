"""The figures of one bench: makespan against its lower bound, requests, polls, 429s,
detection delay, the client's CPU and memory, and rows per hour in real time.

:func:`build_report` joins what a bench leaves behind — the run's journal,
``genbatch run``'s ``--json`` summary and its rusage, the simulator's ledger
— into a :class:`BenchReport` (``to_json`` for ``--json``, ``render`` for
print), the run's :class:`~genbatch.bench.analysis.RunAnalysis` included.

The lower bound is the requests the work needs (one poll per job) through
the simulator's token bucket, or the slowest row's chain of jobs, whichever
is longer (a simulator without a rate limit: the chain alone, the rate part
"n/a").  Time in the simulator is compressed by its time scale; the rate
limit is not (a token bucket on the wall clock).  The real-time projection
therefore undoes the scale only on what GEN does (``rows_per_hour``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genbatch.bench.analysis import (
    ASYNC_STEPS,
    ROUTE_POLL,
    RunAnalysis,
    admin_free,
    analyze,
    api_requests,
    base_step,
    ledger_index,
)
from genbatch.bench.stats import union_length
from genbatch.engine.journal import Journal, StepRecord
from genbatch.engine.limits import ENGINE_ROWS_IN_FLIGHT
from genbatch.engine.plan import estimate_requests
from genbatch.engine.recipe import Recipe
from genbatch.engine.rowplan import STEP_RENDER
from genbatch.sim.config import SimConfig

__all__ = ["BenchReport", "build_report"]


@dataclass(slots=True)
class BenchReport:
    """Every figure of one bench, for print and ``--json``."""

    options: dict[str, Any]
    out_dir: str
    rows: dict[str, int]
    makespan: float
    wall: float
    lower_bound: dict[str, Any]
    requests: dict[str, Any]
    polls: dict[str, Any]
    rate_limited: dict[str, int | None]
    detection: dict[str, Any] | None
    client: dict[str, Any]
    rows_per_hour: dict[str, Any]
    analysis: RunAnalysis
    credits: dict[str, Any]
    #: ``genbatch run``'s summary ``rate`` object (final, source, ceiling) when it has one.
    rate: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "options": self.options,
            "out_dir": self.out_dir,
            "rows": self.rows,
            "makespan_s": round(self.makespan, 3),
            "wall_s": round(self.wall, 3),
            "lower_bound": self.lower_bound,
            "makespan_over_bound": self.lower_bound.get("ratio"),
            "requests": self.requests,
            "polls": self.polls,
            "rate_limited": self.rate_limited,
            "detection_delay": self.detection,
            "client": self.client,
            "rows_per_hour": self.rows_per_hour,
            "credits": self.credits,
            "rate": self.rate,
            "analysis": self.analysis.to_json(),
        }

    def render(self) -> str:
        o, lb, rq, pl = self.options, self.lower_bound, self.requests, self.polls
        sim_rate = "no limit" if o["rate"] is None else f"{o['rate']:g}/s burst {o['burst']}"
        ratio = "n/a" if lb["ratio"] is None else f"{lb['ratio']:.3f}"
        if lb["rate_bound_s"] is None:
            by_requests = "bound by requests: n/a (no rate limit)"
        else:
            by_requests = (
                f"bound by requests: ({lb['required_requests']} required - {lb['burst']} "
                f"burst) / {lb['rate']:g}/s = {lb['rate_bound_s']:.2f} s"
            )
        lines = [
            f"genbatch bench: {o['rows']} rows of {o['template']}, sim rate {sim_rate}, "
            f"time scale {o['time_scale']:g}, faults {o['faults'] or 'none'} "
            f"(out: {self.out_dir})",
            f"rows: {self.rows.get('completed', 0)} completed, {self.rows.get('failed', 0)} "
            f"failed, {self.rows.get('skipped', 0)} skipped",
            f"makespan: {self.makespan:.2f} s   lower bound: {lb['bound_s']:.2f} s "
            f"({lb['which']})   ratio: {ratio}",
            f"  {by_requests}; longest row's critical path {lb['critical_path_s']:.2f} s",
            f"requests: {rq['api']} to the API + {rq['cdn']} CDN = {rq['total']} "
            f"(genbatch counted {rq['client_reported']})",
        ]
        for route, n in sorted(rq["by_route"].items(), key=lambda kv: -kv[1]):
            lines.append(f"  {n:>8}  {route}")
        lines.append(
            "  by status: " + ", ".join(f"{k}: {v}" for k, v in sorted(rq["by_status"].items()))
        )
        lines.append(
            f"polls: {pl['polls']} for {pl['generations']} generations = "
            f"{pl['per_generation']:.3f} per generation"
        )
        lines.append(
            f"429s: {self.rate_limited['ledger']} (genbatch counted "
            f"{self.rate_limited['client_reported']})"
        )
        d = self.detection
        if d:
            lines.append(
                f"detection delay: p50 {d['p50_s'] * 1000:.1f} ms, p95 {d['p95_s'] * 1000:.1f} ms;"
                f" p50 {d['p50_fraction']:.1%} (p95 {d['p95_fraction']:.1%}) of the job's "
                f"duration (p50 job {d['p50_job_s']:.3g} s)"
            )
        c = self.client
        per_request = c["cpu_us_per_request"]
        per_request_text = "n/a" if per_request is None else f"{per_request:.0f} us"
        lines.append(
            f"client: {c['cpu_s']:.2f} s CPU ({c['startup_cpu_s']:.2f} s of it interpreter "
            f"start) = {per_request_text} per request; peak RSS {c['peak_rss_mb']:.1f} MB"
        )
        rh = self.rows_per_hour
        rate_h = "n/a (no limit)" if rh["rate_bound"] is None else _per_hour(rh["rate_bound"])
        lines.append(
            f"rows/hour: {rh['measured']:,.0f} measured at time scale {o['time_scale']:g}; "
            f"real time at most {_per_hour(rh['real_time'])} ({rh['binding']} binds: rate "
            f"limit {rate_h}, rows in flight {_per_hour(rh['concurrency_bound'])})"
        )
        lines.append("")
        lines.append(self.analysis.render())
        return "\n".join(lines)


def _per_hour(v: float | None) -> str:
    """Rows per hour for people (None: no such bound)."""
    return "n/a" if v is None else f"{v:,.0f}/h"


def _finite(v: float) -> float | None:
    """A rounded figure, or None where there is no bound (JSON has no infinity)."""
    return round(v, 1) if math.isfinite(v) else None


def _critical_paths(
    template: str,
    table: Path,
    run_steps: Mapping[str, dict[str, StepRecord]],
    gens: Mapping[str, Mapping[str, Any]],
) -> list[float]:
    """Per completed row: Σ over waves of the slowest job in it, plus the render."""
    recipe = Recipe.default(template)
    paths: list[float] = []
    with table.open(newline="", encoding="utf-8") as f:
        for values in csv.DictReader(f):
            steps = run_steps.get(values["row_id"])
            if not steps:
                continue
            plan = recipe.plan_row(values)

            def dur(step: str, steps: Mapping[str, StepRecord] = steps) -> float:
                rec = steps.get(step)
                g = gens.get(rec.remote_id) if rec is not None and rec.remote_id else None
                if g is None or g.get("completed_at") is None:
                    return 0.0
                return float(g["completed_at"]) - float(g["created_at"])

            path = sum(max((dur(g.step) for g in wave), default=0.0) for wave in plan.waves())
            if plan.render is not None:
                path += dur(STEP_RENDER)
            paths.append(path)
    return paths


def _required_requests(template: str, table: Path) -> int:
    recipe = Recipe.default(template)
    with table.open(newline="", encoding="utf-8") as f:
        return sum(estimate_requests(recipe.plan_row(v)) for v in csv.DictReader(f))


def build_report(
    *,
    spec: SimConfig,
    rows: int,
    template: str,
    max_concurrency: int | None,
    client_rate: float | None,
    out: Path,
    table: Path,
    summary: Mapping[str, Any],
    ledger: Mapping[str, Any],
    usage: Any,
    startup: float,
    wall: float,
) -> BenchReport:
    """Join a finished bench's journal, ``genbatch run``'s summary and rusage, and the ledger.

    ``spec``: the simulator it ran against (``rate`` None: no limit);
    ``rows``, ``template``, ``max_concurrency``, ``client_rate``: what
    ``genbatch run`` was given (``client_rate`` None: no ``--rate``, untold);
    ``summary``: its ``--json`` output; ``usage``: its ``os.wait4`` rusage;
    ``startup``: an interpreter's CPU seconds to import it; ``wall``: its
    wall time; ``ledger``: the simulator's (trimmed) ledger after the run.
    """
    analysis = analyze(out, ledger)
    gens = ledger_index(ledger)
    by_route = admin_free(ledger["requests"]["by_route"])
    by_status = dict(ledger["requests"]["by_status"])
    # The admin reads are not the client's: take them out of the status counts too.
    admin = sum(v for k, v in ledger["requests"]["by_route"].items() if "/_sim/" in k)
    if admin and by_status.get("200", 0) >= admin:
        by_status["200"] -= admin
    api = api_requests(by_route)
    total = sum(by_route.values())

    # Lower bound: requests the work needs (one poll per job) through the
    # bucket, or the slowest row's chain of jobs, whichever is longer.
    required = _required_requests(template, table) + 2  # preflight: agent + org
    # No limit: the requests bind nothing ("n/a"), the critical path alone is the bound.
    rate_bound = max(0, required - spec.burst) / spec.rate if spec.rate else None
    with Journal.open(out, read_only=True) as journal:
        run_steps = {r.row_id: journal.steps(r.row_id) for r in journal.rows("completed")}
    paths = _critical_paths(template, table, run_steps, gens)
    critical = max(paths, default=0.0)
    bound = max(rate_bound or 0.0, critical)
    makespan = float(summary.get("seconds") or analysis.makespan)

    polls = by_route.get(ROUTE_POLL, 0)
    n_gens = len(ledger.get("generations", []))
    cpu = float(usage.ru_utime + usage.ru_stime)
    client_requests = int(summary.get("requests") or 0)
    completed = int(summary.get("counts", {}).get("completed", 0))

    # Real-time projection: the rate limit is wall-clock already; GEN's part
    # of a row is scaled back up.  Rows/hour is the lower of the two ceilings.
    cap = max_concurrency or ENGINE_ROWS_IN_FLIGHT
    per_row_api = api / completed if completed else math.inf
    rate_ceiling = (
        spec.rate * 3600 / per_row_api if spec.rate is not None and per_row_api > 0 else math.inf
    )
    row_real = _mean_real_row_seconds(out, spec.time_scale)
    conc_ceiling = cap * 3600 / row_real if row_real > 0 else math.inf
    real = min(rate_ceiling, conc_ceiling)

    return BenchReport(
        options={
            "rows": rows,
            "template": template,
            "rate": spec.rate,
            "burst": spec.burst,
            "time_scale": spec.time_scale,
            "faults": spec.faults,
            "seed": spec.seed,
            "client_rate": client_rate,
            "told": client_rate is not None,
            "rows_in_flight": cap,
        },
        out_dir=str(out),
        rows={k: int(v) for k, v in summary.get("counts", {}).items()},
        makespan=makespan,
        wall=wall,
        lower_bound={
            "required_requests": required,
            "rate": spec.rate,
            "burst": spec.burst,
            "rate_bound_s": None if rate_bound is None else round(rate_bound, 3),
            "critical_path_s": round(critical, 3),
            "bound_s": round(bound, 3),
            "which": "rate limit"
            if rate_bound is not None and rate_bound >= critical
            else "critical path",
            "ratio": round(makespan / bound, 4) if bound > 0 else None,
        },
        requests={
            "total": total,
            "api": api,
            "cdn": total - api,
            "client_reported": client_requests,
            "by_route": by_route,
            "by_status": by_status,
        },
        polls={
            "polls": polls,
            "generations": n_gens,
            "per_generation": round(polls / n_gens, 4) if n_gens else 0.0,
            "hub": summary.get("polls", {}),
        },
        rate_limited={
            "ledger": int(by_status.get("429", 0)),
            "client_reported": summary.get("rate_limited"),
        },
        detection=analysis.detection,
        client={
            "cpu_s": round(cpu, 3),
            "startup_cpu_s": round(startup, 3),
            "cpu_us_per_request": round(1e6 * max(0.0, cpu - startup) / client_requests, 1)
            if client_requests
            else None,
            "cpu_us_per_request_incl_startup": round(1e6 * cpu / client_requests, 1)
            if client_requests
            else None,
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
            "exit_code": summary.get("exit_code"),
        },
        rows_per_hour={
            "measured": round(completed * 3600 / makespan, 1) if makespan > 0 else 0.0,
            "real_time": _finite(real),
            "binding": "rate limit" if rate_ceiling <= conc_ceiling else "rows in flight",
            "rate_bound": _finite(rate_ceiling),
            "concurrency_bound": _finite(conc_ceiling),
            "api_requests_per_row": round(per_row_api, 3),
            "real_row_seconds": round(row_real, 2),
            "model": "min(rate x 3600 / API requests per row, rows in flight x 3600 / "
            "(row's wait on GEN / time scale + the rest of the row))",
        },
        credits=dict(ledger.get("credits", {})) | {"genbatch": summary.get("credits")},
        analysis=analysis,
        rate=dict(rate) if isinstance(rate := summary.get("rate"), Mapping) else None,
    )


def _mean_real_row_seconds(out: Path, scale: float) -> float:
    """Mean completed row in real time: its wait on GEN / scale, the rest as measured."""
    with Journal.open(out, read_only=True) as journal:
        totals: list[float] = []
        for r in journal.rows("completed"):
            if r.started_at is None or r.finished_at is None:
                continue
            steps = journal.steps(r.row_id).values()
            gen = union_length(
                (s.remote_at, s.finished_at)
                for s in steps
                if base_step(s.step) in ASYNC_STEPS
                and s.remote_at is not None
                and s.finished_at is not None
            )
            span = r.finished_at - r.started_at
            totals.append(gen / scale + max(0.0, span - gen) if scale > 0 else span)
    return sum(totals) / len(totals) if totals else 0.0
