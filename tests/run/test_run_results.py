"""The result table's shape and its CSV escaping (no network)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from genbatch.engine.journal import Journal
from genbatch.engine.results import RESULT_COLUMNS, csv_escape, write_results


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=x", "'\t=x"),
        ("plain", "plain"),
        (12, 12),
        (None, None),
    ],
)
def test_csv_escape(value: object, escaped: object) -> None:
    assert csv_escape(value) == escaped


def test_results_from_a_journal(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        journal.add_rows(["ok", "bad", "=evil", "later", "mid"])
        journal.start_row("ok", "clone")
        journal.begin_step("ok", "clone")
        journal.finish_step("ok", "clone", "completed")
        for step, gid, cost in (("generate:broll", "11", 20.0), ("render", "12", 5.0)):
            journal.record_intent("ok", step)
            journal.record_remote_id("ok", step, gid)
            journal.finish_step("ok", step, "completed", credits=cost)
        journal.update_row(
            "ok", {"mp4_path": "videos/ok.mp4", "bytes": 10, "sha256": "ab", "engine_id": "7"}
        )
        journal.finish_row("ok", "completed")
        journal.finish_row("bad", "failed", "-script: is empty", "invalid_row")
        journal.finish_row("=evil", "failed", "row_id: formula", "invalid_row")
        journal.start_row("mid", "render")
        files = write_results(journal, tmp_path)

    frame = pl.read_parquet(files.parquet)
    assert tuple(frame.columns) == RESULT_COLUMNS
    rows = {r["row_id"]: r for r in frame.to_dicts()}
    ok = rows["ok"]
    assert ok["status"] == "completed" and ok["credits"] == 25.0
    assert ok["generation_ids"] == '{"broll": "11", "render": "12"}'
    assert ok["mp4_path"] == "videos/ok.mp4" and ok["engine_id"] == "7"
    assert ok["seconds_generate"] is not None and ok["seconds_total"] is not None
    assert rows["later"]["status"] == "pending" and "rerun" in rows["later"]["reason"]
    assert rows["mid"]["status"] == "pending" and "render" in rows["mid"]["reason"]
    assert files.counts == {"completed": 1, "failed": 2, "pending": 2}
    text = files.csv.read_text(encoding="utf-8")
    assert "\n'=evil,failed," in text and ",'-script: is empty," in text
    assert not list(tmp_path.glob("*.tmp"))


def test_a_suspended_row_reports_why_it_is_pending(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        journal.add_rows(["r"])
        journal.start_row("r", "render")
        journal.update_row("r", {"pending_reason": "polling render 9 failed for 3600 s"})
        files = write_results(journal, tmp_path)
    (row,) = pl.read_parquet(files.parquet).to_dicts()
    assert row["status"] == "pending" and row["reason"].startswith("polling render 9")
