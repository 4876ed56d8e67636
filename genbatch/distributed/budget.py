"""One API key's budget, shared by the shards that spend it: the rate gate and the credit cap.

:class:`KeyBudget` is plain asyncio (no Ray here): :mod:`genbatch.distributed.actor`
serves one per key from a Ray actor, and the engine's
:class:`~genbatch.engine.limits.LeasedRateGate` and
:class:`~genbatch.engine.credits.CreditLedger` are its clients.

Rate.  The budget owns the key's :class:`~genbatch.engine.limits.RateGate`, the
same one a single process uses, so discovery works as it does there (docs/design.md
§5): slow start while its users take what it issues, CUBIC after the first
overload, a published ``RateLimit-Policy`` taken at once, one cut per 429 and a
Retry-After pause for everyone.  Tokens are issued through that gate — a lease of
N tokens passes it N times — so the gate measures the send rate it adapts on, and
what all users spend together never runs ahead of it.  Users report what the
server answered with each lease (a 429 or a published limit at once), and the
budget feeds it to the gate as if the answers had come to it.  A pause or a new
rate bumps the state's version: every user's watcher hears it at once.

Shares.  Tokens say how many requests; the share says how fast.  Each user
paces its sends at its share of the gate's rate, so a batch that arrives at once
leaves spread out.  Shares are split by demand (water-filling): a user whose
callers waited for tokens or pace is *hungry* and may take any rate the others
leave; the others get what they used lately plus a quarter.  A user that has not
leased for ``DISTRIBUTED_ACTIVE_SECONDS`` holds no share.

Credits.  The cap (``--max-credits``) is held here; each user holds an
*allowance* out of it and grants locally inside it.  A request for more is
granted whole or not at all (two users each holding half of what they need
would wait forever), with a spare as large again when there is room; users give
back what they do not hold when rows end and when they are refused.  The sum of
the allowances never exceeds the cap, so neither do the charges.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from genbatch.engine.credits import CreditGrant
from genbatch.engine.limits import (
    ENGINE_RATE_MIN,
    GateReport,
    Lease,
    Limits,
    Priority,
    RateGate,
    SharedState,
)

#: A user that has not leased for this many seconds holds no share of the rate.
DISTRIBUTED_ACTIVE_SECONDS: Final = 2.0
#: Window (seconds) over which a user's recent use and hunger are measured.
DISTRIBUTED_USE_WINDOW: Final = 1.0
#: A user that is not hungry may grow this much above what it used lately.
DISTRIBUTED_SHARE_HEADROOM: Final = 1.25
#: Tokens given back are issued again only this fresh (seconds): older ones
#: would let this second's sends ride on an earlier second's rate.
DISTRIBUTED_REFUND_SECONDS: Final = 0.5
#: A watcher's long poll returns after this many seconds even with no change
#: (the share it carries may have moved).
DISTRIBUTED_WATCH_SECONDS: Final = 2.0
#: A relative change of the rate that is news to every user.
DISTRIBUTED_RATE_NEWS: Final = 0.1
#: A credit request granted gets this many times itself more as a spare.
DISTRIBUTED_CREDIT_SPARE: Final = 1.0

__all__ = ["KeyBudget"]


@dataclass(slots=True)
class _User:
    """What the budget knows of one shard."""

    seen: float
    issued: deque[tuple[float, int]] = field(default_factory=deque)
    hungry_at: float = 0.0
    finished: bool = False
    allowance: float = 0.0
    charged: float = 0.0
    seq: int = 0

    def used(self, now: float) -> float:
        """Tokens per second issued to this user over the last window."""
        issued = self.issued
        while issued and issued[0][0] < now - DISTRIBUTED_USE_WINDOW:
            issued.popleft()
        return sum(n for _, n in issued) / DISTRIBUTED_USE_WINDOW


class KeyBudget:
    """The rate gate and the credit cap of one API key (see the module docstring).

    ``rate``: told (``--rate``), a ceiling the gate starts at; None: discover.
    ``max_credits``: the cap (None: none).
    """

    def __init__(
        self,
        *,
        rate: float | None = None,
        max_credits: float | None = None,
        name: str = "api",
    ) -> None:
        self.name = name
        self.gate: RateGate = Limits.create(rate=rate).api
        self.max_credits = max_credits
        self._users: dict[str, _User] = {}
        self._refunds: deque[tuple[float, int]] = deque()
        self._issuing = asyncio.Lock()
        self._version = 0
        self._news = asyncio.Event()
        self._last_rate = self.gate.rate
        self._last_source = self.gate.source
        self._paused_until = 0.0
        #: Tokens issued in all, and what came back unused.
        self.issued = 0
        self.returned = 0

    # -- users -------------------------------------------------------------------
    def _user(self, shard: str) -> _User:
        user = self._users.get(shard)
        if user is None:
            user = self._users[shard] = _User(seen=time.monotonic())
        return user

    def register(self, shard: str) -> SharedState:
        """A shard (re)starts: it holds no allowance yet (a retried shard's earlier
        attempt is gone; its charges come back with its first credit call)."""
        user = self._user(shard)
        user.seen = user.hungry_at = time.monotonic()
        user.finished = False
        user.allowance = 0.0
        return self.state(shard)

    def users(self) -> int:
        return len(self._active(time.monotonic()))

    def _active(self, now: float) -> list[tuple[str, _User]]:
        return [
            (name, u)
            for name, u in self._users.items()
            if not u.finished and now - u.seen <= DISTRIBUTED_ACTIVE_SECONDS
        ]

    # -- rate ----------------------------------------------------------------------
    def shares(self) -> dict[str, float]:
        """The gate's rate split among active users by demand (water-filling)."""
        now = time.monotonic()
        active = self._active(now)
        if not active:
            return {}
        left = self.gate.rate
        demand: dict[str, float] = {}
        for name, user in active:
            hungry = now - user.hungry_at <= DISTRIBUTED_USE_WINDOW
            demand[name] = (
                float("inf")
                if hungry
                else max(ENGINE_RATE_MIN, DISTRIBUTED_SHARE_HEADROOM * user.used(now))
            )
        shares: dict[str, float] = {}
        pending = sorted(demand, key=demand.__getitem__)
        while pending:
            fair = left / len(pending)
            name = pending[0]
            if demand[name] <= fair:
                shares[name] = demand[name]
                left -= demand[name]
                pending.pop(0)
                continue
            for rest in pending:
                shares[rest] = fair
            break
        return shares

    def state(self, shard: str) -> SharedState:
        gate = self.gate
        shares = self.shares()
        users = max(1, len(shares))
        share = shares.get(shard, gate.rate / users)
        return SharedState(
            share=max(ENGINE_RATE_MIN, share),
            rate=gate.rate,
            source=gate.source,
            ceiling=gate.max_rate,
            pause=gate.paused_for(),
            users=users,
            version=self._version,
        )

    def _news_check(self) -> None:
        """Bump the version when users must hear it now: a pause, a new rate or source."""
        gate = self.gate
        pause = gate.paused_for()
        paused_until = time.monotonic() + pause
        rate, source = gate.rate, gate.source
        paused = pause > 0 and paused_until > self._paused_until + 1e-3
        if paused:
            self._paused_until = paused_until
        news = (
            paused
            or abs(rate - self._last_rate) > DISTRIBUTED_RATE_NEWS * self._last_rate
            or source != self._last_source
        )
        if news:
            self._last_rate, self._last_source = rate, source
            self._version += 1
            self._wake()

    def _wake(self) -> None:
        """Every waiting watcher returns (with news, or to let go of a finished user)."""
        self._news.set()
        self._news = asyncio.Event()

    def take(self, shard: str, report: GateReport) -> None:
        """Feed one user's report to the gate as if the answers had come to it."""
        user = self._user(shard)
        now = time.monotonic()
        user.seen = now
        if report.hungry:
            user.hungry_at = now
        gate = self.gate
        if report.published is not None:
            gate.on_published(report.published)
        for latency in report.latencies:
            gate.on_success(latency)
        for _ in range(max(0, report.ok - len(report.latencies))):
            gate.on_success(None)
        for _ in range(report.errors):
            gate.on_error()
        for retry_after, elapsed in report.limited:
            gate.on_rate_limited(retry_after, elapsed=elapsed)
        self._news_check()

    async def report(self, shard: str, report: GateReport) -> SharedState:
        self.take(shard, report)
        return self.state(shard)

    async def lease(self, shard: str, want: int, report: GateReport) -> Lease:
        """``want`` tokens, each through the gate (fresh tokens given back first)."""
        self.take(shard, report)
        want = max(1, want)
        got = self._refunded(want)
        if got < want:
            # One lease at a time passes the gate: batches leave whole, in turn,
            # rather than all finishing together at the end of a round.
            async with self._issuing:
                try:
                    for _ in range(want - got):
                        await self.gate.acquire(Priority.CONTINUE)
                        got += 1
                        self.issued += 1
                except asyncio.CancelledError:
                    # The shard closed while it waited: what passed the gate
                    # is the other users' now.
                    if got:
                        self._refunds.append((time.monotonic(), got))
                    raise
        user = self._user(shard)
        now = time.monotonic()
        user.seen = now
        user.issued.append((now, got))
        self._news_check()
        return Lease(got, self.state(shard))

    def _refunded(self, want: int) -> int:
        now = time.monotonic()
        refunds = self._refunds
        while refunds and refunds[0][0] < now - DISTRIBUTED_REFUND_SECONDS:
            refunds.popleft()
        got = 0
        while refunds and got < want:
            at, n = refunds.popleft()
            take = min(n, want - got)
            got += take
            if n > take:
                refunds.appendleft((at, n - take))
        return got

    async def give_back(self, shard: str, tokens: int, report: GateReport) -> None:
        """The user is done: its last report, and tokens it did not spend."""
        self.take(shard, report)
        user = self._user(shard)
        user.finished = True
        if tokens > 0:
            self._refunds.append((time.monotonic(), tokens))
            self.returned += tokens
        self._wake()  # its watcher's call returns: none is left pending at the end

    async def watch(self, shard: str, version: int) -> SharedState:
        """The state once newer than ``version``, or after a while anyway."""
        if self._version <= version:
            # asyncio.wait, not wait_for: on 3.11 wait_for can swallow a cancel
            # that lands as the event is set, and the watcher would live on.
            waiter = asyncio.ensure_future(self._news.wait())
            try:
                await asyncio.wait({waiter}, timeout=DISTRIBUTED_WATCH_SECONDS)
            finally:
                waiter.cancel()
        return self.state(shard)

    # -- credits -------------------------------------------------------------------
    def _grant(self, user: _User) -> CreditGrant:
        elsewhere = sum(u.charged for u in self._users.values() if u is not user)
        user.seq += 1
        return CreditGrant(allowance=user.allowance, elsewhere=elsewhere, seq=user.seq)

    async def credits(
        self, shard: str, want: float, charged: float, reserved: float
    ) -> CreditGrant:
        """Raise ``shard``'s allowance by ``want`` if the cap has room for all of it."""
        user = self._user(shard)
        user.charged = charged
        held = max(user.allowance, charged + reserved)
        if self.max_credits is None:
            user.allowance = held + max(0.0, want)
            return self._grant(user)
        others = sum(u.allowance for u in self._users.values() if u is not user)
        free = self.max_credits - others - held
        if want <= free + 1e-9:
            held += min(free, (1.0 + DISTRIBUTED_CREDIT_SPARE) * want)
        user.allowance = held
        return self._grant(user)

    async def give_back_credits(self, shard: str, amount: float, charged: float) -> CreditGrant:
        """Lower ``shard``'s allowance by ``amount`` (what it did not hold when it
        asked; a grant since is kept), never below what it charged."""
        user = self._user(shard)
        user.charged = charged
        user.allowance = max(charged, user.allowance - max(0.0, amount))
        return self._grant(user)

    def charged(self) -> float:
        """Credits all users reported charged."""
        return sum(u.charged for u in self._users.values())

    def allowances(self) -> float:
        return sum(u.allowance for u in self._users.values())

    def summary(self) -> dict[str, object]:
        """The gate at the end, for the run's summary."""
        gate = self.gate
        return {
            "final": round(gate.rate, 3),
            "source": gate.source,
            "ceiling": gate.max_rate,
            "text": gate.describe(),
            "issued": self.issued,
            "returned": self.returned,
            "rate_limited": gate.stats.rate_limited,
        }
