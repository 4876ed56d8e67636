"""``genbatch report OUT_DIR`` — the run in ``OUT_DIR`` as one self-contained report.html.

Prints the page's path.  Works on a finished run and beside a live one (it
only reads the journal); exit 2 with one line when ``OUT_DIR`` holds no
journal (:class:`~genbatch.report.ReportError`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]


def cmd_report(args: argparse.Namespace) -> int:
    from genbatch.report import write_report  # polars, the analysis: not for --help

    print(write_report(args.dir))
    return 0


def register(subparsers: Any) -> None:
    """Add ``report`` to the CLI."""
    p = subparsers.add_parser(
        "report",
        help="write OUT_DIR/report.html: every video, failures by reason, the timeline",
        description="Write one self-contained report.html into a run's output dir: totals, "
        "where the time went, a timeline of steps and request rate, failures grouped by "
        "reason and a grid of every row with its thumbnail and video. Opens with no "
        "network; safe to run while the run is still going.",
    )
    p.add_argument("dir", type=Path, metavar="OUT_DIR", help="the run's output dir")
    p.set_defaults(func=cmd_report)
