"""One row, start to finish: clone → fill → upload → generate → render → download → publish.

Every step is journaled, so a rerun of the same command picks each row up
where it stopped.  The money rule (docs/design.md §5) shapes the paid steps
(generate, render):

1. the journal commits an *intent* (row, step, idempotency key) before the
   POST leaves, and the generation id the moment it arrives;
2. a POST is resent only when it provably never reached the server (connect
   error, 429), or when a read of the cell's latest generation proves that
   nothing was created (the *reconcile read*) — after an ambiguous failure
   now, or an intent without an id found after a crash;
3. a generation that *ended* failed (refunded) may be tried again, as a new
   intent with a new key, a bounded number of times.

The client would resend an ambiguous POST by itself when it carries our key
(the simulator honours keys; GEN may not), so the paid POSTs go out with
``resend_ambiguous=False``: the client raises instead and the decision comes
back here.

Free steps (clone, upload, publish) have no read that could find what an
in-doubt POST created; they are resent with the *same* key (ASSUMPTION: the
server dedups; at worst a duplicate free engine / resource, or — for publish
only — a duplicate post, which is why publish keys are never rotated).

What the pipeline needs from the rest of the run is passed in as
:class:`RowServices`; how jobs are polled and credits counted stays behind
two small protocols (:class:`JobWatcher`, :class:`Budget`) the runner fills.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, Protocol, TypeVar

from genbatch.client import GenClient
from genbatch.client.models import Cell, Engine, Generation, GenerationStarted, UserJob
from genbatch.client.retry import CLIENT_RETRY_AFTER_CAP
from genbatch.engine.credits import (
    CreditLedger,
    CreditsRefused,
    Pricing,
    Reservation,
    RowReservation,
)
from genbatch.engine.idea_status import IDEA_STATUS_ON, advance_idea
from genbatch.engine.journal import Journal, StepRecord
from genbatch.engine.limits import ENGINE_RETRY_AFTER_DEFAULT, Limits, Priority
from genbatch.engine.naming import UnsafePathError, resolve_inside, safe_join
from genbatch.engine.progress import RunLog
from genbatch.engine.rowplan import (
    STEP_CLONE,
    STEP_DOWNLOAD,
    STEP_FILL,
    STEP_PUBLISH,
    STEP_RENDER,
    AssetPlan,
    GenerationPlan,
    RowPlan,
)
from genbatch.engine.table import InputRow
from genbatch.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    GenError,
    InsufficientCreditsError,
    NoActiveCreditsError,
    RateLimitError,
    RequestValidationError,
    ServerError,
    TransferError,
)

#: Output directory layout.
ENGINE_VIDEOS_DIR: Final = "videos"
#: Tries per generation/render when the job itself ends failed (each one a new
#: intent with a new key; a failed job is refunded, so a retry pays once more).
ENGINE_MAX_GENERATION_ATTEMPTS: Final = 3
#: Tries per row step that failed for a transient reason (5xx after client
#: retries, connection lost, truncated download) before the row fails.
ENGINE_MAX_STEP_ATTEMPTS: Final = 4
#: Pause before re-trying such a step (seconds; doubled per try).
ENGINE_STEP_RETRY_DELAY: Final = 0.5
#: A scheduled post is waited for (to report its post_id) only when it is due
#: within this many seconds of wall time; later ones complete the row with
#: the publish job's id, instead of holding a row slot for days.
ENGINE_PUBLISH_WAIT_MAX: Final = 900.0
#: Free reads that decide money — polls of a paid job, the reconcile read of
#: an in-doubt POST — are retried through an outage for this long (seconds,
#: wall clock) before the row is left pending for the next run to resume.
ENGINE_OUTAGE_MAX: Final = 3600.0

__all__ = [
    "PRIORITY",
    "JobWatcher",
    "RowServices",
    "RowSuspended",
    "RunAborted",
    "believed_retry_after",
    "is_transient",
    "remaining_credits",
    "run_row",
    "through_outage",
]

#: Priority of the calls made in the current task (read by the rate-gate hook).
PRIORITY: contextvars.ContextVar[int] = contextvars.ContextVar(
    "genbatch_priority", default=Priority.CONTINUE
)

_Terminal = Literal["completed", "failed", "skipped"]
T = TypeVar("T")
_CREDITS_CODES = ("insufficient_credits_for_job", "usable_gen_credit_required")
REASON_NO_CREDITS = "insufficient credits"


# --------------------------------------------------------------------------
# Outcomes
# --------------------------------------------------------------------------
class RunAborted(GenError):
    """The whole run must stop (401): rows in flight stay resumable."""


class RowSuspended(GenError):
    """A read that decides money kept failing: leave the row resumable, not failed.

    A paid job must be watched to its outcome; writing it off would leave a
    charge nobody reports (I3).  The row stays ``running`` in the journal
    (``pending`` in the results) and the next run picks it up.
    """


def is_transient(exc: BaseException) -> bool:
    """Worth trying the same (idempotent) call again later."""
    if isinstance(exc, RateLimitError | ServerError | APIConnectionError | TransferError):
        return True
    return isinstance(exc, APIResponseValidationError)


async def through_outage(
    call: Callable[[], Awaitable[T]],
    *,
    backoff: tuple[float, float],
    what: str,
    limit: float = ENGINE_OUTAGE_MAX,
    on_error: Callable[[BaseException], None] | None = None,
) -> T:
    """``call()`` until it succeeds, riding out transient failures for ``limit`` s.

    ``backoff`` is the client policy's (initial, max): the pause between
    tries doubles up to max.  401 aborts the run; any other non-transient
    error is raised; past ``limit`` the row is suspended (:class:`RowSuspended`).
    """
    deadline = time.monotonic() + limit
    attempt = 0
    while True:
        try:
            return await call()
        except AuthenticationError as exc:
            raise RunAborted(str(exc)) from None
        except Exception as exc:
            if not is_transient(exc):
                raise
            if on_error is not None:
                on_error(exc)
            if time.monotonic() >= deadline:
                raise RowSuspended(
                    f"{what} failed for {limit:.0f} s ({exc}); rerun to resume"
                ) from None
            initial, cap = backoff
            await asyncio.sleep(min(cap, initial * (2**attempt)))
            attempt += 1


class _RowEnd(Exception):
    """Internal: end the row now with this terminal status."""

    def __init__(self, status: _Terminal, reason: str, error_code: str | None = None) -> None:
        super().__init__(reason)
        self.status: _Terminal = status
        self.reason = reason
        self.error_code = error_code


# --------------------------------------------------------------------------
# Collaborators (the runner provides them)
# --------------------------------------------------------------------------
class JobWatcher(Protocol):
    """Waits for jobs through the poll hub (no sleeping task per job)."""

    async def generation(self, generation_id: str, kind: str, elapsed: float = 0.0) -> Generation:
        """The generation once it is completed, failed or stopped.

        ``elapsed``: seconds it has been running already (found after a restart).
        """
        ...

    async def user_job(
        self, job_id: str, agent_id: str, kind: str, elapsed: float = 0.0
    ) -> UserJob:
        """The user job once it is completed or failed."""
        ...


@dataclass(slots=True)
class RowServices:
    """What every row shares: built once by the runner."""

    client: GenClient
    journal: Journal
    limits: Limits
    ledger: CreditLedger
    pricing: Pricing
    watcher: JobWatcher
    out_dir: Path
    assets_root: Path
    log: RunLog
    max_generation_attempts: int = ENGINE_MAX_GENERATION_ATTEMPTS
    max_step_attempts: int = ENGINE_MAX_STEP_ATTEMPTS
    #: The server's time scale (a simulator's --time-scale; 1.0 for GEN).
    time_scale: float = 1.0
    publish_wait_max: float = ENGINE_PUBLISH_WAIT_MAX
    step_retry_delay: float = ENGINE_STEP_RETRY_DELAY
    #: Steps in flight by group (for the progress view).
    busy: dict[str, int] = field(default_factory=dict)
    #: Optional test hook: awaited after each journal milestone (crash tests).
    milestone: Callable[[str, str], Awaitable[None]] | None = None


# --------------------------------------------------------------------------
# The paid-POST guard
# --------------------------------------------------------------------------
# --------------------------------------------------------------------------
# Error classification
# --------------------------------------------------------------------------
def _code(exc: BaseException) -> str | None:
    if isinstance(exc, APIStatusError):
        return exc.error_code or f"http_{exc.status}"
    if isinstance(exc, TransferError):
        return exc.code or "transfer_error"
    if isinstance(exc, APIConnectionError):
        return "connection_error"
    if isinstance(exc, RequestValidationError):
        return "request_validation"
    return type(exc).__name__


def believed_retry_after(seconds: float | None) -> float | None:
    """A server's Retry-After, or None when absent or too absurd to honour.

    Past the client's cap, one absurd value ("3600") must not park the whole
    run: the gate pauses for ENGINE_RETRY_AFTER_DEFAULT instead and the step
    is tried again a bounded number of times.
    """
    if seconds is None or seconds < 0 or seconds > CLIENT_RETRY_AFTER_CAP:
        return None
    return seconds


def retry_wait(exc: RateLimitError) -> float:
    """How long a step waits after a 429 that outlasted the client's retries."""
    wait = believed_retry_after(exc.retry_after)
    return wait if wait is not None else ENGINE_RETRY_AFTER_DEFAULT


