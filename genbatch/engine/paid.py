"""The paid steps of a row (generate, render): never pay twice for one result.

The money rule (docs/design.md §5):

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

The ids of generations that ended failed are kept on the row's journal
record (``prior``): the reconcile read must not adopt one of them, and
:func:`remaining_credits` must not count one as paid for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from genbatch.client.models import Cell, Generation, GenerationStarted
from genbatch.engine.credits import CreditsRefused, Pricing, Reservation, RowReservation
from genbatch.engine.failures import (
    REASON_NO_CREDITS,
    RowEnd,
    RunAborted,
    credits_exhausted,
    fail_step,
    retry_wait,
    through_outage,
)
from genbatch.engine.journal import Journal, StepRecord
from genbatch.engine.limits import Priority
from genbatch.engine.poller import Bracket
from genbatch.engine.rowplan import RowPlan
from genbatch.engine.services import PRIORITY, SENT_AT, RowServices
from genbatch.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    RateLimitError,
    RequestValidationError,
    ServerError,
)

__all__ = ["PaidPosts", "remaining_credits"]


@dataclass(slots=True)
class PaidPosts:
    """One row's paid POSTs on its engine, each driven to a completed generation.

    ``credits``: the row's admission hold; paid POSTs draw from it (None: the
    ledger).
    """

    svc: RowServices
    rid: str
    agent: str
    engine_id: str
    credits: RowReservation | None = None

    @property
    def journal(self) -> Journal:
        return self.svc.journal

    def _fail_step(self, step: str, exc: BaseException, status: str = "failed") -> RowEnd:
        return fail_step(self.journal, self.svc.ledger, self.rid, step, exc, status)

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
            return await client.cells.get(self.engine_id, cell_id, self.agent)

        # Free, and it decides whether money was spent: ride out an outage.
        cell: Cell = await through_outage(
            read,
            backoff=(client.policy.backoff_initial, client.policy.backoff_max),
            what=f"{step}: the reconcile read of cell {cell_id}",
            on_error=lambda exc: self.svc.log.event(
                "reconcile_retry", row_id=self.rid, step=step, error=str(exc)
            ),
        )
        found = cell.latest_generation
        latest = found.id if found is not None else None
        if latest is None or latest in self._prior_ids(step):
            return None
        self.svc.log.event("reconciled", row_id=self.rid, step=step, generation_id=latest)
        return latest

    async def drive(
        self,
        before: StepRecord | None,
        step: str,
        cell_id: str,
        kind: str,
        card: Mapping[str, Any],
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
        # Latency is learned per (generation type, model): veo_3_fast is not veo_3.
        model = card.get("model")
        watch_kind = f"{kind}:{model}" if model else kind
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
                reservation = await self._reserve(step, kind, card)
                if resend_key is None:
                    intent = await self.journal.intent(self.rid, step, retry=new_attempt)
                    resend_key = intent.idempotency_key
                await svc.reached(self.rid, f"{step}:intent")
                try:
                    SENT_AT.set(None)
                    gen_id = await self._send(step, cell_id, resend_key, post, priority)
                    # Accepted, id not yet journaled.
                    await svc.reached(self.rid, f"{step}:posted")
                except BaseException:
                    reservation.release()
                    raise
                self.journal.record_remote_id(self.rid, step, gen_id, sent_at=SENT_AT.get())
                await svc.reached(self.rid, f"{step}:submitted")
            else:
                # Paid before a crash: account for it when it settles, but
                # never refuse it (the money is already spent).
                held = svc.ledger.try_reserve(0.0, f"{self.rid}/{step}")
                assert held is not None  # a zero hold is always granted
                reservation = held
            brackets: list[Bracket] = []
            try:
                done = await svc.watcher.generation(
                    gen_id, watch_kind, elapsed, on_bracket=brackets.append
                )
            except BaseException:
                reservation.release()
                raise
            seen = brackets[-1] if brackets else None
            if done.status == "completed":
                estimate = svc.pricing.price(kind, card)
                charged = reservation.settle(done.cost if done.cost is not None else estimate)
                self.journal.finish_step(
                    self.rid,
                    step,
                    "completed",
                    credits=charged,
                    done_after=seen.done_after if seen else None,
                    done_by=seen.done_by if seen else None,
                    done_at=seen.done_at if seen else None,
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
                self.rid,
                step,
                "failed",
                error_code=f"generation_{done.status}",
                done_after=seen.done_after if seen else None,
                done_by=seen.done_by if seen else None,
                done_at=seen.done_at if seen else None,
            )
            tries += 1
            error = str(done.failure) if done.failure else done.status
            svc.log.event(
                "generation_failed", row_id=self.rid, step=step, attempt=tries, error=error
            )
            if tries >= svc.max_generation_attempts:
                raise RowEnd(
                    "failed",
                    f"{step}: generation {done.status} after {tries} attempt(s): {error}",
                    f"generation_{done.status}",
                )
            gen_id = None
            resend_key = None
            elapsed = 0.0
            new_attempt = True

    async def _reserve(self, step: str, kind: str, card: Mapping[str, Any]) -> Reservation:
        """Hold the estimate before a paid POST (from the row's hold); a refusal skips the row."""
        price, tag = self.svc.pricing.price(kind, card), f"{self.rid}/{step}"
        try:
            if self.credits is not None:
                return await self.credits.draw(price, tag)
            return await self.svc.ledger.reserve(price, tag)
        except CreditsRefused as exc:
            self.journal.finish_step(self.rid, step, "skipped", error_code=exc.reason)
            reason = REASON_NO_CREDITS if exc.reason == "exhausted" else str(exc)
            code = "insufficient_credits_for_job" if exc.reason != "budget" else "max_credits"
            raise RowEnd("skipped", reason, code) from None

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
                status = "skipped" if credits_exhausted(exc) else "failed"
                raise self._fail_step(step, exc, status) from None
            finally:
                PRIORITY.reset(token)


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
    for step, kind, card in plan.paid_steps:
        done = steps.get(step)
        if done is not None:
            failed = [str(i) for i in prior.get(step, [])] if isinstance(prior, dict) else []
            if done.status == "completed":
                continue
            if not done.done and done.remote_id is not None and done.remote_id not in failed:
                continue
        total += pricing.price(kind, card)
    return total
