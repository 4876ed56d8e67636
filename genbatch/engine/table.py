"""The input table: CSV or Parquet in, validated rows out, streamed.

A table is read through polars in batches (``LazyFrame.collect_batches``), so
a 100k-row table never exists as 100k Python objects: the pipeline pulls rows
as it has room for them (rows-in-flight cap) and memory stays flat.

Two kinds of problem, two outcomes (docs/design.md §5, §6):

* **The table cannot run** — unreadable file, no ``row_id`` column, duplicate
  row ids, no agent for anyone: :class:`TableError` before anything starts
  (exit 2).  Duplicates refuse the *whole* run because ``row_id`` is the resume
  key: two rows sharing it would share journal state and output files.
* **One row is bad** — empty or oversized value, a ``publish_at`` without a
  timezone, a ``row_id`` with control characters: a :class:`RowError` is
  yielded in that row's place.  The row ends ``failed`` before any paid call;
  the other rows run.

Reserved columns: ``row_id`` (required), ``agent_id`` (or ``--agent``),
``template`` or ``engine_id`` (or ``--template`` / the recipe), optional
``idea_id`` and ``publish_at``.  Every other column is a recipe variable,
always a string; empty cells are absent (a recipe that needs one fails the
row, naming the column).  Values are passed on verbatim — a cell holding
``=HYPERLINK(...)`` is text to GEN, never evaluated; only ``row_id``, which
we echo into result files, is refused when it looks like a formula.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import polars as pl
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, field_validator

from genbatch.errors import InputError

#: Rows per polars batch while streaming a table: bounds the Python objects
#: alive at once, whatever the table's length.
ENGINE_TABLE_BATCH_ROWS: Final = 2_000
#: A row_id names output files and journal keys; longer ids are a data error.
ENGINE_ROW_ID_MAX_CHARS: Final = 128
#: Longest recipe-variable value accepted (the reference's longest documented
#: text field, Agent Core `personality`, is 20,000 chars).
ENGINE_VALUE_MAX_CHARS: Final = 20_000

__all__ = [
    "ENGINE_KEY_COLUMN",
    "RESERVED_COLUMNS",
    "InputRow",
    "RowError",
    "Table",
    "TableError",
    "read_frame",
]

#: Columns with a meaning to genbatch; everything else is a recipe variable.
RESERVED_COLUMNS: tuple[str, ...] = (
    "row_id",
    "agent_id",
    "template",
    "engine_id",
    "idea_id",
    "publish_at",
)
#: A column naming, per row, the environment variable holding that row's API
#: key (rows of many workspaces in one table): only a sharded run
#: (``genbatch run --ray``) gives each key its own budget, so a plain run refuses it.
ENGINE_KEY_COLUMN: Final = "api_key_env"
_ID_COLUMNS = ("agent_id", "engine_id", "idea_id")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Spreadsheet formula triggers (OWASP CSV injection).  A leading "-" is only
# refused when it is not simply a negative number.
_FORMULA_START = re.compile(r"^(?:[=+@]|-(?!\d+(?:\.\d+)?$))")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
_MAX_DUPLICATES_SHOWN = 10


class TableError(InputError, ValueError):
    """The table as a whole cannot run; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class RowError:
    """Why one input row cannot run.  ``row_number`` is 1-based over data rows."""

    row_number: int
    row_id: str | None
    field: str
    message: str
    others: tuple[tuple[str, str], ...] = ()

    @property
    def ref(self) -> str:
        """How to name the row to a human: its id, or its position."""
        return repr(self.row_id) if self.row_id is not None else f"#{self.row_number}"

    @property
    def reason(self) -> str:
        """One line for the result table's ``reason`` column."""
        more = f" (+{len(self.others)} more)" if self.others else ""
        return f"{self.field}: {self.message}{more}"

    def __str__(self) -> str:
        return f"row {self.ref}: {self.reason}"


def _check_value(text: str) -> str:
    if len(text) > ENGINE_VALUE_MAX_CHARS:
        raise ValueError(f"is {len(text):,} characters long (limit {ENGINE_VALUE_MAX_CHARS:,})")
    if "\x00" in text:
        raise ValueError("contains a NUL character")
    return text


_Value = Annotated[str, AfterValidator(_check_value)]


