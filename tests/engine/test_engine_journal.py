"""Journal: state machine, durable intents, crash consistency, the lock."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from genbatch.engine.journal import (
    Journal,
    JournalError,
    JournalLocked,
    idempotency_key,
)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(tmp_path / "out", meta={"table": "t.csv"}) as j:
        yield j


def run_child(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_new_run_then_resume_then_fresh(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with Journal.open(out, meta={"table": "t.csv"}) as first:
        assert not first.resumed and first.meta == {"table": "t.csv"}
        run_id = first.run_id
        first.add_rows(["a"])
    with Journal.open(out) as again:
        assert again.resumed and again.run_id == run_id
        assert again.row("a") is not None
    with Journal.open(out, fresh=True) as fresh:
        assert not fresh.resumed and fresh.run_id != run_id
        assert fresh.row("a") is None  # a fresh run starts from nothing
    with Journal.open(out) as latest:
        assert latest.run_id == fresh.run_id


def test_journal_files_land_in_the_output_dir(journal: Journal, tmp_path: Path) -> None:
    assert journal.path == (tmp_path / "out" / "journal.sqlite").resolve()
    assert (tmp_path / "out" / ".genbatch.lock").is_file()


def test_row_lifecycle_has_exactly_one_terminal_status(journal: Journal) -> None:
    assert journal.add_rows(["a", "b", "c"]) == 3
    assert journal.add_rows(["a", "d"]) == 1  # known rows are left alone
    journal.start_row("a", "clone")
    journal.set_step("a", "render")
    rec = journal.row("a")
    assert rec is not None and rec.status == "running" and rec.step == "render"
    journal.finish_row("a", "completed")
    with pytest.raises(JournalError, match="already ended completed"):
        journal.finish_row("a", "failed", "late failure")
    with pytest.raises(JournalError, match="already completed"):
        journal.start_row("a")
    journal.finish_row("b", "skipped", "insufficient credits", "insufficient_credits_for_job")
    journal.start_row("c")
    journal.finish_row("c", "failed", "hook: is empty")
    assert journal.counts() == {
        "pending": 1,
        "running": 0,
        "completed": 1,
        "failed": 1,
        "skipped": 1,
    }
    assert [r.row_id for r in journal.rows()] == ["a", "b", "c", "d"]  # table order
    assert [r.row_id for r in journal.rows("skipped")] == ["b"]
    b = journal.row("b")
    assert b is not None and b.reason == "insufficient credits"
    assert b.error_code == "insufficient_credits_for_job" and b.terminal


def test_reopen_only_failed_or_skipped(journal: Journal) -> None:
    journal.add_rows(["a", "b"])
    journal.finish_row("a", "skipped", "insufficient credits")
    journal.reopen_row("a")
    rec = journal.row("a")
    assert rec is not None and rec.status == "pending" and rec.reason is None
    journal.start_row("a")
    journal.finish_row("a", "completed")
    with pytest.raises(JournalError, match="only failed/skipped"):
        journal.reopen_row("a")
    with pytest.raises(JournalError, match="not in the journal"):
        journal.start_row("zzz")
    with pytest.raises(JournalError, match="not running"):
        journal.set_step("b", "clone")
    with pytest.raises(JournalError, match="terminal"):
        journal.finish_row("b", "running")  # type: ignore[arg-type]


def test_attempts_count_row_starts(journal: Journal) -> None:
    journal.add_rows(["a"])
    journal.start_row("a")
    journal.start_row("a")  # resumed after a crash
    rec = journal.row("a")
    assert rec is not None and rec.attempts == 2


def test_intent_keys_are_deterministic_and_resends_reuse_them(journal: Journal) -> None:
    journal.add_rows(["a"])
    first = journal.record_intent("a", "generate:broll")
    assert first.attempt == 1
    assert first.idempotency_key == idempotency_key(journal.run_id, "a", "generate:broll", 1)
    again = journal.record_intent("a", "generate:broll")
    assert again == first  # a resend after a crash sends the same key
    journal.record_remote_id("a", "generate:broll", 789)
    assert journal.pending_intents() == []
    journal.finish_step("a", "generate:broll", "failed", error_code="generation_failed")
    retry = journal.record_intent("a", "generate:broll", retry=True)
    assert retry.attempt == 2 and retry.idempotency_key != first.idempotency_key
    assert retry.remote_id is None
    step = journal.step("a", "generate:broll")
    assert step is not None and step.status == "intent" and step.remote_id is None


def test_keys_differ_by_run_row_step_attempt() -> None:
    base = idempotency_key("run", "row", "step", 1)
    others = {
        idempotency_key("run2", "row", "step", 1),
        idempotency_key("run", "row2", "step", 1),
        idempotency_key("run", "row", "step2", 1),
        idempotency_key("run", "row", "step", 2),
    }
    assert base not in others and len(others) == 4
    assert base.startswith("gb-") and len(base) == 35


def test_step_records_and_timings(tmp_path: Path) -> None:
    now = [1000.0]
    with Journal.open(tmp_path, clock=lambda: now[0]) as j:
        j.add_rows(["a"])
        j.begin_step("a", "render")
        now[0] = 1002.0
        j.record_intent("a", "render")
        now[0] = 1002.5
        j.record_remote_id("a", "render", "56789")
        now[0] = 1030.0
        j.finish_step("a", "render", "completed", result={"url": "https://cdn/x.mp4"}, credits=5)
        step = j.step("a", "render")
        assert step is not None and step.done
        assert step.remote_id == "56789" and step.result == {"url": "https://cdn/x.mp4"}
        assert (step.started_at, step.intent_at, step.remote_at) == (1000.0, 1002.0, 1002.5)
        assert step.seconds == 30.0
        j.finish_step("a", "download", "completed")
        assert set(j.steps("a")) == {"render", "download"}
        assert j.credits_total() == 5.0
        assert j.step("a", "nothing") is None


def test_steps_of_many_rows_read_as_each_rows_own(tmp_path: Path) -> None:
    """One query for many rows gives each row what :meth:`Journal.steps` gives it,
    in the same order; a row with no step is absent."""
    now = [1000.0]
    with Journal.open(tmp_path, clock=lambda: now[0]) as j:
        j.add_rows(["a", "b", "c"])
        for row, steps in (("a", ["clone", "fill", "render"]), ("c", ["render", "clone"])):
            for name in steps:
                now[0] += 1.0
                j.begin_step(row, name)
                j.finish_step(row, name, "completed", result={"n": now[0]})
        found = j.steps_of(["a", "b", "c"])
        assert set(found) == {"a", "c"}
        for row in ("a", "c"):
            assert list(found[row].items()) == list(j.steps(row).items())
        assert list(found["c"]) == ["render", "clone"]  # as begun, not by name
        assert j.steps_of([]) == {}


def test_timing_columns_round_trip(tmp_path: Path) -> None:
    now = [1000.0]
    with Journal.open(tmp_path, clock=lambda: now[0]) as j:
        j.add_rows(["a"])
        j.begin_step("a", "generate:broll")
        now[0] = 1001.0
        j.record_intent("a", "generate:broll")
        now[0] = 1003.0
        j.record_remote_id("a", "generate:broll", "77", sent_at=1002.25)
        step = j.step("a", "generate:broll")
        assert step is not None and step.sent_at == 1002.25
        assert (step.done_after, step.done_by, step.done_at) == (None, None, None)
        now[0] = 1020.0
        j.finish_step(
            "a", "generate:broll", "completed", done_after=1012.5, done_by=1018.75, done_at=1015.0
        )
        step = j.step("a", "generate:broll")
        assert step is not None
        assert (step.sent_at, step.done_after, step.done_by, step.done_at) == (
            1002.25,
            1012.5,
            1018.75,
            1015.0,
        )
        assert j.steps("a")["generate:broll"] == step
        # Not given: NULL (a step with no async job, or an older caller).
        j.finish_step("a", "download", "completed")
        plain = j.step("a", "download")
        assert plain is not None
        assert (plain.sent_at, plain.done_after, plain.done_by, plain.done_at) == (None,) * 4
        # A new attempt forgets the previous attempt's timings.
        j.record_intent("a", "generate:broll", retry=True)
        again = j.step("a", "generate:broll")
        assert again is not None
        assert (again.sent_at, again.done_after, again.done_by, again.done_at) == (None,) * 4
    # They survive closing and reopening, read-only included.
    with Journal.open(tmp_path, read_only=True) as ro:
        plain = ro.step("a", "download")
        assert plain is not None and plain.done_by is None


def test_timing_is_written_by_the_calls_one_statement_each(journal: Journal) -> None:
    journal.add_rows(["a"])
    journal.record_intent("a", "render")
    seen: list[str] = []
    journal._db.set_trace_callback(seen.append)
    journal.record_remote_id("a", "render", "9", sent_at=5.0)
    journal.finish_step("a", "render", "completed", done_after=6.0, done_by=7.0)
    journal._db.set_trace_callback(None)
    writes = [q for q in seen if q.split(None, 1)[0].upper() in {"UPDATE", "INSERT"}]
    assert len(writes) == 2, writes


#: The steps table as genbatch first wrote it, before the timing columns.
OLD_SCHEMA = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, created_at REAL NOT NULL, finished_at REAL,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE rows (
    run_id TEXT NOT NULL, row_id TEXT NOT NULL, seq INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', step TEXT, reason TEXT, error_code TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, started_at REAL, finished_at REAL, agent_id TEXT,
    engine_id TEXT, render_url TEXT, mp4_path TEXT, bytes INTEGER, sha256 TEXT, credits REAL,
    post_id TEXT, extra TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (run_id, row_id)
) WITHOUT ROWID;
CREATE INDEX rows_by_status ON rows (run_id, status);
CREATE TABLE steps (
    run_id TEXT NOT NULL, row_id TEXT NOT NULL, step TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0, idempotency_key TEXT, status TEXT NOT NULL,
    remote_id TEXT, started_at REAL, intent_at REAL, remote_at REAL, finished_at REAL,
    credits REAL NOT NULL DEFAULT 0, error_code TEXT, result TEXT,
    PRIMARY KEY (run_id, row_id, step)
) WITHOUT ROWID;
CREATE INDEX steps_open_intents ON steps (run_id)
    WHERE intent_at IS NOT NULL AND remote_id IS NULL AND finished_at IS NULL;
INSERT INTO runs (run_id, created_at) VALUES ('old-run', 100.0);
INSERT INTO rows (run_id, row_id, seq, status) VALUES ('old-run', 'a', 1, 'running');
INSERT INTO steps (run_id, row_id, step, attempt, status, remote_id, intent_at, remote_at,
    finished_at) VALUES ('old-run', 'a', 'render', 1, 'completed', '5', 101.0, 102.0, 110.0);
"""


