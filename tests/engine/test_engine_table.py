"""Input tables: whole-table refusals, per-row errors, streaming."""

from __future__ import annotations

import csv
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from genbatch.engine.table import InputRow, RowError, Table, TableError

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def open_table(path: Path, **kw: object) -> Table:
    kw.setdefault("now", lambda: NOW)
    return Table.open(path, **kw)  # type: ignore[arg-type]


def rows_of(table: Table) -> list[InputRow | RowError]:
    return list(table)


def test_good_csv_yields_rows_with_variables(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "t.csv",
        ["row_id", "agent_id", "template", "hook", "script", "empty"],
        [
            ["r1", "1000", "tiktok-vo-broll", "Hook 1", "Script 1", ""],
            ["r2", "1000", "tiktok-montage", "007", "x", ""],
        ],
    )
    table = open_table(path)
    assert table.row_count == 2
    assert table.variable_columns == ("hook", "script", "empty")
    r1, r2 = rows_of(table)
    assert isinstance(r1, InputRow) and isinstance(r2, InputRow)
    assert r1.row_id == "r1" and r1.agent_id == "1000" and r1.template == "tiktok-vo-broll"
    assert r1.variables == {"hook": "Hook 1", "script": "Script 1"}  # empty cell is absent
    assert r2.variables["hook"] == "007"  # CSV cells stay text, no number inference
    assert r1.row_number == 1 and r2.row_number == 2
    assert r1.placeholders()["row_id"] == "r1"
    assert r1.placeholders()["agent_id"] == "1000"


