"""A back end that runs only so many jobs per workspace (issue 12: job capacity).

The simulator's ``job_cap`` queues the rest FIFO as ``pending``.  Piling a
run's hundreds of generations into that queue finishes nothing sooner; the
engine notices the queue in its poll census and holds generations back, so
the server's queue stays short while every row completes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runhelp import SECRET_KEY, check_invariants, ledger, peak_overlap, run_table, vo_table

CAP = 50
ROWS = 300
#: GEN's jobs last seconds to minutes; the tuner looks at the census every
#: 0.25 s.  At 0.015 a voiceover (10 s) still spans a few of its looks; at
#: 0.005 it lasts 50 ms, the census then holds too few polls to show a queue
#: before the cap has grown past it, and the peak measures the squeeze, not
#: the engine (benchmarks/RESULTS.md, "The job-cap test's time scale").
TIME_SCALE = 0.015


def peak_queue(generations: list[dict[str, Any]]) -> int:
    """Most generations waiting in the server's queue at once (created, not started)."""
    return peak_overlap(
        (g["created_at"], g["started_at"])
        for g in generations
        if g.get("started_at") is not None and g["started_at"] > g["created_at"]
    )


async def test_a_job_cap_of_50_does_not_get_hundreds_of_jobs_queued(
    sim_factory: Any, tmp_path: Path
) -> None:
    sim = await sim_factory(api_keys=(SECRET_KEY,), job_cap=CAP, time_scale=TIME_SCALE, credits=1e9)
    table = vo_table(tmp_path / "t.csv", ROWS)
    out = tmp_path / "o"
    summary = await run_table(sim, table, out, template="tiktok-vo-broll", rate=None)
    assert summary.counts["completed"] == ROWS, summary.to_json()
    book = await ledger(sim.url)
    gens = [g for g in book["generations"] if g.get("kind", g.get("type")) != "render"]
    capped = [g for g in gens if g.get("started_at") is not None]
    assert len(capped) >= 2 * ROWS
    # 256 rows start at once, two generations each: without the census the
    # server's queue would hold ~460 of them; with it, about a cap's worth
    # (the census lags the polls by a few of them).
    assert peak_queue(capped) <= 2 * CAP, peak_queue(capped)
    check_invariants(book, out, table)
