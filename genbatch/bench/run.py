"""Throughput as a feature: run a synthetic batch against a simulator and say where the time went.

Two entry points:

* :func:`run_bench` — start ``genbatch sim`` as its own process (rate limit,
  burst, time scale, faults), write a synthetic table, run it through
  ``genbatch run`` as a *subprocess* (so ``os.wait4`` gives that process's
  own CPU time and peak RSS, nothing of ours or the simulator's), then join
  the run's journal with the simulator's ledger into a :class:`BenchReport`.
* :func:`analyze` — the "where the time goes" view of any finished run, from
  its journal (and ``run.log``) alone, so it works for real GEN runs too.  A
  bench leaves the ledger next to the journal; when it is there, GEN's own
  side (job start and completion) splits the waiting further.

What the journal can and cannot tell (see :data:`JOURNAL_GAPS`): per step it
stamps ``started_at`` (queued behind our gates), ``intent_at`` (past the
concurrency cap and the credit hold, about to send), ``remote_at`` (the
POST's answer arrived) and ``finished_at`` (we noticed the outcome).  It has
no stamp for "the request cleared the rate gate" and none for "GEN finished
the job", so without a ledger the rate-gate wait stays inside the POST's
round trip and the detection delay inside the wait on GEN.

Time in the simulator is compressed by its time scale; the rate limit is
not (a token bucket on the wall clock).  The real-time projection therefore
undoes the scale only on what GEN does (:meth:`BenchReport.rows_per_hour`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from genbatch._constants import (
    CLIENT_ENV_API_KEY,
    ENGINE_BENCH_BURST,
    ENGINE_BENCH_CREDITS,
    ENGINE_BENCH_LEDGER_FILE,
    ENGINE_BENCH_OUT_ROOT,
    ENGINE_BENCH_RATE,
    ENGINE_BENCH_RATE_BOUND,
    ENGINE_BENCH_REPORT_FILE,
    ENGINE_BENCH_ROWS,
    ENGINE_BENCH_SIM_LOG,
    ENGINE_BENCH_SIM_START_TIMEOUT,
    ENGINE_BENCH_TABLE_FILE,
    ENGINE_BENCH_TEMPLATE,
    ENGINE_BENCH_TIME_SCALE,
    ENGINE_RATE_DEFAULT,
    ENGINE_ROWS_IN_FLIGHT,
    ENGINE_RUN_LOG,
    SIM_DEMO_AGENT_ID,
    SIM_DEMO_API_KEY,
)
from genbatch.engine.journal import Journal, RowRecord, StepRecord
from genbatch.engine.recipe import STEP_DOWNLOAD, STEP_RENDER, Recipe
from genbatch.engine.runner import estimate_requests

__all__ = [
    "JOURNAL_GAPS",
    "BenchError",
    "BenchOptions",
    "BenchReport",
    "RunAnalysis",
    "SimProcess",
    "SimSpec",
    "StepTiming",
    "analyze",
    "api_requests",
    "percentile",
    "run_bench",
    "synthetic_table",
]

#: Timestamps the journal does not keep, and what each would add (reported by
#: ``--from``; the analysis computes what it can without them).
JOURNAL_GAPS: tuple[str, ...] = (
    "steps has no column for when a request cleared the rate gate (a 'sent_at'): "
    "remote_at - intent_at mixes our rate-gate wait with GEN's POST round trip",
    "steps has no column for GEN's completion time of a job (the generation's "
    "updated_at when first seen completed): finished_at - remote_at mixes GEN's "
    "job time with our detection delay, which needs the simulator ledger",
    "steps has no column for when fill/download cleared their concurrency cap "
    "(only generate/render/clone/upload/publish have intent_at)",
    "runs.meta keeps neither the rate limit nor the time scale, and no table keeps "
    "request or poll counts: both come from run.log's start/summary events",
)

#: Steps whose remote id is a job GEN runs asynchronously (we wait for it).
_ASYNC_STEPS = frozenset({"generate", "render", "publish"})
_ROUTE_POLL = "GET /v1/generations/{id}"


class BenchError(RuntimeError):
    """The bench could not run (simulator did not start, run crashed, no journal)."""


# --------------------------------------------------------------------------
# Small statistics
# --------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated quantile ``q`` in [0, 1]; None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _p(values: Sequence[float]) -> dict[str, float | None]:
    p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
    return {
        "p50": None if p50 is None else round(p50, 4),
        "p95": None if p95 is None else round(p95, 4),
    }


def _union_length(intervals: Iterable[tuple[float, float]]) -> float:
    """Total length covered by possibly overlapping intervals (parallel waves)."""
    total, end = 0.0, -math.inf
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def api_requests(by_route: Mapping[str, int]) -> int:
    """Requests that count against GEN's rate limit: not the CDN, storage or admin."""
    return sum(
        n
        for route, n in by_route.items()
        if " /v1/" in route or route.split(" ", 1)[-1].startswith("/v1")
    )


