"""docs/design.md §7's invariants I1–I6, checked from the outside after every fault case.

Sources, each read independently of the engine's own bookkeeping where it can be:

* the simulator's ledger (``GET /_sim/ledger``): every generation, every
  charge and refund — the money truth;
* the journal, read-only (``Journal.open(read_only=True)`` for the latest
  run, plain SQLite for every run in the file);
* the result table (``results.parquet`` and ``results.csv``);
* the output directory, and a snapshot of its parent taken before the run.

``final=False`` is for the state right after a SIGKILL: rows may be pending,
a ``.part`` may sit in ``videos/`` and generations may still be running, so
I1 and I3 are checked in their weaker forms (no row twice, nothing reported
that was not charged) and the rest in full.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import sqlite3
import struct
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from genbatch.engine.journal import Journal

__all__ = [
    "ALL",
    "InvariantError",
    "Snapshot",
    "check_invariants",
    "check_leaks_and_outside",
    "get_ledger",
    "snapshot",
]

ALL = ("I1", "I2", "I3", "I4", "I5", "I6")
TERMINAL = frozenset({"completed", "failed", "skipped"})
REFUNDED = frozenset({"failed", "stopped"})
RUNNING = frozenset({"pending", "processing"})
#: A CSV cell a spreadsheet would evaluate (OWASP CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CSV_TEXT_COLUMNS = (
    "row_id",
    "status",
    "reason",
    "error_code",
    "engine_id",
    "generation_ids",
    "render_url",
    "mp4_path",
    "sha256",
    "post_id",
)
_SIGNATURE = re.compile(rb"(?i)x-amz-signature(?:=|%3d)([^&\s\"'<>]*)")


class InvariantError(AssertionError):
    """One invariant does not hold; the message names it (``I3: ...``)."""


def _fail(inv: str, message: str) -> InvariantError:
    return InvariantError(f"{inv}: {message}")


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------
def get_ledger(base_url: str, *, wait_idle: float = 5.0) -> dict[str, Any]:
    """The simulator's ledger, once no generation is pending/processing (or ``wait_idle`` s).

    A generation still running when a run ends is paid work nobody watched;
    waiting a moment lets one that *is* being finished settle first.
    """
    deadline = time.monotonic() + wait_idle
    while True:
        with urllib.request.urlopen(base_url + "/_sim/ledger", timeout=10) as resp:
            data: dict[str, Any] = json.loads(resp.read())
        busy = [g for g in data["generations"] if g["status"] in RUNNING]
        if not busy or time.monotonic() >= deadline:
            return data
        time.sleep(0.05)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Files under ``root`` (minus ``exclude``): relative path -> (kind, size, mtime_ns)."""

    root: Path
    exclude: Path
    entries: Mapping[str, tuple[str, int, int]]


def snapshot(root: Path, exclude: Path) -> Snapshot:
    """Everything under ``root`` except ``exclude`` (the output dir), without following links."""
    entries: dict[str, tuple[str, int, int]] = {}
    skip = os.path.abspath(exclude)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in list(dirnames):
            full = os.path.join(dirpath, name)
            if os.path.abspath(full) == skip:
                dirnames.remove(name)
                continue
            st = os.lstat(full)
            kind = "link" if os.path.islink(full) else "dir"
            entries[os.path.relpath(full, root)] = (kind, 0, 0 if kind == "dir" else st.st_mtime_ns)
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.abspath(full) == skip:
                continue
            st = os.lstat(full)
            kind = "link" if os.path.islink(full) else "file"
            entries[os.path.relpath(full, root)] = (kind, st.st_size, st.st_mtime_ns)
    return Snapshot(root, Path(skip), entries)


def _results(out: Path) -> list[dict[str, Any]] | None:
    parquet, csv_path = out / "results.parquet", out / "results.csv"
    if not parquet.exists():
        return None
    rows = pl.read_parquet(parquet).to_dicts()
    with csv_path.open(newline="", encoding="utf-8") as fh:
        csv_rows = list(csv.DictReader(fh))
    if len(csv_rows) != len(rows):
        raise _fail("I1", f"results.csv has {len(csv_rows)} rows, results.parquet {len(rows)}")
    for pq, cs in zip(rows, csv_rows, strict=True):
        for col in _CSV_TEXT_COLUMNS:
            cell = cs.get(col, "")
            if cell.startswith(FORMULA_START):
                raise _fail("I5", f"results.csv {col}={cell!r} would run as a formula")
            value = pq.get(col)
            want = "" if value is None else str(value)
            shown = cell[1:] if cell.startswith("'") and want.startswith(FORMULA_START) else cell
            if shown != want:
                raise _fail("I1", f"results.csv {col} {cell!r} != results.parquet {want!r}")
    return rows


