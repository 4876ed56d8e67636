"""Cases 12, 13, 15: hostile tables, a wrong key, hostile names.

A table is untrusted input: bad rows must fail alone, with a reason naming
the column, before any paid call; what we write back (results.csv) must not
turn into a formula in a spreadsheet; no name from a row may place a file
outside the output dir or write through a symlink planted there.  A refused
key must stop everything at once, spend nothing and leave the rows to resume.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from harness import Case, ProxyFactory, SimFactory, write_table

from genbatch.engine.journal import Journal

pytestmark = pytest.mark.reliability

HEADER = ["row_id", "hook", "script", "publish_at"]
FORMULA = '=HYPERLINK("http://evil.example/x","click")'


def _rows(out: Path) -> dict[str, dict[str, Any]]:
    return {r["row_id"]: r for r in pl.read_parquet(out / "results.parquet").to_dicts()}


@pytest.mark.case(
    "12",
    fault="bad input rows",
    how="one CSV: an empty script, a 100 KB hook, publish_at 'tomorrow', a formula row_id, "
    "formula and unicode values, a unicode row_id — beside two good rows",
)
def test_bad_rows_fail_alone_with_reasons_and_formulas_are_escaped(
    case: Case, sims: SimFactory
) -> None:
    sim = sims(seed=12)
    rows = [
        ["ok-1", "Hook one", "Script one.", ""],
        ["missing-script", "Hook two", "", ""],
        ["huge", "h" * 100_000, "Script.", ""],
        ["bad-date", "Hook", "Script.", "tomorrow"],
        [FORMULA, "Hook", "Script.", ""],
        ["formula-values", "=1+2", "@SUM(A1:A9)", ""],
        ["café-☕-行", "Ünïcödé hook ☕", "Script ✓.", ""],
    ]
    table = write_table(case.work / "bad.csv", HEADER, rows)
    ids = [r[0] for r in rows]
    out = case.out()
    res = case.run(table, out, sim.url)
    assert res.rc == 1, res.stderr
    led = sim.ledger()
    case.check(out, led, ids, fetch=sim.fetch)
    got = _rows(out)
    for rid, column in (
        ("missing-script", "script"),
        ("huge", "hook"),
        ("bad-date", "publish_at"),
        (FORMULA, "row_id"),
    ):
        assert got[rid]["status"] == "failed", got[rid]
        assert column in (got[rid]["reason"] or ""), got[rid]
    for rid in ("ok-1", "formula-values", "café-☕-行"):
        assert got[rid]["status"] == "completed", got[rid]
    # Failed rows never got an engine: no paid call was made for them.
    assert len(led["generations"]) == 3 * 3
    csv_text = (out / "results.csv").read_text(encoding="utf-8")
    assert "'" + FORMULA.replace('"', '""') in csv_text  # escaped, then CSV-quoted
    case.note("4 bad rows failed with the column named, 3 good ones completed; CSV escaped")


@pytest.mark.case(
    "12",
    fault="duplicate row ids",
    how="a CSV with row_id 'dup' twice",
)
def test_duplicate_row_ids_refuse_the_run_before_any_call(case: Case, sims: SimFactory) -> None:
    sim = sims(seed=121)
    table = write_table(
        case.work / "dup.csv",
        HEADER,
        [["dup", "a", "b", ""], ["x", "c", "d", ""], ["dup", "e", "f", ""]],
    )
    out = case.out()
    res = case.run(table, out, sim.url)
    assert res.rc == 2 and "duplicate row_id" in res.stderr, res.stderr
    led = sim.ledger()
    api = [r for r in led["requests"]["by_route"] if " /v1/" in r]
    assert not api, f"the refused run still called {api}"
    assert not led["generations"]
    assert not (out / "journal.sqlite").exists()
    case.invariants.update({"I2", "I3"})  # nothing paid, nothing reported
    case.check_outputs_only()
    case.note("exit 2 with the duplicate named; no request reached the API")


@pytest.mark.case(
    "13",
    fault="invalid API key",
    how="GEN_API_KEY set to a key the sim does not know; then rerun with the right key",
)
def test_invalid_key_exits_2_at_once_spends_nothing_and_rows_stay_pending(
    case: Case, sims: SimFactory
) -> None:
    sim = sims(seed=13)
    table, ids = case.table(3)
    out = case.out()
    wrong = "gbwrong-Key-0000-reliability-7a7a7a"
    res = case.run(table, out, sim.url, key=wrong)
    assert res.rc == 2, (res.rc, res.stderr)
    assert "401" in res.stderr or "refused" in res.stderr
    led = sim.ledger()
    assert not led["generations"] and led["credits"]["charged"] == 0
    statuses = led["requests"]["by_status"]
    assert set(statuses) <= {"401", "200"} and statuses.get("401", 0) <= 2, statuses
    if (out / "results.parquet").exists():
        assert {r["status"] for r in _rows(out).values()} == {"pending"}
    case.check(out, led, ids, final=False, secrets_extra=[wrong])
    again = case.run(table, out, sim.url)
    assert again.rc == 0, again.stderr
    case.check(out, sim.ledger(), ids, fetch=sim.fetch, secrets_extra=[wrong])
    case.note(f"exit 2 after {statuses.get('401', 0)} request(s), 0 credits; rerun completed")


@pytest.mark.case(
    "13",
    fault="key revoked mid-run",
    how="fault proxy answers every /v1 request with 401 from the first paid POST on; "
    "then removed and the same command rerun",
)
def test_key_revoked_mid_run_stops_everything_and_resumes(
    case: Case, sims: SimFactory, proxies: ProxyFactory
) -> None:
    sim = sims(seed=131)
    proxy = proxies(sim, seed=131)
    body = b'{"error": "missing or invalid API key", "error_code": "unauthorized"}'
    revoked = (
        b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )

    def revoke() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(b"/generate?" in r for r in proxy.stats.requests):
                break
            time.sleep(0.005)
        proxy.add("respond", "upstream", match=rb"^[A-Z]+ /v1/", response=revoked)

    revoker = threading.Thread(target=revoke, daemon=True)
    revoker.start()
    table, ids = case.table(3)
    out = case.out()
    res = case.run(table, out, proxy.url)
    revoker.join(timeout=35)
    assert res.rc == 2 and "401" in res.stderr, (res.rc, res.stderr)
    rows = _rows(out)
    assert {r["status"] for r in rows.values()} <= {"completed", "pending"}, rows
    proxy.clear()
    case.check(out, sim.ledger(wait_idle=0), ids, final=False)
    again = case.run(table, out, proxy.url)
    assert again.rc == 0, again.stderr
    led = sim.ledger()
    case.check(out, led, ids, fetch=sim.fetch)
    assert len(led["generations"]) == 3 * len(ids)
    case.note("exit 2 at the first 401, rows left pending (none failed); rerun completed")


@pytest.mark.case(
    "15",
    fault="hostile names",
    how="row_ids ../../x, an absolute path, CON, a NUL byte, and videos/<row>.mp4 planted "
    "as a symlink to a file outside the output dir",
)
def test_hostile_names_write_nothing_outside_and_follow_no_symlink(
    case: Case, sims: SimFactory
) -> None:
    sim = sims(seed=15)
    victim = case.work / "victim.mp4"
    victim.write_bytes(b"do not overwrite me")
    absolute = str(case.work / "abs-escape.mp4")
    rows = [
        ["../../x", "Hook", "Script.", ""],
        [absolute, "Hook", "Script.", ""],
        ["CON", "Hook", "Script.", ""],
        ["nul\x00byte", "Hook", "Script.", ""],
        ["planted", "Hook", "Script.", ""],
    ]
    table = write_table(case.work / "hostile.csv", HEADER, rows)
    out = case.out()
    # A genbatch output dir (it has a journal: a run began there) in which
    # someone planted a symlink; without a journal the run is refused outright.
    out.mkdir(parents=True)
    Journal.open(out).close()
    videos = out / "videos"
    videos.mkdir()
    link = videos / "planted.mp4"
    link.symlink_to(victim)
    case.freeze(out)
    res = case.run(table, out, sim.url)
    assert res.rc in (0, 1), res.stderr
    assert victim.read_bytes() == b"do not overwrite me"
    assert not Path(absolute).exists() and not (case.work.parent / "x").exists()
    got = pl.read_parquet(out / "results.parquet").to_dicts()
    keys = [r["row_id"] for r in got]
    planted = [link] if link.is_symlink() else []
    case.check(out, sim.ledger(), keys, fetch=sim.fetch, planted=planted)
    assert len(got) == len(rows)
    for r in got:
        if r["mp4_path"]:
            p = out / r["mp4_path"]
            assert p.parent == videos and not p.is_symlink()
            assert os.path.realpath(p).startswith(os.path.realpath(videos) + os.sep)
    done = sum(r["status"] == "completed" for r in got)
    case.note(
        f"{done} hostile-named rows completed under safe names; victim untouched; "
        f"symlink {'kept, not followed' if planted else 'replaced by a regular file'}"
    )


@pytest.mark.case(
    "15",
    fault="videos/ itself a symlink",
    how="out/videos planted as a symlink to a directory outside the output dir",
)
def test_videos_dir_symlink_refuses_the_run(case: Case, sims: SimFactory) -> None:
    sim = sims(seed=151)
    outside = case.work / "elsewhere"
    outside.mkdir()
    table, ids = case.table(2)
    out = case.out()
    out.mkdir()
    (out / "videos").symlink_to(outside, target_is_directory=True)
    case.freeze(out)
    res = case.run(table, out, sim.url)
    assert res.rc == 2, (res.rc, res.stderr)
    assert list(outside.iterdir()) == []
    led = sim.ledger()
    assert not led["generations"]
    case.check(out, led, ids, final=False, planted=[out / "videos"])
    case.note("exit 2 naming the link; nothing written through it")


@pytest.mark.case(
    "12",
    fault="wrong types (Parquet)",
    how="a Parquet table: integer hooks, float scripts, a null row_id, a null hook, "
    "an impossible publish_at",
)
def test_parquet_with_wrong_types_fails_only_the_bad_rows(case: Case, sims: SimFactory) -> None:
    sim = sims(seed=122)
    table = case.work / "typed.parquet"
    pl.DataFrame(
        {
            "row_id": ["a", None, "c", "d"],
            "hook": [1, 2, None, 4],
            "script": [1.5, 2.5, 3.5, None],
            "publish_at": [None, None, None, "2031-13-45"],
        },
        strict=False,
    ).write_parquet(table)
    out = case.out()
    res = case.run(table, out, sim.url)
    assert res.rc == 1, res.stderr
    got = _rows(out)
    case.check(out, sim.ledger(), ["a", "#2", "c", "d"], fetch=sim.fetch)
    assert got["a"]["status"] == "completed"  # numbers are text to a recipe
    for rid, column in (("#2", "row_id"), ("c", "hook"), ("d", "publish_at")):
        assert got[rid]["status"] == "failed" and column in (got[rid]["reason"] or ""), got[rid]
    case.note("numeric cells became text; the null row_id is reported as #2; bad rows named")
