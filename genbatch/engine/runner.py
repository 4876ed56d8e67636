"""The run: stream the table, keep rows in flight, wire the gates, write the results.

One event loop, one client, one poll hub, one credit ledger, one journal.
Rows are pulled from the table as room frees up (the rows-in-flight cap), so
memory stays flat however long the table is; each admitted row becomes one
task running :func:`genbatch.engine.pipeline.run_row`.  Every HTTP attempt,
retries included, passes the host's rate gate through the client's
``before_attempt`` hook at the priority of the step that makes it — polls,
then a row's last steps, then its next step, then new rows — so finishing
work always goes first.  Which recipe a row runs, its plan and the checked
inputs the run starts from come from :mod:`genbatch.engine.plan`.

Stops, and what they leave behind:

* Admission: a row starts only once the ledger holds its whole remaining
  estimate (``--max-credits``, the balance read at start); a row the budget
  cannot finish ends ``skipped`` (``insufficient credits: needs N, M left``)
  without a paid call, so credits are never spread over rows none can finish.
* ``insufficient_credits_for_job`` (prices are estimates; the backstop): the
  ledger is exhausted; in-flight jobs are watched to their end, no new paid
  POST goes out, rows not yet admitted end ``skipped`` with the reason.
* 401: the key is wrong for everything — cancel everything at once and exit
  2; rows stay ``pending``/``running`` in the journal, a rerun resumes them.
* SIGINT: the same cancellation, exit 130; a second SIGINT kills as usual.

Cancelling a row task is safe at any point: paid POSTs are journaled as
intents first and reconciled on the next run, downloads only ever rename a
complete file.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genbatch.client import GenClient, Hooks
from genbatch.client.base import AttemptInfo
from genbatch.client.routes import Route
from genbatch.engine.credits import (
    CreditLedger,
    CreditSource,
    CreditsRefused,
    Pricing,
    PricingError,
    RowReservation,
)
from genbatch.engine.failures import RunAborted, believed_retry_after
from genbatch.engine.journal import (
    ENGINE_JOURNAL_BATCH_SECONDS,
    ENGINE_JOURNAL_FILE,
    Journal,
    JournalError,
)
from genbatch.engine.limits import (
    ENGINE_ROWS_IN_FLIGHT,
    LeasedRateGate,
    Limits,
    Priority,
    RateGate,
    SharedSourceLost,
    SharedState,
    TokenSource,
)
from genbatch.engine.naming import NameAllocator, UnsafePathError, keep_earlier, safe_join
from genbatch.engine.objectstore import VideoStore
from genbatch.engine.paid import remaining_credits
from genbatch.engine.pipeline import ENGINE_VIDEOS_DIR, run_row
from genbatch.engine.plan import (
    RecipeBook,
    StartError,
    plan_row,
    prepare,
    row_fingerprint,
    row_key,
)
from genbatch.engine.poller import PollHub
from genbatch.engine.preflight import preflight
from genbatch.engine.progress import ENGINE_RUN_LOG, Progress, RunLog, Snapshot
from genbatch.engine.results import (
    ENGINE_RESULTS_CSV,
    ENGINE_RESULTS_PARQUET,
    ResultFiles,
    write_results,
)
from genbatch.engine.rowplan import RowPlan, RowPlanError
from genbatch.engine.services import PRIORITY, ROW_CLOCK, SENT_AT, RowClock, RowServices
from genbatch.engine.table import ENGINE_KEY_COLUMN, InputRow, RowError, Table
from genbatch.engine.tuning import ENGINE_TUNE_ROWS_MAX, Tuner
from genbatch.engine.watch import HubWatcher

__all__ = [
    "RunOptions",
    "RunSummary",
    "SharedBudget",
    "execute",
    "make_hooks",
    "make_limits",
]


@dataclass(frozen=True, slots=True)
class SharedBudget:
    """The API key's rate and ``--max-credits`` when other processes spend them too
    (``genbatch run --ray``): the API gate leases its tokens from ``tokens``
    (starting from ``start``), the ledger its allowance from ``credits``."""

    tokens: TokenSource
    start: SharedState
    credits: CreditSource | None = None


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything ``genbatch run`` was asked to do, as data."""

    table: Path
    out_dir: Path
    api_key: str
    api_url: str
    agent_url: str
    recipe: Path | None = None
    template: str | None = None
    agent: str | None = None
    rate: float | None = None
    max_concurrency: int | None = None
    max_credits: float | None = None
    pricing: Path | None = None
    fresh: bool = False
    limit: int | None = None
    progress: bool = True
    #: Where each video goes once downloaded (``--videos-to``; None: OUT/videos/).
    videos_to: VideoStore | None = None
    #: Test hook: awaited at journal milestones (crash tests time kills with it).
    milestone: Callable[[str, str], Awaitable[None]] | None = None
    #: Test hook: told of every send (``("send", route, None)``, just past the
    #: rate gate) and every answer (``("done", route, info)``).
    observer: Callable[[str, Route, AttemptInfo | None], None] | None = None
    #: A budget shared with other processes (None: this run's own gates and ledger).
    shared: SharedBudget | None = None
    #: Where a row's relative asset paths start (None: the table's folder).
    assets_root: Path | None = None


