"""report.html for real runs: every row with its thumbnail and video, failures by reason,
the timeline over the run's steps, merged journals, a live run, and what it never writes."""

from __future__ import annotations

import json
import shutil
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from reporthelp import (
    DEMO,
    Page,
    local,
    run_table,
    step_bounds,
    tree,
    vo_rows,
    write_csv,
)

from genbatch.engine.journal import Journal
from genbatch.engine.progress import ENGINE_RUN_LOG
from genbatch.report import write_report
from genbatch.report.thumbs import FrameExtractor

JPEG = b"\xff\xd8"
HEADER = ["row_id", "hook", "script"]
WAL = ("journal.sqlite-wal", "journal.sqlite-shm")


def results(out: Path) -> list[dict[str, object]]:
    return pl.read_parquet(out / "results.parquet").to_dicts()


def _page(out: Path) -> tuple[Page, str]:
    html = (out / "report.html").read_text(encoding="utf-8")
    return Page(html), html


def _check_timeline(page: Page, first: float, last: float) -> None:
    steps = next(c for c in page.charts if c.figure == "steps")
    assert steps.t0 == pytest.approx(first, abs=2e-3)
    assert steps.t1 == pytest.approx(last, abs=2e-3)
    for chart in page.charts:  # every chart shares the run's time axis
        assert (chart.t0, chart.t1) == (steps.t0, steps.t1)


async def test_demo_run_every_row_with_thumbnail_video_and_timeline(
    sim_factory, tmp_path: Path
) -> None:
    sim = await sim_factory()
    table = tmp_path / "work" / "demo.csv"
    table.parent.mkdir()
    table.write_bytes(DEMO.read_bytes())
    out = tmp_path / "work" / "out"
    assert (await run_table(sim, table, out)).exit_code == 0
    before = tree(tmp_path)

    path = write_report(out)

    assert path == (out / "report.html").resolve()
    # Only the page and extracted frames, all inside the output dir (and the
    # WAL companions SQLite keeps beside the journal it read).
    created = tree(tmp_path) - before
    assert path in {p.resolve() for p in created}
    for p in created:
        assert out.resolve() in p.resolve().parents, p
        assert p.name in WAL or p.name == "report.html" or p.parent.name == "report_files", p
    page, html = _page(out)
    rows = results(out)
    assert [c.row_id for c in page.cards] == [r["row_id"] for r in rows]
    assert len(rows) == 12
    for card, row in zip(page.cards, rows, strict=True):
        assert card.status == "completed" and not card.why
        assert card.video is not None and card.img is not None
        assert local(out, card.video) == (out / str(row["mp4_path"])).resolve()
        thumb = local(out, card.img)
        assert thumb.is_file() and thumb.read_bytes()[:2] == JPEG
        assert out.resolve() in thumb.parents
        beside = (out / str(row["mp4_path"])).with_suffix(".jpg")
        if row.get("thumbnail"):
            assert thumb == (out / str(row["thumbnail"])).resolve()
        elif beside.is_file():
            assert thumb == beside.resolve()
        else:  # the first frame of the MP4, extracted by the report
            assert thumb.parent == (out / "report_files").resolve()
    first, last = step_bounds(out)
    _check_timeline(page, first, last)
    steps = next(c for c in page.charts if c.figure == "steps")
    assert {"clone", "fill", "generate", "render", "download"} <= set(steps.series)
    # The request-rate chart: from run.log's pace samples within the run's steps.
    paced = [
        e
        for e in map(json.loads, (out / ENGINE_RUN_LOG).read_text().splitlines())
        if e["event"] == "pace" and first <= datetime.fromisoformat(e["t"]).timestamp() <= last
    ]
    rate = [c for c in page.charts if c.figure == "rate"]
    assert len(rate) == (1 if paced else 0)
    assert "no pace samples" in html if not paced else "requests/s" in rate[0].series
    assert page.failures == [] and "No row failed" in html
    assert page.totals["rows"] == "12"
    assert page.totals["credits"] == f"{sum(float(r['credits']) for r in rows):,.0f}"
    # One player for the whole page, loading nothing until asked; lazy images.
    assert [v.get("preload") for v in page.videos] == ["none"]
    assert html.count("<img ") == html.count('loading="lazy"') == 12
    assert "base64" not in html and "http://" not in html and "https://" not in html
    assert page.scripts == 1


