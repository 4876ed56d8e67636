"""``genbatch report OUT_DIR``: prints the page's path; no journal there is exit 2, one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from reporthelp import Page

from genbatch.cli import main
from genbatch.engine.journal import Journal


def test_a_dir_without_a_journal_is_exit_2_in_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "genbatch", "report", str(empty)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert str(empty) in lines[0] and "no journal" in lines[0]
    assert list(empty.iterdir()) == []  # nothing written


def test_report_prints_the_path_of_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    with Journal.open(out, meta={"table": "t.csv"}) as journal:
        journal.add_rows(["r1", "r2"])
        journal.start_row("r1", "fill")
        journal.begin_step("r1", "fill")
        journal.finish_step("r1", "fill", "failed", error_code="invalid_row")
        journal.finish_row("r1", "failed", "script: empty", "invalid_row")

    assert main(["report", str(out)]) == 0

    printed = capsys.readouterr().out.strip()
    assert Path(printed) == (out / "report.html").resolve()
    page = Page(Path(printed).read_text(encoding="utf-8"))
    assert [(c.row_id, c.status) for c in page.cards] == [("r1", "failed"), ("r2", "pending")]
    assert [(f.reason, f.row_ids) for f in page.failures] == [
        ("script: empty", ["r1"]),
        ("not started (the run stopped first); rerun the same command", ["r2"]),
    ]


def test_a_run_past_the_automatic_size_leaves_the_report_to_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from genbatch.cli.run import ENGINE_REPORT_AUTO_ROWS, run_report

    assert run_report(tmp_path, ENGINE_REPORT_AUTO_ROWS + 1) is None
    err = capsys.readouterr().err
    assert f"genbatch report {tmp_path}" in err and "report not written for" in err
    assert not (tmp_path / "report.html").exists()