class InputRow(BaseModel):
    """One validated input row.  Ids are opaque strings (docs/design.md §3)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    row_number: int
    row_id: str
    agent_id: str
    template: str | None = None
    engine_id: str | None = None
    idea_id: str | None = None
    publish_at: datetime | None = None
    variables: dict[str, _Value]

    @field_validator("row_id")
    @classmethod
    def _check_row_id(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("is empty")
        if len(value) > ENGINE_ROW_ID_MAX_CHARS:
            raise ValueError(f"is longer than {ENGINE_ROW_ID_MAX_CHARS} characters")
        if _CONTROL.search(value):
            raise ValueError("contains control characters (NUL, newline, ...)")
        if _FORMULA_START.search(value):
            raise ValueError("starts like a spreadsheet formula (=, +, -, @)")
        return value

    @field_validator("agent_id", "engine_id", "idea_id")
    @classmethod
    def _check_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value or len(value) > ENGINE_ROW_ID_MAX_CHARS or _CONTROL.search(value):
            raise ValueError("is not a plausible id")
        return value

    @field_validator("template")
    @classmethod
    def _check_template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not _SLUG.match(value):
            raise ValueError(f"{value[:60]!r} is not a template slug (like tiktok-vo-broll)")
        return value

    @field_validator("publish_at")
    @classmethod
    def _check_publish_at(cls, value: datetime | None) -> datetime | None:
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError("needs a timezone (e.g. 2026-04-20T15:00:00Z)")
        return value

    def placeholders(self) -> dict[str, str]:
        """Values a recipe may reference: the variables plus reserved columns."""
        values = dict(self.variables)
        for name in ("row_id", "agent_id", "template", "engine_id", "idea_id"):
            attr = getattr(self, name)
            if attr is not None:
                values[name] = attr
        if self.publish_at is not None:
            values["publish_at"] = self.publish_at.isoformat()
        return values


def _to_text(value: object) -> str | None:
    """A table cell as recipe text; ``None`` for empty."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return repr(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _to_id(value: object) -> str | None:
    """An id cell: text or integer only (``1.5`` as an id is a data error)."""
    if value is None:
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("must be text or an integer")
    if isinstance(value, float):
        return None if math.isnan(value) else str(int(value))
    text = str(value)
    return text if text.strip() else None


