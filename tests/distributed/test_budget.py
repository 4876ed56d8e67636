"""One key's budget shared by several users, in one process (no Ray): the engine's
leased rate gate and credit ledger against :class:`KeyBudget` itself.

The Ray actor only forwards these calls; here a thin in-process source plays it,
so what is checked is the sharing: the users' combined rate, a 429 pausing them
all, a credit cap never exceeded and handed over when one user is done.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from conftest import max_in_window

from genbatch.distributed.budget import KeyBudget
from genbatch.engine.credits import CreditGrant, CreditLedger, CreditsRefused
from genbatch.engine.limits import GateReport, Lease, LeasedRateGate, SharedState


class Local:
    """A user's source on a :class:`KeyBudget` in this process (what the actor serves)."""

    def __init__(self, budget: KeyBudget, name: str) -> None:
        self.budget = budget
        self.name = name
        self.calls = 0

    async def lease(self, want: int, report: GateReport) -> Lease:
        self.calls += 1
        return await self.budget.lease(self.name, want, report)

    async def report(self, report: GateReport) -> SharedState:
        return await self.budget.report(self.name, report)

    async def watch(self, version: int) -> SharedState:
        return await self.budget.watch(self.name, version)

    async def give_back(self, tokens: int, report: GateReport) -> None:
        await self.budget.give_back(self.name, tokens, report)


class LocalCredits:
    """The credit side; ``jitter``: seconds of random delay each way, so calls and
    answers of one user overlap as they do over the network."""

    def __init__(self, budget: KeyBudget, name: str, jitter: float = 0.0) -> None:
        self.budget = budget
        self.name = name
        self.rng = random.Random(name)
        self.jitter = jitter

    async def _hop(self) -> None:
        await asyncio.sleep(self.rng.uniform(0.0, self.jitter))

    async def credits(self, want: float, charged: float, reserved: float) -> CreditGrant:
        await self._hop()
        grant = await self.budget.credits(self.name, want, charged, reserved)
        await self._hop()
        return grant

    async def give_back(self, amount: float, charged: float) -> CreditGrant:
        await self._hop()
        grant = await self.budget.give_back_credits(self.name, amount, charged)
        await self._hop()
        return grant


def gates(budget: KeyBudget, n: int) -> list[LeasedRateGate]:
    return [
        LeasedRateGate(Local(budget, f"u{i}"), budget.register(f"u{i}"), name=f"u{i}")
        for i in range(n)
    ]


async def test_users_together_stay_at_the_shared_rate_and_lease_in_batches() -> None:
    rate = 60.0
    budget = KeyBudget(rate=rate)
    users = gates(budget, 3)
    sent: list[float] = []

    async def busy(gate: LeasedRateGate, until: float) -> None:
        while time.monotonic() < until:
            await gate.acquire()
            sent.append(time.monotonic())

    until = time.monotonic() + 3.0
    await asyncio.gather(*(busy(g, until) for g in users for _ in range(4)))
    for g in users:
        await g.aclose()
    sent.sort()
    steady = [t for t in sent if t >= sent[0] + 0.5]
    # Never above the rate over any second (a token of slack for timing)...
    assert max_in_window(steady, 1.0) <= rate + 2, max_in_window(steady, 1.0)
    # ... and close to it: the shares add up to the whole.
    achieved = len(steady) / (steady[-1] - steady[0])
    assert achieved >= 0.8 * rate, achieved
    # Each user's share was a third of it, near enough.
    assert all(abs(g.rate - rate / 3) < rate / 3 for g in users)
    # The owner was asked once per batch, not once per request.
    calls = sum(g._tokens_source.calls for g in users)  # type: ignore[attr-defined]
    assert calls * 3 <= len(sent), (calls, len(sent))
    assert budget.issued + budget.returned >= len(sent)


async def test_a_429_seen_by_one_user_pauses_every_user() -> None:
    budget = KeyBudget(rate=50.0)
    a, b = gates(budget, 2)
    for g in (a, b):
        for _ in range(3):
            await g.acquire()
    await asyncio.sleep(0.05)  # b's watcher is waiting on the budget now
    a.on_rate_limited(0.6, elapsed=0.0)
    await asyncio.sleep(0.05)  # the report reaches the budget, the news reaches b
    assert b.paused_for() > 0.4
    started = time.monotonic()
    await b.acquire()
    assert time.monotonic() - started >= 0.45
    assert budget.gate.stats.rate_limited == 1
    assert budget.gate.rate < 50.0  # the shared gate cut its rate once
    await a.aclose()
    await b.aclose()


