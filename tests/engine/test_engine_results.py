"""The result tables are written in batches: order, content and nothing left behind."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl

from genbatch.engine.journal import Journal
from genbatch.engine.results import ENGINE_RESULTS_BATCH, write_results


def test_tables_of_several_batches_keep_every_row_in_order(tmp_path: Path) -> None:
    n = 2 * ENGINE_RESULTS_BATCH + 7
    ids = [f"r{i:06d}" for i in range(n)]
    with Journal.open(tmp_path) as journal:
        journal.add_rows(ids)
        journal.start_row(ids[5])
        journal.finish_row(ids[5], "failed", "a reason, with a comma")
        journal.flush()
        files = write_results(journal, tmp_path)
    assert files.rows == n and files.counts == {"pending": n - 1, "failed": 1}
    frame = pl.read_parquet(files.parquet)
    assert frame["row_id"].to_list() == ids
    assert frame.filter(pl.col("row_id") == ids[5])["reason"].item() == "a reason, with a comma"
    with files.csv.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["row_id"] for r in rows] == ids and rows[5]["status"] == "failed"
    # Only the tables (and the journal) are left: no scratch parts, no .tmp.
    left = {p.name for p in tmp_path.iterdir() if not p.name.startswith("journal")}
    assert left - {".genbatch.lock"} == {"results.csv", "results.parquet"}
