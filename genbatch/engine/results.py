"""Result tables: the run's, built from the journal, and the one writer of every table.

The journal is the source of truth (it survives crashes and resumes), so the
run's table is always *derived* — ``genbatch status`` and the end of a run
write the same thing, and a rerun rewrites it whole.  Two files, same rows:
``results.parquet`` (typed, for code) and ``results.csv`` (for people and
spreadsheets).  :func:`write_table` writes them — and the agents' tables
(ideas, runs, research, train, agents apply) — each to a temporary name
then renamed, so a reader never sees half a table.

Where each video is: ``mp4_path`` (local, under ``videos/``; empty once
``--videos-to`` moved it), ``video_url`` (its object in the store),
``thumbnail`` (the render's thumbnail beside the MP4, empty when there was
none to be had) and ``thumbnail_url``.

CSV cells are escaped against formula injection (OWASP "CSV injection"): a
text cell beginning with ``= + - @`` (or a tab / carriage return) gets a
leading ``'`` so a spreadsheet shows it instead of evaluating it.  Reasons
and URLs come from servers and tables we do not control.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from genbatch.engine.journal import Journal, RowRecord, StepRecord
from genbatch.engine.naming import safe_join

#: Output files next to videos/ and the journal.
ENGINE_RESULTS_CSV: Final = "results.csv"
ENGINE_RESULTS_PARQUET: Final = "results.parquet"

__all__ = [
    "RESULT_COLUMNS",
    "STEP_GROUPS",
    "ResultFiles",
    "csv_escape",
    "result_row",
    "write_results",
    "write_table",
]

#: Step groups reported as ``seconds_<group>``; a journal step belongs to the
#: group named before its first ``:`` (``generate:broll`` -> ``generate``).
STEP_GROUPS: Final = (
    "clone",
    "fill",
    "upload",
    "generate",
    "render",
    "download",
    "store",
    "publish",
)

#: Result lines per batch when the tables are written (memory stays flat in the
#: table's length: a batch is a few MB).
ENGINE_RESULTS_BATCH: Final = 5_000
_SCHEMA: Final[dict[str, type[pl.DataType]]] = {
    "row_id": pl.String,
    "status": pl.String,
    "reason": pl.String,
    "error_code": pl.String,
    "template": pl.String,
    "recipe": pl.String,
    "engine_id": pl.String,
    "generation_ids": pl.String,
    "render_url": pl.String,
    "mp4_path": pl.String,
    "video_url": pl.String,
    "thumbnail": pl.String,
    "thumbnail_url": pl.String,
    "bytes": pl.Int64,
    "sha256": pl.String,
    "credits": pl.Float64,
    "attempts": pl.Int64,
    "post_id": pl.String,
    "publish_job_id": pl.String,
    **{f"seconds_{g}": pl.Float64 for g in STEP_GROUPS},
    "seconds_total": pl.Float64,
}
#: Column order of both files.
RESULT_COLUMNS: Final = tuple(_SCHEMA)

_FORMULA_TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r")


def csv_escape(value: object) -> object:
    """A cell safe to open in a spreadsheet: formula-looking text gets a ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_TRIGGERS):
        return "'" + value
    return value


def _group(step: str) -> str:
    return step.split(":", 1)[0]


def _span(steps: Iterable[StepRecord]) -> float | None:
    """Wall time a group of steps took: first start to last finish (they overlap)."""
    starts = [s.started_at or s.intent_at for s in steps]
    ends = [s.finished_at for s in steps]
    if not starts or any(t is None for t in starts) or any(t is None for t in ends):
        return None
    return round(max(e for e in ends if e is not None) - min(t for t in starts if t), 3)


def result_row(row: RowRecord, steps: Mapping[str, StepRecord]) -> dict[str, Any]:
    """One result line for ``row`` (plain values, typed per :data:`RESULT_COLUMNS`)."""
    fields = row.fields
    gen_ids = {
        name.split(":", 1)[1] if ":" in name else name: rec.remote_id
        for name, rec in steps.items()
        if _group(name) in ("generate", "render") and rec.remote_id is not None
    }
    by_group: dict[str, list[StepRecord]] = {}
    for name, rec in steps.items():
        by_group.setdefault(_group(name), []).append(rec)
    credits = sum(rec.credits for rec in steps.values())
    total = (
        round(row.finished_at - row.started_at, 3)
        if row.finished_at is not None and row.started_at is not None
        else None
    )
    status, reason = row.status, row.reason or None
    if status == "running":
        # A run that stopped (401, ^C, crash) leaves the row resumable.
        status = "pending"
        reason = row.extra.get("pending_reason") or (
            f"interrupted at {row.step or 'start'}; rerun the same command to resume"
        )
    elif status == "pending":
        reason = "not started (the run stopped first); rerun the same command"
    out: dict[str, Any] = {
        "row_id": row.row_id,
        "status": status,
        "reason": reason,
        "error_code": row.error_code,
        "template": _str(row.extra.get("template")),
        "recipe": _str(row.extra.get("recipe")),
        "engine_id": _str(fields.get("engine_id")),
        "generation_ids": json.dumps(gen_ids, sort_keys=True) if gen_ids else None,
        "render_url": _str(fields.get("render_url")),
        "mp4_path": _str(fields.get("mp4_path")),
        **_placed(steps),
        "bytes": fields.get("bytes"),
        "sha256": _str(fields.get("sha256")),
        "credits": round(credits, 6),
        "attempts": row.attempts,
        "post_id": _str(fields.get("post_id")),
        # A scheduled post has no id until it goes out; its job id finds it.
        "publish_job_id": steps["publish"].remote_id if "publish" in steps else None,
    }
    for group in STEP_GROUPS:
        out[f"seconds_{group}"] = _span(by_group.get(group, ()))
    out["seconds_total"] = total
    return out


