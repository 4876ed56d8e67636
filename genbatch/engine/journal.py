"""The run journal: durable intents, remote ids and row states, in SQLite.

One concept, kept in one module although it is long: the schema, the
durability rules and every query that relies on them must be read together
(splitting them would let a writer forget the ordering below).

Exactly-once spending (docs/design.md §5) rests on one ordering: the *intent* to send
a paid POST is committed before the POST leaves, and the id it returns is
committed the moment it arrives.  After a crash, an intent without a remote
id is the only ambiguous case, and :meth:`Journal.pending_intents` lists
exactly those for the pipeline to reconcile (read the cell's latest
generation; re-send only when nothing was created — with the *same*
idempotency key, derived from run, row, step and attempt).

Durability choice.  WAL mode with ``synchronous=FULL`` (every commit
fsyncs the WAL), and few commits:

* an intent is committed before :meth:`record_intent` returns (or
  :meth:`intent`'s await ends), so even a power cut cannot lose the record
  of money about to be spent.  On the event loop, :meth:`intent`
  group-commits: the intents written in one loop iteration share one commit
  (with the batched writes before them) instead of one fsync each — the
  POSTs they guard all wait for it;
* everything else is written inside one open transaction (each call checks
  the row's state before it writes, so a refused call leaves nothing
  behind) and committed in batches: before the next intent, every
  ``ENGINE_JOURNAL_BATCH_WRITES`` writes or ``ENGINE_JOURNAL_BATCH_SECONDS``,
  at :meth:`Journal.flush` (the runner calls it every tick) and at close.  A
  commit per call cost more CPU than the HTTP request it recorded.  A
  crash can lose the last fraction of a second of these writes, never an
  intent, and never out of order (every commit holds all earlier writes):
  the journal is then the journal of a crash a moment earlier, which resume
  handles anyway (a lost remote id leaves its intent pending -> reconcile
  read; a lost row or step status re-runs a step whose intent/remote id is
  still on record).  In WAL mode a committed frame survives any process
  crash, SIGKILL included.

Threading choice.  Calls run inline on the event loop thread, not in an
executor: a commit costs far less than one HTTP round trip, and an intent
*must* be durable before the POST anyway, so an executor hop would add
latency without freeing the loop for anything useful.  It also keeps the
ordering trivially sequential (one connection, one thread).

Timing columns.  Besides the state machine's stamps (``started_at``,
``intent_at``, ``remote_at``, ``finished_at``) a step keeps, for the "where
the time goes" analysis (:mod:`genbatch.bench.analysis`): ``sent_at`` (the
paid POST cleared the rate gate and went out), and for an asynchronous job
the bracket in which it finished, ``done_after`` (the last poll that saw it
unfinished was sent) and ``done_by`` (the poll that saw it finished was
answered), plus ``done_at`` when the API stated the completion time.  They
ride on the UPDATEs :meth:`Journal.record_remote_id` and
:meth:`Journal.finish_step` make anyway (no extra write on the hot path), are
NULL when unknown, and a journal written before they existed gains them on
open (:data:`_TIMING_COLUMNS`).

One process per output directory: :meth:`Journal.open` takes an exclusive
``flock`` on a lock file there; a second process is refused with the first
one's pid.  The kernel drops the lock when its holder dies, so a SIGKILLed
run never leaves a stale lock behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self, get_args

from genbatch.engine.naming import UnsafePathError, open_nofollow, safe_join
from genbatch.errors import InputError

ENGINE_JOURNAL_FILE: Final = "journal.sqlite"
ENGINE_LOCK_FILE: Final = ".genbatch.lock"
#: Writes other than intents are committed together: when this many are
#: pending, when the oldest is this many seconds old, at the next intent, at
#: :meth:`Journal.flush` or at close (see "Durability choice").
ENGINE_JOURNAL_BATCH_WRITES: Final = 256
ENGINE_JOURNAL_BATCH_SECONDS: Final = 0.25

__all__ = [
    "ENGINE_JOURNAL_BATCH_SECONDS",
    "ENGINE_JOURNAL_BATCH_WRITES",
    "ROW_FIELDS",
    "TERMINAL",
    "Intent",
    "Journal",
    "JournalError",
    "JournalLocked",
    "RowRecord",
    "RowStatus",
    "StepRecord",
    "StepStatus",
    "idempotency_key",
    "journal_table",
    "live_holder",
    "lock_out_dir",
]

RowStatus = Literal["pending", "running", "completed", "failed", "skipped"]
StepStatus = Literal["running", "intent", "submitted", "completed", "failed", "stopped", "skipped"]
TERMINAL: Final = frozenset({"completed", "failed", "skipped"})
_STEP_DONE: Final = frozenset({"completed", "failed", "stopped", "skipped"})

#: Result-table fields stored as row columns by :meth:`Journal.update_row`;
#: any other key goes into the row's JSON ``extra``.
ROW_FIELDS: Final = (
    "agent_id",
    "engine_id",
    "render_url",
    "mp4_path",
    "bytes",
    "sha256",
    "credits",
    "post_id",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    created_at  REAL NOT NULL,
    finished_at REAL,
    meta        TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS rows (
    run_id      TEXT NOT NULL,
    row_id      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',
    step        TEXT,
    reason      TEXT,
    error_code  TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    started_at  REAL,
    finished_at REAL,
    agent_id    TEXT,
    engine_id   TEXT,
    render_url  TEXT,
    mp4_path    TEXT,
    bytes       INTEGER,
    sha256      TEXT,
    credits     REAL,
    post_id     TEXT,
    extra       TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, row_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rows_by_status ON rows (run_id, status);
CREATE TABLE IF NOT EXISTS steps (
    run_id          TEXT NOT NULL,
    row_id          TEXT NOT NULL,
    step            TEXT NOT NULL,
    attempt         INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT,
    status          TEXT NOT NULL,
    remote_id       TEXT,
    started_at      REAL,
    intent_at       REAL,
    remote_at       REAL,
    finished_at     REAL,
    credits         REAL NOT NULL DEFAULT 0,
    error_code      TEXT,
    result          TEXT,
    sent_at         REAL,
    done_after      REAL,
    done_by         REAL,
    done_at         REAL,
    PRIMARY KEY (run_id, row_id, step)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS steps_open_intents ON steps (run_id)
    WHERE intent_at IS NOT NULL AND remote_id IS NULL AND finished_at IS NULL;
"""