async def test_failed_rows_grouped_by_reason_with_their_ids(sim_factory, tmp_path: Path) -> None:
    sim = await sim_factory(faults="gen_fail:0.5", seed=11)
    hostile = '<img src=x onerror="alert(1)">&'
    table = write_csv(
        tmp_path / "t.csv",
        ["row_id", "hook", "script"],
        [*vo_rows(8, "ok"), ["no-script", "Hook only", ""], [hostile, "Hook", ""]],
    )
    out = tmp_path / "out"
    summary = await run_table(sim, table, out, template="tiktok-vo-broll")
    assert summary.exit_code == 1

    write_report(out)

    page, html = _page(out)
    rows = results(out)
    by_id = {c.row_id: c for c in page.cards}
    assert sorted(by_id) == sorted(str(r["row_id"]) for r in rows)
    expected: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in rows:
        card = by_id[str(r["row_id"])]
        assert card.status == r["status"]
        if r["status"] != "completed":
            assert card.why == r["reason"]
            expected[(str(r["status"]), str(r["reason"]))].append(str(r["row_id"]))
    assert {"no-script", hostile} <= {i for ids in expected.values() for i in ids}
    got = {(f.status, f.reason): f.row_ids for f in page.failures}
    assert got == dict(expected)
    assert all(f.count == len(f.row_ids) for f in page.failures)
    # Counts largest first.
    counts = [f.count for f in page.failures]
    assert counts == sorted(counts, reverse=True)
    # The hostile id is text, never markup.
    assert '<img src=x onerror="alert(1)">' not in html and page.scripts == 1
    _check_timeline(page, *step_bounds(out))


async def test_two_runs_merge_into_one_report(sim_factory, tmp_path: Path) -> None:
    sim = await sim_factory()
    runs = []
    for prefix in ("a", "b"):
        table = write_csv(tmp_path / f"{prefix}.csv", HEADER, vo_rows(3, prefix))
        run_dir = tmp_path / f"run-{prefix}"
        assert (await run_table(sim, table, run_dir, template="tiktok-vo-broll")).exit_code == 0
        runs.append(run_dir)

    def files(d: Path) -> set[Path]:
        return {p for p in tree(d) if p.name not in WAL}

    untouched = {d: files(d) for d in runs}
    merged = tmp_path / "merged"

    write_report(merged, journals=[d / "journal.sqlite" for d in runs])

    assert {d: files(d) for d in runs} == untouched  # frames go to the report's own dir
    page, html = _page(merged)
    rows = results(runs[0]) + results(runs[1])
    assert [c.row_id for c in page.cards] == [r["row_id"] for r in rows]
    for card, row, run_dir in zip(page.cards, rows, [runs[0]] * 3 + [runs[1]] * 3, strict=True):
        assert card.video is not None and card.img is not None
        assert local(merged, card.video) == (run_dir / str(row["mp4_path"])).resolve()
        assert local(merged, card.img).read_bytes()[:2] == JPEG
    bounds = [step_bounds(d) for d in runs]
    _check_timeline(page, min(b[0] for b in bounds), max(b[1] for b in bounds))
    assert page.totals["rows"] == "6"
    assert page.totals["credits"] == f"{sum(float(r['credits']) for r in rows):,.0f}"
    assert "<h3>run-a</h3>" in html and "<h3>run-b</h3>" in html


async def test_shards_of_one_out_dir_are_found_and_linked_from_it(
    sim_factory, tmp_path: Path
) -> None:
    sim = await sim_factory()
    out = tmp_path / "out"
    for shard in ("s1", "s2"):
        table = write_csv(tmp_path / f"{shard}.csv", HEADER, vo_rows(2, shard))
        run_dir = out / "shards" / shard
        assert (await run_table(sim, table, run_dir, template="tiktok-vo-broll")).exit_code == 0

    write_report(out)

    page, _ = _page(out)
    assert [c.row_id for c in page.cards] == ["s100", "s101", "s200", "s201"]
    for card in page.cards:
        assert card.video is not None
        assert card.video.startswith(f"shards/{card.row_id[:2]}/videos/")
        assert local(out, card.video).is_file()


