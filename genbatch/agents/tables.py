"""The tables the agents commands write, and the cell reading and row checks inputs share.

Every report (ideas, runs, research, train, agents apply) is a
:class:`TableData`: a typed frame for Parquet plus the same rows for CSV,
written by the engine's one table writer
(:func:`genbatch.engine.results.write_table`).

Nested values (lists, objects) are Parquet lists/structs and JSON text in
the CSV.  A value Parquet cannot hold losslessly (a key whose type changes
between rows, an empty object) is written as JSON text in Parquet too —
checked value by value, never silently coerced.  Id columns are always text:
ids are opaque strings, whatever the server sent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl
import pydantic

from genbatch.engine.results import write_table

__all__ = ["TEXT_COLUMNS", "TableData", "cell_text", "validation_problems"]

#: Always text, whatever the server sent (ids are opaque strings).
TEXT_COLUMNS: Final = frozenset(
    {"row_id", "agent_id", "template", "idea_id", "conversation_id", "run_id", "publish_at"}
)


@dataclass(frozen=True, slots=True)
class TableData:
    """A table ready to write: typed frame for Parquet, plain rows for CSV."""

    frame: pl.DataFrame
    #: Same rows, nested values as JSON text.
    csv_rows: list[dict[str, Any]]

    @classmethod
    def from_records(
        cls, records: Sequence[Mapping[str, Any]], columns: Sequence[str]
    ) -> TableData:
        frame = pl.DataFrame([_column(name, [r.get(name) for r in records]) for name in columns])
        csv_rows = [{name: _csv_value(r.get(name)) for name in columns} for r in records]
        return cls(frame, csv_rows)

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """``<stem>.parquet`` and ``<stem>.csv`` in ``directory`` (created), atomically."""
        directory.mkdir(parents=True, exist_ok=True)
        return write_table(
            directory,
            self.frame,
            self.csv_rows,
            parquet_name=f"{stem}.parquet",
            csv_name=f"{stem}.csv",
        )


def cell_text(value: Any) -> str | None:
    """A table cell as trimmed text; empty, null or NaN is None, ``7.0`` is ``"7"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def validation_problems(exc: pydantic.ValidationError, skip: Collection[str] = ()) -> list[str]:
    """A client model's objections as row problems (``field: why``).

    Shared so every input table words a bad row the same way; ``skip``: fields
    the caller has already reported in its own words.
    """
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "row"
        if loc not in skip:
            problems.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
    return problems


def _column(name: str, values: list[Any]) -> pl.Series:
    """A column whose values come back from Parquet as they went in, or as text."""
    if name in TEXT_COLUMNS:
        return pl.Series(name, [None if v is None else str(v) for v in values], dtype=pl.String)
    try:
        series = pl.Series(name, values, strict=False)
    except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError):
        series = None
    if (
        series is not None
        and not _has_empty_struct(series.dtype)
        and all(_lossless(v, b) for v, b in zip(values, series.to_list(), strict=True))
    ):
        return series
    # Mixed shapes: keep every value exact as JSON text (scalars as text).
    return pl.Series(name, [_as_text(v) for v in values], dtype=pl.String)


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    text = _csv_value(value)
    return text if isinstance(text, str) else str(text)


def _has_empty_struct(dtype: Any) -> bool:
    if isinstance(dtype, pl.Struct):
        return not dtype.fields or any(_has_empty_struct(f.dtype) for f in dtype.fields)
    if isinstance(dtype, pl.List | pl.Array):
        return _has_empty_struct(dtype.inner)
    return False


def _lossless(original: Any, back: Any) -> bool:
    """Did a value survive the trip into a typed column? (Null-filled extra keys are fine.)"""
    if original is None:
        return back is None
    if isinstance(original, Mapping):
        return (
            isinstance(back, Mapping)
            and all(_lossless(v, back.get(k)) for k, v in original.items())
            and all(v is None for k, v in back.items() if k not in original)
        )
    if isinstance(original, list | tuple):
        return (
            isinstance(back, list | tuple)
            and len(original) == len(back)
            and all(_lossless(o, b) for o, b in zip(original, back, strict=True))
        )
    if isinstance(original, bool) or isinstance(back, bool):
        return original is back
    if isinstance(original, int | float):
        return isinstance(back, int | float) and float(original) == float(back)
    return type(original) is type(back) and bool(original == back)


def _csv_value(value: Any) -> Any:
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"  # as JSON and spreadsheets spell it
    return value