#: Step columns added after the first schema (all nullable REAL, epoch seconds):
#: a journal without them gains them on open (``ALTER TABLE ... ADD COLUMN``),
#: and a read-only open of one reads them as NULL.
_TIMING_COLUMNS: Final = ("sent_at", "done_after", "done_by", "done_at")


class JournalError(InputError, RuntimeError):
    """A journal operation broke the row/step state machine or failed."""


class JournalLocked(JournalError):
    """Another process holds the output directory."""


def idempotency_key(run_id: str, row_id: str, step: str, attempt: int) -> str:
    """The ``Idempotency-Key`` for one attempt of one step: deterministic.

    A resend after a crash derives the same key, so a server that honours
    keys answers with the first generation instead of charging again.
    """
    material = "\x1f".join((run_id, row_id, step, str(attempt))).encode()
    return "gb-" + hashlib.sha256(material).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Intent:
    row_id: str
    step: str
    attempt: int
    idempotency_key: str
    remote_id: str | None


@dataclass(frozen=True, slots=True)
class StepRecord:
    row_id: str
    step: str
    attempt: int
    idempotency_key: str | None
    status: StepStatus
    remote_id: str | None
    started_at: float | None
    intent_at: float | None
    remote_at: float | None
    finished_at: float | None
    credits: float
    error_code: str | None
    result: Any
    #: The paid POST cleared the rate gate and went out (None: not recorded).
    sent_at: float | None = None
    #: An async job finished after this (the last poll that saw it unfinished was sent).
    done_after: float | None = None
    #: ... and by this (the poll that saw it finished was answered).
    done_by: float | None = None
    #: The exact completion time, when the API gave one.
    done_at: float | None = None

    @property
    def done(self) -> bool:
        return self.status in _STEP_DONE

    @property
    def seconds(self) -> float | None:
        start = self.started_at if self.started_at is not None else self.intent_at
        if start is None or self.finished_at is None:
            return None
        return self.finished_at - start


