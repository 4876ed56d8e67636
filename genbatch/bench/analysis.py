"""Where a finished run's time went: its journal, its run.log and, from a bench, the ledger.

:func:`analyze` works for any run's output dir, real GEN or simulated; a
bench leaves the simulator's ledger (:func:`trim_ledger`) next to the
journal, and when it is there GEN's own side (job start and completion)
splits the waiting further.  :class:`RunAnalysis` carries the figures
(``to_json``) and says them in words (``render``), naming the bottleneck.

What the journal can and cannot tell (see :data:`JOURNAL_GAPS`): per step it
stamps ``started_at`` (queued behind our gates), ``intent_at`` (past the
concurrency cap and the credit hold, about to send), ``remote_at`` (the
POST's answer arrived) and ``finished_at`` (we noticed the outcome); a paid
step also ``sent_at`` (the POST cleared the rate gate) and, for an async
job, the bracket it finished in: ``done_after`` (the last poll that saw it
unfinished was sent), ``done_by`` (the poll that saw it finished was
answered), ``done_at`` (the completion time, when the API gave one).

From those, :func:`split_step` splits each job's time between us and GEN on
any run, real or simulated: our rate-gate wait ``sent_at - intent_at``;
GEN's job time ``completion - sent_at``; our detection delay ``finished_at -
completion``, where the completion is ``done_at`` (exact), else the middle of
``[done_after, done_by]`` (± half its width), else ``done_by`` (the detection
delay is then a lower bound).  With a ledger GEN's own times are exact and
win; the journal's estimate is then checked against them (``vs_ledger``).
Journals from before those columns read them as NULL: the split is "n/a".
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

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
#: Issue 12's target: the median detection delay is at most this share of the
#: job's duration.
ENGINE_BENCH_DETECT_TARGET: Final = 0.10
#: Quantiles of the our-time/GEN's-time split: median and p90.
ENGINE_BENCH_SPLIT_QUANTILES: Final = (0.5, 0.9)

__all__ = [
    "JOURNAL_GAPS",
    "BenchError",
    "JobSplit",
    "RunAnalysis",
    "SplitTiming",
    "StepTiming",
    "analyze",
    "api_requests",
    "rate_line",
    "split_step",
    "trim_ledger",
]

#: Timestamps the journal does not keep, and what each would add (reported by
#: ``--from``; the analysis computes what it can without them).
JOURNAL_GAPS: tuple[str, ...] = (
    "steps has no column for when fill/download cleared their concurrency cap "
    "(only generate/render/clone/upload/publish have intent_at)",
    "runs.meta keeps no rate limit, and no table keeps request or poll counts: "
    "they come from run.log's start/summary events",
)
#: Added to the gaps when some job's completion is estimated from its poll bracket.
GAP_BRACKET: Final = (
    "without done_at a job's completion is only known to lie in [done_after, done_by]: "
    "GEN's job time and our detection delay are then its middle, ± half the bracket "
    "(done_by alone: the detection delay is a lower bound)"
)
#: Added to the gaps when no completed step of the run has ``sent_at``.
GAP_NO_SENT_AT: Final = (
    "no step has sent_at (a journal written before it existed, or a run that did "
    "not record it): remote_at - intent_at mixes our rate-gate wait with the POST's "
    "round trip, and the gate wait is n/a"
)
#: Added to the gaps when no completed async step has ``done_after``/``done_by``/``done_at``.
GAP_NO_DONE: Final = (
    "no job has done_after/done_by/done_at (a journal written before they existed, or "
    "a run that did not record them): finished_at - remote_at mixes GEN's job time "
    "with our detection delay, which then needs the simulator ledger"
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


Basis = Literal["exact", "bracket", "poll"]
#: What each basis of a completion estimate means, for the report.
BASIS_WORDS: Final[dict[str, str]] = {
    "exact": "exact (the API's completion time)",
    "bracket": "middle of the poll bracket (± half its width)",
    "poll": "the finishing poll only (detection is a lower bound)",
}


@dataclass(frozen=True, slots=True)
class JobSplit:
    """One completed step's time split between us and GEN, from its journal stamps alone.

    Every figure is None when the stamps it needs are NULL (an older journal).
    """

    #: Our rate-gate wait: ``sent_at - intent_at``.
    gate: float | None
    #: When GEN finished the job, as best the journal knows (epoch seconds).
    completion: float | None
    basis: Basis | None
    #: ``done_by - done_after`` when ``completion`` is that bracket's middle.
    bracket: float | None
    #: GEN's job time: ``completion - sent_at``.
    gen: float | None
    #: Our detection delay: ``finished_at - completion``.
    detect: float | None

    @property
    def share(self) -> float | None:
        """Detection delay as a share of the job's duration."""
        if self.gen is None or self.detect is None or self.gen <= 0:
            return None
        return self.detect / self.gen


