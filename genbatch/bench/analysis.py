"""Where a finished run's time went: its journal, its run.log and, from a bench, the ledger.

:func:`analyze` works for any run's output dir, real GEN or simulated; a
bench leaves the simulator's ledger (:func:`trim_ledger`) next to the
journal, and when it is there GEN's own side (job start and completion)
splits the waiting further.  :class:`RunAnalysis` carries the figures
(``to_json``) and says them in words (``render``), naming the bottleneck.

What the journal can and cannot tell (see :data:`JOURNAL_GAPS`): per step it
stamps ``started_at`` (queued behind our gates), ``intent_at`` (past the
concurrency cap and the credit hold, about to send), ``remote_at`` (the
POST's answer arrived) and ``finished_at`` (we noticed the outcome).  It has
no stamp for "the request cleared the rate gate" and none for "GEN finished
the job", so without a ledger the rate-gate wait stays inside the POST's
round trip and the detection delay inside the wait on GEN.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from genbatch.bench.stats import peak_overlap, percentile, quantiles, union_length
from genbatch.engine.journal import Journal, RowRecord, StepRecord
from genbatch.engine.limits import ENGINE_RATE_DEFAULT
from genbatch.engine.progress import ENGINE_RUN_LOG
from genbatch.engine.rowplan import STEP_DOWNLOAD
from genbatch.errors import InputError

ENGINE_BENCH_LEDGER_FILE: Final = "bench_ledger.json"
#: Achieved request rate / limit at or above which the rate limit is named
#: the bottleneck (a strictly spaced gate never quite reaches 100 %).
ENGINE_BENCH_RATE_BOUND: Final = 0.85

__all__ = [
    "JOURNAL_GAPS",
    "BenchError",
    "RunAnalysis",
    "StepTiming",
    "analyze",
    "api_requests",
    "trim_ledger",
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
ASYNC_STEPS = frozenset({"generate", "render", "publish"})
#: The poll route, as the simulator's ledger names it.
ROUTE_POLL = "GET /v1/generations/{id}"


def base_step(step: str) -> str:
    """A step's kind: ``generate:broll`` -> ``generate``."""
    return step.split(":", 1)[0]


class BenchError(InputError):
    """The bench could not run (simulator did not start, run crashed, no journal)."""


# --------------------------------------------------------------------------
# The simulator's ledger
# --------------------------------------------------------------------------
def api_requests(by_route: Mapping[str, int]) -> int:
    """Requests that count against GEN's rate limit: not the CDN, storage or admin."""
    return sum(
        n
        for route, n in by_route.items()
        if " /v1/" in route or route.split(" ", 1)[-1].startswith("/v1")
    )


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


def ledger_index(ledger: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    """A ledger's generations by id (the journal's ``remote_id``)."""
    if not ledger:
        return {}
    return {str(g["id"]): g for g in ledger.get("generations", [])}


def admin_free(counter: Mapping[str, int]) -> dict[str, int]:
    """A ledger's request counts without the simulator's own admin routes (``/_sim/``)."""
    return {k: v for k, v in counter.items() if "/_sim/" not in k}


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
                out[name] = quantiles(values)
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
        if base_step(s.step) not in ASYNC_STEPS:
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
    gens = ledger_index(ledger)
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
                if base_step(s.step) in ASYNC_STEPS and s.finished_at is not None:
                    t.gen.append(s.finished_at - s.remote_at)
        elif start is not None and s.finished_at is not None:
            t.request.append(s.finished_at - start)
        g = gens.get(s.remote_id) if s.remote_id is not None else None
        if g is not None and base_step(s.step) in ASYNC_STEPS and g.get("completed_at") is not None:
            created, completed = float(g["created_at"]), float(g["completed_at"])
            if start is not None:
                t.before_gen.append(max(0.0, created - start))
            t.gen_job.append(completed - created)
            if s.finished_at is not None:
                t.detect.append(max(0.0, s.finished_at - completed))
    order = {"clone": 0, "fill": 1, "upload": 2, "generate": 3, "render": 4, "download": 5}
    steps = dict(sorted(timings.items(), key=lambda kv: (order.get(base_step(kv[0]), 9), kv[0])))

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
        gen_time += union_length(
            (s.remote_at, s.finished_at)
            for s in by_row[r.row_id]
            if base_step(s.step) in ASYNC_STEPS
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
        by_route = admin_free(ledger.get("requests", {}).get("by_route", {}))
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
        row_seconds=quantiles(row_secs),
        admission_wait=quantiles(admission),
        peak_rows_in_flight=peak_overlap(spans),
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