@dataclass(frozen=True, slots=True)
class RowRecord:
    row_id: str
    seq: int
    status: RowStatus
    step: str | None
    reason: str | None
    error_code: str | None
    attempts: int
    started_at: float | None
    finished_at: float | None
    fields: Mapping[str, Any]
    extra: Mapping[str, Any]

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


_BASE_STEP_COLUMNS: Final = (
    "row_id, step, attempt, idempotency_key, status, remote_id, started_at, "
    "intent_at, remote_at, finished_at, credits, error_code, result"
)
_ROW_COLUMNS = (
    "row_id, seq, status, step, reason, error_code, attempts, started_at, finished_at, "
    + ", ".join(ROW_FIELDS)
    + ", extra"
)


def _step(r: tuple[Any, ...]) -> StepRecord:
    return StepRecord(
        row_id=r[0],
        step=r[1],
        attempt=r[2],
        idempotency_key=r[3],
        status=r[4],
        remote_id=r[5],
        started_at=r[6],
        intent_at=r[7],
        remote_at=r[8],
        finished_at=r[9],
        credits=r[10],
        error_code=r[11],
        result=json.loads(r[12]) if r[12] is not None else None,
        sent_at=r[13],
        done_after=r[14],
        done_by=r[15],
        done_at=r[16],
    )


def _missing_timing_columns(conn: sqlite3.Connection) -> list[str]:
    """The timing columns an older journal's ``steps`` table lacks."""
    have = {r[1] for r in conn.execute("PRAGMA table_info(steps)")}
    return [c for c in _TIMING_COLUMNS if c not in have]


def _migrate(conn: sqlite3.Connection) -> None:
    """Give an older journal the columns added since (one transaction)."""
    missing = _missing_timing_columns(conn)
    if not missing:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for name in missing:  # names from _TIMING_COLUMNS only
            conn.execute(f"ALTER TABLE steps ADD COLUMN {name} REAL")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


#: Row ids per query of :meth:`Journal.steps_of` (SQLite bounds a statement's
#: parameters: 999 on old builds).
_STEPS_PER_QUERY: Final = 500


def _step_columns(conn: sqlite3.Connection) -> str:
    """What to SELECT for a :class:`StepRecord`: NULL for columns an old journal lacks."""
    missing = set(_missing_timing_columns(conn))
    timing = (f"NULL AS {c}" if c in missing else c for c in _TIMING_COLUMNS)
    return ", ".join((_BASE_STEP_COLUMNS, *timing))


def _row(r: tuple[Any, ...]) -> RowRecord:
    fields = r[9 : 9 + len(ROW_FIELDS)]
    return RowRecord(
        row_id=r[0],
        seq=r[1],
        status=r[2],
        step=r[3],
        reason=r[4],
        error_code=r[5],
        attempts=r[6],
        started_at=r[7],
        finished_at=r[8],
        fields={k: v for k, v in zip(ROW_FIELDS, fields, strict=True) if v is not None},
        extra=json.loads(r[-1]),
    )