def split_step(s: StepRecord) -> JobSplit:
    """Split one step: see the module docstring for the formulas."""
    gate = None
    if s.sent_at is not None and s.intent_at is not None:
        gate = max(0.0, s.sent_at - s.intent_at)
    completion: float | None = None
    basis: Basis | None = None
    bracket: float | None = None
    if s.done_at is not None:
        completion, basis = s.done_at, "exact"
    elif s.done_after is not None and s.done_by is not None:
        completion, basis = (s.done_after + s.done_by) / 2, "bracket"
        bracket = max(0.0, s.done_by - s.done_after)
    elif s.done_by is not None:
        completion, basis = s.done_by, "poll"
    gen = detect = None
    if completion is not None:
        if s.sent_at is not None:
            gen = max(0.0, completion - s.sent_at)
        if s.finished_at is not None:
            detect = max(0.0, s.finished_at - completion)
    return JobSplit(gate, completion, basis, bracket, gen, detect)


def _q(values: Sequence[float]) -> dict[str, float | None] | None:
    """Median and p90, or None ("n/a") for no values."""
    return quantiles(values, ENGINE_BENCH_SPLIT_QUANTILES) if values else None


@dataclass(slots=True)
class SplitTiming:
    """One step name's jobs split between our time and GEN's (seconds).

    ``gen``/``detect``/``share`` come from the journal's estimate; with a
    ledger, ``gen_exact``/``detect_exact``/``share_exact`` are GEN's own
    figures (and win), and ``completion_error`` is how far the journal's
    completion estimate was from the ledger's ``completed_at``.
    """

    step: str
    jobs: int = 0
    gate: list[float] = field(default_factory=list)
    gen: list[float] = field(default_factory=list)
    detect: list[float] = field(default_factory=list)
    share: list[float] = field(default_factory=list)
    bracket: list[float] = field(default_factory=list)
    basis: Counter[str] = field(default_factory=Counter)
    gen_exact: list[float] = field(default_factory=list)
    detect_exact: list[float] = field(default_factory=list)
    share_exact: list[float] = field(default_factory=list)
    #: Journal's completion estimate - ledger's completed_at, per job.
    completion_error: list[float] = field(default_factory=list)
    #: Jobs with a poll bracket and a ledger time, and how many had it inside.
    bracketed: int = 0
    inside: int = 0

    def add(self, s: StepRecord, g: Mapping[str, Any] | None, job: bool) -> None:
        """Count one completed step (``job``: an async job GEN ran; ``g``: its ledger entry)."""
        js = split_step(s)
        if js.gate is not None:
            self.gate.append(js.gate)
        if not job:
            return
        self.jobs += 1
        if js.basis is not None:
            self.basis[js.basis] += 1
        if js.bracket is not None:
            self.bracket.append(js.bracket)
        if js.gen is not None:
            self.gen.append(js.gen)
        if js.detect is not None:
            self.detect.append(js.detect)
        if js.share is not None:
            self.share.append(js.share)
        if g is None or g.get("completed_at") is None or g.get("created_at") is None:
            return
        created, completed = float(g["created_at"]), float(g["completed_at"])
        self.gen_exact.append(completed - created)
        if s.finished_at is not None:
            delay = max(0.0, s.finished_at - completed)
            self.detect_exact.append(delay)
            if completed > created:
                self.share_exact.append(delay / (completed - created))
        if js.completion is not None:
            self.completion_error.append(js.completion - completed)
        if s.done_after is not None and s.done_by is not None:
            self.bracketed += 1
            self.inside += s.done_after <= completed <= s.done_by

    def extend(self, other: SplitTiming) -> None:
        self.jobs += other.jobs
        for name in (
            "gate",
            "gen",
            "detect",
            "share",
            "bracket",
            "gen_exact",
            "detect_exact",
            "share_exact",
            "completion_error",
        ):
            getattr(self, name).extend(getattr(other, name))
        self.basis.update(other.basis)
        self.bracketed += other.bracketed
        self.inside += other.inside

    @property
    def exact(self) -> bool:
        """GEN's side comes from the ledger (exact) rather than the journal's estimate."""
        return bool(self.gen_exact)

    @property
    def source(self) -> str | None:
        if self.exact:
            return "ledger"
        return "journal" if self.gen or self.detect else None

    def figures(self) -> tuple[list[float], list[float], list[float]]:
        """(GEN time, detection delay, detection share) from the best source."""
        if self.exact:
            return self.gen_exact, self.detect_exact, self.share_exact
        return self.gen, self.detect, self.share

    @property
    def share_p50(self) -> float | None:
        return percentile(self.figures()[2], 0.5)

    def vs_ledger(self) -> dict[str, Any] | None:
        """How far the journal's completion estimate was from the ledger (a sanity figure)."""
        err = self.completion_error
        if not err:
            return None
        return {
            "jobs": len(err),
            "abs_error_s": _q([abs(e) for e in err]),
            "bias_s": round(percentile(err, 0.5) or 0.0, 4),
            "inside_bracket": round(self.inside / self.bracketed, 4) if self.bracketed else None,
        }

    def to_json(self) -> dict[str, Any]:
        gen, detect, share = self.figures()
        p50 = percentile(share, 0.5)
        return {
            "jobs": self.jobs,
            "source": self.source,
            "gate_s": _q(self.gate),
            "gen_s": _q(gen),
            "detect_s": _q(detect),
            "detect_share_p50": None if p50 is None else round(p50, 4),
            "bracket_s": _q(self.bracket),
            "basis": dict(self.basis),
            "vs_ledger": self.vs_ledger(),
        }