async def test_thumbnail_order_and_paths_never_leave_the_run(
    sim_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = await sim_factory()
    table = write_csv(tmp_path / "t.csv", ["row_id", "hook", "script"], vo_rows(4, "t"))
    out = tmp_path / "out"
    assert (await run_table(sim, table, out, template="tiktok-vo-broll")).exit_code == 0
    videos = out / "videos"
    for jpg in videos.glob("*.jpg"):  # start from MP4s alone
        jpg.unlink()
    write_report(out)  # first frames of every row, to reuse below
    frames = {c.row_id: local(out, c.img or "") for c in _page(out)[0].cards}
    # t01: a JPEG beside its MP4; t02: a results thumbnail outside the run (ignored);
    # t03: a results thumbnail of its own.
    shutil.copy(frames["t01"], videos / "t01.jpg")
    outside = tmp_path / "outside.jpg"
    shutil.copy(frames["t02"], outside)
    shutil.copy(frames["t03"], videos / "custom.jpg")
    frame = pl.read_parquet(out / "results.parquet")
    column = {"t02": "../outside.jpg", "t03": "videos/custom.jpg"}
    frame.with_columns(
        pl.Series("thumbnail", [column.get(r) for r in frame["row_id"]], dtype=pl.String)
    ).write_parquet(out / "results.parquet")

    write_report(out)

    cards = {c.row_id: c for c in _page(out)[0].cards}
    assert local(out, cards["t00"].img or "") == frames["t00"]
    assert local(out, cards["t01"].img or "") == (videos / "t01.jpg").resolve()
    assert local(out, cards["t02"].img or "") == frames["t02"] != outside.resolve()
    assert local(out, cards["t03"].img or "") == (videos / "custom.jpg").resolve()

    # Out of time: no new frame (a placeholder until the next report), cached ones still.
    lazy = FrameExtractor(out, budget=0.0)
    assert lazy.frames({"another video": videos / "t00.mp4"}) == {} and lazy.skipped == 1
    cached = {c.row_id: local(out, c.img or "") for c in _page(out)[0].cards}
    assert lazy.frames({str(results(out)[0]["sha256"]): videos / "t00.mp4"}) == {
        str(results(out)[0]["sha256"]): cached["t00"]
    }

    # Without PyAV: a placeholder that still plays the video.
    shutil.rmtree(out / "report_files")
    monkeypatch.setitem(sys.modules, "av", None)
    write_report(out)
    cards = {c.row_id: c for c in _page(out)[0].cards}
    assert cards["t00"].img is None and cards["t00"].video is not None
    assert local(out, cards["t00"].video).is_file()
    assert not (out / "report_files").exists()
    assert "PyAV is not installed" in (out / "report.html").read_text(encoding="utf-8")


def test_a_live_run_shows_running_rows_up_to_now_then_interrupted(tmp_path: Path) -> None:
    out = tmp_path / "live"
    now = [1_700_000_000.0]
    journal = Journal.open(out, meta={"table": "t.csv"}, clock=lambda: now[0])
    try:
        journal.add_rows(["done", "busy", "waiting"])
        journal.start_row("done", "clone")
        journal.begin_step("done", "clone")
        now[0] += 2.0
        journal.finish_step("done", "clone", "completed")
        journal.finish_row("done", "completed")
        journal.start_row("busy", "clone")
        journal.begin_step("busy", "clone")
        journal.flush()

        write_report(out, now=now[0] + 8.0)  # beside the process holding the journal

        page, html = _page(out)
        assert {c.row_id: c.status for c in page.cards} == {
            "done": "completed",
            "busy": "running",
            "waiting": "pending",
        }
        assert "live: the run is still going" in html
        assert page.failures == []  # nothing has ended badly yet
        _check_timeline(page, 1_700_000_000.0, now[0] + 8.0)
    finally:
        journal.close()

    write_report(out, now=now[0] + 60.0)  # the process is gone: cut off mid-way

    page, html = _page(out)
    statuses = {c.row_id: c.status for c in page.cards}
    assert statuses == {"done": "completed", "busy": "interrupted", "waiting": "pending"}
    reasons = {f.status: f for f in page.failures}
    assert reasons["interrupted"].row_ids == ["busy"]
    assert "rerun the same command" in reasons["interrupted"].reason
    assert reasons["pending"].row_ids == ["waiting"]
    _check_timeline(page, 1_700_000_000.0, 1_700_000_002.0)
