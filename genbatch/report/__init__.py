"""One self-contained ``report.html`` for a run: what each video looks like, which rows
failed and why, where the time and the credits went.

A layer beside ``bench``: it reads what a run leaves behind (the journal,
results and run.log, through :mod:`genbatch.engine` and the "where the time
goes" analysis of :mod:`genbatch.bench.analysis`) and writes only the page
and the thumbnails it extracts into the output dir.  ``data`` reads one or
more journals (a sharded run's), ``thumbs`` picks or extracts each row's
thumbnail, ``summary`` says the figures, ``charts`` draws the timeline as
inline SVG, ``page`` assembles the HTML and ``write`` puts it on disk.
"""

from __future__ import annotations

from genbatch.report.data import ReportError, find_journals, read_runs
from genbatch.report.write import ENGINE_REPORT_FILE, write_report

__all__ = ["ENGINE_REPORT_FILE", "ReportError", "find_journals", "read_runs", "write_report"]