def _journal_rows(out: Path) -> dict[str, Any] | None:
    """Latest run through the engine's read-only API."""
    if not (out / "journal.sqlite").exists():
        return None
    with Journal.open(out, read_only=True) as journal:
        return {
            "run_id": journal.run_id,
            "rows": {r.row_id: r for r in journal.rows()},
            "credits": journal.credits_total(),
        }


def _journal_all_runs(out: Path) -> tuple[dict[str, str], float, dict[str, list[tuple[str, str]]]]:
    """(engine id -> row id, credits over every run, row id -> [(step, remote id)])."""
    path = out / "journal.sqlite"
    engines: dict[str, str] = {}
    steps: dict[str, list[tuple[str, str]]] = defaultdict(list)
    if not path.exists():
        return engines, 0.0, steps
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        for row_id, engine_id in conn.execute(
            "SELECT row_id, remote_id FROM steps WHERE step = 'clone' AND remote_id IS NOT NULL "
            "UNION SELECT row_id, engine_id FROM rows WHERE engine_id IS NOT NULL"
        ):
            seen = engines.setdefault(str(engine_id), row_id)
            if seen != row_id:
                raise _fail("I2", f"engine {engine_id} belongs to rows {seen!r} and {row_id!r}")
        (credits,) = conn.execute("SELECT COALESCE(SUM(credits), 0) FROM steps").fetchone()
        for row_id, step, remote in conn.execute(
            "SELECT row_id, step, remote_id FROM steps WHERE remote_id IS NOT NULL"
        ):
            steps[row_id].append((step, str(remote)))
    finally:
        conn.close()
    return engines, float(credits), steps


# --------------------------------------------------------------------------
# The invariants
# --------------------------------------------------------------------------
def _i1(
    input_rows: list[str],
    results: list[dict[str, Any]] | None,
    journal: dict[str, Any] | None,
    final: bool,
) -> None:
    want = Counter(input_rows)
    if final:
        if results is None:
            raise _fail("I1", "no results.parquet after the run")
        got = Counter(r["row_id"] for r in results)
        if got != want:
            raise _fail("I1", f"result rows {dict(got)} != input rows {dict(want)}")
        for r in results:
            if r["status"] not in TERMINAL:
                raise _fail("I1", f"row {r['row_id']!r} ended {r['status']!r}")
            if r["status"] != "completed" and not r["reason"]:
                raise _fail("I1", f"row {r['row_id']!r} is {r['status']} without a reason")
    elif results is not None and [
        k for k, n in Counter(r["row_id"] for r in results).items() if n > 1
    ]:
        raise _fail("I1", "a row appears twice in the result table")
    if journal is not None:
        rows = journal["rows"]
        extra = set(rows) - set(want)
        if extra:
            raise _fail("I1", f"journal rows not in the input: {sorted(extra)[:5]}")
        if final:
            if set(rows) != set(want):
                raise _fail("I1", f"journal lacks rows {sorted(set(want) - set(rows))[:5]}")
            assert results is not None
            for r in results:
                jr = rows[r["row_id"]]
                if jr.status != r["status"]:
                    raise _fail(
                        "I1", f"row {jr.row_id!r}: journal {jr.status}, table {r['status']}"
                    )


def _i2(ledger: dict[str, Any], engines: Mapping[str, str], foreign: Iterable[str]) -> None:
    foreign_ids = {str(e) for e in foreign}
    by_cell: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    keys: Counter[str] = Counter()
    for g in ledger["generations"]:
        eng = str(g["engine_id"])
        if eng in foreign_ids:
            continue
        if eng not in engines:
            raise _fail("I2", f"generation {g['id']} paid on engine {eng}, unknown to the journal")
        by_cell[(engines[eng], str(g["cell_id"]), str(g["layer_id"]))].append(g)
        if g["idempotency_key"]:
            keys[g["idempotency_key"]] += 1
    for (row, cell, _layer), gens in by_cell.items():
        gens.sort(key=lambda g: g["id"])
        for g in gens[:-1]:
            if g["status"] not in REFUNDED:
                later = [x["id"] for x in gens if x["id"] > g["id"]]
                raise _fail(
                    "I2",
                    f"row {row!r} cell {cell}: generation {g['id']} is {g['status']} and "
                    f"{later} were paid after it",
                )
    # A row re-cloned after a crash must not pay for its steps again on the new engine.
    live_engines: dict[str, set[str]] = defaultdict(set)
    for (row, _cell, _layer), gens in by_cell.items():
        for g in gens:
            if g["status"] not in REFUNDED:
                live_engines[row].add(str(g["engine_id"]))
    spread = {row: sorted(e) for row, e in live_engines.items() if len(e) > 1}
    if spread:
        raise _fail("I2", f"rows paid on more than one engine: {spread}")
    twice = [k for k, n in keys.items() if n > 1]
    if twice:
        raise _fail("I2", f"idempotency keys behind two generations: {twice[:3]}")
    charges: Counter[str] = Counter()
    for ev in ledger["credits"]["events"]:
        if ev["kind"] == "charge":
            charges[str(ev["generation_id"])] += 1
    again = [g for g, n in charges.items() if n > 1]
    if again:
        raise _fail("I2", f"generations charged more than once (continue): {again[:3]}")


