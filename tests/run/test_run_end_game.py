"""The end game: the last rows of a table admitted together (issue 12).

Once the rows left need at most two rows' time of the rate gate, the tuner
admits them all and their first steps pass ahead of other rows' renders
(the ordering itself: ``tests/engine/test_engine_tuning.py``).  Here, a
real run: the end game begins with rows still to admit, every row
completes once, and ``--max-concurrency`` still bounds the rows in flight.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from runhelp import SECRET_KEY, check_invariants, ledger, peak_overlap, run_table, vo_table

ROWS = 120
MAX_ROWS = 40


def peak_rows_in_flight(journal: Path) -> int:
    """Most rows between their start and their end at once (the journal's clock)."""
    with sqlite3.connect(journal) as db:
        spans = db.execute(
            "SELECT started_at, finished_at FROM rows WHERE started_at IS NOT NULL"
        ).fetchall()
    return peak_overlap(spans)


async def test_the_last_rows_are_admitted_together_within_max_concurrency(
    sim_factory: Any, tmp_path: Path
) -> None:
    sim = await sim_factory(api_keys=(SECRET_KEY,), time_scale=0.005, credits=1e9)
    table = vo_table(tmp_path / "t.csv", ROWS)
    out = tmp_path / "o"
    summary = await run_table(
        sim, table, out, template="tiktok-vo-broll", rate=None, max_concurrency=MAX_ROWS
    )
    assert summary.counts["completed"] == ROWS, summary.to_json()
    events = [json.loads(line) for line in (out / "run.log").read_text().splitlines()]
    ends = [e for e in events if e["event"] == "end_game"]
    assert len(ends) == 1, ends  # it begins once
    assert 0 < ends[0]["rows_left"] < ROWS
    peak = peak_rows_in_flight(out / "journal.sqlite")
    assert MAX_ROWS // 2 <= peak <= MAX_ROWS  # rows did run together, never past the cap
    check_invariants(await ledger(sim.url), out, table)