@dataclass(slots=True)
class RunSummary:
    """What happened, for the summary table, ``--json`` and the exit code."""

    run_id: str
    out_dir: Path
    total: int
    counts: dict[str, int]
    credits: float
    requests: int
    rate_limited: int
    seconds: float
    results: ResultFiles | None
    resumed: bool
    aborted: str | None = None
    interrupted: bool = False
    polls: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Rows left out by ``--limit``: not attempted, so they do not fail the run.
    not_attempted: int = 0
    #: The API gate at the end: ``{"final", "source", "ceiling", "text"}``.
    rate: dict[str, Any] = field(default_factory=dict)
    #: Rows kept (completed, unchanged), redone (input or recipe changed),
    #: resumed (cut off earlier) and new.
    identity: dict[str, int] = field(default_factory=dict)
    #: Rows that did not complete, by error code (``--limit`` ones aside).
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """2 could not go on (key refused), 130 interrupted (128 + SIGINT), 0 every
        attempted row completed, 1 some failed or were skipped (docs/design.md §6)."""
        if self.aborted is not None:
            return 2
        if self.interrupted:
            return 130
        if self.counts.get("completed", 0) == self.total - self.not_attempted:
            return 0
        return 1

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "out_dir": str(self.out_dir),
            "total": self.total,
            "counts": self.counts,
            "credits": self.credits,
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "seconds": round(self.seconds, 3),
            "results_csv": str(self.results.csv) if self.results else None,
            "results_parquet": str(self.results.parquet) if self.results else None,
            "resumed": self.resumed,
            "aborted": self.aborted,
            "interrupted": self.interrupted,
            "polls": self.polls,
            "rate": self.rate,
            "identity": self.identity,
            "reasons": self.reasons,
            "exit_code": self.exit_code,
        }


# --------------------------------------------------------------------------
# Wiring
# --------------------------------------------------------------------------
def make_limits(rate: float | None, rows_in_flight: int | None) -> Limits:
    """The run's gates: ``Limits.create``, rows in flight starting at the default
    (or ``--max-concurrency`` when lower; the tuner moves it from there)."""
    start = ENGINE_ROWS_IN_FLIGHT if rows_in_flight is None else rows_in_flight
    return Limits.create(rate=rate, rows_in_flight=min(ENGINE_ROWS_IN_FLIGHT, start))