def test_defaults_fill_agent_and_template(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", ["row_id", "hook"], [["a", "h"]])
    (row,) = rows_of(open_table(path, default_agent="7", default_template="tiktok-vo-broll"))
    assert isinstance(row, InputRow)
    assert row.agent_id == "7" and row.template == "tiktok-vo-broll"


def test_engine_id_row_needs_no_template(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", ["row_id", "agent_id", "engine_id"], [["a", "1", "55"]])
    (row,) = rows_of(open_table(path))
    assert isinstance(row, InputRow) and row.engine_id == "55" and row.template is None


@pytest.mark.parametrize(
    ("header", "kw", "match"),
    [
        (["id", "hook"], {"default_agent": "1", "default_template": "t"}, "no 'row_id' column"),
        (["row_id", "hook"], {"default_template": "t"}, "agent_id"),
        (["row_id", "agent_id", "hook"], {}, "template"),
    ],
)
def test_missing_required_columns_refuse_the_table(
    tmp_path: Path, header: list[str], kw: dict[str, str], match: str
) -> None:
    path = write_csv(tmp_path / "t.csv", header, [["x"] * len(header)])
    with pytest.raises(TableError, match=match):
        open_table(path, **kw)


def test_duplicate_row_ids_refuse_the_whole_run_naming_them(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "t.csv",
        ["row_id", "agent_id", "template"],
        [["a", "1", "t"], ["b", "1", "t"], ["a", "1", "t"], [" b ", "1", "t"], ["c", "1", "t"]],
    )
    with pytest.raises(TableError, match=r"duplicate row_id values: 'a', 'b';") as info:
        open_table(path)
    assert "'c'" not in str(info.value)


def test_many_duplicates_are_summarised(tmp_path: Path) -> None:
    rows = [[f"d{i:02d}", "1", "t"] for i in range(30)] * 2
    path = write_csv(tmp_path / "t.csv", ["row_id", "agent_id", "template"], rows)
    with pytest.raises(TableError, match="and 20 more"):
        open_table(path)


def test_repeated_header_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", ["row_id", "hook", "hook"], [["a", "1", "2"]])
    with pytest.raises(TableError, match="repeated column name"):
        open_table(path, default_agent="1", default_template="t")


@pytest.mark.parametrize(
    ("content", "name", "match"),
    [
        (b"", "t.csv", "empty"),
        (b"row_id,agent_id,template\n", "t.csv", "no rows"),
        (b"row_id,agent_id,template\n1,\xff\xfe,t\n", "t.csv", "UTF-8|utf-8"),
        (b"row_id\n1\n", "t.xlsx", "unsupported"),
        # A comma left unquoted: refused before anything runs, naming the line
        # (polars would stop on it mid-run, when its batch is read).
        (
            b"row_id,agent_id,template,hook\na,1,t,x\nb,1,t,y,z\n",
            "t.csv",
            r"line 3 \(row #2\) has 5 fields, the header 4",
        ),
        (b'row_id,agent_id,template,hook\na,1,t,"open\n', "t.csv", "line 2 .*cannot be read"),
    ],
)
def test_unreadable_tables(tmp_path: Path, content: bytes, name: str, match: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TableError, match=match):
        open_table(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="no such file"):
        open_table(tmp_path / "nope.csv")


def test_bad_rows_become_row_errors_and_the_rest_run(tmp_path: Path) -> None:
    future = (NOW + timedelta(days=1)).isoformat()
    past = (NOW - timedelta(days=1)).isoformat()
    path = write_csv(
        tmp_path / "t.csv",
        ["row_id", "agent_id", "template", "publish_at", "hook"],
        [
            ["ok", "1", "tiktok-vo-broll", future, "fine"],
            ["", "1", "tiktok-vo-broll", "", "no id"],
            ["big", "1", "tiktok-vo-broll", "", "x" * 100_000],
            ["naive", "1", "tiktok-vo-broll", "2030-01-01T10:00:00", "h"],
            ["past", "1", "tiktok-vo-broll", past, "h"],
            ["notadate", "1", "tiktok-vo-broll", "tomorrow", "h"],
            ["bad/slug", "1", "Not A Slug!", "", "h"],
            ["noagent", "", "tiktok-vo-broll", "", "h"],
            ['=HYPERLINK("http://x")', "1", "tiktok-vo-broll", "", "h"],
            ["nul\x00id", "1", "tiktok-vo-broll", "", "h"],
            ["x" * 200, "1", "tiktok-vo-broll", "", "h"],
        ],
    )
    results = rows_of(open_table(path))
    assert isinstance(results[0], InputRow)
    assert results[0].publish_at == NOW + timedelta(days=1)
    errors = results[1:]
    assert all(isinstance(e, RowError) for e in errors)
    by_field = [(e.field, e.message) for e in errors if isinstance(e, RowError)]
    assert by_field[0] == ("row_id", "is empty")
    assert by_field[1][0] == "hook" and "100,000 characters" in by_field[1][1]
    assert by_field[2] == ("publish_at", "needs a timezone (e.g. 2026-04-20T15:00:00Z)")
    assert by_field[3][0] == "publish_at" and "in the past" in by_field[3][1]
    assert by_field[4][0] == "publish_at" and "ISO 8601" in by_field[4][1]
    assert by_field[5][0] == "template" and "slug" in by_field[5][1]
    assert by_field[6][0] == "agent_id"
    assert by_field[7][0] == "row_id" and "formula" in by_field[7][1]
    assert by_field[8][0] == "row_id" and "control" in by_field[8][1]
    assert by_field[9][0] == "row_id" and "longer than" in by_field[9][1]
    # Errors name the row by id when there is one, else by position.
    assert isinstance(errors[0], RowError) and errors[0].ref == "#2"
    assert isinstance(errors[1], RowError) and errors[1].ref == "'big'"
    assert str(errors[1]).startswith("row 'big': hook:")


def test_formula_values_are_kept_verbatim_as_text(tmp_path: Path) -> None:
    formula = '=HYPERLINK("http://evil.example","click")'
    path = write_csv(
        tmp_path / "t.csv", ["row_id", "agent_id", "template", "hook"], [["r", "1", "t", formula]]
    )
    (row,) = rows_of(open_table(path))
    assert isinstance(row, InputRow) and row.variables["hook"] == formula


def test_negative_number_row_id_is_not_a_formula(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", ["row_id", "agent_id", "template"], [["-12", "1", "t"]])
    (row,) = rows_of(open_table(path))
    assert isinstance(row, InputRow) and row.row_id == "-12"


def test_unicode_and_multiline_values_survive(tmp_path: Path) -> None:
    script = "Línea uno\nsegunda línea 🌮 — 東京"
    path = write_csv(
        tmp_path / "t.csv",
        ["row_id", "agent_id", "template", "script"],
        [["tacos-ñ", "1", "t", script]],
    )
    (row,) = rows_of(open_table(path))
    assert isinstance(row, InputRow)
    assert row.row_id == "tacos-ñ" and row.variables["script"] == script


def test_bom_header_is_understood(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffrow_id,agent_id,template\nr,1,t\n".encode())
    (row,) = rows_of(open_table(path))
    assert isinstance(row, InputRow) and row.row_id == "r"


def test_unknown_template_is_a_row_error_when_templates_are_known(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "t.csv", ["row_id", "agent_id", "template"], [["a", "1", "tiktok-nope"]]
    )
    (err,) = rows_of(open_table(path, known_templates={"tiktok-vo-broll"}))
    assert isinstance(err, RowError) and err.field == "template" and "unknown" in err.message


def test_multiple_problems_are_all_kept(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "t.csv", ["row_id", "agent_id", "template"], [["=x", "", "BAD SLUG"]]
    )
    (err,) = rows_of(open_table(path))
    assert isinstance(err, RowError)
    assert {err.field, *(f for f, _ in err.others)} >= {"row_id", "agent_id"}
    assert "more" in err.reason


def test_parquet_with_typed_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pl.DataFrame(
        {
            "row_id": [1, 2, 3],
            "agent_id": [1000, 1000, None],
            "template": ["tiktok-vo-broll"] * 3,
            "views": [1.5, 2.0, None],
            "flag": [True, False, None],
            "tags": [["a", "b"], [], None],
            "publish_at": [NOW + timedelta(hours=1), None, None],
        }
    ).write_parquet(path)
    r1, r2, r3 = rows_of(open_table(path))
    assert isinstance(r1, InputRow) and isinstance(r2, InputRow)
    assert r1.row_id == "1" and r1.agent_id == "1000"
    assert r1.variables == {"views": "1.5", "flag": "true", "tags": '["a", "b"]'}
    assert r2.variables == {"views": "2", "flag": "false", "tags": "[]"}
    assert r1.publish_at is not None and r1.publish_at.tzinfo is not None
    assert isinstance(r3, RowError) and r3.field == "agent_id"


def test_parquet_float_row_id_is_a_row_error(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pl.DataFrame(
        {"row_id": [1.5, 2.0], "agent_id": ["1", "1"], "template": ["t", "t"]}
    ).write_parquet(path)
    r1, r2 = rows_of(open_table(path))
    assert isinstance(r1, RowError) and r1.field == "row_id" and "integer" in r1.message
    assert isinstance(r2, InputRow) and r2.row_id == "2"


def test_parquet_duplicates_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pl.DataFrame({"row_id": [7, 7], "agent_id": ["1", "1"], "template": ["t", "t"]}).write_parquet(
        path
    )
    with pytest.raises(TableError, match="'7'"):
        open_table(path)


@pytest.mark.slow
def test_large_table_is_streamed_in_bounded_batches(tmp_path: Path) -> None:
    n = 100_000
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("row_id,agent_id,template,hook,script\n")
        for i in range(n):
            fh.write(f"r{i},1000,tiktok-vo-broll,hook number {i},a script of some length {i}\n")
    table = open_table(path, batch_rows=1_000)
    assert table.row_count == n
    tracemalloc.start()
    try:
        seen = 0
        biggest = 0
        for batch in table.batches():
            biggest = max(biggest, len(batch))
            seen += sum(1 for r in batch if isinstance(r, InputRow))
            del batch
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == n
    assert biggest <= 1_000
    # 100k rows as Python objects would be tens of MB; a batch is well under.
    assert peak < 15 * 1024 * 1024, f"peak Python allocations {peak / 1e6:.1f} MB"