# --------------------------------------------------------------------------
# The simulator as its own process
# --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SimSpec:
    """How the bench simulator runs: the workspace's limits and GEN's speed."""

    rate: float = ENGINE_BENCH_RATE
    burst: int = ENGINE_BENCH_BURST
    time_scale: float = ENGINE_BENCH_TIME_SCALE
    faults: str = ""
    seed: int = 0
    credits: float = ENGINE_BENCH_CREDITS

    def argv(self) -> list[str]:
        args = [
            sys.executable,
            "-m",
            "genbatch",
            "sim",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--rate",
            repr(self.rate),
            "--burst",
            str(self.burst),
            "--time-scale",
            repr(self.time_scale),
            "--seed",
            str(self.seed),
            "--credits",
            repr(self.credits),
        ]
        if self.faults:
            args += ["--faults", self.faults]
        return args


class SimProcess:
    """``python -m genbatch sim`` in a child process, for the length of a ``with`` block.

    Its own process so that the client's CPU and memory are measured apart
    from the server's, as they would be against GEN.  Output goes to a file
    (``log``) so a chatty simulator can never block on a full pipe.
    """

    def __init__(self, spec: SimSpec, log: Path) -> None:
        self.spec = spec
        self.log = log
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    def __enter__(self) -> Self:
        self._out = self.log.open("wb")
        self._proc = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
            self.spec.argv(), stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + ENGINE_BENCH_SIM_START_TIMEOUT
        while time.monotonic() < deadline:
            for line in self.log.read_text(errors="replace").splitlines():
                if "listening on " in line:
                    self.url = line.split("listening on ", 1)[1].strip()
                    return self
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        self.__exit__(None, None, None)
        raise BenchError(f"the simulator did not start (see {self.log})")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._out is not None:
            self._out.close()
            self._out = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def ledger(self) -> dict[str, Any]:
        """The simulator's ledger (admin API, loopback)."""
        with urllib.request.urlopen(f"{self.url}/_sim/ledger", timeout=120) as resp:  # noqa: S310
            data: dict[str, Any] = json.loads(resp.read())
        return data


def trim_ledger(ledger: Mapping[str, Any]) -> dict[str, Any]:
    """What the analysis needs of a ledger (kept next to the journal)."""
    reqs = ledger.get("requests", {})
    return {
        "requests": {
            "by_route": dict(reqs.get("by_route", {})),
            "by_status": dict(reqs.get("by_status", {})),
        },
        "generations": [
            {
                k: g.get(k)
                for k in ("id", "type", "status", "engine_id", "created_at", "completed_at")
            }
            for g in ledger.get("generations", [])
        ],
        "credits": {k: ledger.get("credits", {}).get(k) for k in ("charged", "refunded")},
        "config": dict(ledger.get("config", {})),
    }


def _admin_free(counter: Mapping[str, int]) -> dict[str, int]:
    return {k: v for k, v in counter.items() if "/_sim/" not in k}


# --------------------------------------------------------------------------
# Synthetic table
# --------------------------------------------------------------------------
def _variables(recipe: Recipe) -> list[str]:
    names: dict[str, None] = {}
    for used in recipe.placeholders().values():
        for name in used:
            if name not in {"row_id", "publish_at"}:
                names[name] = None
    return list(names)


def synthetic_table(path: Path, rows: int, template: str) -> Path:
    """``rows`` distinct rows with every column the template's default recipe uses."""
    recipe = Recipe.default(template)
    columns = _variables(recipe)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["row_id", *columns])
        width = max(5, len(str(rows)))
        for i in range(rows):
            w.writerow(
                [f"bench-{i:0{width}d}"]
                + [f"{name.replace('_', ' ').capitalize()} for bench row {i}." for name in columns]
            )
    return path


# --------------------------------------------------------------------------
# Reading a finished run
# --------------------------------------------------------------------------
@dataclass(slots=True)
class _Run:
    run_id: str
    rows: list[RowRecord]
    steps: list[StepRecord]
    start_event: dict[str, Any] | None
    summary_event: dict[str, Any] | None
    starts: int


def _read_log(
    out_dir: Path, run_id: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, int]:
    path = out_dir / ENGINE_RUN_LOG
    start = summary = None
    starts = 0
    with contextlib.suppress(OSError), path.open(encoding="utf-8") as f:
        for line in f:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("run_id") != run_id:
                continue
            if event.get("event") == "start":
                start, starts = event, starts + 1
            elif event.get("event") == "summary":
                summary = event
    return start, summary, starts


