"""``write_report``: read the run, pick each row's thumbnail, write ``OUT/report.html``."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final
from urllib.parse import quote

from genbatch.engine.journal import ENGINE_JOURNAL_FILE
from genbatch.engine.naming import open_nofollow, safe_join
from genbatch.report.data import ENGINE_REPORT_SHARDS_DIR, ReportError, find_journals, read_runs
from genbatch.report.page import Card, render_page
from genbatch.report.thumbs import FrameExtractor, thumbnails

#: The page, in the output dir.
ENGINE_REPORT_FILE: Final = "report.html"

__all__ = ["ENGINE_REPORT_FILE", "write_report"]


def _href(target: Path, out_real: str) -> str:
    """``target`` (a resolved path) as a URL relative to the page in ``out_real`` (the
    output dir, resolved), each part percent-encoded."""
    rel = os.path.relpath(target, out_real)
    return "/".join(quote(part, safe="") for part in rel.split(os.sep))


def write_report(
    out_dir: Path,
    *,
    now: float | None = None,
    journals: Sequence[Path] | None = None,
) -> Path:
    """Write ``out_dir/report.html`` for the run there and return its path.

    ``journals``: the journals to merge (default: ``out_dir``'s own and those
    of ``out_dir/shards/*/``); ``now`` (epoch seconds, default the clock) ends
    the steps still running in a live run and dates the page.  Nothing is
    written but the page and first frames in ``out_dir/report_files/``.
    Raises :class:`~genbatch.report.data.ReportError` (exit 2) when there is
    no journal.
    """
    out = Path(out_dir)
    found = list(journals) if journals is not None else find_journals(out)
    if not found:
        raise ReportError(
            f"{out}: no journal here (expected {ENGINE_JOURNAL_FILE} or "
            f"{ENGINE_REPORT_SHARDS_DIR}/*/{ENGINE_JOURNAL_FILE}); give the --out dir of a "
            "genbatch run"
        )
    if journals is not None:  # a report of runs kept elsewhere gets a dir of its own
        out.mkdir(parents=True, exist_ok=True)
    data = read_runs(found, now=time.time() if now is None else now)
    frames = FrameExtractor(out)
    out_real = os.path.realpath(out)
    cards = [
        Card(
            row,
            None if thumb is None else _href(thumb, out_real),
            _href(row.mp4, out_real) if row.mp4 is not None else row.video_url,
        )
        for row, thumb in zip(data.rows, thumbnails(data.rows, frames), strict=True)
    ]
    if frames.skipped and frames.available:
        data.notes.append(
            f"{frames.skipped:,} thumbnails were not extracted within the time budget; "
            "the next report continues where this one stopped"
        )
    elif frames.skipped:
        data.notes.append(
            f"{frames.skipped:,} videos have no stored thumbnail and PyAV is not installed "
            "to take their first frame (pip install av): they show a placeholder"
        )
    page = render_page(out.resolve().name or str(out), data, cards)
    target = safe_join(out, ENGINE_REPORT_FILE, companions=(".tmp",))
    tmp = target.with_name(target.name + ".tmp")
    fd = open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(page)
    os.replace(tmp, target)
    return target