def make_hooks(
    limits: Limits, observer: Callable[[str, Route, AttemptInfo | None], None] | None = None
) -> Hooks:
    """Every attempt passes its host's rate gate; what comes back adapts it: a
    published limit, 429s, successes (with the time of light GETs: a server
    slowing down is overloaded), 5xx and dropped connections."""

    def gate_of(route: Route) -> RateGate:
        return limits.agent if route.host == "agent" else limits.api

    async def before(route: Route) -> None:
        await gate_of(route).acquire(PRIORITY.get())
        SENT_AT.set(time.time())
        clock = ROW_CLOCK.get()
        if clock is not None and clock.first_sent is None:
            clock.first_sent = time.monotonic()
        if observer is not None:
            observer("send", route, None)

    def after(info: AttemptInfo) -> None:
        if observer is not None:
            observer("done", info.route, info)
        gate = gate_of(info.route)
        if info.published_rate is not None:
            gate.on_published(info.published_rate)
        status = info.status
        if status == 429:
            gate.on_rate_limited(believed_retry_after(info.retry_after), elapsed=info.elapsed)
        elif status is not None and status < 500:
            gate.on_success(info.elapsed if info.route.method == "GET" else None)
        elif info.failure is not None or (status is not None and status >= 500):
            gate.on_error()

    return Hooks(before_attempt=before, after_attempt=after)


def _rate_report(gate: RateGate) -> dict[str, Any]:
    return {
        "final": round(gate.rate, 3),
        "source": gate.source,
        "ceiling": gate.max_rate,
        "text": gate.describe(),
    }


@dataclass(slots=True)
class _Counts:
    """Row states for the progress view (kept in memory, not read from SQLite)."""

    total: int
    completed: int = 0
    failed: int = 0
    skipped: int = 0
    running: int = 0

    def add(self, status: str) -> None:
        if status == "completed":
            self.completed += 1
        elif status == "failed":
            self.failed += 1
        elif status == "skipped":
            self.skipped += 1

    def as_dict(self) -> dict[str, int]:
        done = self.completed + self.failed + self.skipped
        return {
            "pending": max(0, self.total - done - self.running),
            "running": self.running,
            "completed": self.completed,
            "failed": self.failed,
            "skipped": self.skipped,
        }


async def execute(opts: RunOptions) -> RunSummary:
    """Run (or resume) the table into ``opts.out_dir``; never raises for a row."""
    started = time.monotonic()
    table, book, pricing = prepare(
        opts.table,
        recipe=opts.recipe,
        template=opts.template,
        agent=opts.agent,
        pricing=opts.pricing,
    )
    if opts.shared is None and table.distinct(ENGINE_KEY_COLUMN, 1):
        raise StartError(
            f"this table names an API key per row (its {ENGINE_KEY_COLUMN} column): run it "
            "with --ray, which gives each key its own rate and budget, or drop the column "
            "to run every row on GEN_API_KEY"
        )
    journal = _open_journal(opts)
    try:
        _videos_dir(opts.out_dir)
        log = RunLog(opts.out_dir)
    except (OSError, UnsafePathError) as exc:
        journal.close()
        raise StartError(f"{opts.out_dir}: {exc}") from None
    try:
        return await _Run(opts, table, book, pricing, journal, log, started).run()
    finally:
        log.close()
        journal.close()


def _reasons(journal: Journal) -> dict[str, int]:
    """Error codes of the rows that failed or were skipped (``--limit`` aside)."""
    found: dict[str, int] = {}
    for status in ("failed", "skipped"):
        for r in journal.rows(status):
            if r.error_code != "limit":
                code = r.error_code or "unknown"
                found[code] = found.get(code, 0) + 1
    return found