def _load(out_dir: Path) -> _Run:
    try:
        journal = Journal.open(out_dir, read_only=True)
    except Exception as exc:  # JournalError, sqlite3.Error, OSError
        raise BenchError(str(exc)) from None
    with journal:
        rows = list(journal.rows())
        steps = [s for r in rows for s in journal.steps(r.row_id).values()]
        run_id = journal.run_id
    start, summary, starts = _read_log(out_dir, run_id)
    return _Run(run_id, rows, steps, start, summary, starts)


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).timestamp()
    except ValueError:
        return None


# --------------------------------------------------------------------------
# Where the time goes
# --------------------------------------------------------------------------
@dataclass(slots=True)
class StepTiming:
    """One step name's timings over the run's completed steps (seconds)."""

    step: str
    completed: int = 0
    failed: int = 0
    total: list[float] = field(default_factory=list)
    #: started_at -> intent_at: behind our concurrency caps and credit holds.
    ours: list[float] = field(default_factory=list)
    #: intent_at -> remote_at: our rate gate plus the POST's round trip.
    send: list[float] = field(default_factory=list)
    #: remote_at -> finished_at of a job: GEN's work plus our detection delay.
    gen: list[float] = field(default_factory=list)
    #: Sync steps without an intent (fill, download): gate + caps + round trip.
    request: list[float] = field(default_factory=list)
    #: With a ledger: started_at -> GEN created the job (every wait of ours).
    before_gen: list[float] = field(default_factory=list)
    #: With a ledger: GEN's own job time, and our detection delay after it.
    gen_job: list[float] = field(default_factory=list)
    detect: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"completed": self.completed, "failed": self.failed}
        for name in ("total", "ours", "send", "gen", "request", "before_gen", "gen_job", "detect"):
            values = getattr(self, name)
            if values:
                out[name] = _p(values)
        return out


