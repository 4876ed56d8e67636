"""A :class:`~genbatch.distributed.budget.KeyBudget` in a Ray actor, and a shard's handle on it.

One async actor per API key (``budget_actor``); a shard reaches it through an
:class:`ActorSource`, which is both the engine's
:class:`~genbatch.engine.limits.TokenSource` and its
:class:`~genbatch.engine.credits.CreditSource`.  A call that fails because the
actor is restarting is tried again; one that keeps failing raises
:class:`BudgetLost`, which stops the shard's run with its rows resumable (a
shard must not spend a key's rate or credits that nobody is counting).

Ray is imported inside functions only: importing this module costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

from genbatch.distributed.budget import KeyBudget
from genbatch.engine.credits import CreditGrant
from genbatch.engine.failures import RunAborted
from genbatch.engine.limits import GateReport, Lease, SharedSourceLost, SharedState

#: Tries of one call to the budget actor, and the pause before the first retry
#: (doubling): long enough for Ray to restart an actor on another node.
DISTRIBUTED_CALL_TRIES: Final = 6
DISTRIBUTED_CALL_BACKOFF: Final = 0.5

__all__ = ["ActorSource", "BudgetLost", "CreditHandle", "budget_actor"]


class BudgetLost(RunAborted, SharedSourceLost):
    """The key's budget actor cannot be reached: the shard stops, rows resumable."""


class _BudgetActor:
    """The actor's body: every method is the budget's, for one shard by name."""

    def __init__(self, rate: float | None, max_credits: float | None, name: str) -> None:
        self.budget = KeyBudget(rate=rate, max_credits=max_credits, name=name)

    async def register(self, shard: str) -> SharedState:
        return self.budget.register(shard)

    async def lease(self, shard: str, want: int, report: GateReport) -> Lease:
        return await self.budget.lease(shard, want, report)

    async def report(self, shard: str, report: GateReport) -> SharedState:
        return await self.budget.report(shard, report)

    async def watch(self, shard: str, version: int) -> SharedState:
        return await self.budget.watch(shard, version)

    async def give_back(self, shard: str, tokens: int, report: GateReport) -> None:
        await self.budget.give_back(shard, tokens, report)

    async def credits(
        self, shard: str, want: float, charged: float, reserved: float
    ) -> CreditGrant:
        return await self.budget.credits(shard, want, charged, reserved)

    async def give_back_credits(self, shard: str, amount: float, charged: float) -> CreditGrant:
        return await self.budget.give_back_credits(shard, amount, charged)

    async def summary(self) -> dict[str, object]:
        budget = self.budget
        return {
            **budget.summary(),
            "charged": budget.charged(),
            "allowances": budget.allowances(),
            "max_credits": budget.max_credits,
        }


def budget_actor(rate: float | None, max_credits: float | None, name: str) -> Any:
    """Start one key's budget actor; its handle (pass it to the shards).

    No CPU reserved (it waits on timers and calls); restarted by Ray if its
    node dies, with calls in flight retried (its state starts over: the rate
    is found again, allowances come back with the shards' next calls).
    """
    import ray

    cls = ray.remote(_BudgetActor)
    return cls.options(
        num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=1000
    ).remote(rate, max_credits, name)


def _cancel(ref: Any) -> None:
    import ray

    with contextlib.suppress(Exception):
        ray.cancel(ref)


class ActorSource:
    """One shard's handle on its key's budget actor (tokens and credits)."""

    def __init__(self, actor: Any, shard: str) -> None:
        self._actor = actor
        self.shard = shard

    async def _call(self, method: str, *args: Any) -> Any:
        from ray.exceptions import RayError

        delay = DISTRIBUTED_CALL_BACKOFF
        for attempt in range(DISTRIBUTED_CALL_TRIES):
            ref = getattr(self._actor, method).remote(self.shard, *args)
            try:
                return await ref
            except asyncio.CancelledError:
                # A lease or watch abandoned (the shard closes): stop it in the
                # actor too, or it keeps pacing tokens out to nobody and is
                # retried against the actor once the driver has killed it.
                _cancel(ref)
                raise
            except RayError as exc:
                if attempt + 1 >= DISTRIBUTED_CALL_TRIES:
                    raise BudgetLost(
                        f"the shared rate and credit budget of this key is gone ({exc}); "
                        "rerun the same command to resume"
                    ) from None
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    async def register(self) -> SharedState:
        state: SharedState = await self._call("register")
        return state

    # -- TokenSource ---------------------------------------------------------------
    async def lease(self, want: int, report: GateReport) -> Lease:
        lease: Lease = await self._call("lease", want, report)
        return lease

    async def report(self, report: GateReport) -> SharedState:
        state: SharedState = await self._call("report", report)
        return state

    async def watch(self, version: int) -> SharedState:
        state: SharedState = await self._call("watch", version)
        return state

    async def give_back(self, tokens: int, report: GateReport) -> None:
        await self._call("give_back", tokens, report)

    # -- CreditSource --------------------------------------------------------------
    async def credits(self, want: float, charged: float, reserved: float) -> CreditGrant:
        grant: CreditGrant = await self._call("credits", want, charged, reserved)
        return grant

    async def give_back_credits(self, amount: float, charged: float) -> CreditGrant:
        grant: CreditGrant = await self._call("give_back_credits", amount, charged)
        return grant


class CreditHandle:
    """The credit side of an :class:`ActorSource` under the engine's method names."""

    def __init__(self, source: ActorSource) -> None:
        self._source = source

    async def credits(self, want: float, charged: float, reserved: float) -> CreditGrant:
        return await self._source.credits(want, charged, reserved)

    async def give_back(self, amount: float, charged: float) -> CreditGrant:
        return await self._source.give_back_credits(amount, charged)