def _open_journal(opts: RunOptions) -> Journal:
    """The output dir's journal, refused when it is not this table's to resume."""
    _refuse_foreign_output(opts.out_dir)
    table_path = Path(os.path.realpath(opts.table))
    try:
        journal = Journal.open(
            opts.out_dir,
            fresh=opts.fresh,
            meta={"table": str(table_path), "recipe": str(opts.recipe or opts.template or "")},
        )
    except (JournalError, OSError) as exc:
        raise StartError(str(exc)) from None
    owner = journal.meta.get("table") if journal.resumed else None
    if isinstance(owner, str) and owner and Path(os.path.realpath(owner)) != table_path:
        journal.close()
        raise StartError(
            f"{opts.out_dir} holds the run of {owner}, not of {table_path}: resuming "
            "would mix the two tables' rows; pass another --out (or --fresh to start "
            "a new run there)"
        )
    return journal


def _refuse_foreign_output(out_dir: Path) -> None:
    """An output dir holding files by the names a run writes, but no journal, holds
    someone else's work: refuse it rather than overwrite it (exit 2)."""
    if not out_dir.is_dir() or (out_dir / ENGINE_JOURNAL_FILE).exists():
        return
    ours = (ENGINE_RESULTS_CSV, ENGINE_RESULTS_PARQUET, ENGINE_RUN_LOG)
    taken = [name for name in ours if (out_dir / name).exists()]
    videos = out_dir / ENGINE_VIDEOS_DIR
    if videos.is_dir() and any(videos.iterdir()):
        taken.append(f"{ENGINE_VIDEOS_DIR}/")
    if taken:
        raise StartError(
            f"{out_dir} already holds {', '.join(taken)} but no {ENGINE_JOURNAL_FILE}: "
            "genbatch did not write them and will not overwrite them; "
            "pass an empty or new --out"
        )


def _videos_dir(out_dir: Path) -> Path:
    """``out/videos``, a real directory (a planted symlink is refused, I6)."""
    videos = Path(os.path.realpath(out_dir)) / ENGINE_VIDEOS_DIR
    if videos.is_symlink() or (videos.exists() and not videos.is_dir()):
        raise UnsafePathError(f"{videos} must be a directory, not a link or a file")
    videos.mkdir(exist_ok=True)
    return videos