async def test_a_lease_abandoned_half_way_gives_its_tokens_to_the_others() -> None:
    """A shard that closes while its lease waits at the key's gate: the lease
    stops there, and the tokens that had passed go to the next lease at once."""
    budget = KeyBudget(rate=20.0)
    budget.register("a")
    budget.register("b")
    waiting = asyncio.ensure_future(budget.lease("a", 40, GateReport()))
    await asyncio.sleep(0.5)  # ~10 tokens through the 20/s gate
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    issued = budget.issued
    assert 5 <= issued <= 15, issued
    started = time.monotonic()
    lease = await budget.lease("b", issued, GateReport())
    # Refunded, not paced again: no wait, and the gate issued nothing more.
    assert lease.tokens == issued
    assert time.monotonic() - started < 0.1
    assert budget.issued == issued


async def test_a_published_limit_reaches_the_shared_gate() -> None:
    budget = KeyBudget(rate=None)  # discover
    (a,) = gates(budget, 1)
    await a.acquire()
    a.on_published(42.0)
    await asyncio.sleep(0.05)
    assert budget.gate.source == "header"
    assert a.source == "header" and "shared by 1" in a.describe()
    await a.aclose()


async def test_the_credit_cap_is_never_exceeded_and_passes_between_users() -> None:
    budget = KeyBudget(max_credits=1000.0)
    one = CreditLedger(max_credits=1000.0, source=LocalCredits(budget, "one"))
    two = CreditLedger(max_credits=1000.0, source=LocalCredits(budget, "two"))
    a = await one.admit(300.0, "a")
    b = await one.admit(300.0, "b")
    c = await two.admit(300.0, "c")
    assert budget.allowances() <= 1000.0
    waiting = asyncio.ensure_future(two.admit(300.0, "d"))
    await asyncio.sleep(0.3)
    assert not waiting.done()  # 900 held, 300 more would pass the cap
    # Row a costs 300 and ends; b fails and ends: its 300 goes back to the cap.
    (await a.draw(300.0)).settle(300.0)
    a.close()
    b.close()
    d = await asyncio.wait_for(waiting, 2.0)
    assert budget.allowances() <= 1000.0
    (await c.draw(300.0)).settle(300.0)
    c.close()
    (await d.draw(300.0)).settle(300.0)
    d.close()
    # 900 charged across both users: a row of 300 can never fit again.
    with pytest.raises(CreditsRefused) as refused:
        await asyncio.wait_for(one.admit(300.0, "e"), 2.0)
    assert refused.value.reason == "budget"
    await one.aclose()
    await two.aclose()
    assert budget.charged() == pytest.approx(900.0)
    assert budget.allowances() == pytest.approx(900.0)


async def test_many_rows_on_three_users_never_pass_the_cap() -> None:
    cap = 5000.0
    budget = KeyBudget(max_credits=cap)
    ledgers = [
        CreditLedger(max_credits=cap, source=LocalCredits(budget, f"u{i}", jitter=0.003))
        for i in range(3)
    ]
    rng = random.Random(7)
    peak = 0.0

    async def row(ledger: CreditLedger, cost: float) -> str:
        nonlocal peak
        try:
            hold = await ledger.admit(100.0)
        except CreditsRefused:
            return "skipped"
        peak = max(peak, budget.allowances())
        step = await hold.draw(100.0)
        await asyncio.sleep(rng.uniform(0.0, 0.01))
        step.settle(cost)  # some rows cost less than their estimate
        hold.close()
        return "done"

    costs = [rng.choice([60.0, 100.0]) for _ in range(120)]
    ends = await asyncio.wait_for(
        asyncio.gather(*(row(ledgers[i % 3], c) for i, c in enumerate(costs))), 20.0
    )
    for ledger in ledgers:
        await ledger.aclose()
    charged = sum(ledger.charged for ledger in ledgers)
    assert peak <= cap + 1e-6
    assert charged <= cap + 1e-6
    # Rows were refused only once the charges left no room for one more.
    assert cap - charged < 100.0, (charged, ends.count("done"))
    assert budget.allowances() == pytest.approx(charged)
