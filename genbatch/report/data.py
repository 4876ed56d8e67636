"""What the report shows, read from one or more runs: journals, results and run.logs.

The reader takes a *list* of journals so a sharded run (one journal per
shard, ``OUT/shards/*/journal.sqlite``) reads as one run: rows, step spans
and pace samples are concatenated, each row keeping the run dir it came from
(its MP4 and thumbnail paths are relative to that dir).

Everything is read-only and safe beside a live run: the journal is opened
with :meth:`Journal.open` ``read_only=True`` (no lock, no write; SQLite WAL
gives a consistent view of each query), run.log is only appended to by its
writer, and a path taken from a journal or a results file is resolved inside
its run dir (as :func:`~genbatch.engine.naming.resolve_inside` does) before
it is used: a tampered table cannot make the report read or link anything
outside it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import polars as pl

from genbatch.bench.analysis import RunAnalysis, analyze
from genbatch.engine.journal import ENGINE_JOURNAL_FILE, Journal, live_holder
from genbatch.engine.progress import ENGINE_RUN_LOG
from genbatch.engine.results import ENGINE_RESULTS_PARQUET, STEP_GROUPS, result_row
from genbatch.errors import InputError

#: Where a sharded run keeps its shards' run dirs (each with its own journal).
ENGINE_REPORT_SHARDS_DIR: Final = "shards"
#: The results column (and journal field) naming a row's thumbnail, relative to its run dir.
ENGINE_REPORT_THUMBNAIL_COLUMN: Final = "thumbnail"
#: A results column holding where a video was uploaded, used when no local MP4 is left.
ENGINE_REPORT_VIDEO_URL_COLUMN: Final = "video_url"
#: Step kinds in the order a row goes through them (the timeline's stacking order).
STEP_ORDER: Final = STEP_GROUPS

__all__ = [
    "ENGINE_REPORT_SHARDS_DIR",
    "STEP_ORDER",
    "Pace",
    "ReportError",
    "RowView",
    "RunData",
    "Source",
    "Span",
    "find_journals",
    "read_runs",
    "step_kind",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")


class ReportError(InputError):
    """The report cannot be made: no journal, or one that cannot be read."""


@dataclass(frozen=True, slots=True)
class Source:
    """One journal the report reads and the run dir its paths are relative to."""

    run_dir: Path
    run_id: str
    #: A process holds the run dir's lock now (rows ``running`` are really running).
    live: bool


@dataclass(frozen=True, slots=True)
class RowView:
    """One row as the grid shows it."""

    source: Source
    row_id: str
    #: pending, running, completed, failed, skipped, or interrupted (running, nobody live).
    status: str
    reason: str | None
    error_code: str | None
    credits: float
    #: Existing files inside the row's run dir (None: none on disk).
    mp4: Path | None
    thumbnail: Path | None
    sha256: str | None
    #: An http(s) URL the video was uploaded to, when no local MP4 is left.
    video_url: str | None


@dataclass(frozen=True, slots=True)
class Span:
    """One step of one row: its kind (``generate``, ``render``, ...) and when it ran."""

    kind: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Pace:
    """One ``pace`` event of run.log: the gate's rate and the requests sent so far."""

    t: float
    rate: float
    requests: int


@dataclass(slots=True)
class RunData:
    """Everything the page is built from."""

    sources: list[Source]
    rows: list[RowView]
    spans: list[Span]
    #: First step start and last step end over every journal (None: no step yet).
    first: float | None
    last: float | None
    #: Pace samples, one list per process that ran (a resume restarts the counters).
    pace: list[list[Pace]]
    analyses: list[RunAnalysis]
    now: float
    notes: list[str] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return any(s.live for s in self.sources)


def step_kind(step: str) -> str:
    """``generate:broll`` -> ``generate`` (the result table's step groups)."""
    return step.split(":", 1)[0]


def find_journals(out_dir: Path) -> list[Path]:
    """The journals of the run in ``out_dir``: its own and its shards', in name order."""
    found = [out_dir / ENGINE_JOURNAL_FILE] if (out_dir / ENGINE_JOURNAL_FILE).is_file() else []
    shards = out_dir / ENGINE_REPORT_SHARDS_DIR
    if shards.is_dir() and not shards.is_symlink():
        found += sorted(
            p / ENGINE_JOURNAL_FILE
            for p in shards.iterdir()
            if p.is_dir() and not p.is_symlink() and (p / ENGINE_JOURNAL_FILE).is_file()
        )
    return found


def read_runs(journals: Sequence[Path], *, now: float) -> RunData:
    """Read every journal (with its run dir's results and run.log) into one :class:`RunData`.

    ``now`` ends the steps of rows still running in a live run.  Raises
    :class:`ReportError` when there is no journal or one cannot be read.
    """
    if not journals:
        raise ReportError("no journal to report on")
    data = RunData([], [], [], None, None, [], [], now)
    for path in journals:
        if path.name != ENGINE_JOURNAL_FILE:
            raise ReportError(f"{path}: not a genbatch journal (expected {ENGINE_JOURNAL_FILE})")
        _read_one(path.parent, data)
    return data