class _Run:
    def __init__(
        self,
        opts: RunOptions,
        table: Table,
        book: RecipeBook,
        pricing: Pricing,
        journal: Journal,
        log: RunLog,
        started: float,
    ) -> None:
        self.opts = opts
        self.table = table
        self.book = book
        self.pricing = pricing
        self.journal = journal
        self.log = log
        self.started = started
        self.limits = make_limits(opts.rate, opts.max_concurrency)
        self.ledger = CreditLedger(max_credits=opts.max_credits)
        if opts.shared is not None:
            self.limits.api = LeasedRateGate(opts.shared.tokens, opts.shared.start)
            self.ledger = CreditLedger(max_credits=opts.max_credits, source=opts.shared.credits)
        self.counts = _Counts(table.row_count)
        self.names = NameAllocator()
        self.tasks: set[asyncio.Task[None]] = set()
        self.aborted: str | None = None
        self.interrupted = False
        self.client: GenClient | None = None
        self.tuner: Tuner | None = None
        self._admitted = 0  # table rows through admission (started or ended)
        #: Steps in flight by group, shared with the rows (progress view).
        self.busy: dict[str, int] = {}
        #: Rows by what this run does with them: kept (completed, unchanged),
        #: redone (input or recipe changed), resumed, new.
        self.identity: dict[str, int] = {"kept": 0, "redone": 0, "resumed": 0, "new": 0}

    # -- progress --------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        client = self.client
        return Snapshot(
            total=self.counts.total,
            rows=self.counts.as_dict(),
            requests=client.stats.requests if client else 0,
            rate_limited=client.stats.rate_limited if client else 0,
            credits=self.ledger.charged,
            started=self.started,
            now=time.monotonic(),
            steps=dict(self.busy),
            rate=self.limits.api.describe(),
        )

    async def _flush_journal(self, hub: PollHub) -> None:
        """Commit the journal's batched writes in quiet spells too (rows all waiting),
        and once a second log the pace: what the gate and the caps are at."""
        ticks = round(1.0 / ENGINE_JOURNAL_BATCH_SECONDS)
        for n in itertools.count():
            await asyncio.sleep(ENGINE_JOURNAL_BATCH_SECONDS)
            self.journal.flush()
            if n % ticks == 0 and self.client is not None:
                api, census = self.limits.api, hub.census()
                self.log.event(
                    "pace",
                    rate=round(api.rate, 1),
                    rate_source=api.source,
                    requests=self.client.stats.requests,
                    rows=self.limits.rows.in_use,
                    rows_cap=self.limits.rows.limit,
                    generations=self.limits.generations.in_use,
                    generations_cap=self.limits.generations.limit,
                    queued=census.queued,
                    running=census.running,
                )

    # -- the run ----------------------------------------------------------------
    async def run(self) -> RunSummary:
        opts = self.opts
        self.log.event(
            "start",
            run_id=self.journal.run_id,
            resumed=self.journal.resumed,
            table=str(opts.table),
            rows=self.table.row_count,
            api_url=opts.api_url,
            rate=opts.rate,
        )
        previous = self.journal.credits_total()
        if previous:
            # Credits recorded by earlier runs count against --max-credits.
            held = self.ledger.try_reserve(0.0, "earlier runs")
            if held is not None:
                held.settle(previous)
        async with GenClient(
            opts.api_key,
            api_url=opts.api_url,
            agent_url=opts.agent_url,
            hooks=make_hooks(self.limits, opts.observer),
        ) as client:
            self.client = client
            async with PollHub(budget=self.limits.api) as hub:
                self.tuner = Tuner(
                    gate=self.limits.api,
                    rows=self.limits.rows,
                    generations=self.limits.generations,
                    requests=lambda: client.stats.requests,
                    census=hub.census,
                    probe=hub.want_probes,
                    remaining=self._rows_left,
                    on_end_game=lambda left: self.log.event("end_game", rows_left=left),
                    max_rows=opts.max_concurrency or ENGINE_TUNE_ROWS_MAX,
                )
                self.tuner.start()
                flusher = asyncio.ensure_future(self._flush_journal(hub))
                svc = RowServices(
                    client=client,
                    journal=self.journal,
                    limits=self.limits,
                    ledger=self.ledger,
                    pricing=self.pricing,
                    watcher=HubWatcher.for_rows(client, hub),
                    out_dir=opts.out_dir,
                    assets_root=opts.assets_root or opts.table.resolve().parent,
                    log=self.log,
                    milestone=opts.milestone,
                    busy=self.busy,
                )
                try:
                    async with Progress(self.snapshot, enabled=opts.progress):
                        try:
                            await self._preflight(client)
                        except StartError as exc:
                            # run.log says why the run never started, not only "start".
                            self.log.event("refused", reason=str(exc))
                            raise
                        await self._stream(svc)
                finally:
                    await self.tuner.stop()
                    await self.limits.api.aclose()  # a shared budget gets back what
                    await self.ledger.aclose()  # this run holds and did not spend
                    flusher.cancel()
                    await asyncio.gather(flusher, return_exceptions=True)
                    self.journal.flush()
                polls = {
                    k: {
                        "jobs": s.resolved,
                        "polls": s.polls,
                        "polls_per_job": round(s.polls_per_job, 3),
                    }
                    for k, s in hub.stats().items()
                }
            stats = client.stats
        counts = self.journal.counts()
        if (
            not self.aborted
            and not self.interrupted
            and counts["pending"] == counts["running"] == 0
        ):
            self.journal.finish_run()
        results = write_results(self.journal, opts.out_dir)
        merged = dict(results.counts)
        summary = RunSummary(
            run_id=self.journal.run_id,
            out_dir=opts.out_dir,
            total=self.table.row_count,
            counts={s: merged.get(s, 0) for s in ("completed", "failed", "skipped", "pending")},
            credits=round(self.journal.credits_total(), 6),
            requests=stats.requests,
            rate_limited=stats.rate_limited,
            seconds=time.monotonic() - self.started,
            results=results,
            resumed=self.journal.resumed,
            aborted=self.aborted,
            interrupted=self.interrupted,
            polls=polls,
            not_attempted=sum(1 for r in self.journal.rows("skipped") if r.error_code == "limit"),
            rate=_rate_report(self.limits.api),
            identity=dict(self.identity),
            reasons=_reasons(self.journal),
        )
        self.log.event("summary", **summary.to_json())
        return summary

    async def _preflight(self, client: GenClient) -> None:
        """The key, every agent, template and workspace the table names, one read
        each (:mod:`genbatch.engine.preflight`); the balance feeds the ledger."""
        found = await preflight(
            client, self.table, on_error=lambda e: self.log.event("preflight", error=e)
        )
        if self.ledger.balance_left() is None and found.balance is not None:
            self.ledger.set_balance(found.balance)

    def _rows(self) -> Iterator[tuple[InputRow | RowError, int]]:
        n = 0
        for batch in self.table.batches():
            self.journal.add_rows(row_key(item) for item in batch)
            for item in batch:
                n += 1
                yield item, n

    async def _stream(self, svc: RowServices) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, self._interrupt)
        try:
            for item, n in self._rows():
                if self.aborted or self.interrupted:
                    break
                await self._admit(svc, item, n)
                self._admitted = n
            if self.tasks:
                await asyncio.gather(*list(self.tasks), return_exceptions=True)
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)

    def _rows_left(self) -> int:
        """Rows of the table not admitted yet (the one waiting at the rows cap
        included; rows kept from an earlier run count too: an upper bound)."""
        total = self.table.row_count
        if self.opts.limit is not None:
            total = min(total, self.opts.limit)
        return max(0, total - self._admitted)

    def _interrupt(self) -> None:
        # One graceful stop; the handler is removed, so a second ^C kills.
        self.interrupted = True
        self.log.event("interrupted")
        for task in list(self.tasks):
            task.cancel()
        asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)

    def _abort(self, reason: str) -> None:
        if self.aborted is None:
            self.aborted = reason
            self.log.event("aborted", reason=reason)
        for task in list(self.tasks):
            task.cancel()

    async def _admit(self, svc: RowServices, item: InputRow | RowError, n: int) -> None:
        key = row_key(item)
        journal = self.journal
        record = journal.row(key)
        plan: RowPlan | None = None
        fingerprint: str | None = None
        if isinstance(item, InputRow):
            with contextlib.suppress(RowPlanError):
                plan = plan_row(self.book, item)
                fingerprint = row_fingerprint(item, plan)
        ran = record.extra.get("fingerprint") if record is not None else None
        changed = ran is not None and fingerprint is not None and ran != fingerprint
        if record is not None and record.status == "completed" and not changed:
            self.counts.add("completed")
            self.identity["kept"] += 1
            if plan is not None:
                with contextlib.suppress(UnsafePathError):
                    self.names.assign(key, plan.output_name)
            return
        if record is not None and changed and record.status != "pending":
            self._redo(key)
        elif record is not None and record.status in ("failed", "skipped"):
            journal.reopen_row(key)
        fresh = record is None or (record.status == "pending" and not record.attempts)
        self.identity["new" if fresh else ("redone" if changed else "resumed")] += 1
        if isinstance(item, RowError):
            self._end(key, "failed", item.reason, "invalid_row")
            return
        try:
            plan = plan if plan is not None else plan_row(self.book, item)
            name = self.names.assign(key, plan.output_name)
        except RowPlanError as exc:
            self._end(key, "failed", str(exc), "invalid_row")
            return
        except UnsafePathError as exc:
            self._end(key, "failed", str(exc), "unsafe_path")
            return
        if self.opts.limit is not None and n > self.opts.limit:
            self._end(key, "skipped", f"not attempted (--limit {self.opts.limit})", "limit")
            return
        await self.limits.rows.acquire(Priority.START)
        if self.aborted or self.interrupted:
            self.limits.rows.release()
            return
        hold = await self._credits_for(key, plan)
        if hold is None:
            self.limits.rows.release()
            return
        self.counts.running += 1
        if fingerprint is not None and fingerprint != ran:
            recipe = str(self.opts.recipe) if self.opts.recipe else "default"
            journal.update_row(
                key, {"fingerprint": fingerprint, "template": plan.template, "recipe": recipe}
            )
        task = asyncio.create_task(self._row(svc, item, plan, name, hold), name=f"row-{key}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _redo(self, key: str) -> None:
        """The row's input or recipe changed since it ran: run it again from the
        start; its earlier video is kept under a versioned name, never replaced."""
        before = self.journal.redo_row(key)
        old = before.fields.get("mp4_path")
        if not old:
            return
        try:
            kept = keep_earlier(safe_join(self.opts.out_dir, *str(old).split("/")))
            if kept is not None:
                self.log.event("row_redone", row_id=key, previous=kept.name)
        except (OSError, UnsafePathError) as exc:
            self.log.event("row_redone", row_id=key, error=str(exc))

    async def _credits_for(self, key: str, plan: RowPlan) -> RowReservation | None:
        """Admission: hold the row's whole remaining estimate before it starts.

        A row starts only if the budget (``--max-credits``, the balance read
        at start) can finish it; otherwise it ends ``skipped`` without a paid
        call (``"insufficient credits: needs N, M left"``).  It waits while
        rows in flight hold what it needs (they may cost less, or fail and be
        refunded).  None: the row does not start.
        """
        try:
            need = remaining_credits(self.journal, key, plan, self.pricing)
        except PricingError as exc:
            self._end(key, "failed", str(exc), "pricing")
            return None
        try:
            hold = await self.ledger.admit(need, key)
        except SharedSourceLost as exc:
            self._abort(str(exc))
            return None
        except CreditsRefused as exc:
            if not (self.aborted or self.interrupted):
                code = "max_credits" if exc.reason == "budget" else "insufficient_credits_for_job"
                self._end(key, "skipped", str(exc), code)
            return None
        if self.aborted or self.interrupted:
            hold.close()
            return None
        return hold

    async def _row(
        self, svc: RowServices, row: InputRow, plan: RowPlan, name: str, hold: RowReservation
    ) -> None:
        clock = RowClock()
        ROW_CLOCK.set(clock)
        try:
            status = await run_row(svc, row, plan, name, hold, self.opts.videos_to)
            self.counts.add(status)
            if self.tuner is not None and status == "completed" and clock.first_sent:
                self.tuner.row_finished(time.monotonic() - clock.first_sent)
        except RunAborted as exc:
            shared = isinstance(exc, SharedSourceLost)
            self._abort(str(exc) if shared else f"the API key was refused (401): {exc}")
        except asyncio.CancelledError:
            pass  # SIGINT / abort: the journal keeps the row resumable
        except Exception as exc:  # a bug must not take the other rows down
            self.log.event("row_crashed", row_id=row.row_id, error=repr(exc))
            with contextlib.suppress(JournalError):
                self.journal.finish_row(row.row_id, "failed", f"internal error: {exc!r}", "bug")
            self.counts.add("failed")
        finally:
            hold.close()  # what the row did not spend is free for the next
            self.counts.running -= 1
            self.limits.rows.release()

    def _end(self, key: str, status: str, reason: str, code: str) -> None:
        self.journal.finish_row(key, status, reason, code)  # type: ignore[arg-type]
        self.counts.add(status)
        self.log.event("row", row_id=key, status=status, reason=reason, error_code=code)