def _credits_exhausted(exc: BaseException) -> bool:
    return isinstance(exc, InsufficientCreditsError | NoActiveCreditsError)


# --------------------------------------------------------------------------
# The row
# --------------------------------------------------------------------------
@dataclass(slots=True)
class _EngineRef:
    engine_id: str
    cells: dict[str, str]
    cards: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"engine_id": self.engine_id, "cells": self.cells, "cards": self.cards}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _EngineRef:
        return cls(str(data["engine_id"]), dict(data["cells"]), dict(data.get("cards", {})))

    @classmethod
    def from_engine(cls, engine: Engine) -> _EngineRef:
        cells: dict[str, str] = {}
        cards: dict[str, dict[str, Any]] = {}
        first_row = engine.spreadsheet_rows[0].id if engine.spreadsheet_rows else None
        for col in engine.spreadsheet_columns:
            if not col.name:
                continue
            cell = engine.cell(col.name, first_row)
            if cell is None:
                continue
            cells[col.name] = cell.id
            card = cell.creation_card
            if card is not None and card.generation_type:
                cards[col.name] = {"generation_type": card.generation_type, "data": card.data}
        return cls(engine.id, cells, cards)


class _Row:
    """The state of one row while its pipeline runs."""

    def __init__(
        self,
        svc: RowServices,
        row: InputRow,
        plan: RowPlan,
        output_name: str,
        credits: RowReservation | None = None,
    ) -> None:
        self.svc = svc
        self.row = row
        self.plan = plan
        self.output_name = output_name
        #: The row's admission hold; paid POSTs draw from it (None: the ledger).
        self.credits = credits
        self.rid = row.row_id
        self.agent = row.agent_id
        self.engine: _EngineRef | None = None
        #: "output:<cell>" / "upload:<cell>" -> resource id, for card refs.
        self.resources: dict[str, object] = {}
        self.render_url: str | None = None

    # -- small helpers -----------------------------------------------------
    @property
    def journal(self) -> Journal:
        return self.svc.journal

    async def _milestone(self, what: str) -> None:
        if self.svc.milestone is not None:
            await self.svc.milestone(self.rid, what)

    @contextlib.asynccontextmanager
    async def _busy(self, group: str) -> AsyncIterator[None]:
        busy = self.svc.busy
        busy[group] = busy.get(group, 0) + 1
        try:
            yield
        finally:
            busy[group] -= 1

    def _begin(self, step: str) -> StepRecord | None:
        """The step's record; a step not yet completed is (re)started."""
        rec = self.journal.step(self.rid, step)
        if rec is None or rec.status != "completed":
            self.journal.set_step(self.rid, step)
            self.journal.begin_step(self.rid, step)
        return rec

    async def _retrying(self, step: str, call: Callable[[], Awaitable[Any]], priority: int) -> Any:
        """Run an idempotent call, trying again on transient failures."""
        attempt = 0
        while True:
            token = PRIORITY.set(priority)
            try:
                return await call()
            except AuthenticationError as exc:
                raise RunAborted(str(exc)) from None
            except Exception as exc:
                if _credits_exhausted(exc):
                    raise
                attempt += 1
                if not is_transient(exc) or attempt >= self.svc.max_step_attempts:
                    raise
                delay = self.svc.step_retry_delay * (2 ** (attempt - 1))
                if isinstance(exc, RateLimitError):
                    delay = max(delay, retry_wait(exc))
                self.svc.log.event("retry", row_id=self.rid, step=step, error=str(exc))
                await asyncio.sleep(delay)
            finally:
                PRIORITY.reset(token)

    def _fail_step(self, step: str, exc: BaseException, status: str = "failed") -> _RowEnd:
        code = _code(exc)
        self.journal.finish_step(self.rid, step, status, error_code=code)  # type: ignore[arg-type]
        if _credits_exhausted(exc):
            self.svc.ledger.exhaust(REASON_NO_CREDITS)
            return _RowEnd("skipped", REASON_NO_CREDITS, code)
        return _RowEnd("failed", f"{step}: {exc}", code)

    # -- the pipeline --------------------------------------------------------
    async def run(self) -> _Terminal | Literal["pending"]:
        svc = self.svc
        self.journal.start_row(self.rid, STEP_CLONE)
        self.journal.update_row(self.rid, {"pending_reason": None})
        try:
            await self._clone()
            await self._idea("started")
            await self._fill()
            for asset in self.plan.assets:
                await self._upload(asset)
            for wave in self.plan.waves():
                await self._wave(wave)
            if self.plan.render is not None:
                await self._render()
                await self._download()
                await self._idea("rendered")
                if self.plan.publish is not None:
                    await self._publish()
        except _RowEnd as end:
            self._finish(end.status, end.reason, end.error_code)
            return end.status
        except RunAborted:
            raise
        except RowSuspended as exc:
            self.journal.update_row(self.rid, {"pending_reason": str(exc)})
            svc.log.event("suspended", row_id=self.rid, reason=str(exc))
            return "pending"
        except UnsafePathError as exc:
            self._finish("failed", str(exc), "unsafe_path")
            return "failed"
        except Exception as exc:
            if _credits_exhausted(exc):
                svc.ledger.exhaust(REASON_NO_CREDITS)
                self._finish("skipped", REASON_NO_CREDITS, _code(exc))
                return "skipped"
            self._finish("failed", str(exc) or type(exc).__name__, _code(exc))
            return "failed"
        self._finish("completed", "")
        return "completed"

    def _finish(self, status: _Terminal, reason: str, error_code: str | None = None) -> None:
        steps = self.journal.steps(self.rid)
        credits = sum(s.credits for s in steps.values())
        self.journal.update_row(self.rid, {"credits": credits})
        self.journal.finish_row(self.rid, status, reason, error_code)
        self.svc.log.event(
            "row",
            row_id=self.rid,
            status=status,
            reason=reason or None,
            error_code=error_code,
            credits=credits,
        )

    # -- clone ---------------------------------------------------------------
    async def _clone(self) -> None:
        rec = self._begin(STEP_CLONE)
        if rec is not None and rec.status == "completed" and rec.result:
            self.engine = _EngineRef.from_json(rec.result)
            return
        async with self._busy("clone"):
            engine: Engine
            if rec is not None and rec.remote_id is not None:
                # Created before a crash; read it back instead of cloning again.
                engine = await self._retrying(
                    STEP_CLONE,
                    lambda: self.svc.client.engines.get(rec.remote_id or "", self.agent),
                    Priority.START,
                )
            else:
                intent = self.journal.record_intent(
                    self.rid, STEP_CLONE, retry=rec is not None and rec.done
                )
                await self._milestone("clone_intent")
                source = self.row.engine_id
                if source is not None:
                    call: Callable[[], Awaitable[Engine]] = lambda: self.svc.client.engines.clone(  # noqa: E731
                        source, self.agent, idempotency_key=intent.idempotency_key
                    )
                else:
                    call = lambda: self.svc.client.templates.clone(  # noqa: E731
                        self.plan.template, self.agent, idempotency_key=intent.idempotency_key
                    )
                try:
                    engine = await self._retrying(STEP_CLONE, call, Priority.START)
                except Exception as exc:
                    if isinstance(exc, RunAborted):
                        raise
                    raise self._fail_step(STEP_CLONE, exc) from None
                self.journal.record_remote_id(self.rid, STEP_CLONE, engine.id)
            ref = _EngineRef.from_engine(engine)
            missing = [c for c in self._needed_cells() if c not in ref.cells]
            if missing:
                err = RequestValidationError(
                    f"the engine has no cell(s) {', '.join(missing)} the recipe uses"
                )
                raise self._fail_step(STEP_CLONE, err)
            self.engine = ref
            self.journal.update_row(self.rid, {"engine_id": ref.engine_id})
            self.journal.finish_step(self.rid, STEP_CLONE, "completed", result=ref.to_json())

    def _needed_cells(self) -> list[str]:
        names = list(self.plan.cell_values)
        names += [a.cell for a in self.plan.assets]
        names += [g.cell for g in self.plan.generations]
        if self.plan.render is not None:
            names.append(self.plan.render.cell)
        return list(dict.fromkeys(names))

    @property
    def _eng(self) -> _EngineRef:
        assert self.engine is not None
        return self.engine

    # -- fill ----------------------------------------------------------------
    async def _fill(self) -> None:
        values = self.plan.cell_values
        if not values:
            return
        rec = self._begin(STEP_FILL)
        if rec is not None and rec.status == "completed":
            return
        eng = self._eng
        client = self.svc.client
        items = [{"id": eng.cells[name], "value": value} for name, value in values.items()]

        async def call() -> Any:
            if len(items) == 1:  # one PATCH is as cheap as a mass update
                return await client.cells.update(
                    eng.engine_id, items[0]["id"], self.agent, items[0]["value"]
                )
            return await client.cells.mass_update(
                eng.engine_id, self.agent, {"spreadsheet_cells": items}
            )

        async with self._busy("fill"):
            try:
                await self._retrying(STEP_FILL, call, Priority.CONTINUE)
            except RunAborted:
                raise
            except Exception as exc:
                raise self._fail_step(STEP_FILL, exc) from None
        self.journal.finish_step(self.rid, STEP_FILL, "completed")

    # -- upload --------------------------------------------------------------
    async def _upload(self, asset: AssetPlan) -> None:
        step = asset.step
        rec = self._begin(step)
        if rec is not None and rec.status == "completed" and rec.result:
            self.resources[f"upload:{asset.cell}"] = rec.result["resource_id"]
            return
        try:
            path = resolve_inside(self.svc.assets_root, asset.path)
        except UnsafePathError as exc:
            raise self._fail_step(step, exc) from None
        if not path.is_file():
            err = RequestValidationError(f"asset {asset.path!r} for {asset.cell} is not a file")
            raise self._fail_step(step, err)
        intent = self.journal.record_intent(self.rid, step, retry=rec is not None and rec.done)
        client = self.svc.client
        async with self._busy("upload"), self.svc.limits.uploads.slot(Priority.CONTINUE):
            try:
                resource = await self._retrying(
                    step,
                    lambda: client.uploads.upload(
                        path, self.agent, idempotency_key=intent.idempotency_key
                    ),
                    Priority.CONTINUE,
                )
            except RunAborted:
                raise
            except Exception as exc:
                raise self._fail_step(step, exc) from None
        self.journal.record_remote_id(self.rid, step, resource.id)
        self.resources[f"upload:{asset.cell}"] = resource.id
        self.journal.finish_step(self.rid, step, "completed", result={"resource_id": resource.id})

    # -- generate --------------------------------------------------------------
    async def _wave(self, wave: list[GenerationPlan]) -> None:
        """Independent generations run together; a failure waits for the rest.

        Siblings are never cancelled: a generation already paid for must be
        watched to its end, or its credits would go unreported (I3).
        """
        results = await asyncio.gather(*(self._generate(g) for g in wave), return_exceptions=True)
        for res in results:
            if isinstance(res, RunAborted):
                raise res
        for res in results:
            if isinstance(res, BaseException):
                raise res

    def _card(self, gen: GenerationPlan) -> dict[str, Any]:
        """The recipe's card over the template cell's own card of the same type.

        The template's card carries what the recipe need not repeat (the
        agent's voice, enhance flags); the recipe's fields win.
        """
        data = gen.resolve(self.resources)
        saved = self._eng.cards.get(gen.cell)
        if saved is not None and saved.get("generation_type") == gen.generation_type:
            data = {**saved.get("data", {}), **data}
        return {"generation_type": gen.generation_type, "data": data}

    async def _generate(self, gen: GenerationPlan) -> None:
        step = gen.step
        rec = self._begin(step)
        if rec is not None and rec.status == "completed" and rec.result:
            self.resources[f"output:{gen.cell}"] = rec.result.get("resource_id")
            return
        cell_id = self._eng.cells[gen.cell]
        card = self._card(gen)
        client = self.svc.client
        eng_id = self._eng.engine_id

        def post(key: str) -> Awaitable[GenerationStarted]:
            return client.generations.generate(
                eng_id, cell_id, self.agent, card, idempotency_key=key, resend_ambiguous=False
            )

        async with self._busy("generate"), self.svc.limits.generations.slot(Priority.CONTINUE):
            done = await self._paid(
                rec, step, cell_id, gen.generation_type, gen.model, post, Priority.CONTINUE
            )
        resource = done.output_resources[0].id if done.output_resources else None
        self.resources[f"output:{gen.cell}"] = resource

    async def _render(self) -> None:
        assert self.plan.render is not None
        rec = self._begin(STEP_RENDER)
        if rec is not None and rec.status == "completed" and rec.result:
            self.render_url = rec.result.get("url")
            return
        cell_id = self._eng.cells[self.plan.render.cell]
        client = self.svc.client
        eng_id = self._eng.engine_id

        def post(key: str) -> Awaitable[GenerationStarted]:
            return client.generations.render(
                eng_id, cell_id, self.agent, idempotency_key=key, resend_ambiguous=False
            )

        async with self._busy("render"), self.svc.limits.renders.slot(Priority.FINISH):
            done = await self._paid(
                rec, STEP_RENDER, cell_id, "render", None, post, Priority.FINISH
            )
        if not done.video_url:
            raise _RowEnd("failed", "render completed without an output URL", "no_output")
        self.render_url = done.video_url
        self.journal.update_row(self.rid, {"render_url": done.video_url})

    # -- the paid step machinery -------------------------------------------------
    def _prior_ids(self, step: str) -> list[str]:
        rec = self.journal.row(self.rid)
        prior = rec.extra.get("prior", {}) if rec is not None else {}
        ids = prior.get(step, []) if isinstance(prior, dict) else []
        return [str(i) for i in ids]

    def _remember_prior(self, step: str, generation_id: str) -> None:
        rec = self.journal.row(self.rid)
        prior = dict(rec.extra.get("prior", {})) if rec is not None else {}
        prior[step] = [*prior.get(step, []), generation_id]
        self.journal.update_row(self.rid, {"prior": prior})

    async def _reconcile(self, step: str, cell_id: str) -> str | None:
        """The generation an in-doubt POST created, or None if the cell proves none."""
        client = self.svc.client

        async def read() -> Cell:
            PRIORITY.set(Priority.POLL)
            return await client.cells.get(self._eng.engine_id, cell_id, self.agent)

        # Free, and it decides whether money was spent: ride out an outage.
        cell: Cell = await through_outage(
            read,
            backoff=(client.policy.backoff_initial, client.policy.backoff_max),
            what=f"{step}: the reconcile read of cell {cell_id}",
            on_error=lambda exc: self.svc.log.event(
                "reconcile_retry", row_id=self.rid, step=step, error=str(exc)
            ),
        )
        latest = cell.generation_id
        if latest is None or latest in self._prior_ids(step):
            return None
        self.svc.log.event("reconciled", row_id=self.rid, step=step, generation_id=latest)
        return latest

    async def _paid(
        self,
        before: StepRecord | None,
        step: str,
        cell_id: str,
        kind: str,
        model: str | None,
        post: Callable[[str], Awaitable[GenerationStarted]],
        priority: int,
    ) -> Generation:
        """Drive one paid step to a completed generation (or end the row).

        ``before`` is the step's journal record as this run found it: an
        attempt that ended (failed, refunded) is followed by a new intent; one
        in doubt — an intent, maybe an id, no outcome — is resumed: its
        generation watched, or the cell read to learn whether it exists.
        """
        svc = self.svc
        gen_id: str | None = None
        resend_key: str | None = None
        elapsed = 0.0
        tries = 0  # generations that ended failed in this run
        prior = self._prior_ids(step)
        in_doubt = (
            before is not None
            and before.intent_at is not None
            and not before.done
            and (before.remote_id is None or before.remote_id not in prior)
        )
        new_attempt = before is not None and before.intent_at is not None and not in_doubt
        if in_doubt and before is not None:
            if before.remote_id is not None:
                gen_id = before.remote_id  # accepted before a crash: just watch it
                elapsed = max(0.0, time.time() - (before.remote_at or before.intent_at or 0.0))
            else:
                gen_id = await self._reconcile(step, cell_id)
                if gen_id is not None:
                    self.journal.record_remote_id(self.rid, step, gen_id)
                else:
                    resend_key = before.idempotency_key
        while True:
            reservation: Reservation
            if gen_id is None:
                reservation = await self._reserve(step, kind, model)
                if resend_key is None:
                    intent = self.journal.record_intent(self.rid, step, retry=new_attempt)
                    resend_key = intent.idempotency_key
                await self._milestone(f"{step}:intent")
                try:
                    gen_id = await self._send(step, cell_id, resend_key, post, priority)
                    await self._milestone(f"{step}:posted")  # accepted, id not yet journaled
                except BaseException:
                    reservation.release()
                    raise
                self.journal.record_remote_id(self.rid, step, gen_id)
                await self._milestone(f"{step}:submitted")
            else:
                # Paid before a crash: account for it when it settles, but
                # never refuse it (the money is already spent).
                held = svc.ledger.try_reserve(0.0, f"{self.rid}/{step}")
                assert held is not None  # a zero hold is always granted
                reservation = held
            try:
                done = await svc.watcher.generation(gen_id, kind, elapsed)
            except BaseException:
                reservation.release()
                raise
            if done.status == "completed":
                estimate = svc.pricing.price(kind, model)
                charged = reservation.settle(done.credits if done.credits is not None else estimate)
                self.journal.finish_step(
                    self.rid,
                    step,
                    "completed",
                    credits=charged,
                    result={
                        "generation_id": done.id,
                        "resource_id": done.output_resources[0].id
                        if done.output_resources
                        else None,
                        "url": done.video_url,
                    },
                )
                return done
            # failed / stopped: refunded by the server; maybe try again.
            reservation.release()
            self._remember_prior(step, gen_id)
            self.journal.finish_step(
                self.rid, step, "failed", error_code=f"generation_{done.status}"
            )
            tries += 1
            error = str(done.error) if done.error else done.status
            svc.log.event(
                "generation_failed", row_id=self.rid, step=step, attempt=tries, error=error
            )
            if tries >= svc.max_generation_attempts:
                raise _RowEnd(
                    "failed",
                    f"{step}: generation {done.status} after {tries} attempt(s): {error}",
                    f"generation_{done.status}",
                )
            gen_id = None
            resend_key = None
            elapsed = 0.0
            new_attempt = True

    async def _reserve(self, step: str, kind: str, model: str | None) -> Reservation:
        """Hold the estimate before a paid POST (from the row's hold); a refusal skips the row."""
        price, tag = self.svc.pricing.price(kind, model), f"{self.rid}/{step}"
        try:
            if self.credits is not None:
                return await self.credits.draw(price, tag)
            return await self.svc.ledger.reserve(price, tag)
        except CreditsRefused as exc:
            self.journal.finish_step(self.rid, step, "skipped", error_code=exc.reason)
            reason = REASON_NO_CREDITS if exc.reason == "exhausted" else str(exc)
            code = "insufficient_credits_for_job" if exc.reason != "budget" else "max_credits"
            raise _RowEnd("skipped", reason, code) from None

    async def _send(
        self,
        step: str,
        cell_id: str,
        key: str,
        post: Callable[[str], Awaitable[GenerationStarted]],
        priority: int,
    ) -> str:
        """POST once per proof: resend only what provably did not take effect."""
        tries = 0
        limited = 0
        while True:
            token = PRIORITY.set(priority)
            try:
                started = await post(key)
                return started.generation_id
            except AuthenticationError as exc:
                raise RunAborted(str(exc)) from None
            except RateLimitError as exc:
                # A 429 is decided before the request is processed: resend —
                # but not forever if the server keeps refusing.
                limited += 1
                if limited > 2 * self.svc.max_step_attempts:
                    raise self._fail_step(step, exc) from None
                await asyncio.sleep(retry_wait(exc))
                continue
            except (ServerError, APIConnectionError, APIResponseValidationError) as exc:
                tries += 1
                never_sent = isinstance(exc, APIConnectionError) and not exc.maybe_sent
                if not never_sent:
                    found = await self._reconcile(step, cell_id)
                    if found is not None:
                        return found
                if tries >= self.svc.max_step_attempts:
                    raise self._fail_step(step, exc) from None
                self.svc.log.event("resend", row_id=self.rid, step=step, reason=str(exc))
                await asyncio.sleep(self.svc.step_retry_delay * (2 ** (tries - 1)))
            except (APIStatusError, RequestValidationError) as exc:
                # Refused (422 credits/validation, 403, 404): nothing was created.
                status = "skipped" if _credits_exhausted(exc) else "failed"
                raise self._fail_step(step, exc, status) from None
            finally:
                PRIORITY.reset(token)

    # -- download ----------------------------------------------------------------
    async def _download(self) -> None:
        rec = self._begin(STEP_DOWNLOAD)
        if rec is not None and rec.status == "completed":
            return
        url = self.render_url
        if url is None:
            raise _RowEnd("failed", "no render URL to download", "no_output")
        target = safe_join(self.svc.out_dir, ENGINE_VIDEOS_DIR, self.output_name)
        client = self.svc.client
        async with self._busy("download"), self.svc.limits.downloads.slot(Priority.FINISH):
            await self._milestone("download:start")
            try:
                result = await self._retrying(
                    STEP_DOWNLOAD, lambda: client.download(url, target), Priority.FINISH
                )
            except RunAborted:
                raise
            except Exception as exc:
                # No .part to clean up: the client removes it on every failure.
                raise self._fail_step(STEP_DOWNLOAD, exc) from None
        rel = f"{ENGINE_VIDEOS_DIR}/{self.output_name}"
        self.journal.update_row(
            self.rid, {"mp4_path": rel, "bytes": result.size, "sha256": result.sha256}
        )
        self.journal.finish_step(
            self.rid, STEP_DOWNLOAD, "completed", result={"bytes": result.size}
        )

    # -- publish -----------------------------------------------------------------
    async def _publish(self) -> None:
        plan = self.plan.publish
        assert plan is not None and self.render_url is not None
        rec = self._begin(STEP_PUBLISH)
        if rec is not None and rec.status == "completed":
            return
        client = self.svc.client
        job_id = rec.remote_id if rec is not None and not rec.done else None
        elapsed = (
            max(0.0, time.time() - (rec.remote_at or 0.0))
            if rec is not None and job_id is not None
            else 0.0
        )
        async with self._busy("publish"):
            if job_id is None:
                await self._idea("publishing")
                intent = self.journal.record_intent(
                    self.rid, STEP_PUBLISH, retry=rec is not None and rec.done
                )
                data = plan.data(self.render_url)
                try:
                    created = await self._retrying(
                        STEP_PUBLISH,
                        lambda: client.user_jobs.publish(
                            self.agent, data, idempotency_key=intent.idempotency_key
                        ),
                        Priority.FINISH,
                    )
                except RunAborted:
                    raise
                except Exception as exc:
                    raise self._fail_step(STEP_PUBLISH, exc) from None
                job_id = created.user_job_id
                self.journal.record_remote_id(self.rid, STEP_PUBLISH, job_id)
            if self._post_is_far(plan.scheduled_time):
                # Accepted for later: the post exists only at scheduled_time
                # (days away, perhaps).  The row is done; the job id is kept.
                self.journal.finish_step(
                    self.rid,
                    STEP_PUBLISH,
                    "completed",
                    result={"user_job_id": job_id, "scheduled_time": plan.scheduled_time},
                )
                return
            job = await self.svc.watcher.user_job(job_id, self.agent, "publish_content", elapsed)
        if job.status != "completed":
            error = str(job.error) if job.error else job.status
            self.journal.finish_step(self.rid, STEP_PUBLISH, "failed", error_code="publish_failed")
            raise _RowEnd(
                "failed", f"publish: job {job_id} {job.status}: {error}", "publish_failed"
            )
        post_id = (job.result or {}).get("post_id")
        self.journal.update_row(self.rid, {"post_id": post_id})
        self.journal.finish_step(self.rid, STEP_PUBLISH, "completed", result={"post_id": post_id})
        if post_id:
            await self._idea("posted")

    def _post_is_far(self, scheduled_time: str | None) -> bool:
        """Whether a scheduled post goes out later than we are willing to wait."""
        if scheduled_time is None:
            return False
        try:
            at = datetime.fromisoformat(scheduled_time.replace("Z", "+00:00"))
        except ValueError:
            return True
        wait = (at - datetime.now(UTC)).total_seconds() * self.svc.time_scale
        return wait > self.svc.publish_wait_max

    # -- the idea behind the row -------------------------------------------------
    async def _idea(self, event: str) -> None:
        """Move the row's idea along its status flow; a failure is a note, not a failure."""
        idea_id = self.row.idea_id
        if idea_id is None:
            return
        rec = self.journal.row(self.rid)
        current = rec.extra.get("idea_status") if rec is not None else None
        token = PRIORITY.set(Priority.FINISH)
        try:
            status = await advance_idea(
                self.svc.client,
                idea_id,
                IDEA_STATUS_ON[event],
                current=current if isinstance(current, str) else None,
            )
        except AuthenticationError as exc:
            raise RunAborted(str(exc)) from None
        except (GenError, OSError) as exc:
            self.svc.log.event("idea_status", row_id=self.rid, idea_id=idea_id, error=str(exc))
            return
        finally:
            PRIORITY.reset(token)
        self.journal.update_row(self.rid, {"idea_status": status})