def _to_datetime(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not an ISO 8601 date-time") from None


@dataclass(frozen=True, slots=True)
class _Defaults:
    agent_id: str | None
    template: str | None
    known_templates: frozenset[str] | None
    now: Callable[[], datetime]
    require_agent: bool = True


class Table:
    """A validated, streamable input table.  Build with :meth:`open`."""

    def __init__(
        self,
        path: Path,
        fmt: Literal["csv", "parquet"],
        columns: tuple[str, ...],
        row_count: int,
        defaults: _Defaults,
        batch_rows: int,
    ) -> None:
        self.path = path
        self.format = fmt
        self.columns = columns
        self.row_count = row_count
        self._defaults = defaults
        self._batch_rows = batch_rows

    def distinct(self, column: str, limit: int) -> list[str]:
        """Up to ``limit`` distinct non-empty values of ``column`` (``agent_id``,
        ``template``: the run's default counts for rows that leave it empty), sorted;
        read by polars, no Python rows."""
        default = {"agent_id": self._defaults.agent_id, "template": self._defaults.template}
        found: set[str] = set()
        if default.get(column):
            found.add(str(default[column]))
        if column in self.columns:
            values = pl.col(column).cast(pl.String).str.strip_chars()
            try:
                frame = (
                    _scan(self.path, self.format)
                    .select(values.alias("v"))
                    .filter(pl.col("v").is_not_null() & (pl.col("v") != ""))
                    .unique()
                    .head(limit)
                    .collect()
                )
            except (pl.exceptions.PolarsError, OSError) as exc:
                raise TableError(f"{self.path}: cannot read {column!r}: {exc}") from None
            found.update(frame["v"].to_list())
        return sorted(found)[:limit]

    @property
    def variable_columns(self) -> tuple[str, ...]:
        """Columns a recipe may use as ``{placeholders}`` besides reserved ones."""
        return tuple(c for c in self.columns if c not in RESERVED_COLUMNS)

    @property
    def placeholder_columns(self) -> frozenset[str]:
        """Every name a recipe may reference for this table."""
        names = set(self.columns)
        if self._defaults.agent_id is not None:
            names.add("agent_id")
        if self._defaults.template is not None:
            names.add("template")
        return frozenset(names)

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        default_agent: str | None = None,
        default_template: str | None = None,
        known_templates: Collection[str] | None = None,
        batch_rows: int = ENGINE_TABLE_BATCH_ROWS,
        now: Callable[[], datetime] | None = None,
        require_agent: bool = True,
    ) -> Table:
        """Check the table's shape and row ids; rows are validated lazily.

        Raises :class:`TableError` if the table cannot run at all.  Reads only
        the header and the ``row_id`` column here (polars, no Python rows).
        """
        path = Path(path)
        fmt = _format_of(path)
        lf = _scan(path, fmt)
        try:
            columns = tuple(lf.collect_schema().names())
        except pl.exceptions.NoDataError:
            raise TableError(f"{path}: the file is empty") from None
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise TableError(f"{path}: cannot read the table: {exc}") from None
        if fmt == "csv":
            _check_csv_shape(path)
        if "row_id" not in columns:
            raise TableError(
                f"{path}: no 'row_id' column (found: {', '.join(columns) or 'none'}); "
                "add a unique id per row so runs can resume"
            )
        if require_agent and "agent_id" not in columns and default_agent is None:
            raise TableError(f"{path}: no 'agent_id' column; add one or pass --agent ID")
        if "template" not in columns and "engine_id" not in columns and default_template is None:
            raise TableError(
                f"{path}: no 'template' or 'engine_id' column; "
                "add one or pass --template SLUG / --recipe FILE"
            )
        row_count = _check_row_ids(path, lf)
        defaults = _Defaults(
            agent_id=default_agent,
            template=default_template,
            known_templates=frozenset(known_templates) if known_templates is not None else None,
            now=now or (lambda: datetime.now(UTC)),
            require_agent=require_agent,
        )
        return cls(path, fmt, columns, row_count, defaults, batch_rows)

    def batches(self) -> Iterator[list[InputRow | RowError]]:
        """Yield validated rows in table order, ``batch_rows`` at a time."""
        number = 0
        lf = _scan(self.path, self.format)
        try:
            for frame in lf.collect_batches(chunk_size=self._batch_rows):
                batch: list[InputRow | RowError] = []
                for record in frame.iter_rows(named=True):
                    number += 1
                    batch.append(self._validate(number, record))
                yield batch
        except pl.exceptions.PolarsError as exc:
            raise TableError(f"{self.path}: cannot read row {number + 1}: {exc}") from None

    def __iter__(self) -> Iterator[InputRow | RowError]:
        for batch in self.batches():
            yield from batch

    def _validate(self, number: int, record: Mapping[str, Any]) -> InputRow | RowError:
        raw_id = record.get("row_id")
        shown_id = str(raw_id).strip() if raw_id is not None else None
        problems: list[tuple[str, str]] = []
        data: dict[str, Any] = {"row_number": number}

        def convert(name: str, fn: Callable[[object], object]) -> None:
            try:
                data[name] = fn(record.get(name))
            except ValueError as exc:
                problems.append((name, str(exc)))

        convert("row_id", _to_id)
        for name in _ID_COLUMNS:
            convert(name, _to_id)
        convert("template", _to_text)
        convert("publish_at", _to_datetime)
        data["variables"] = {
            column: text
            for column, value in record.items()
            if column not in RESERVED_COLUMNS and (text := _to_text(value)) is not None
        }
        if data.get("row_id") is None and not problems:
            problems.append(("row_id", "is empty"))
        if data.get("agent_id") is None:
            data["agent_id"] = self._defaults.agent_id
            if (
                data["agent_id"] is None
                and self._defaults.require_agent
                and "agent_id" not in dict(problems)
            ):
                problems.append(("agent_id", "is empty and no --agent default was given"))
        if data.get("template") is None and data.get("engine_id") is None:
            data["template"] = self._defaults.template
            if data["template"] is None:
                problems.append(("template", "is empty and the row has no engine_id"))
        # Validate the rest even when something is already wrong, so the
        # reason lists every problem of the row at once.
        known_bad = {name for name, _ in problems}
        for name in ("row_id", "agent_id"):
            if data.get(name) is None or name in known_bad:
                data[name] = "placeholder"
        try:
            row = InputRow.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                loc = [str(p) for p in err["loc"]]
                # ("variables", "hook") names the column "hook".
                column = loc[-1] if loc[:1] == ["variables"] else (loc[0] if loc else "row")
                if column not in known_bad:
                    problems.append((column, err["msg"].removeprefix("Value error, ")))
        else:
            if not problems:
                problems.extend(self._row_checks(row))
                if not problems:
                    return row
        first, *rest = problems
        return RowError(number, shown_id or None, first[0], first[1], tuple(rest))

    def _row_checks(self, row: InputRow) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        known = self._defaults.known_templates
        if row.template is not None and known is not None and row.template not in known:
            problems.append(
                (
                    "template",
                    f"unknown template {row.template!r} (known: {', '.join(sorted(known))})",
                )
            )
        if row.publish_at is not None and row.publish_at <= self._defaults.now():
            problems.append(("publish_at", f"{row.publish_at.isoformat()} is in the past"))
        return problems