def step_columns(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [r[1] for r in db.execute("PRAGMA table_info(steps)")]


def test_an_old_journal_gains_the_timing_columns(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with sqlite3.connect(out / "journal.sqlite") as db:
        db.executescript(OLD_SCHEMA)
    assert "sent_at" not in step_columns(out / "journal.sqlite")
    # Read-only (genbatch status, bench --from) changes nothing and reads NULLs.
    with Journal.open(out, read_only=True) as ro:
        old = ro.step("a", "render")
        assert old is not None and old.remote_id == "5" and old.finished_at == 110.0
        assert (old.sent_at, old.done_after, old.done_by, old.done_at) == (None,) * 4
    assert "sent_at" not in step_columns(out / "journal.sqlite")
    with Journal.open(out) as j:
        assert j.resumed and j.run_id == "old-run"
        old = j.step("a", "render")
        assert old is not None and old.remote_id == "5" and old.done_by is None
        j.record_intent("a", "generate:x")
        j.record_remote_id("a", "generate:x", "6", sent_at=120.5)
        j.finish_step("a", "generate:x", "completed", done_after=121.0, done_by=122.0)
        new = j.step("a", "generate:x")
        assert new is not None and (new.sent_at, new.done_after, new.done_by) == (
            120.5,
            121.0,
            122.0,
        )
    columns = step_columns(out / "journal.sqlite")
    assert columns[-4:] == ["sent_at", "done_after", "done_by", "done_at"]
    with Journal.open(out) as again:  # already migrated: opens as is
        assert again.step("a", "generate:x") == new
    assert step_columns(out / "journal.sqlite") == columns


def test_credits_add_up_over_attempts(journal: Journal) -> None:
    journal.add_rows(["a"])
    journal.record_intent("a", "generate:x")
    journal.finish_step("a", "generate:x", "failed", credits=0)
    journal.record_intent("a", "generate:x", retry=True)
    journal.finish_step("a", "generate:x", "completed", credits=20)
    step = journal.step("a", "generate:x")
    assert step is not None and step.credits == 20 and step.attempt == 2


def test_remote_id_without_intent_is_refused(journal: Journal) -> None:
    journal.add_rows(["a"])
    with pytest.raises(JournalError, match="no intent"):
        journal.record_remote_id("a", "render", "1")


def test_update_row_fields_and_extra(journal: Journal) -> None:
    journal.add_rows(["a"])
    journal.update_row("a", {"engine_id": "42", "bytes": 1234, "generation_ids": {"broll": "7"}})
    journal.update_row("a", {"sha256": "ab" * 32, "post_id": "p1", "seconds": {"render": 3.5}})
    rec = journal.row("a")
    assert rec is not None
    assert rec.fields == {"engine_id": "42", "bytes": 1234, "sha256": "ab" * 32, "post_id": "p1"}
    assert rec.extra == {"generation_ids": {"broll": "7"}, "seconds": {"render": 3.5}}


def test_closed_journal_refuses_use(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    j.close()
    j.close()  # idempotent
    with pytest.raises(JournalError, match="closed"):
        j.add_rows(["a"])


CRASH_AFTER_INTENT = """
import os, signal, sys
from genbatch.engine.journal import Journal
j = Journal.open(sys.argv[1])
j.add_rows(["r1", "r2"])
j.start_row("r1", "generate:broll")
j.record_intent("r1", "generate:voiceover")
j.record_remote_id("r1", "generate:voiceover", 11)
key = j.record_intent("r1", "generate:broll").idempotency_key
print(j.run_id, key, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # crash before the POST's answer arrives
"""


def test_crash_after_intent_leaves_a_pending_intent(tmp_path: Path) -> None:
    out = tmp_path / "out"
    child = run_child(CRASH_AFTER_INTENT, str(out))
    stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, stderr
    run_id, key = stdout.split()
    # The dead process's lock is gone; the same command resumes the run.
    with Journal.open(out) as j:
        assert j.resumed and j.run_id == run_id
        (pending,) = j.pending_intents()
        assert (pending.row_id, pending.step) == ("r1", "generate:broll")
        assert pending.idempotency_key == key and pending.remote_id is None
        # The reconcile found nothing was created: resend with the same key.
        assert j.record_intent("r1", "generate:broll").idempotency_key == key
        voice = j.step("r1", "generate:voiceover")
        assert voice is not None and voice.remote_id == "11"
        row = j.row("r1")
        assert row is not None and row.status == "running" and row.step == "generate:broll"


HOLD_LOCK = """
import sys
from genbatch.engine.journal import Journal
j = Journal.open(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
j.close()
print("released", flush=True)
"""


def test_a_second_process_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    child = run_child(HOLD_LOCK, str(out))
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        with pytest.raises(JournalLocked, match=rf"pid {child.pid}\b.*another --out"):
            Journal.open(out)
        # Read-only access (genbatch status) works beside the live process.
        with Journal.open(out, read_only=True) as ro:
            assert ro.counts()["pending"] == 0
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "released"
    finally:
        child.kill()
        child.wait(timeout=30)
    with Journal.open(out) as j:
        assert j.resumed


def test_lock_is_per_open_even_in_one_process(tmp_path: Path) -> None:
    with Journal.open(tmp_path), pytest.raises(JournalLocked):
        Journal.open(tmp_path)


def test_read_only_without_journal(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no journal"):
        Journal.open(tmp_path, read_only=True)


def test_planted_symlinks_are_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / "journal.sqlite").symlink_to(victim)
    with pytest.raises(JournalError, match="symlink"):
        Journal.open(out)
    (out / "journal.sqlite").unlink()
    (out / ".genbatch.lock").unlink()
    (out / ".genbatch.lock").symlink_to(victim)
    with pytest.raises(JournalError, match="symlink"):
        Journal.open(out)
    assert victim.read_text() == "keep"


def test_every_commit_fsyncs_the_wal(journal: Journal) -> None:
    journal.add_rows(["a"])
    journal.record_intent("a", "render")
    (mode,) = journal._db.execute("PRAGMA synchronous").fetchone()
    assert mode == 2  # FULL: commits are few (batches, intent groups), each durable
    (jm,) = journal._db.execute("PRAGMA journal_mode").fetchone()
    assert jm == "wal"


async def test_intents_of_one_loop_iteration_share_one_commit(journal: Journal) -> None:
    journal.add_rows([f"r{i}" for i in range(20)])
    journal.flush()
    statements: list[str] = []
    journal._db.set_trace_callback(statements.append)
    intents = await asyncio.gather(*(journal.intent(f"r{i}", "render") for i in range(20)))
    journal._db.set_trace_callback(None)
    assert len({i.idempotency_key for i in intents}) == 20
    assert [q for q in statements if q.strip().upper() == "COMMIT"] == ["COMMIT"]
    # Committed before the awaits ended: another connection sees all 20.
    other = sqlite3.connect(journal.path)
    try:
        (n,) = other.execute("SELECT count(*) FROM steps WHERE intent_at IS NOT NULL").fetchone()
    finally:
        other.close()
    assert n == 20
    # The same intent again is the same key (a resend after a crash).
    again = await journal.intent("r3", "render")
    assert again.idempotency_key == intents[3].idempotency_key


def test_many_rows_register_quickly(journal: Journal) -> None:
    assert journal.add_rows(f"r{i}" for i in range(20_000)) == 20_000
    assert journal.counts()["pending"] == 20_000
    assert os.path.getsize(journal.path) > 0
