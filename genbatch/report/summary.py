"""The page's figures and words: totals, failures by reason, and where the time went.

Figures about time and requests come from :func:`genbatch.bench.analysis.analyze`
(one :class:`RunAnalysis` per journal), which ``genbatch bench --from`` prints
as a table; here they are said in a few sentences.  Merged journals (the
shards of one run) add up, with the makespan measured over all of them and
the rate-limit bound taken as every request through one limit: shards of a
run share its API key, and a limit is per key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from genbatch.bench.analysis import RunAnalysis, rate_line
from genbatch.bench.stats import percentile
from genbatch.report.data import RowView, RunData

#: Statuses in the order the totals list them.
STATUS_ORDER: Final = ("completed", "failed", "skipped", "interrupted", "running", "pending")

__all__ = ["STATUS_ORDER", "FailureGroup", "Totals", "failures", "time_words", "totals"]


@dataclass(frozen=True, slots=True)
class Totals:
    rows: dict[str, int]
    credits: float
    #: Requests to the API (rate limited) and in all (with CDN downloads); None: unknown.
    api_requests: int | None
    requests: int | None
    rate_limited: int | None
    makespan: float
    rate_limit: float | None
    rate_limit_source: str

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def bound(self) -> float | None:
        """Seconds the API requests need at the rate limit: the makespan cannot be shorter."""
        if self.api_requests is None or not self.rate_limit:
            return None
        return self.api_requests / self.rate_limit


def _sum(values: Sequence[int | None]) -> int | None:
    return None if not values or any(v is None for v in values) else sum(v or 0 for v in values)


def totals(data: RunData) -> Totals:
    """The headline figures of every journal together."""
    counts = Counter(r.status for r in data.rows)
    rows = {s: counts.pop(s, 0) for s in STATUS_ORDER}
    rows.update(counts)
    a = data.analyses
    if len(a) == 1 and not data.live:
        makespan = a[0].makespan
    elif data.first is not None and data.last is not None:
        makespan = (data.now if data.live else data.last) - data.first
    else:
        makespan = 0.0
    limits = [x.rate_limit for x in a if x.rate_limit is not None]
    source = next((x.rate_limit_source for x in a if x.rate_limit is not None), "")
    if not limits:
        source = a[0].rate_limit_source if a else "unknown"
    requests = _sum([x.requests for x in a])
    if requests is None and data.pace:  # a live run has no summary yet: its last pace
        requests = sum(seg[-1].requests for seg in data.pace)
    return Totals(
        rows=rows,
        credits=sum(r.credits for r in data.rows),
        api_requests=_sum([x.api_requests for x in a]),
        requests=requests,
        rate_limited=_sum([x.rate_limited for x in a]),
        makespan=max(0.0, makespan),
        rate_limit=max(limits) if limits else None,
        rate_limit_source=source,
    )


@dataclass(frozen=True, slots=True)
class FailureGroup:
    status: str
    reason: str
    error_code: str | None
    rows: list[RowView]


def failures(data: RunData) -> list[FailureGroup]:
    """Rows that did not complete and are not on their way, grouped by status and reason.

    Pending rows count once no process is running the run (it stopped first).
    """
    ended = {"failed", "skipped", "interrupted"} | (set() if data.live else {"pending"})
    groups: dict[tuple[str, str], FailureGroup] = {}
    for row in data.rows:
        if row.status not in ended:
            continue
        reason = row.reason or (f"no reason recorded ({row.error_code})" if row.error_code else "")
        reason = reason or "no reason recorded"
        key = (row.status, reason)
        group = groups.get(key)
        if group is None:
            group = groups[key] = FailureGroup(row.status, reason, row.error_code, [])
        group.rows.append(row)
    return sorted(groups.values(), key=lambda g: (-len(g.rows), g.status, g.reason))


def _s(seconds: float | None) -> str:
    """Seconds as people read them: ``0.42 s``, ``12 s``, ``3 min 20 s``, ``2 h 05 min``."""
    if seconds is None:
        return "n/a"
    if seconds < 10:
        return f"{seconds:.2g} s" if seconds < 1 else f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _words(a: RunAnalysis) -> list[str]:
    """A few sentences on one journal's run."""
    r = a.rows
    done = r.get("completed", 0)
    total = sum(r.values())
    out = [
        f"{done:,} of {total:,} rows completed in {_s(a.makespan)}; a row took "
        f"{_s(a.row_seconds.get('p50'))} at the median ({_s(a.row_seconds.get('p95'))} at p95) "
        f"and waited {_s(a.admission_wait.get('p50'))} at the median to start, with at most "
        f"{a.peak_rows_in_flight:,} rows in flight."
    ]
    slowest = max(
        ((percentile(t.total, 0.5) or 0.0, name) for name, t in a.steps.items() if t.total),
        default=(0.0, ""),
    )
    gen = f"Rows spent {a.gen_share:.0%} of their time waiting on GEN's jobs"
    if a.detect_share is not None:
        gen += f", {a.detect_share:.0%} of that wait after a job had finished and before "
        gen += "genbatch noticed"
    if slowest[1]:
        gen += f"; the slowest step was {slowest[1]} (median {_s(slowest[0])})"
    out.append(gen + ".")
    if a.api_requests is not None and a.achieved_rate is not None:
        sent = f"{a.api_requests:,} API requests went out at {a.achieved_rate:.1f}/s"
        if a.rate_limit is not None and a.utilization is not None:
            sent += (
                f" against a limit of {a.rate_limit:g}/s ({a.rate_limit_source}), "
                f"{a.utilization:.0%} of it"
            )
        if a.rate_limited is not None:
            sent += f"; {a.rate_limited:,} were answered 429"
        out.append(sent + f" ({rate_line(a.rate_told, a.rate)}).")
    out.append(f"What held it back: {a.bottleneck}")
    return out


def time_words(data: RunData) -> list[tuple[str, list[str]]]:
    """(label, sentences) per journal; the label names the run dir when there are several."""
    several = len(data.analyses) > 1
    return [
        (src.run_dir.name if several else "", _words(a))
        for src, a in zip(data.sources, data.analyses, strict=True)
    ]