#: How an untold run came by its final rate (the summary's ``rate.source``).
RATE_SOURCE_WORDS: Final[dict[str, str]] = {
    "header": "published in the server's rate headers",
    "probing": "still probing",
    "ceiling": "the ceiling: no limit seen",
}


def rate_line(told: float | None, rate: Mapping[str, Any] | None) -> str:
    """``rate: told N/s`` or ``rate: untold (discovered X/s)`` from a run's start and summary.

    ``told``: the run's ``--rate`` (None: not told); ``rate``: the summary's
    ``{"final", "source", "ceiling"}`` object when the run reported one.
    """
    final = _number(rate.get("final")) if rate else None
    source = rate.get("source") if rate else None
    ceiling = _number(rate.get("ceiling")) if rate else None
    if told is not None or source == "told":
        value = told if told is not None else final
        text = f"rate: told {value:g}/s" if value is not None else "rate: told"
        if told is not None and final is not None and final != told:
            text += f" (ended at {final:g}/s)"
        return text
    if final is None:
        return "rate: untold (discovered rate not reported)"
    how = ""
    if isinstance(source, str) and source in RATE_SOURCE_WORDS:
        how = f", {RATE_SOURCE_WORDS[source]}"
    if ceiling is not None and source != "ceiling":
        how += f"; ceiling {ceiling:g}/s"
    return f"rate: untold (discovered {final:g}/s{how})"


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
    #: Share of the wait "on GEN" that was our detection delay (ledger, else journal).
    detect_share: float | None = None
    #: Per step name: our rate-gate wait, GEN's job time, our detection delay.
    split: dict[str, SplitTiming] = field(default_factory=dict)
    #: Every async job of the run, for the target check.
    split_all: SplitTiming = field(default_factory=lambda: SplitTiming("all jobs"))
    #: The run's --rate (None: untold) and its summary's rate object, from run.log.
    rate_told: float | None = None
    rate: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    gaps: tuple[str, ...] = JOURNAL_GAPS

    @property
    def detect_target_met(self) -> bool | None:
        """Median detection delay <= :data:`ENGINE_BENCH_DETECT_TARGET` of the job (None: n/a)."""
        p50 = self.split_all.share_p50
        return None if p50 is None else p50 <= ENGINE_BENCH_DETECT_TARGET

    def split_json(self) -> dict[str, Any]:
        return {
            "steps": {k: v.to_json() for k, v in self.split.items()},
            "all": self.split_all.to_json(),
            "target_share": ENGINE_BENCH_DETECT_TARGET,
            "target_met": self.detect_target_met,
        }

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
            "split": self.split_json(),
            "rate_told": self.rate_told,
            "rate": self.rate,
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
        lines += self.render_split()
        lines.append("")
        if self.rate_told is not None or self.rate is not None or self.rate_limit is not None:
            lines.append(rate_line(self.rate_told, self.rate))
        if self.achieved_rate is not None and self.rate_limit is not None:
            lines.append(
                f"requests: {self.api_requests} to the API ({self.requests} with CDN), "
                f"{self.rate_limited} answered 429; achieved {self.achieved_rate:.2f}/s "
                f"against a limit of {self.rate_limit:g}/s ({self.rate_limit_source}) = "
                f"{(self.utilization or 0):.0%}"
            )
        elif self.achieved_rate is not None:
            lines.append(
                f"requests: {self.api_requests} to the API ({self.requests} with CDN), "
                f"{self.rate_limited} answered 429; achieved {self.achieved_rate:.2f}/s; "
                f"limit {self.rate_limit_source}"
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

    def render_split(self) -> list[str]:
        """The our-time/GEN's-time table, its source, and the detection target."""
        rows = [*self.split.items(), ("all jobs", self.split_all)]
        exact = self.split_all.exact
        source = (
            "GEN time and detection exact from the simulator ledger"
            if exact
            else "GEN time and detection estimated from the journal"
        )
        lines = [
            f"our time vs GEN's per job (p50 / p90 s; {source}; share = detection / GEN "
            "time, p50; bracket = done_by - done_after, a bracketed estimate is ± half of it)",
            f"{'step':<22}{'jobs':>6}  {'gate wait':>15}  {'GEN time':>15}  "
            f"{'detection':>15}  {'share':>7}  {'bracket':>15}",
        ]
        for name, t in rows:
            gen, detect, _ = t.figures()
            lines.append(
                f"{name:<22}{t.jobs:>6}  {_pair90(t.gate):>15}  {_pair90(gen):>15}  "
                f"{_pair90(detect):>15}  {_pct_na(t.share_p50):>7}  {_pair90(t.bracket):>15}"
            )
        p50, met = self.split_all.share_p50, self.detect_target_met
        verdict = "n/a" if met is None else ("met" if met else "missed")
        lines.append(
            f"median detection delay {_pct_na(p50)} of the job's duration: target <= "
            f"{ENGINE_BENCH_DETECT_TARGET:.0%} {verdict}"
        )
        basis = self.split_all.basis
        if basis:
            lines.append(
                "journal's completion estimate: "
                + ", ".join(f"{basis[k]} {w}" for k, w in BASIS_WORDS.items() if basis[k])
            )
        check = self.split_all.vs_ledger()
        if check is not None:
            err = check["abs_error_s"] or {}
            inside = check["inside_bracket"]
            lines.append(
                f"journal vs ledger: completion estimate off by p50 {_fmt(err.get('p50'))} s, "
                f"p90 {_fmt(err.get('p90'))} s (bias {check['bias_s']:+.4f} s) over "
                f"{check['jobs']} jobs"
                + (
                    f"; {inside:.0%} of GEN's completions inside the poll bracket"
                    if inside is not None
                    else ""
                )
            )
        return lines


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def _pct_na(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def _pair90(values: Sequence[float]) -> str:
    """Median / p90, or n/a (the journal did not have the stamps)."""
    if not values:
        return "n/a"
    return f"{_fmt(percentile(values, 0.5))} / {_fmt(percentile(values, 0.9))}"


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
    splits: dict[str, SplitTiming] = {}
    for s in run.steps:
        t = timings.setdefault(s.step, StepTiming(s.step))
        if s.status != "completed":
            if s.status in ("failed", "stopped"):
                t.failed += 1
            continue
        t.completed += 1
        job = base_step(s.step) in ASYNC_STEPS
        if job or s.sent_at is not None:
            g_split = gens.get(s.remote_id) if s.remote_id is not None else None
            splits.setdefault(s.step, SplitTiming(s.step)).add(s, g_split, job)
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

    def in_order(item: tuple[str, Any]) -> tuple[int, str]:
        return order.get(base_step(item[0]), 9), item[0]

    steps = dict(sorted(timings.items(), key=in_order))
    split = dict(sorted(splits.items(), key=in_order))
    split_all = SplitTiming("all jobs")
    for name, st in split.items():
        if base_step(name) in ASYNC_STEPS:
            split_all.extend(st)

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
    told = _number(run.start_event.get("rate")) if run.start_event else None
    rate_obj = summary.get("rate")
    rate = dict(rate_obj) if isinstance(rate_obj, Mapping) else None
    limit, source = _rate_limit(ledger, told, rate, run.summary_event is not None)
    achieved = api / makespan if api is not None and makespan > 0 else None
    util = achieved / limit if achieved is not None and limit else None

    detection = _detection(run.steps, gens) if gens else None
    if split_all.exact:
        gen_secs, detect_secs = sum(split_all.gen_exact), sum(split_all.detect_exact)
    else:  # the journal's estimate, over the jobs that have both figures
        pairs = [(js.gen, js.detect) for js in _job_splits(run.steps)]
        gen_secs = sum(g for g, d in pairs if g is not None and d is not None)
        detect_secs = sum(d for g, d in pairs if g is not None and d is not None)
    detect_share = detect_secs / (gen_secs + detect_secs) if gen_secs + detect_secs > 0 else None
    gaps = JOURNAL_GAPS
    done = [s for s in run.steps if s.status == "completed"]
    if not any(s.sent_at is not None for s in done):
        gaps += (GAP_NO_SENT_AT,)
    if not any(split_step(s).completion is not None for s in done):
        gaps += (GAP_NO_DONE,)
    if split_all.basis["bracket"] or split_all.basis["poll"]:
        gaps += (GAP_BRACKET,)
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
        split=split,
        split_all=split_all,
        rate_told=told,
        rate=rate,
        notes=notes,
        gaps=gaps,
    )
    analysis.bottleneck = _bottleneck(analysis, row_secs, admission)
    if not run.rows:
        analysis.bottleneck = "nothing ran: the journal has no rows"
    return analysis


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _rate_limit(
    ledger: Mapping[str, Any] | None,
    told: float | None,
    rate: Mapping[str, Any] | None,
    summarized: bool,
) -> tuple[float | None, str]:
    """The request-rate limit the run is measured against, and where it came from.

    The simulator's own limit (ledger) when there is one, else the rate the
    run was told, else the rate it discovered (its summary's ``rate``), else,
    for a run that summarized without one (from before rate discovery, when
    a run without --rate ran at the engine's default), that default.
    """
    config = ledger.get("config") if ledger else None
    if isinstance(config, Mapping) and "rate" in config:
        sim = _number(config["rate"])
        if sim is None:
            return None, "none: the simulator had no rate limit"
        return sim, "the simulator's limit"
    if told is not None:
        return told, "--rate of the run"
    final = _number(rate.get("final")) if rate else None
    if final is not None:
        source = rate.get("source") if rate else None
        return final, f"the rate the run ended at, {source or 'discovered'}"
    if summarized:
        return ENGINE_RATE_DEFAULT, "engine default; the run had no --rate"
    return None, "unknown (no --rate and no summary in run.log)"


def _job_splits(steps: Iterable[StepRecord]) -> Iterator[JobSplit]:
    """The split of every completed async job."""
    for s in steps:
        if s.status == "completed" and base_step(s.step) in ASYNC_STEPS:
            yield split_step(s)


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
    # Share of all row time that was detection delay (ledger, else the journal's estimate).
    lag = a.gen_share * a.detect_share if a.detect_share is not None else 0.0
    job_s, delay_s, _ = a.split_all.figures()
    if lag >= 0.25 and delay_s and job_s:
        how = "" if a.split_all.exact else "; estimated from the journal's poll brackets"
        return (
            f"our poll schedule: {lag:.0%} of row time passed between GEN finishing a job "
            f"and genbatch noticing (detection delay p50 {percentile(delay_s, 0.5):.3g} s, "
            f"p90 {percentile(delay_s, 0.9):.3g} s, on jobs of p50 "
            f"{percentile(job_s, 0.5):.3g} s{how}), so rows held their "
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
