"""A big run's page stays light: binned charts, lazy images, cards the browser can skip."""

from __future__ import annotations

from pathlib import Path

from reporthelp import Page

from genbatch.engine.journal import Journal
from genbatch.report import write_report

ROWS = 3000
STEPS = ("clone", "fill", "generate:broll", "render", "download")


def test_thousands_of_rows_draw_a_few_paths(tmp_path: Path) -> None:
    out = tmp_path / "big"
    now = [1_700_000_000.0]
    with Journal.open(out, meta={"table": "t.csv"}, clock=lambda: now[0]) as journal:
        ids = [f"row-{i:05d}" for i in range(ROWS)]
        journal.add_rows(ids)
        for i, rid in enumerate(ids):
            now[0] = 1_700_000_000.0 + i * 0.01
            journal.start_row(rid, STEPS[0])
            for step in STEPS:
                journal.begin_step(rid, step)
                now[0] += 0.5
                journal.finish_step(rid, step, "completed", credits=1.0)
            journal.finish_row(rid, "failed" if i % 100 == 0 else "completed", "boom", "x")

    page_path = write_report(out, now=now[0])

    html = page_path.read_text(encoding="utf-8")
    page = Page(html)
    assert len(page.cards) == ROWS
    steps = next(c for c in page.charts if c.figure == "steps")
    # One area per step kind, however many rows.
    assert sorted(steps.series) == sorted({s.split(":")[0] for s in STEPS})
    assert html.count("<polygon") == len(steps.series)
    assert "content-visibility:auto" in html and "base64" not in html
    assert [f.row_ids for f in page.failures] == [[f"row-{i:05d}" for i in range(0, ROWS, 100)]]
    # Rows with no video show a light placeholder, not an image each.
    assert "<img" not in html