@dataclass(slots=True)
class RunAnalysis:
    """The ``--from`` view: per step, per row, the request rate, the bottleneck."""

    out_dir: str
    run_id: str
    rows: dict[str, int]
    makespan: float
    steps: dict[str, StepTiming]
    row_seconds: dict[str, float | None]
    admission_wait: dict[str, float | None]
    peak_rows_in_flight: int
    gen_share: float
    requests: int | None
    api_requests: int | None
    rate_limited: int | None
    rate_limit: float | None
    rate_limit_source: str
    achieved_rate: float | None
    utilization: float | None
    bottleneck: str
    detection: dict[str, Any] | None = None
    #: With a ledger: share of the wait "on GEN" that was our detection delay.
    detect_share: float | None = None
    notes: list[str] = field(default_factory=list)
    gaps: tuple[str, ...] = JOURNAL_GAPS

    def to_json(self) -> dict[str, Any]:
        return {
            "out_dir": self.out_dir,
            "run_id": self.run_id,
            "rows": self.rows,
            "makespan_s": round(self.makespan, 3),
            "steps": {k: v.to_json() for k, v in self.steps.items()},
            "row_seconds": self.row_seconds,
            "admission_wait_s": self.admission_wait,
            "peak_rows_in_flight": self.peak_rows_in_flight,
            "gen_share": round(self.gen_share, 4),
            "requests": self.requests,
            "api_requests": self.api_requests,
            "rate_limited": self.rate_limited,
            "rate_limit": self.rate_limit,
            "rate_limit_source": self.rate_limit_source,
            "achieved_rate": None if self.achieved_rate is None else round(self.achieved_rate, 3),
            "utilization": None if self.utilization is None else round(self.utilization, 4),
            "bottleneck": self.bottleneck,
            "detection": self.detection,
            "detect_share": None if self.detect_share is None else round(self.detect_share, 4),
            "notes": self.notes,
            "journal_gaps": list(self.gaps),
        }

    def render(self) -> str:
        lines = [f"where the time goes — run {self.run_id} ({self.out_dir})"]
        r = self.rows
        lines.append(
            f"rows: {r.get('completed', 0)} completed, {r.get('failed', 0)} failed, "
            f"{r.get('skipped', 0)} skipped, {r.get('pending', 0) + r.get('running', 0)} "
            f"unfinished; makespan {self.makespan:.2f} s; peak rows in flight "
            f"{self.peak_rows_in_flight}"
        )
        lines.append(
            f"per row: p50 {_fmt(self.row_seconds['p50'])} s, p95 "
            f"{_fmt(self.row_seconds['p95'])} s; waiting to be admitted p50 "
            f"{_fmt(self.admission_wait['p50'])} s, p95 {_fmt(self.admission_wait['p95'])} s; "
            f"{self.gen_share:.0%} of row time waiting on GEN"
        )
        lines.append("")
        has_ledger = any(t.gen_job for t in self.steps.values())
        head = f"{'step':<22}{'n':>6}  {'total':>15}  {'our caps':>15}  {'gate+POST':>15}"
        head += f"  {'on GEN':>15}  {'request':>15}"
        if has_ledger:
            head += f"  {'GEN job':>15}  {'detection':>15}"
        lines.append(head + "     (p50 / p95 seconds)")
        for name, t in self.steps.items():
            cols = [t.total, t.ours, t.send, t.gen, t.request]
            if has_ledger:
                cols += [t.gen_job, t.detect]
            lines.append(
                f"{name:<22}{t.completed:>6}  " + "  ".join(f"{_pair(c):>15}" for c in cols)
            )
        lines.append("")
        if self.achieved_rate is not None and self.rate_limit is not None:
            lines.append(
                f"requests: {self.api_requests} to the API ({self.requests} with CDN), "
                f"{self.rate_limited} answered 429; achieved {self.achieved_rate:.2f}/s "
                f"against a limit of {self.rate_limit:g}/s ({self.rate_limit_source}) = "
                f"{(self.utilization or 0):.0%}"
            )
        else:
            lines.append("requests: unknown (no summary in run.log)")
        if self.detection:
            d = self.detection
            lines.append(
                f"detection delay: p50 {_fmt(d['p50_s'])} s, p95 {_fmt(d['p95_s'])} s "
                f"(p50 {_pct(d['p50_fraction'])} of the job's duration) over {d['jobs']} jobs"
            )
        lines.append(f"bottleneck: {self.bottleneck}")
        for note in self.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def _pair(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{_fmt(percentile(values, 0.5))} / {_fmt(percentile(values, 0.95))}"


def _base(step: str) -> str:
    return step.split(":", 1)[0]


def _ledger_index(ledger: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    if not ledger:
        return {}
    return {str(g["id"]): g for g in ledger.get("generations", [])}


def _peak(intervals: Iterable[tuple[float, float]]) -> int:
    events: list[tuple[float, int]] = []
    for a, b in intervals:
        events += [(a, 1), (b, -1)]
    peak = now = 0
    for _, d in sorted(events, key=lambda e: (e[0], e[1])):
        now += d
        peak = max(peak, now)
    return peak


def _detection(
    steps: Iterable[StepRecord], gens: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any] | None:
    delays: list[float] = []
    fractions: list[float] = []
    jobs: list[float] = []
    by_kind: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for s in steps:
        if s.status != "completed" or s.remote_id is None or s.finished_at is None:
            continue
        if _base(s.step) not in _ASYNC_STEPS:
            continue
        g = gens.get(s.remote_id)
        if g is None or g.get("completed_at") is None or g.get("created_at") is None:
            continue
        duration = float(g["completed_at"]) - float(g["created_at"])
        delay = max(0.0, s.finished_at - float(g["completed_at"]))
        delays.append(delay)
        jobs.append(duration)
        if duration > 0:
            fractions.append(delay / duration)
        by_kind[str(g.get("type"))].append((delay, duration))
    if not delays:
        return None
    return {
        "jobs": len(delays),
        "p50_s": round(percentile(delays, 0.5) or 0.0, 4),
        "p95_s": round(percentile(delays, 0.95) or 0.0, 4),
        "p50_job_s": round(percentile(jobs, 0.5) or 0.0, 4),
        "p50_fraction": round(percentile(fractions, 0.5) or 0.0, 4),
        "p95_fraction": round(percentile(fractions, 0.95) or 0.0, 4),
        "by_kind": {
            kind: {
                "jobs": len(v),
                "p50_s": round(percentile([d for d, _ in v], 0.5) or 0.0, 4),
                "p95_s": round(percentile([d for d, _ in v], 0.95) or 0.0, 4),
                "p50_job_s": round(percentile([j for _, j in v], 0.5) or 0.0, 4),
                "p50_fraction": round(percentile([d / j for d, j in v if j > 0], 0.5) or 0.0, 4),
            }
            for kind, v in sorted(by_kind.items())
        },
    }


def analyze(out_dir: Path | str, ledger: Mapping[str, Any] | None = None) -> RunAnalysis:
    """Where a finished run's time went, from its journal and run.log.

    ``ledger`` (a simulator ledger, trimmed or whole) adds GEN's own job
    times; when not given, a ``bench_ledger.json`` next to the journal is used
    if present.  Raises :class:`BenchError` when ``out_dir`` has no journal.
    """
    out = Path(out_dir)
    run = _load(out)
    if ledger is None:
        with contextlib.suppress(OSError, ValueError):
            ledger = json.loads((out / ENGINE_BENCH_LEDGER_FILE).read_text())
    gens = _ledger_index(ledger)
    notes: list[str] = []

    # -- steps ------------------------------------------------------------
    timings: dict[str, StepTiming] = {}
    for s in run.steps:
        t = timings.setdefault(s.step, StepTiming(s.step))
        if s.status != "completed":
            if s.status in ("failed", "stopped"):
                t.failed += 1
            continue
        t.completed += 1
        start = s.started_at if s.started_at is not None else s.intent_at
        if start is not None and s.finished_at is not None:
            t.total.append(s.finished_at - start)
        if s.intent_at is not None:
            if s.started_at is not None:
                t.ours.append(max(0.0, s.intent_at - s.started_at))
            if s.remote_at is not None:
                t.send.append(s.remote_at - s.intent_at)
                if _base(s.step) in _ASYNC_STEPS and s.finished_at is not None:
                    t.gen.append(s.finished_at - s.remote_at)
        elif start is not None and s.finished_at is not None:
            t.request.append(s.finished_at - start)
        g = gens.get(s.remote_id) if s.remote_id is not None else None
        if g is not None and _base(s.step) in _ASYNC_STEPS and g.get("completed_at") is not None:
            created, completed = float(g["created_at"]), float(g["completed_at"])
            if start is not None:
                t.before_gen.append(max(0.0, created - start))
            t.gen_job.append(completed - created)
            if s.finished_at is not None:
                t.detect.append(max(0.0, s.finished_at - completed))
    order = {"clone": 0, "fill": 1, "upload": 2, "generate": 3, "render": 4, "download": 5}
    steps = dict(sorted(timings.items(), key=lambda kv: (order.get(_base(kv[0]), 9), kv[0])))

    # -- rows ---------------------------------------------------------------
    counts = Counter(r.status for r in run.rows)
    spans = [
        (r.started_at, r.finished_at)
        for r in run.rows
        if r.started_at is not None and r.finished_at is not None
    ]
    starts = [r.started_at for r in run.rows if r.started_at is not None]
    t0 = _epoch(run.start_event.get("t")) if run.start_event else None
    if t0 is None or (starts and t0 > min(starts)):
        t0 = min(starts) if starts else 0.0
    ends = [b for _, b in spans]
    makespan = (max(ends) - t0) if ends else 0.0
    if run.summary_event and run.starts == 1:
        makespan = float(run.summary_event.get("seconds") or makespan)
    row_secs = [b - a for a, b in spans]
    admission = [a - t0 for a in starts]
    by_row: dict[str, list[StepRecord]] = defaultdict(list)
    for s in run.steps:
        by_row[s.row_id].append(s)
    gen_time = 0.0
    for r in run.rows:
        if r.status != "completed":
            continue
        gen_time += _union_length(
            (s.remote_at, s.finished_at)
            for s in by_row[r.row_id]
            if _base(s.step) in _ASYNC_STEPS
            and s.remote_at is not None
            and s.finished_at is not None
        )
    done_time = sum(b - a for r, (a, b) in _completed_spans(run.rows))
    gen_share = gen_time / done_time if done_time > 0 else 0.0

    # -- requests against the limit --------------------------------------------
    summary = run.summary_event or {}
    requests = summary.get("requests")
    rate_limited = summary.get("rate_limited")
    downloads = sum(1 for s in run.steps if s.step == STEP_DOWNLOAD and s.status == "completed")
    api: int | None = None
    if ledger:
        by_route = _admin_free(ledger.get("requests", {}).get("by_route", {}))
        api = api_requests(by_route)
        rate_limited = int(ledger.get("requests", {}).get("by_status", {}).get("429", 0))
    elif isinstance(requests, int):
        api = max(0, requests - downloads)  # CDN downloads are not rate limited
    if run.starts > 1:
        notes.append(
            f"the run was started {run.starts} times (resumed); counts are the last "
            "invocation's, times span all of them"
        )
    limit: float | None
    if run.start_event is not None and run.start_event.get("rate") is not None:
        limit, source = float(run.start_event["rate"]), "--rate of the run"
    elif run.start_event is not None:
        limit, source = ENGINE_RATE_DEFAULT, "engine default; the run had no --rate"
    else:
        limit, source = None, "unknown (no run.log)"
    achieved = api / makespan if api is not None and makespan > 0 else None
    util = achieved / limit if achieved is not None and limit else None

    detection = _detection(run.steps, gens) if gens else None
    waited_on_gen = sum(sum(t.gen_job) + sum(t.detect) for t in steps.values())
    detect_share = (
        sum(sum(t.detect) for t in steps.values()) / waited_on_gen if waited_on_gen > 0 else None
    )
    analysis = RunAnalysis(
        out_dir=str(out),
        run_id=run.run_id,
        rows={
            k: counts.get(k, 0) for k in ("completed", "failed", "skipped", "pending", "running")
        },
        makespan=makespan,
        steps=steps,
        row_seconds=_p(row_secs),
        admission_wait=_p(admission),
        peak_rows_in_flight=_peak(spans),
        gen_share=gen_share,
        requests=requests if isinstance(requests, int) else None,
        api_requests=api,
        rate_limited=rate_limited if isinstance(rate_limited, int) else None,
        rate_limit=limit,
        rate_limit_source=source,
        achieved_rate=achieved,
        utilization=util,
        bottleneck="",
        detection=detection,
        detect_share=detect_share,
        notes=notes,
    )
    analysis.bottleneck = _bottleneck(analysis, row_secs, admission)
    if not run.rows:
        analysis.bottleneck = "nothing ran: the journal has no rows"
    return analysis


def _completed_spans(
    rows: Iterable[RowRecord],
) -> Iterator[tuple[RowRecord, tuple[float, float]]]:
    for r in rows:
        if r.status == "completed" and r.started_at is not None and r.finished_at is not None:
            yield r, (r.started_at, r.finished_at)


def _bottleneck(a: RunAnalysis, row_secs: list[float], admission: list[float]) -> str:
    """One sentence naming what held the run back, with the figure that shows it."""
    util = a.utilization
    row_p50 = percentile(row_secs, 0.5) or 0.0
    adm_p50 = percentile(admission, 0.5) or 0.0
    if util is not None and a.rate_limit is not None and util >= ENGINE_BENCH_RATE_BOUND:
        return (
            f"the rate limit: requests went out at {a.achieved_rate:.1f}/s of the "
            f"{a.rate_limit:g}/s allowed ({util:.0%}); more rows/hour need a higher limit "
            "or fewer requests per row."
        )
    waited = max(
        ((percentile(t.ours, 0.5) or 0.0, name) for name, t in a.steps.items() if t.ours),
        default=(0.0, ""),
    )
    used = f"the rate gate was {util:.0%} used" if util is not None else "request rate unknown"
    d = a.detection
    # Share of all row time that was detection delay (ledger needed).
    lag = a.gen_share * a.detect_share if a.detect_share is not None else 0.0
    if lag >= 0.25 and d is not None:
        return (
            f"our poll schedule: {lag:.0%} of row time passed between GEN finishing a job "
            f"and genbatch noticing (detection delay p50 {d['p50_s']:.3g} s, p95 "
            f"{d['p95_s']:.3g} s, on jobs of p50 {d['p50_job_s']:.3g} s), so rows held their "
            f"in-flight slots longer than GEN needed ({used})."
        )
    if a.gen_share >= 0.5 and adm_p50 > 0.5 * row_p50 and a.peak_rows_in_flight > 0:
        return (
            f"GEN's job latency times the rows-in-flight cap: {a.peak_rows_in_flight} rows "
            f"at a time spent {a.gen_share:.0%} of their time waiting on GEN while the "
            f"median row waited {adm_p50:.3g} s to start ({used}); raise --max-concurrency."
        )
    if waited[0] > 0.25 * row_p50 and row_p50 > 0:
        return (
            f"our own {waited[1]} cap: its p50 wait before sending was {waited[0]:.3g} s "
            f"of a {row_p50:.3g} s row ({used})."
        )
    if a.gen_share >= 0.5:
        return (
            f"GEN's job latency: rows spent {a.gen_share:.0%} of their time waiting on "
            f"GEN's jobs (p50 row {row_p50:.3g} s) and nothing of ours was saturated ({used})."
        )
    # Most of a row is spent on our side of the wire: say which part.
    send = max(
        ((percentile(t.send, 0.5) or 0.0, name) for name, t in a.steps.items() if t.send),
        default=(0.0, ""),
    )
    sync = max(
        ((percentile(t.request, 0.5) or 0.0, name) for name, t in a.steps.items() if t.request),
        default=(0.0, ""),
    )
    if send[0] >= sync[0] and send[0] > 0:
        return (
            f"the rate gate ahead of each request: {send[1]} waited p50 {send[0]:.3g} s from "
            f"intent to answer in a {row_p50:.3g} s row, and only {a.gen_share:.0%} of row "
            f"time was spent waiting on GEN ({used})."
        )
    return (
        f"request round trips and our own overhead: {sync[1] or 'requests'} took p50 "
        f"{sync[0]:.3g} s and only {a.gen_share:.0%} of row time was spent waiting on GEN "
        f"({used})."
    )


# --------------------------------------------------------------------------
# The bench
# --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BenchOptions:
    rows: int = ENGINE_BENCH_ROWS
    sim: SimSpec = field(default_factory=SimSpec)
    template: str = ENGINE_BENCH_TEMPLATE
    out_dir: Path | None = None
    #: The rate genbatch is told (--rate of the run); default: the sim's limit.
    client_rate: float | None = None
    max_concurrency: int | None = None


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
            "analysis": self.analysis.to_json(),
        }

    def render(self) -> str:
        o, lb, rq, pl = self.options, self.lower_bound, self.requests, self.polls
        lines = [
            f"genbatch bench: {o['rows']} rows of {o['template']}, sim rate {o['rate']:g}/s "
            f"burst {o['burst']}, time scale {o['time_scale']:g}, faults "
            f"{o['faults'] or 'none'} (out: {self.out_dir})",
            f"rows: {self.rows.get('completed', 0)} completed, {self.rows.get('failed', 0)} "
            f"failed, {self.rows.get('skipped', 0)} skipped",
            f"makespan: {self.makespan:.2f} s   lower bound: {lb['bound_s']:.2f} s "
            f"({lb['which']})   ratio: {lb['ratio']:.3f}",
            f"  bound by requests: ({lb['required_requests']} required - {lb['burst']} burst) "
            f"/ {lb['rate']:g}/s = {lb['rate_bound_s']:.2f} s; longest row's critical path "
            f"{lb['critical_path_s']:.2f} s",
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
        lines.append(
            f"client: {c['cpu_s']:.2f} s CPU ({c['startup_cpu_s']:.2f} s of it interpreter "
            f"start) = {c['cpu_us_per_request']:.0f} us per request; peak RSS "
            f"{c['peak_rss_mb']:.1f} MB"
        )
        rh = self.rows_per_hour
        lines.append(
            f"rows/hour: {rh['measured']:,.0f} measured at time scale {o['time_scale']:g}; "
            f"real time at most {rh['real_time']:,.0f} ({rh['binding']} binds: rate limit "
            f"{rh['rate_bound']:,.0f}/h, rows in flight {rh['concurrency_bound']:,.0f}/h)"
        )
        lines.append("")
        lines.append(self.analysis.render())
        return "\n".join(lines)


def _default_out() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(ENGINE_BENCH_OUT_ROOT) / f"{stamp}-{os.getpid()}"


def _wait_child(proc: subprocess.Popen[bytes]) -> tuple[int, Any]:
    """Reap exactly this child and return (exit code, its rusage)."""
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    return code, usage


def _startup_cpu() -> float:
    """CPU seconds an interpreter needs just to import `genbatch run`'s modules."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import genbatch.cli as c; c.build_parser()"],
        stdin=subprocess.DEVNULL,
    )
    _, usage = _wait_child(proc)
    return float(usage.ru_utime + usage.ru_stime)


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


def run_bench(opts: BenchOptions, log: IO[str] | None = None) -> BenchReport:
    """Run one bench end to end (blocking); see the module docstring."""
    spec = opts.sim
    out = (opts.out_dir or _default_out()).resolve()
    out.mkdir(parents=True, exist_ok=True)
    table = synthetic_table(out / ENGINE_BENCH_TABLE_FILE, opts.rows, opts.template)
    client_rate = opts.client_rate if opts.client_rate is not None else spec.rate

    def say(msg: str) -> None:
        if log is not None:
            print(msg, file=log, flush=True)

    startup = _startup_cpu()
    with SimProcess(spec, out / ENGINE_BENCH_SIM_LOG) as sim:
        say(f"bench: simulator at {sim.url}; running {opts.rows} rows through genbatch run")
        argv = [
            sys.executable,
            "-m",
            "genbatch",
            "run",
            str(table),
            "--template",
            opts.template,
            "--agent",
            str(SIM_DEMO_AGENT_ID),
            "--base-url",
            f"{sim.url}/v1",
            "--sim-time-scale",
            repr(spec.time_scale),
            "--rate",
            repr(client_rate),
            "--out",
            str(out),
            "--fresh",
            "--quiet",
            "--json",
        ]
        if opts.max_concurrency is not None:
            argv += ["--max-concurrency", str(opts.max_concurrency)]
        env = {**os.environ, CLIENT_ENV_API_KEY: SIM_DEMO_API_KEY}
        with (
            (out / "bench_run.json").open("wb") as stdout,
            (out / "bench_run.err").open("wb") as stderr,
        ):
            t0 = time.monotonic()
            proc = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
                argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=env
            )
            code, usage = _wait_child(proc)
            wall = time.monotonic() - t0
        try:
            summary: dict[str, Any] = json.loads((out / "bench_run.json").read_text())
        except ValueError:
            err = (out / "bench_run.err").read_text(errors="replace")[-2000:]
            raise BenchError(f"genbatch run exited {code} without a summary:\n{err}") from None
        full = sim.ledger()
    ledger = trim_ledger(full)
    (out / ENGINE_BENCH_LEDGER_FILE).write_text(json.dumps(ledger))
    report = _report(opts, out, table, summary, ledger, usage, startup, wall, client_rate)
    (out / ENGINE_BENCH_REPORT_FILE).write_text(json.dumps(report.to_json(), indent=2))
    return report


def _report(
    opts: BenchOptions,
    out: Path,
    table: Path,
    summary: Mapping[str, Any],
    ledger: Mapping[str, Any],
    usage: Any,
    startup: float,
    wall: float,
    client_rate: float,
) -> BenchReport:
    spec = opts.sim
    analysis = analyze(out, ledger)
    gens = _ledger_index(ledger)
    by_route = _admin_free(ledger["requests"]["by_route"])
    by_status = dict(ledger["requests"]["by_status"])
    # The admin reads are not the client's: take them out of the status counts too.
    admin = sum(v for k, v in ledger["requests"]["by_route"].items() if "/_sim/" in k)
    if admin and by_status.get("200", 0) >= admin:
        by_status["200"] -= admin
    api = api_requests(by_route)
    total = sum(by_route.values())

    # Lower bound: requests the work needs (one poll per job) through the
    # bucket, or the slowest row's chain of jobs, whichever is longer.
    required = _required_requests(opts.template, table) + 2  # preflight: agent + org
    rate_bound = max(0, required - spec.burst) / spec.rate if spec.rate > 0 else math.inf
    with Journal.open(out, read_only=True) as journal:
        run_steps = {r.row_id: journal.steps(r.row_id) for r in journal.rows("completed")}
    paths = _critical_paths(opts.template, table, run_steps, gens)
    critical = max(paths, default=0.0)
    bound = max(rate_bound, critical)
    makespan = float(summary.get("seconds") or analysis.makespan)

    polls = by_route.get(_ROUTE_POLL, 0)
    n_gens = len(ledger.get("generations", []))
    cpu = float(usage.ru_utime + usage.ru_stime)
    client_requests = int(summary.get("requests") or 0)
    completed = int(summary.get("counts", {}).get("completed", 0))

    # Real-time projection: the rate limit is wall-clock already; GEN's part
    # of a row is scaled back up.  Rows/hour is the lower of the two ceilings.
    cap = opts.max_concurrency or ENGINE_ROWS_IN_FLIGHT
    per_row_api = api / completed if completed else math.inf
    rate_ceiling = spec.rate * 3600 / per_row_api if per_row_api > 0 else math.inf
    row_real = _mean_real_row_seconds(out, spec.time_scale)
    conc_ceiling = cap * 3600 / row_real if row_real > 0 else math.inf
    real = min(rate_ceiling, conc_ceiling)

    return BenchReport(
        options={
            "rows": opts.rows,
            "template": opts.template,
            "rate": spec.rate,
            "burst": spec.burst,
            "time_scale": spec.time_scale,
            "faults": spec.faults,
            "seed": spec.seed,
            "client_rate": client_rate,
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
            "rate_bound_s": round(rate_bound, 3),
            "critical_path_s": round(critical, 3),
            "bound_s": round(bound, 3),
            "which": "rate limit" if rate_bound >= critical else "critical path",
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
            "real_time": round(real, 1),
            "binding": "rate limit" if rate_ceiling <= conc_ceiling else "rows in flight",
            "rate_bound": round(rate_ceiling, 1),
            "concurrency_bound": round(conc_ceiling, 1),
            "api_requests_per_row": round(per_row_api, 3),
            "real_row_seconds": round(row_real, 2),
            "model": "min(rate x 3600 / API requests per row, rows in flight x 3600 / "
            "(row's wait on GEN / time scale + the rest of the row))",
        },
        credits=dict(ledger.get("credits", {})) | {"genbatch": summary.get("credits")},
        analysis=analysis,
    )


def _mean_real_row_seconds(out: Path, scale: float) -> float:
    """Mean completed row in real time: its wait on GEN / scale, the rest as measured."""
    with Journal.open(out, read_only=True) as journal:
        totals: list[float] = []
        for r in journal.rows("completed"):
            if r.started_at is None or r.finished_at is None:
                continue
            steps = journal.steps(r.row_id).values()
            gen = _union_length(
                (s.remote_at, s.finished_at)
                for s in steps
                if _base(s.step) in _ASYNC_STEPS
                and s.remote_at is not None
                and s.finished_at is not None
            )
            span = r.finished_at - r.started_at
            totals.append(gen / scale + max(0.0, span - gen) if scale > 0 else span)
    return sum(totals) / len(totals) if totals else 0.0
