"""A synthetic finished run for the bench tests: journal (Journal API, fake clock) + run.log.

Two rows whose async jobs have known stamps (:data:`JOBS`), written with or
without the timing columns (``sent_at``, ``done_after``/``done_by``/``done_at``),
and a simulator-like ledger for them (:func:`ledger_for`).  No simulator, no
``genbatch run``: every figure the analysis derives can be computed by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genbatch.bench.stats import percentile
from genbatch.engine.journal import Journal
from genbatch.engine.progress import ENGINE_RUN_LOG

T0 = 1_700_000_000.0


@dataclass(frozen=True)
class Job:
    """One async step of a row, in seconds after the row started."""

    step: str
    remote_id: str
    intent: float
    sent: float
    answered: float
    finished: float
    done_after: float | None = None
    done_by: float | None = None
    done_at: float | None = None


#: Row r1: a voiceover bracketed by two polls, a broll with the API's own
#: completion time, a render seen done by its first poll.  Row r2: two bracketed jobs.
JOBS: dict[str, list[Job]] = {
    "r1": [
        Job("generate:voiceover", "11", 1.0, 1.5, 1.75, 12.0, done_after=10.0, done_by=11.0),
        Job("generate:broll", "12", 1.0, 2.0, 2.25, 30.0, done_at=28.0),
        Job("render", "13", 31.0, 31.0, 31.5, 45.0, done_by=44.0),
    ],
    "r2": [
        Job("generate:voiceover", "21", 1.0, 3.0, 3.25, 16.0, done_after=13.0, done_by=15.0),
        Job("generate:broll", "22", 1.0, 1.0, 1.25, 25.0, done_after=20.0, done_by=24.0),
    ],
}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _at(offset: float | None, timings: bool) -> float | None:
    """An epoch stamp ``offset`` s after :data:`T0` (None when not recorded)."""
    return T0 + offset if offset is not None and timings else None


def write_run(
    out: Path,
    *,
    timings: bool,
    rate: dict[str, Any] | None,
    told: float | None = None,
) -> None:
    """The journal and run.log of a two-row run.

    ``timings``: record sent_at/done_*; ``rate``: the summary's rate object
    (None: a run from before it); ``told``: the run's ``--rate`` (None: untold).
    """
    clock = Clock()
    with Journal.open(out, clock=clock) as j:
        j.add_rows(JOBS)
        for rid, jobs in JOBS.items():
            clock.now = T0
            j.start_row(rid, "clone")
            j.begin_step(rid, "clone")
            clock.now = T0 + 0.5
            j.finish_step(rid, "clone", "completed")
            # Events in time order, as the pipeline would make them.
            events: list[tuple[float, int, Job]] = []
            for job in jobs:
                events += [(job.intent, 0, job), (job.answered, 1, job), (job.finished, 2, job)]
            for at, kind, job in sorted(events, key=lambda e: (e[0], e[1])):
                clock.now = T0 + at
                if kind == 0:
                    j.begin_step(rid, job.step)
                    j.record_intent(rid, job.step)
                elif kind == 1:
                    sent = T0 + job.sent if timings else None
                    j.record_remote_id(rid, job.step, job.remote_id, sent_at=sent)
                else:
                    j.finish_step(
                        rid,
                        job.step,
                        "completed",
                        credits=1.0,
                        done_after=_at(job.done_after, timings),
                        done_by=_at(job.done_by, timings),
                        done_at=_at(job.done_at, timings),
                    )
            clock.now = T0 + max(job.finished for job in jobs)
            j.finish_row(rid, "completed")
        run_id = j.run_id
    stamp = datetime.fromtimestamp(T0, UTC).isoformat(timespec="milliseconds")
    summary: dict[str, Any] = {"requests": 30, "rate_limited": 0, "seconds": 45.0}
    if rate is not None:
        summary["rate"] = rate
    lines = [
        {"t": stamp, "event": "start", "run_id": run_id, "rate": told},
        {"t": stamp, "event": "summary", "run_id": run_id, **summary},
    ]
    (out / ENGINE_RUN_LOG).write_text("".join(json.dumps(e) + "\n" for e in lines))


def by_step() -> dict[str, list[Job]]:
    out: dict[str, list[Job]] = {}
    for jobs in JOBS.values():
        for job in jobs:
            out.setdefault(job.step, []).append(job)
    return out


def completion(job: Job) -> float:
    if job.done_at is not None:
        return job.done_at
    if job.done_after is not None and job.done_by is not None:
        return (job.done_after + job.done_by) / 2
    assert job.done_by is not None
    return job.done_by


def p(values: list[float], q: float) -> float:
    v = percentile(values, q)
    assert v is not None
    return round(v, 4)


def ledger_for(shift: float) -> dict[str, Any]:
    """A ledger whose completions sit ``shift`` s before the journal's estimates."""
    gens = []
    for jobs in JOBS.values():
        for job in jobs:
            gens.append(
                {
                    "id": job.remote_id,
                    "type": "render" if job.step == "render" else "speech_from_text",
                    "status": "completed",
                    "created_at": T0 + job.sent + 0.25,
                    "completed_at": T0 + completion(job) - shift,
                }
            )
    return {
        "requests": {"by_route": {"GET /v1/generations/{id}": 10}, "by_status": {"200": 10}},
        "generations": gens,
        "credits": {"charged": 5, "refunded": 0},
        "config": {"rate": 40.0, "burst": 10},
    }