class Journal:
    """One output directory's journal.  Open with :meth:`open`; close when done."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        run_id: str,
        resumed: bool,
        lock_fd: int | None,
        clock: Callable[[], float],
    ) -> None:
        self._conn: sqlite3.Connection | None = conn
        self.path = path
        self.run_id = run_id
        self.resumed = resumed
        self._lock_fd = lock_fd
        self._clock = clock
        self._step_select = _step_columns(conn)
        self._batch_writes = 0  # writes in the open batch (0: no batch open)
        #: Rows running in this process, by id: read without a SELECT (memory
        #: stays bounded by the rows in flight; an ended row is dropped).
        self._statuses: dict[str, str] = {}
        self._batch_since = 0.0
        #: Set while intents written in this loop iteration await their fsync.
        self._sync: asyncio.Future[None] | None = None

    # -- lifecycle ---------------------------------------------------------
    @classmethod
    def open(
        cls,
        out_dir: Path | str,
        *,
        fresh: bool = False,
        meta: Mapping[str, Any] | None = None,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> Journal:
        """Lock ``out_dir``, open its journal and pick the run.

        Resumes the latest run unless ``fresh`` (or there is none).
        ``read_only`` (for ``genbatch status``) takes no lock, creates
        nothing and may run beside a live process.
        """
        out = Path(out_dir)
        if read_only:
            path = safe_join(out, ENGINE_JOURNAL_FILE)
            if not path.is_file():
                raise JournalError(f"{out}: no journal here (expected {ENGINE_JOURNAL_FILE})")
            conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None)
            run = conn.execute(
                "SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 1"
            ).fetchone()
            if run is None:
                conn.close()
                raise JournalError(f"{path}: the journal has no run yet")
            return cls(conn, path, run[0], True, None, clock)

        out.mkdir(parents=True, exist_ok=True)
        lock_fd = lock_out_dir(out)
        try:
            try:
                path = safe_join(out, ENGINE_JOURNAL_FILE, companions=("-wal", "-shm", "-journal"))
            except UnsafePathError as exc:
                raise JournalError(f"{out}: {exc}") from None
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.executescript(_SCHEMA)
                _migrate(conn)
                journal = cls(conn, path, "", False, lock_fd, clock)
                journal._choose_run(fresh, meta or {})
            except BaseException:
                conn.close()
                raise
        except BaseException:
            os.close(lock_fd)
            raise
        return journal

    def _choose_run(self, fresh: bool, meta: Mapping[str, Any]) -> None:
        latest = self._db.execute(
            "SELECT run_id FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1"
        ).fetchone()
        if latest is not None and not fresh:
            self.run_id, self.resumed = latest[0], True
            return
        now = self._clock()
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
        self.run_id, self.resumed = f"{stamp}-{secrets.token_hex(3)}", False
        with self._tx(durable=True):
            self._db.execute(
                "INSERT INTO runs (run_id, created_at, meta) VALUES (?, ?, ?)",
                (self.run_id, now, json.dumps(dict(meta), default=str)),
            )

    def close(self) -> None:
        """Commit, checkpoint, close, release the lock.  Idempotent."""
        if self._conn is not None and self._batch_writes:
            with contextlib.suppress(sqlite3.Error):
                self.flush()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                if self._lock_fd is not None:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError("journal is closed")
        return self._conn

    @contextlib.contextmanager
    def _tx(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One call's writes: durable (committed with an fsync now) or batched."""
        conn = self._db
        if durable:
            self.flush()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return
        if not self._batch_writes:
            conn.execute("BEGIN IMMEDIATE")
            self._batch_since = time.monotonic()
        self._batch_writes += 1
        # No savepoint per call: every call checks its state before it writes
        # and then writes what it must (a JournalError leaves nothing behind).
        yield conn
        if (
            self._batch_writes >= ENGINE_JOURNAL_BATCH_WRITES
            or time.monotonic() - self._batch_since >= ENGINE_JOURNAL_BATCH_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        """Commit the writes batched so far (a no-op when there are none)."""
        if self._batch_writes:
            self._batch_writes = 0
            self._db.execute("COMMIT")

    def _sync_now(self) -> None:
        waiting, self._sync = self._sync, None
        if waiting is None:
            return
        try:
            if self._conn is not None:  # else close() committed it
                self.flush()
        except BaseException as exc:
            if not waiting.done():
                waiting.set_exception(exc)
            raise
        if not waiting.done():
            waiting.set_result(None)

    async def intent(self, row_id: str, step: str, *, retry: bool = False) -> Intent:
        """:meth:`record_intent`, group-committed: written into the open batch,
        which is committed (the WAL fsynced) with every intent of this loop
        iteration before the await ends.  The POST goes out only after it."""
        if self._sync is None:
            loop = asyncio.get_running_loop()
            self._sync = loop.create_future()
            loop.call_soon(self._sync_now)
        waiting = self._sync
        with self._tx():
            found = self._write_intent(row_id, step, retry=retry)
        await asyncio.shield(waiting)
        return found

    # -- runs --------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        row = self._db.execute("SELECT meta FROM runs WHERE run_id = ?", (self.run_id,)).fetchone()
        meta: dict[str, Any] = json.loads(row[0])
        return meta

    def finish_run(self) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE runs SET finished_at = ? WHERE run_id = ?", (self._clock(), self.run_id)
            )

    # -- rows --------------------------------------------------------------
    def add_rows(self, row_ids: Iterable[str]) -> int:
        """Register rows as ``pending`` (those already known are left alone).

        Returns how many were new.  Order of first registration is kept
        (``seq``) so results come out in table order.
        """
        with self._tx():
            (start,) = self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM rows WHERE run_id = ?", (self.run_id,)
            ).fetchone()
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO rows (run_id, row_id, seq) VALUES (?, ?, ?)",
                ((self.run_id, rid, start + i) for i, rid in enumerate(row_ids, 1)),
            )
            return self._db.total_changes - before

    def row(self, row_id: str) -> RowRecord | None:
        found = self._db.execute(
            f"SELECT {_ROW_COLUMNS} FROM rows WHERE run_id = ? AND row_id = ?",  # noqa: S608
            (self.run_id, row_id),
        ).fetchone()
        return _row(found) if found else None

    def rows(self, status: RowStatus | None = None) -> Iterator[RowRecord]:
        """Rows in table order, optionally of one status (streamed)."""
        sql = f"SELECT {_ROW_COLUMNS} FROM rows WHERE run_id = ?"  # noqa: S608
        args: tuple[str, ...] = (self.run_id,)
        if status is not None:
            sql += " AND status = ?"
            args += (status,)
        for found in self._db.execute(sql + " ORDER BY seq", args):
            yield _row(found)

    def counts(self) -> dict[str, int]:
        """Rows per status (every status present, zeros included)."""
        counts = dict.fromkeys(get_args(RowStatus), 0)
        for status, n in self._db.execute(
            "SELECT status, COUNT(*) FROM rows WHERE run_id = ? GROUP BY status", (self.run_id,)
        ):
            counts[status] = n
        return counts

    def _status(self, row_id: str) -> str:
        """A row's status: from the rows this process is moving (it is the one
        writer), else read once."""
        status = self._statuses.get(row_id)
        if status is not None:
            return status
        found = self._db.execute(
            "SELECT status FROM rows WHERE run_id = ? AND row_id = ?", (self.run_id, row_id)
        ).fetchone()
        if found is None:
            raise JournalError(f"row {row_id!r} is not in the journal (add_rows first)")
        status = str(found[0])
        if status == "running":
            self._statuses[row_id] = status
        return status

    def start_row(self, row_id: str, step: str | None = None) -> None:
        """``pending``/``running`` -> ``running`` (a resumed row starts again)."""
        with self._tx():
            status = self._status(row_id)
            if status in TERMINAL:
                raise JournalError(f"row {row_id!r} is already {status}; reopen_row first")
            self._db.execute(
                "UPDATE rows SET status = 'running', step = ?, attempts = attempts + 1, "
                "started_at = COALESCE(started_at, ?) WHERE run_id = ? AND row_id = ?",
                (step, self._clock(), self.run_id, row_id),
            )
            self._statuses[row_id] = "running"

    def set_step(self, row_id: str, step: str) -> None:
        """Record which step a running row is in (``running(step)``)."""
        with self._tx():
            if self._status(row_id) != "running":
                raise JournalError(f"row {row_id!r} is not running")
            self._db.execute(
                "UPDATE rows SET step = ? WHERE run_id = ? AND row_id = ?",
                (step, self.run_id, row_id),
            )

    def finish_row(
        self,
        row_id: str,
        status: Literal["completed", "failed", "skipped"],
        reason: str = "",
        error_code: str | None = None,
    ) -> None:
        """Give a row its one terminal status; a second one is an error."""
        if status not in TERMINAL:
            raise JournalError(f"{status!r} is not a terminal status")
        with self._tx():
            current = self._status(row_id)
            if current in TERMINAL:
                raise JournalError(f"row {row_id!r} already ended {current}; cannot mark {status}")
            self._db.execute(
                "UPDATE rows SET status = ?, reason = ?, error_code = ?, finished_at = ? "
                "WHERE run_id = ? AND row_id = ?",
                (status, reason, error_code, self._clock(), self.run_id, row_id),
            )
            self._statuses.pop(row_id, None)

    def reopen_row(self, row_id: str) -> None:
        """``failed``/``skipped`` -> ``pending``, for a rerun after a fix or top-up.

        Step records stay: completed steps are not redone, and a failed
        step's next intent is a new attempt with a new key.
        """
        with self._tx():
            status = self._status(row_id)
            if status not in {"failed", "skipped"}:
                raise JournalError(f"row {row_id!r} is {status}; only failed/skipped reopen")
            self._db.execute(
                "UPDATE rows SET status = 'pending', reason = NULL, error_code = NULL, "
                "finished_at = NULL, step = NULL WHERE run_id = ? AND row_id = ?",
                (self.run_id, row_id),
            )
            self._statuses.pop(row_id, None)

    def redo_row(self, row_id: str) -> RowRecord:
        """A row whose input changed since it ran: ``pending`` again, with none of
        its results, and every step ended (``input_changed``, no remote id) so
        each one runs again as a new attempt with a new idempotency key -- a
        new engine, new generations, a new video.  Returns the record as it was.
        """
        before = self.row(row_id)
        if before is None:
            raise JournalError(f"row {row_id!r} is not in the journal (add_rows first)")
        with self._tx():
            now = self._clock()
            self._db.execute(
                "UPDATE steps SET status = 'failed', error_code = 'input_changed', "
                "remote_id = NULL, result = NULL, finished_at = COALESCE(finished_at, ?) "
                "WHERE run_id = ? AND row_id = ?",
                (now, self.run_id, row_id),
            )
            extra = {k: v for k, v in before.extra.items() if k != "prior"}
            self._db.execute(
                "UPDATE rows SET status = 'pending', step = NULL, reason = NULL, "
                "error_code = NULL, finished_at = NULL, engine_id = NULL, render_url = NULL, "
                "mp4_path = NULL, bytes = NULL, sha256 = NULL, post_id = NULL, extra = ? "
                "WHERE run_id = ? AND row_id = ?",
                (json.dumps(extra, default=str), self.run_id, row_id),
            )
            self._statuses.pop(row_id, None)
        return before

    def update_row(self, row_id: str, fields: Mapping[str, Any]) -> None:
        """Set result fields; keys in :data:`ROW_FIELDS` are columns, others ``extra``."""
        known = {k: v for k, v in fields.items() if k in ROW_FIELDS}
        other = {k: v for k, v in fields.items() if k not in ROW_FIELDS}
        with self._tx():
            self._status(row_id)
            if known:
                sets = ", ".join(f"{k} = ?" for k in known)
                self._db.execute(
                    f"UPDATE rows SET {sets} WHERE run_id = ? AND row_id = ?",  # noqa: S608
                    (*known.values(), self.run_id, row_id),
                )
            if other:
                (extra,) = self._db.execute(
                    "SELECT extra FROM rows WHERE run_id = ? AND row_id = ?",
                    (self.run_id, row_id),
                ).fetchone()
                merged = {**json.loads(extra), **other}
                self._db.execute(
                    "UPDATE rows SET extra = ? WHERE run_id = ? AND row_id = ?",
                    (json.dumps(merged, default=str), self.run_id, row_id),
                )

    # -- steps ---------------------------------------------------------------
    def begin_step(self, row_id: str, step: str) -> None:
        """Note that a step started (queued behind our gates); no spend yet.

        Keeps an existing record (resume) and only stamps ``started_at``
        once, so queue time is measured from the first try.
        """
        with self._tx():
            self._status(row_id)
            self._db.execute(
                "INSERT INTO steps (run_id, row_id, step, status, started_at) "
                "VALUES (?, ?, ?, 'running', ?) ON CONFLICT (run_id, row_id, step) DO UPDATE "
                "SET started_at = COALESCE(started_at, excluded.started_at), "
                "status = CASE WHEN status IN ('completed', 'failed', 'stopped', 'skipped') "
                "THEN 'running' ELSE status END, "
                "finished_at = NULL",
                (self.run_id, row_id, step, self._clock()),
            )

    def record_intent(self, row_id: str, step: str, *, retry: bool = False) -> Intent:
        """Durably record that a paid POST is about to be sent; return its key.

        Without ``retry`` an existing intent is returned unchanged (resend
        after a crash: same key).  With ``retry`` (the previous attempt
        failed) a new attempt with a new key replaces it.  Committed (the WAL
        fsynced) before returning.
        """
        with self._tx(durable=True):
            return self._write_intent(row_id, step, retry=retry)

    def _write_intent(self, row_id: str, step: str, *, retry: bool) -> Intent:
        self._status(row_id)
        found = self._db.execute(
            "SELECT attempt, idempotency_key, remote_id, intent_at FROM steps "
            "WHERE run_id = ? AND row_id = ? AND step = ?",
            (self.run_id, row_id, step),
        ).fetchone()
        if found is not None and found[3] is not None and not retry:
            return Intent(row_id, step, found[0], found[1], found[2])
        attempt = (found[0] if found is not None else 0) + 1
        key = idempotency_key(self.run_id, row_id, step, attempt)
        now = self._clock()
        self._db.execute(
            "INSERT INTO steps (run_id, row_id, step, attempt, idempotency_key, status, "
            "started_at, intent_at) VALUES (?, ?, ?, ?, ?, 'intent', ?, ?) "
            "ON CONFLICT (run_id, row_id, step) DO UPDATE SET attempt = excluded.attempt, "
            "idempotency_key = excluded.idempotency_key, status = 'intent', "
            "remote_id = NULL, remote_at = NULL, finished_at = NULL, error_code = NULL, "
            "result = NULL, sent_at = NULL, done_after = NULL, done_by = NULL, "
            "done_at = NULL, intent_at = excluded.intent_at, "
            "started_at = COALESCE(started_at, excluded.started_at)",
            (self.run_id, row_id, step, attempt, key, now, now),
        )
        return Intent(row_id, step, attempt, key, None)

    def record_remote_id(
        self, row_id: str, step: str, remote_id: str | int, *, sent_at: float | None = None
    ) -> None:
        """Commit the id a paid POST returned (generation id, job id, ...).

        ``sent_at``: when the POST cleared the rate gate and went out (epoch
        seconds; None when unknown, e.g. an id found by a reconcile read).
        """
        with self._tx():
            cur = self._db.execute(
                "UPDATE steps SET remote_id = ?, remote_at = ?, status = 'submitted', "
                "sent_at = ? "
                "WHERE run_id = ? AND row_id = ? AND step = ? AND intent_at IS NOT NULL",
                (str(remote_id), self._clock(), sent_at, self.run_id, row_id, step),
            )
            if cur.rowcount != 1:
                raise JournalError(f"no intent recorded for {row_id!r} {step!r}")

    def finish_step(
        self,
        row_id: str,
        step: str,
        status: Literal["completed", "failed", "stopped", "skipped"],
        *,
        result: Any = None,
        credits: float = 0.0,
        error_code: str | None = None,
        done_after: float | None = None,
        done_by: float | None = None,
        done_at: float | None = None,
    ) -> None:
        """Close a step.  ``credits`` adds to the step's total over attempts.

        For an async job, the bracket in which GEN finished it (epoch
        seconds, None when unknown): ``done_after`` when the last poll that
        saw it unfinished was sent, ``done_by`` when the poll that saw it
        finished was answered, ``done_at`` the completion time the API gave.
        """
        if status not in _STEP_DONE:
            raise JournalError(f"{status!r} is not a final step status")
        with self._tx():
            self._status(row_id)
            self._db.execute(
                "INSERT INTO steps (run_id, row_id, step, status, finished_at, credits, "
                "error_code, result, done_after, done_by, done_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id, row_id, step) DO UPDATE SET status = excluded.status, "
                "finished_at = excluded.finished_at, credits = credits + excluded.credits, "
                "error_code = excluded.error_code, result = excluded.result, "
                "done_after = excluded.done_after, done_by = excluded.done_by, "
                "done_at = excluded.done_at",
                (
                    self.run_id,
                    row_id,
                    step,
                    status,
                    self._clock(),
                    credits,
                    error_code,
                    json.dumps(result, default=str) if result is not None else None,
                    done_after,
                    done_by,
                    done_at,
                ),
            )

    def step(self, row_id: str, step: str) -> StepRecord | None:
        found = self._db.execute(
            f"SELECT {self._step_select} FROM steps "  # noqa: S608
            "WHERE run_id = ? AND row_id = ? AND step = ?",
            (self.run_id, row_id, step),
        ).fetchone()
        return _step(found) if found else None

    def steps(self, row_id: str) -> dict[str, StepRecord]:
        """Every step of a row, by name (what a resumed row can skip)."""
        return {
            rec.step: rec
            for rec in map(
                _step,
                self._db.execute(
                    f"SELECT {self._step_select} FROM steps WHERE run_id = ? AND row_id = ? "  # noqa: S608
                    "ORDER BY COALESCE(started_at, intent_at, finished_at), step",
                    (self.run_id, row_id),
                ),
            )
        }

    def steps_of(self, row_ids: Sequence[str]) -> dict[str, dict[str, StepRecord]]:
        """:meth:`steps` of many rows, a few hundred per query (a row with none
        is absent): the result tables read a whole run, a query a row."""
        found: dict[str, dict[str, StepRecord]] = {}
        for at in range(0, len(row_ids), _STEPS_PER_QUERY):
            ids = row_ids[at : at + _STEPS_PER_QUERY]
            marks = ", ".join("?" * len(ids))
            for rec in map(
                _step,
                self._db.execute(
                    f"SELECT {self._step_select} FROM steps "  # noqa: S608
                    f"WHERE run_id = ? AND row_id IN ({marks}) "
                    "ORDER BY row_id, COALESCE(started_at, intent_at, finished_at), step",
                    (self.run_id, *ids),
                ),
            ):
                found.setdefault(rec.row_id, {})[rec.step] = rec
        return found

    def pending_intents(self) -> list[Intent]:
        """Intents with no remote id and no outcome: the crash-ambiguous POSTs."""
        return [
            Intent(*found)
            for found in self._db.execute(
                "SELECT row_id, step, attempt, idempotency_key, remote_id FROM steps "
                "WHERE run_id = ? AND intent_at IS NOT NULL AND remote_id IS NULL "
                "AND finished_at IS NULL ORDER BY intent_at",
                (self.run_id,),
            )
        ]

    def credits_total(self) -> float:
        """Credits recorded on steps this run (what genbatch reports as charged)."""
        (total,) = self._db.execute(
            "SELECT COALESCE(SUM(credits), 0) FROM steps WHERE run_id = ?", (self.run_id,)
        ).fetchone()
        return float(total)