def _placed(steps: Mapping[str, StepRecord]) -> dict[str, str | None]:
    """Where the video and its thumbnail are: object URLs (``--videos-to``) and the
    local thumbnail, from the download and store steps' results (a redone row's
    are cleared with its steps, so an earlier video's never shows)."""
    download = steps.get("download")
    store = steps.get("store")
    got = download.result if download is not None and isinstance(download.result, dict) else {}
    put = (
        store.result
        if store is not None and store.status == "completed" and isinstance(store.result, dict)
        else {}
    )
    thumbnail = _str(got.get("thumbnail"))
    if put.get("thumbnail_url") and not put.get("kept_local"):
        thumbnail = None  # uploaded, and the local copy removed
    return {
        "video_url": _str(put.get("video_url")),
        "thumbnail": thumbnail,
        "thumbnail_url": _str(put.get("thumbnail_url")),
    }


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def iter_results(journal: Journal) -> Iterator[dict[str, Any]]:
    """Result lines in table order, straight from the journal (the steps of a
    batch of rows read together)."""
    rows = journal.rows()
    while batch := list(itertools.islice(rows, ENGINE_RESULTS_BATCH)):
        steps = journal.steps_of([row.row_id for row in batch])
        for row in batch:
            yield result_row(row, steps.get(row.row_id, {}))


@dataclass(frozen=True, slots=True)
class ResultFiles:
    """Where the table went, and what it holds (for the summary line)."""

    parquet: Path
    csv: Path
    rows: int
    counts: Mapping[str, int]


def _csv_cells(row: Mapping[str, Any], columns: Iterable[str]) -> list[object]:
    """One CSV line of ``row``: a missing or None cell empty, any other :func:`csv_escape`-d."""
    return ["" if row.get(c) is None else csv_escape(row[c]) for c in columns]


def write_table(
    directory: Path,
    frame: pl.DataFrame,
    csv_rows: Iterable[Mapping[str, Any]],
    *,
    parquet_name: str,
    csv_name: str,
) -> tuple[Path, Path]:
    """``frame`` as Parquet and ``csv_rows`` as CSV in ``directory``, each atomically.

    The CSV's header is the frame's columns; a missing or None cell is empty,
    any other is :func:`csv_escape`-d (the Parquet file is the lossless one).
    Names go through :func:`safe_join`: a symlink planted there is refused.
    Returns ``(parquet, csv)``.
    """
    parquet = safe_join(directory, parquet_name, companions=(".tmp",))
    csv_path = safe_join(directory, csv_name, companions=(".tmp",))
    tmp = parquet.with_name(parquet.name + ".tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, parquet)
    tmp = csv_path.with_name(csv_path.name + ".tmp")
    columns = frame.columns
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in csv_rows:
            writer.writerow(_csv_cells(row, columns))
    os.replace(tmp, csv_path)
    return parquet, csv_path


def write_results(journal: Journal, out_dir: Path) -> ResultFiles:
    """Write ``results.parquet`` and ``results.csv`` into ``out_dir`` (atomically).

    Streamed in batches of ``ENGINE_RESULTS_BATCH`` lines, so memory does not
    grow with the table: the CSV is written line by line, the Parquet file
    is sunk from per-batch parts (in a scratch dir inside ``out_dir``,
    removed after)."""
    parquet = safe_join(out_dir, ENGINE_RESULTS_PARQUET, companions=(".tmp",))
    csv_path = safe_join(out_dir, ENGINE_RESULTS_CSV, companions=(".tmp",))
    columns = list(_SCHEMA)
    counts: dict[str, int] = {}
    rows = 0
    scratch = Path(tempfile.mkdtemp(prefix=".results-", dir=out_dir))
    try:
        parts: list[Path] = []
        csv_tmp = csv_path.with_name(csv_path.name + ".tmp")
        with csv_tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            lines = iter_results(journal)
            while batch := list(itertools.islice(lines, ENGINE_RESULTS_BATCH)):
                part = scratch / f"{len(parts):06d}.parquet"
                pl.DataFrame(batch, schema=_SCHEMA, orient="row").write_parquet(part)
                parts.append(part)
                for line in batch:
                    writer.writerow(_csv_cells(line, columns))
                    counts[line["status"]] = counts.get(line["status"], 0) + 1
                rows += len(batch)
        tmp = parquet.with_name(parquet.name + ".tmp")
        if parts:
            pl.scan_parquet(parts).sink_parquet(tmp)
        else:
            pl.DataFrame(schema=_SCHEMA).write_parquet(tmp)
        os.replace(tmp, parquet)
        os.replace(csv_tmp, csv_path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ResultFiles(parquet, csv_path, rows, counts)