def remaining_credits(journal: Journal, row_id: str, plan: RowPlan, pricing: Pricing) -> float:
    """The row's estimate minus what the journal says is already paid for.

    A paid step is paid for once completed, or once its generation was
    accepted and not yet seen to fail (it is watched, never re-bought).  An
    intent without an id may or may not have been paid: it is counted, so
    the reconcile read never meets an empty budget (raises PricingError).
    """
    steps = journal.steps(row_id)
    rec = journal.row(row_id)
    prior = rec.extra.get("prior", {}) if rec is not None else {}
    total = 0.0
    for step, kind, model in plan.paid_steps:
        done = steps.get(step)
        if done is not None:
            failed = [str(i) for i in prior.get(step, [])] if isinstance(prior, dict) else []
            if done.status == "completed":
                continue
            if not done.done and done.remote_id is not None and done.remote_id not in failed:
                continue
        total += pricing.price(kind, model)
    return total


async def run_row(
    svc: RowServices,
    row: InputRow,
    plan: RowPlan,
    output_name: str,
    credits: RowReservation | None = None,
) -> str:
    """Run one row's pipeline to its terminal status (journaled).

    ``credits``: the row's admission hold (:meth:`CreditLedger.admit` of
    :func:`remaining_credits`); its paid POSTs draw from it.  The caller
    closes it when the row ends.  Without one, each POST reserves from the
    ledger on its own.

    Returns the status (``"pending"`` for a row suspended by an outage).
    Raises :class:`RunAborted` (401): the row is left ``running`` in the
    journal, so the next run resumes it.
    """
    return await _Row(svc, row, plan, output_name, credits).run()