def _i3(
    ledger: dict[str, Any],
    engines: Mapping[str, str],
    journal_total: float,
    journal: dict[str, Any] | None,
    results: list[dict[str, Any]] | None,
    charged_before: float,
    final: bool,
) -> None:
    c = ledger["credits"]
    net = c["charged"] - c["refunded"] - charged_before
    if final:
        running = [g["id"] for g in ledger["generations"] if g["status"] in RUNNING]
        if running:
            raise _fail("I3", f"generations still running after the run: {running[:5]}")
        if abs(net - journal_total) > 1e-6:
            raise _fail(
                "I3", f"simulator kept {net:g} credits, the journal reports {journal_total:g}"
            )
    elif journal_total > net + 1e-6:
        raise _fail("I3", f"journal reports {journal_total:g} credits, simulator kept only {net:g}")
    if journal is not None and results is not None and final:
        table = sum(r["credits"] or 0.0 for r in results)
        if abs(table - journal["credits"]) > 1e-6:
            raise _fail("I3", f"results credits {table:g} != journal {journal['credits']:g}")
        kept: dict[str, float] = defaultdict(float)
        for g in ledger["generations"]:
            row = engines.get(str(g["engine_id"]))
            if row is not None and g["status"] == "completed":
                kept[row] += g["credits"]
        runs_total = abs(journal_total - journal["credits"]) < 1e-6
        for r in results:
            if runs_total and abs((r["credits"] or 0.0) - kept.get(r["row_id"], 0.0)) > 1e-6:
                raise _fail(
                    "I3",
                    f"row {r['row_id']!r}: table says {r['credits']} credits, "
                    f"the simulator kept {kept.get(r['row_id'], 0.0)}",
                )


def mp4_complete(data: bytes) -> bool:
    """Top-level ISO-BMFF boxes tile the file exactly (a cut file never does)."""
    pos = 0
    if data[4:8] != b"ftyp":
        return False
    while pos < len(data):
        if pos + 8 > len(data):
            return False
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        if size == 1:
            if pos + 16 > len(data):
                return False
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
        elif size == 0:
            size = len(data) - pos
        if size < 8:
            return False
        pos += size
    return pos == len(data)


def _i4(
    out: Path,
    results: list[dict[str, Any]] | None,
    final: bool,
    fetch: Callable[[str], bytes] | None,
    planted: Iterable[Path] = (),
) -> None:
    videos = out / "videos"
    for dirpath, _dirs, files in os.walk(out):
        for name in files:
            if final and name.endswith((".part", ".tmp")):
                raise _fail("I4", f"partial file {os.path.join(dirpath, name)} after the run")
    if not videos.exists():
        return
    if videos.is_symlink():
        if os.path.abspath(videos) in {os.path.abspath(p) for p in planted}:
            return  # the test planted it; I6 checks nothing went through it
        raise _fail("I4", "videos/ is a symlink")
    real_videos = videos.resolve()
    on_disk = {}
    for p in videos.iterdir():
        if p.is_symlink():
            continue  # planted by a hostile-names case; I6 checks it was not followed
        if p.name.endswith(".part"):
            continue
        if p.name.endswith(".jpg"):  # the render's thumbnail, beside its MP4
            if final and not p.read_bytes().startswith(b"\xff\xd8\xff"):
                raise _fail("I4", f"{p.name} is not a JPEG")
            continue
        if not p.name.endswith(".mp4"):
            raise _fail("I4", f"unexpected file in videos/: {p.name!r}")
        data = p.read_bytes()
        if not mp4_complete(data):
            raise _fail("I4", f"{p.name} is not a complete MP4 ({len(data)} bytes)")
        on_disk[p.name] = data
    if results is None or not final:
        return
    referenced = set()
    for r in results:
        if not r["mp4_path"]:
            continue
        path = out / r["mp4_path"]
        if path.is_symlink() or path.resolve().parent != real_videos:
            raise _fail("I4", f"row {r['row_id']!r}: mp4_path {r['mp4_path']!r} is not in videos/")
        if path.name not in on_disk:
            raise _fail("I4", f"row {r['row_id']!r}: {r['mp4_path']} missing")
        data = on_disk[path.name]
        if len(data) != r["bytes"] or hashlib.sha256(data).hexdigest() != r["sha256"]:
            raise _fail("I4", f"row {r['row_id']!r}: {path.name} differs from its size/sha256")
        if fetch is not None and r["render_url"]:
            served = fetch(r["render_url"])
            if hashlib.sha256(served).hexdigest() != r["sha256"]:
                raise _fail("I4", f"row {r['row_id']!r}: file differs from the CDN's bytes")
        referenced.add(path.name)
    stray = set(on_disk) - referenced
    if stray:
        raise _fail("I4", f"MP4s no row accounts for: {sorted(stray)}")