def _read_one(run_dir: Path, data: RunData) -> None:
    live = live_holder(run_dir) is not None
    try:
        journal = Journal.open(run_dir, read_only=True)
    except Exception as exc:  # JournalError, sqlite3.Error, OSError: all "cannot read"
        raise ReportError(f"{run_dir}: cannot read the journal: {exc}") from None
    root = os.path.realpath(run_dir)
    with journal:
        source = Source(run_dir, journal.run_id, live)
        data.sources.append(source)
        extra = _results_columns(run_dir)
        for row in journal.rows():
            steps = journal.steps(row.row_id)
            line = result_row(row, steps)
            for name, rec in steps.items():
                start = rec.started_at if rec.started_at is not None else rec.intent_at
                end = rec.finished_at
                if end is None and live and row.status == "running":
                    end = data.now  # still going (clipped to its start below)
                if start is None:
                    start = end
                if start is None or end is None:
                    continue
                data.spans.append(Span(step_kind(name), start, max(start, end)))
                data.first = start if data.first is None else min(data.first, start)
                data.last = end if data.last is None else max(data.last, end)
            status: str = row.status
            if status == "running" and not live:
                status = "interrupted"
            known = extra.get(row.row_id, {})
            thumbs = (
                line.get(ENGINE_REPORT_THUMBNAIL_COLUMN),
                known.get(ENGINE_REPORT_THUMBNAIL_COLUMN),
            )
            sha = row.fields.get("sha256")
            url = known.get(ENGINE_REPORT_VIDEO_URL_COLUMN) or line.get(
                ENGINE_REPORT_VIDEO_URL_COLUMN
            )
            data.rows.append(
                RowView(
                    source=source,
                    row_id=row.row_id,
                    status=status,
                    # Rows a stopped run left behind say how to resume (results' wording).
                    reason=row.reason or (None if live else line.get("reason")),
                    error_code=row.error_code,
                    credits=float(line.get("credits") or 0.0),
                    mp4=_inside(root, line.get("mp4_path")),
                    thumbnail=next(filter(None, (_inside(root, t) for t in thumbs)), None),
                    sha256=sha if isinstance(sha, str) and _SHA256.fullmatch(sha) else None,
                    video_url=url if isinstance(url, str) and _is_http(url) else None,
                )
            )
    data.pace += _pace(run_dir, source.run_id)
    try:
        data.analyses.append(analyze(run_dir))
    except InputError as exc:  # BenchError: the journal vanished between two reads
        raise ReportError(f"{run_dir}: {exc}") from None


def _inside(root: str, value: object) -> Path | None:
    """An existing file named by a journal or results value, resolved inside ``root``.

    :func:`~genbatch.engine.naming.resolve_inside`'s check, with the run dir
    (``root``) resolved once by the caller rather than once per row.
    """
    if not isinstance(value, str) or not value or "\x00" in value or os.path.isabs(value):
        return None
    target = os.path.realpath(os.path.join(root, value))
    if os.path.commonpath([root, target]) != root or not os.path.isfile(target):
        return None
    return Path(target)


def _is_http(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def _results_columns(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Per row id, the results columns the journal may not carry (thumbnail, video_url).

    Read from results.parquet when it has them (written at the end of a
    run, so absent or older during one: the journal stays the truth).
    """
    wanted = (ENGINE_REPORT_THUMBNAIL_COLUMN, ENGINE_REPORT_VIDEO_URL_COLUMN)
    path = run_dir / ENGINE_RESULTS_PARQUET
    if not path.is_file() or path.is_symlink():
        return {}
    try:
        schema = pl.read_parquet_schema(path)
        columns = [c for c in wanted if c in schema]
        if "row_id" not in schema or not columns:
            return {}
        frame = pl.read_parquet(path, columns=["row_id", *columns])
    except (OSError, pl.exceptions.PolarsError):
        return {}
    return {
        str(r["row_id"]): {c: r[c] for c in columns if r[c] is not None}
        for r in frame.iter_rows(named=True)
    }


def _epoch(iso: object) -> float | None:
    if not isinstance(iso, str):
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _log_events(run_dir: Path) -> Iterator[Mapping[str, Any]]:
    """run.log's ``start`` and ``pace`` events (other lines are not even parsed)."""
    path = run_dir / ENGINE_RUN_LOG
    with contextlib.suppress(OSError), path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if '"pace"' not in line and '"start"' not in line:
                continue
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and event.get("event") in ("pace", "start"):
                    yield event


def _pace(run_dir: Path, run_id: str) -> list[list[Pace]]:
    """This run's pace samples, one list per process (each ``start`` of the run id begins
    one, with a first sample of 0 requests at its time).

    run.log is appended to by every invocation on the dir (a ``--fresh`` run
    too): samples after a ``start`` of another run id are not this run's.
    """
    segments: list[list[Pace]] = []
    current: list[Pace] | None = None
    for event in _log_events(run_dir):
        if event.get("event") == "start":
            current = [] if event.get("run_id") == run_id else None
            if current is not None:
                segments.append(current)
                start = _epoch(event.get("t"))
                if start is not None:  # the counters start at 0 with the process
                    current.append(Pace(start, 0.0, 0))
            continue
        t, rate, requests = _epoch(event.get("t")), event.get("rate"), event.get("requests")
        if current is None or t is None:
            continue
        if isinstance(rate, int | float) and isinstance(requests, int):
            current.append(Pace(t, float(rate), requests))
    return [s for s in segments if s]