def journal_table(out_dir: Path | str) -> Path | None:
    """The table (resolved path) whose run ``out_dir`` holds, or None (no journal,
    or one that does not say)."""
    try:
        with Journal.open(out_dir, read_only=True) as journal:
            table = journal.meta.get("table")
    except (JournalError, sqlite3.Error, ValueError):
        return None
    return Path(table).resolve() if isinstance(table, str) and table else None


def live_holder(out_dir: Path | str) -> int | None:
    """The pid of the genbatch process running ``out_dir`` now, or None when none is.

    Asks the kernel, not a pid file: the lock dies with its holder, so a run
    killed mid-way reads as interrupted, never as live.
    """
    try:
        path = safe_join(Path(out_dir), ENGINE_LOCK_FILE, companions=())
        fd = open_nofollow(path, os.O_RDONLY)
    except (UnsafePathError, OSError):
        return None  # never locked: nothing runs here
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in {errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES}:
                raise
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def lock_out_dir(out: Path) -> int:
    """Take the output dir's exclusive lock (its fd, holding our pid) or raise
    :class:`JournalLocked`; a sharded run's driver takes the same lock."""
    try:
        path = safe_join(out, ENGINE_LOCK_FILE, companions=())
        fd = open_nofollow(path, os.O_RDWR | os.O_CREAT, 0o644)
    except (UnsafePathError, OSError) as exc:
        raise JournalError(f"{out}: cannot create the lock file: {exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        if exc.errno in {errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES}:
            raise JournalLocked(
                f"{out} is in use by another genbatch process (pid {holder}); "
                "wait for it to finish, or choose another --out"
            ) from None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