def _format_of(path: Path) -> Literal["csv", "parquet"]:
    suffix = path.suffix.lower()
    if suffix in {".csv", ".txt"}:
        return "csv"
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    raise TableError(f"{path}: unsupported table format {suffix or '(none)'}; use .csv or .parquet")


def _scan(path: Path, fmt: Literal["csv", "parquet"]) -> pl.LazyFrame:
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    if fmt == "csv":
        # Every column as text: "007" stays "007", "1e3" stays "1e3".
        return pl.scan_csv(path, infer_schema=False, encoding="utf8")
    return pl.scan_parquet(path)


def _check_csv_shape(path: Path) -> None:
    """Refuse repeated column names (polars would silently rename them) and a
    record with more fields than the header or an unclosed quote, naming its
    line: polars would stop on it mid-run, after the rows before it had run."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, strict=True)
            header = next(reader, [])
            repeated = sorted(name for name, n in Counter(header).items() if n > 1)
            if repeated:
                raise TableError(f"{path}: repeated column name(s): {', '.join(repeated)}")
            number = 0
            try:
                for number, record in enumerate(reader, start=1):
                    if len(record) > len(header):
                        raise TableError(
                            f"{path}: line {reader.line_num} (row #{number}) has "
                            f"{len(record)} fields, the header {len(header)}; "
                            "quote a value that contains a comma"
                        )
            except csv.Error as exc:
                raise TableError(
                    f"{path}: line {reader.line_num} (row #{number + 1}) cannot be read: {exc}"
                ) from None
    except UnicodeDecodeError:
        raise TableError(f"{path}: the file is not UTF-8 text") from None


def _check_row_ids(path: Path, lf: pl.LazyFrame) -> int:
    """Count rows and refuse duplicate row ids, in polars (no Python rows)."""
    ids = pl.col("row_id").cast(pl.String).str.strip_chars()
    try:
        counts = lf.select(pl.len().alias("rows")).collect()
        dupes = (
            lf.select(ids.alias("row_id"))
            .filter(pl.col("row_id").is_not_null() & (pl.col("row_id") != ""))
            .group_by("row_id")
            .len()
            .filter(pl.col("len") > 1)
            .sort("row_id")
            .collect()
        )
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise TableError(f"{path}: cannot read the table: {exc}") from None
    rows = int(counts.item(0, "rows"))
    if rows == 0:
        raise TableError(f"{path}: the table has no rows")
    if dupes.height:
        shown = [repr(v) for v in dupes.get_column("row_id").head(_MAX_DUPLICATES_SHOWN)]
        more = dupes.height - len(shown)
        tail = f" and {more} more" if more > 0 else ""
        raise TableError(
            f"{path}: duplicate row_id values: {', '.join(shown)}{tail}; "
            "row_id must be unique (it is the key runs resume by)"
        )
    return rows


def read_frame(path: Path) -> pl.DataFrame:
    """A small side table (agents, sources) read whole: CSV all text, or Parquet.

    Input tables of rows go through :class:`Table`, which streams; these are a few
    hundred rows at most, so one ``DataFrame`` is simpler and costs nothing.
    """
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in {".csv", ".txt"}:
            return pl.read_csv(path, infer_schema=False, encoding="utf8")
        if suffix in {".parquet", ".pq"}:
            return pl.read_parquet(path)
    except pl.exceptions.NoDataError:
        raise TableError(f"{path}: the file is empty") from None
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise TableError(f"{path}: cannot read the table: {exc}") from None
    raise TableError(f"{path}: unsupported table format {suffix or '(none)'}; use .csv or .parquet")