def _scan_secret(blob: bytes, secrets: Iterable[str], where: str) -> None:
    for secret in secrets:
        if secret and secret.encode() in blob:
            raise _fail("I5", f"a secret appears in {where}")
    for m in _SIGNATURE.finditer(blob):
        value = m.group(1)
        if value and not value.startswith((b"[REDACTED]", b"%5BREDACTED", b"%5bREDACTED")):
            raise _fail("I5", f"a presigned signature appears in {where}")


def _i5(out: Path, secrets: list[str], outputs: Iterable[str]) -> None:
    for dirpath, _dirs, files in os.walk(out):
        for name in files:
            p = Path(dirpath) / name
            if p.is_symlink():
                continue
            _scan_secret(p.read_bytes(), secrets, str(p.relative_to(out)))
    for i, text in enumerate(outputs):
        _scan_secret(text.encode("utf-8", "surrogatepass"), secrets, f"captured output #{i}")
        if "Traceback (most recent call last)" in text:
            raise _fail("I5", f"a traceback was printed (captured output #{i}): {text[-800:]}")


def _i6(out: Path, before: Snapshot | None, planted: Iterable[Path]) -> None:
    real_out = out.resolve()
    allowed_links = {os.path.abspath(p) for p in planted}
    for dirpath, dirs, files in os.walk(out, followlinks=False):
        for name in [*dirs, *files]:
            p = os.path.join(dirpath, name)
            if os.path.islink(p) and os.path.abspath(p) not in allowed_links:
                raise _fail("I6", f"a symlink appeared in the output dir: {p}")
            if not os.path.islink(p) and real_out not in Path(os.path.realpath(p)).parents:
                raise _fail("I6", f"{p} resolves outside the output dir")
    if before is None:
        return
    after = snapshot(before.root, before.exclude)
    changed = sorted(
        k
        for k in set(before.entries) | set(after.entries)
        if before.entries.get(k) != after.entries.get(k)
    )
    if changed:
        raise _fail("I6", f"written outside the output dir: {changed[:10]}")


def check_leaks_and_outside(
    out_dir: Path, secrets: Iterable[str], outputs: Iterable[str], before: Snapshot | None
) -> tuple[str, ...]:
    """I5 and I6 alone, for a run that never got going (nothing else to check)."""
    keys = [s for s in secrets if s]
    if out_dir.exists():
        _i5(out_dir, keys, outputs)
        _i6(out_dir, before, ())
    else:
        _i5(Path(os.devnull).parent / "nonexistent-genbatch-dir", keys, outputs)
        if before is not None:
            _i6(before.root, before, ())
    return ("I5", "I6")


def check_invariants(
    out_dir: Path,
    ledger: dict[str, Any],
    input_rows: Iterable[str],
    secrets: Iterable[str],
    *,
    outputs: Iterable[str] = (),
    before: Snapshot | None = None,
    final: bool = True,
    charged_before: float = 0.0,
    fetch: Callable[[str], bytes] | None = None,
    planted: Iterable[Path] = (),
    foreign_engines: Iterable[str] = (),
) -> tuple[str, ...]:
    """Assert I1–I6 for ``out_dir``; return the invariants checked (for the report).

    ``input_rows``: the row keys the table holds (``row_id``s); ``secrets``:
    strings that must appear nowhere (the API key); ``outputs``: captured
    stdout/stderr; ``before``: :func:`snapshot` of the parent taken before
    the first run; ``fetch``: GET a URL's bytes (compares each MP4 with what
    the CDN serves); ``planted``: symlinks the test itself put in the dir.
    """
    rows = list(input_rows)
    keys = [s for s in secrets if s]
    outs = list(outputs)
    results = _results(out_dir)
    journal = _journal_rows(out_dir)
    engines, journal_total, _steps = _journal_all_runs(out_dir)
    _i1(rows, results, journal, final)
    _i2(ledger, engines, foreign_engines)
    _i3(ledger, engines, journal_total, journal, results, charged_before, final)
    planted = list(planted)
    _i4(out_dir, results, final, fetch, planted)
    _i5(out_dir, keys, outs)
    _i6(out_dir, before, planted)
    return ALL
