"""Gates in front of every call: small primitives that compose (aiometer's idea).

Each primitive does one thing and is used as ``async with gate.slot(prio):``;
:func:`through` enters several in order.  Put concurrency caps before the
rate gate, so a task never holds a rate token while it waits for a cap::

    async with through(limits.renders, limits.api, priority=Priority.FINISH):
        await client.render(...)

* :class:`ConcurrencyCap` — at most N holders; waiters are served by
  priority (lower first), FIFO within a priority.  Also the rows-in-flight
  cap that keeps memory flat however long the table is.
* :class:`RateGate` — one per host: an aiolimiter leaky bucket whose rate
  adapts (CUBIC-like, see its docstring).  Told a rate (``--rate``) it
  starts there and never exceeds it; told nothing it *discovers* the
  server's limit: a published one (``RateLimit-Policy``) at once, else slow
  start from ``ENGINE_RATE_START`` up to the first sign of overload — a
  429, answers slowing down, a surge of 5xx — under the polite ceiling
  ``ENGINE_RATE_CEILING``.  A 429 pauses *everyone* until Retry-After has
  passed and cuts the rate once per overload, anchored at what the server
  delivered; the rate then climbs back with time.  Waiters pass in
  priority order.

* :class:`LeasedRateGate` — a rate gate for one of several processes that
  share one API key's limit (``genbatch run --ray``): the shared gate lives
  elsewhere (a :class:`TokenSource`); this one spends tokens leased from it in
  batches, paced at its share, and reports what the server answered.

Priorities (:class:`Priority`): finishing work first — learning a job's
outcome, downloads, renders — then the next step of a started row, and only
then a new row.  The first videos land early and in-flight state stays small.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final, Protocol

from aiolimiter import AsyncLimiter

#: Told nothing (no --rate), a gate starts here and discovers the limit.  GEN
#: documents no limit today ("not currently enforced"), and recommends firing
#: many generations at once: a start a plain script would beat is no politeness.
ENGINE_RATE_START: Final = 40.0
#: ... doubling every this many seconds while its callers use the rate it has
#: (slow start), until the first sign of overload or the ceiling.
ENGINE_RATE_SLOW_START_STEP: Final = 0.2
#: A gate "uses its rate" when it sent at least this share of it.
ENGINE_RATE_SATURATED: Final = 0.8
#: The polite ceiling per host when untold: never more requests/second to a
#: server that has not said it allows them (``--rate`` sets another ceiling).
ENGINE_RATE_CEILING: Final = 1000.0
#: A server with no limit of its own shows overload by slowing down: light
#: answers (GETs) whose smoothed time exceeds FACTOR x the fastest seen, and
#: the fastest + RISE seconds, are a congestion signal (no pause, a soft cut).
ENGINE_RATE_LATENCY_FACTOR: Final = 4.0
ENGINE_RATE_LATENCY_RISE: Final = 0.25
ENGINE_RATE_LATENCY_SMOOTHING: Final = 0.1
#: ... as is this share of 5xx or dropped connections in a window (of at least
#: ERROR_MIN answers): an overloaded server fails before it slows to a halt.
ENGINE_RATE_ERROR_SHARE: Final = 0.25
ENGINE_RATE_ERROR_MIN: Final = 8
#: The soft cut, and the floor soft signals never push below (they are
#: ambiguous: a flaky network slows and fails too, and 429s still cut lower).
ENGINE_RATE_SOFT_DECREASE: Final = 0.7
#: Requests/second per host for agent-host gates and callers with no opinion.
ENGINE_RATE_DEFAULT: Final = 10.0
#: Back-to-back requests a rate gate allows after idle time, for every command.
#: A strictly spaced gate (burst 1) loses every timer wake-up's lateness and
#: falls well short of its nominal rate at hundreds of requests/second; 4
#: reaches it and stays below the buckets servers keep (the adaptive decrease
#: covers one that is smaller).
ENGINE_RATE_BURST: Final = 4.0
#: ... and at most this many seconds of the gate's current rate (>= 1): a
#: server bucket smaller than our burst 429s whatever our rate.  Enough for a
#: token or two at ~50-150/s, where a 1-token bucket lost ~10 % of the rate
#: to late wake-ups (a millisecond late is a tenth of a 100/s spacing); below
#: ~35/s a late timer costs little and the bucket stays at one.
ENGINE_RATE_BURST_SECONDS: Final = 0.03
#: Floor of the adaptive rate (requests/second) however many 429s arrive.
ENGINE_RATE_MIN: Final = 0.5
#: Multiplicative decrease of the measured send rate on a 429 when the
#: server's delivered rate does not pin its limit yet (far above it).
ENGINE_RATE_DECREASE: Final = 0.5
#: Once the limit is pinned (successes between two 429s per second), restart
#: at this fraction of it: just under, so the next 429 waits for a probe.
ENGINE_RATE_MARGIN: Final = 0.95
#: A limit the server publishes is held at this fraction of it: requests
#: bunch on the wire, and a bucket run at exactly its rate empties by chance
#: into a 429 whose Retry-After stops every request for a second.
ENGINE_RATE_HEADER_SHARE: Final = 0.99
#: Seconds for the rate to climb back to its anchor after a 429 (CUBIC's K);
#: it then probes above: +ENGINE_RATE_PROBE of the anchor after another K.
#: Each time a 429 pins the limit where the last one did (within
#: ENGINE_RATE_SAME_LIMIT), K doubles up to MAX: a stable limit is probed
#: rarely (every probe costs everyone a Retry-After pause).
ENGINE_RATE_RECOVERY_SECONDS: Final = 4.0
ENGINE_RATE_RECOVERY_MAX: Final = 32.0
ENGINE_RATE_SAME_LIMIT: Final = 0.1
ENGINE_RATE_PROBE: Final = 0.5
#: Window (seconds) over which the send rate at a 429 is measured.
ENGINE_RATE_WINDOW: Final = 1.0
#: Pause assumed when a 429 carries no Retry-After (seconds).
ENGINE_RETRY_AFTER_DEFAULT: Final = 1.0
#: Caps on work in flight; rows-in-flight bounds memory however long the table.
ENGINE_ROWS_IN_FLIGHT: Final = 256
#: Generation jobs at most (two a row at the rows' maximum): the tuner
#: slow-starts it at 64, doubles it as probes are seen running, and brings it
#: down to what a server runs when it queues our jobs.  At GEN's latencies
#: (a video takes minutes) a run at 60 requests/s keeps ~1,000 jobs going.
ENGINE_CAP_GENERATIONS: Final = 4096
#: Renders at once: in the end game the last rows' renders come together, and
#: a cap of 128 ran them in waves of one render's time.
ENGINE_CAP_RENDERS: Final = 512
ENGINE_CAP_UPLOADS: Final = 4
ENGINE_CAP_DOWNLOADS: Final = 8


#: A leased gate asks for this many seconds of its share per lease (the shared
#: gate takes batch / rate seconds to issue it, so the next lease is asked for
#: while half of this one is left) ...
ENGINE_LEASE_SECONDS: Final = 0.5
#: ... and for at least MIN, at most MAX tokens: few enough calls to the owner
#: at any rate, never a batch that lasts seconds at a low one.
ENGINE_LEASE_MIN: Final = 4
ENGINE_LEASE_MAX: Final = 256
#: Light-answer latencies one report carries at most (a sample is enough).
ENGINE_LEASE_LATENCIES: Final = 64

__all__ = [
    "ConcurrencyCap",
    "Gate",
    "GateReport",
    "Lease",
    "LeasedRateGate",
    "Limits",
    "Priority",
    "RateGate",
    "SharedSourceLost",
    "SharedState",
    "TokenSource",
    "through",
]


class Priority(IntEnum):
    """Lower is served first."""

    POLL = 0  # learn a pending job's outcome
    FINISH = 1  # render, download, publish: a row's last steps
    CONTINUE = 2  # the next step of a row already started
    START = 3  # clone for a new row


#: The end game (:class:`genbatch.engine.tuning.Tuner`): once every row left
#: can be served within two rows' time, the last rows' first steps pass ahead
#: of other rows' last ones -- polls stay first -- so the final rows start
#: sooner and the run does not end on one late row's chain of jobs.
END_GAME_RANKS: Final[Mapping[int, float]] = {
    Priority.CONTINUE: 0.5,
    Priority.START: 0.6,
}


class Gate(Protocol):
    """Anything usable as ``async with gate.slot(priority):``."""

    def slot(self, priority: int = Priority.CONTINUE) -> AbstractAsyncContextManager[None]: ...


@asynccontextmanager
async def through(*gates: Gate, priority: int = Priority.CONTINUE) -> AsyncIterator[None]:
    """Enter ``gates`` in order at ``priority``; leave them in reverse."""
    async with AsyncExitStack() as stack:
        for gate in gates:
            await stack.enter_async_context(gate.slot(priority))
        yield


class ConcurrencyCap:
    """A semaphore whose waiters are served by priority, then arrival.

    Cancellation-safe: a waiter cancelled after being granted passes its
    slot on; one cancelled before is skipped lazily (no O(n) removal).
    :meth:`reorder` changes the order between priorities live (the end
    game: :data:`END_GAME_RANKS`).
    """

    def __init__(self, limit: int, name: str = "") -> None:
        if limit < 1:
            raise ValueError("a concurrency cap needs limit >= 1")
        self.name = name
        self._limit = limit
        self._in_use = 0
        self._waiters: list[tuple[float, int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._ranks: dict[int, float] = {}
        #: Slots given back so far (a tuner clocks growth by it).
        self.released = 0

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def waiting(self) -> int:
        return sum(1 for *_, fut in self._waiters if not fut.done())

    def set_limit(self, limit: int) -> None:
        """Change the cap live (raising it admits waiters at once)."""
        if limit < 1:
            raise ValueError("a concurrency cap needs limit >= 1")
        self._limit = limit
        self._wake()

    def locked(self) -> bool:
        return self._in_use >= self._limit

    def reorder(self, ranks: Mapping[int, float]) -> None:
        """Serve priority ``p`` as if it were ``ranks[p]`` (others as themselves),
        waiters already queued included."""
        self._ranks = dict(ranks)
        self._waiters = [(self._ranks.get(p, p), seq, p, fut) for _, seq, p, fut in self._waiters]
        heapq.heapify(self._waiters)

    async def acquire(self, priority: int = Priority.CONTINUE) -> None:
        if self._in_use < self._limit and not self._waiters:
            self._in_use += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        rank = self._ranks.get(priority, priority)
        heapq.heappush(self._waiters, (rank, next(self._seq), priority, fut))
        self._wake()
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # granted just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        if self._in_use <= 0:
            raise RuntimeError(f"cap {self.name!r} released more than acquired")
        self._in_use -= 1
        self.released += 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._in_use < self._limit:
            *_, fut = heapq.heappop(self._waiters)
            if fut.done():
                continue  # cancelled while waiting
            self._in_use += 1
            fut.set_result(None)

    @asynccontextmanager
    async def slot(self, priority: int = Priority.CONTINUE) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()

    def __repr__(self) -> str:
        return f"<ConcurrencyCap {self.name!r} {self._in_use}/{self._limit} waiting={self.waiting}>"


class _AdjustableLimiter(AsyncLimiter):
    """aiolimiter's bucket with a rate that can change while tasks wait.

    AsyncLimiter derives its drip rate once, in ``__init__``; we keep the
    capacity (the burst) and change the drip rate and period together, then
    let it recompute its wake-up timer.
    """

    def set_rate(self, rate: float, capacity: float | None = None) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # configured before the loop runs: nothing has leaked yet
        else:
            self._leak()  # settle the level at the old rate first
        if capacity is not None:
            self.max_rate = capacity
        self.time_period = self.max_rate / rate
        self._rate_per_sec = rate
        if self._waiters:
            self._wake_next()

    def fill(self) -> None:
        """Mark the bucket full now: the next token is one period away, no burst."""
        self._level = self.max_rate
        self._last_check = asyncio.get_running_loop().time()


@dataclass(slots=True)
class RateStats:
    acquired: int = 0
    rate_limited: int = 0
    decreases: int = 0
    paused_seconds: float = 0.0
    by_priority: dict[int, int] = field(default_factory=dict)


#: How :func:`describe_rate` names where a rate comes from.
_RATE_SOURCES: Final = {
    "told": "(--rate)",
    "header": "published by the server",
    "probing": "probing",
    "discovered": "discovered",
    "ceiling": "ceiling (no limit seen)",
}


def describe_rate(rate: float, source: str) -> str:
    """``"58/s discovered"``: a rate and where it comes from, for people."""
    label = _RATE_SOURCES.get(source, source)
    return f"{rate:.0f}/s {label}" if rate >= 10 else f"{rate:.2g}/s {label}"


class RateGate:
    """Adaptive per-host rate gate: CUBIC-like, in requests/second, on aiolimiter.

    Two ways to start.  *Told* (``RateGate(rate)``, ``--rate``): run at
    ``rate`` and never above it.  *Untold* (``discover=True``): the limit is
    unknown — GEN publishes none today — so find it:

    * a limit the server publishes (``RateLimit-Policy``, via
      :meth:`on_published`) is taken at once as the ceiling and the rate;
    * otherwise **slow start**: from ``rate`` double every ``slow_start_step``
      seconds *while callers use it* (an idle gate learns nothing), until the
      first congestion signal or ``max_rate`` (the polite ceiling);
    * congestion signals: a 429 (below), or, from a server with no limit of
      its own, light answers slowing down (:meth:`on_success` latencies) or a
      surge of 5xx (:meth:`on_error`) — those cut by ``soft_decrease``, add
      no pause, and never push the rate below where slow start began.

    Then, and whenever a 429 arrives, the gate aims for *few* 429s rather than
    a quick climb (each costs everyone a Retry-After pause, whole seconds on
    most servers):

    * **One decrease per congestion event.**  A 429 for a request sent before
      the last decrease (``elapsed`` tells when it was sent) is the same
      overload seen again: it extends the pause, it does not cut the rate.
    * **Cut from what was really sent.**  ``U`` = min(gate rate, the send rate
      measured over the last ``window`` seconds outside pauses).
    * **Anchor at what the server really delivered.**  Successes between two
      429s per second bound the server's rate: from below over the whole
      interval, from above outside its pause (the bucket refilled meanwhile).
      Told, the gate comes down from far above and takes the lower bound
      ``L``; discovering, it comes up from below and takes the upper one,
      never above ``U``.  When ``L >= decrease * U`` the limit is pinned: the
      anchor is ``L`` and the rate restarts at ``margin * L``; a limit pinned
      again where it was doubles the recovery time (up to ``recovery_max``),
      so a stable limit is probed rarely.  Otherwise plain multiplicative
      decrease: anchor and restart ``decrease * U`` (slow start's first 429
      anchors at what its last step delivered).
    * **Grow with time, not with successes** (CUBIC's window in rate units):
      ``A - (A - r0)(1 - t/K)^3`` up to the anchor ``A`` after ``K``
      seconds, then ``A(1 + probe((t - K)/K)^3)``.  Untold, growth never
      goes past twice what callers actually sent (no rate nobody used).
    * **Retry-After exactly**: nobody is let through before it has passed,
      and no pause is added beyond it.  The first send after a pause starts
      a full period (no saved-up burst), and the burst is at most
      ``burst_seconds`` of the current rate.

    ``on_quota(remaining, reset_after)`` pauses until a spent window resets,
    without lowering the rate.  One acquirer at a time stands at the bucket
    (a priority-ordered cap of 1 in front), so a burst of low-priority
    waiters cannot overtake a poll.
    """

    def __init__(
        self,
        rate: float = ENGINE_RATE_DEFAULT,
        *,
        max_rate: float | None = None,
        discover: bool = False,
        burst: float = ENGINE_RATE_BURST,
        burst_seconds: float = ENGINE_RATE_BURST_SECONDS,
        min_rate: float = ENGINE_RATE_MIN,
        decrease: float = ENGINE_RATE_DECREASE,
        soft_decrease: float = ENGINE_RATE_SOFT_DECREASE,
        margin: float = ENGINE_RATE_MARGIN,
        recovery: float = ENGINE_RATE_RECOVERY_SECONDS,
        recovery_max: float = ENGINE_RATE_RECOVERY_MAX,
        probe: float = ENGINE_RATE_PROBE,
        window: float = ENGINE_RATE_WINDOW,
        slow_start_step: float = ENGINE_RATE_SLOW_START_STEP,
        name: str = "",
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        if not 0 < decrease < 1 or not 0 < soft_decrease < 1 or not 0 < margin <= 1:
            raise ValueError("decrease and soft_decrease must be in (0, 1), margin in (0, 1]")
        if recovery <= 0 or probe <= 0 or window <= 0 or slow_start_step <= 0:
            raise ValueError("recovery, probe, window and slow_start_step must be > 0")
        self.name = name
        self.max_rate = max_rate if max_rate is not None else rate
        if self.max_rate <= 0:
            raise ValueError("max_rate must be > 0")
        self._ceiling = self.max_rate
        self.min_rate = min(min_rate, self.max_rate)
        self._rate = min(rate, self.max_rate)
        self._floor_soft = self._rate  # soft signals never cut below the start
        self._decrease = decrease
        self._soft = soft_decrease
        self._margin = margin
        self._recovery = recovery
        self._recovery_max = max(recovery, recovery_max)
        self._probe = probe
        self._window = window
        self._burst = burst
        self._burst_seconds = burst_seconds
        capacity = self._capacity(self._rate)
        self._limiter = _AdjustableLimiter(capacity, capacity / self._rate)
        self._queue = ConcurrencyCap(1, name=f"{name}-queue")
        self._paused_until = 0.0
        # Congestion state: None until the first event (then the anchor is known).
        self._event_at: float | None = None
        self._event_paused = 0.0  # seconds of Retry-After pause since then
        self._anchor = self._rate
        self._restart = self._rate
        self._pinned: float | None = None
        self._ok_since_event = 0
        self._sent: deque[float] = deque()
        # Discovery.
        self._discover = discover
        self._slow_start = discover and self._rate < self.max_rate
        self._step = slow_start_step
        self._step_at: float | None = None
        self._step_sent = 0
        self._step_ok = 0
        self._last_step_ok_rate = 0.0
        self._source = "probing" if self._slow_start else ("ceiling" if discover else "told")
        # Overload signals from a server with no limit of its own.
        self._fastest = float("inf")
        self._smoothed: float | None = None
        self._soft_at: float | None = None
        self._answers: deque[tuple[float, bool]] = deque()
        self.stats = RateStats()

    @property
    def rate(self) -> float:
        """The current (adapted) requests per second."""
        return self._rate

    @property
    def anchor(self) -> float | None:
        """The rate the gate believes the server allows (None before any congestion)."""
        return None if self._event_at is None else self._anchor

    @property
    def source(self) -> str:
        """Where the rate comes from: ``told``, ``header`` (the server published it),
        ``probing`` (slow start), ``discovered`` (congestion found it) or ``ceiling``."""
        return self._source

    def describe(self) -> str:
        """``"58/s discovered"``: the rate and where it comes from, for people."""
        return describe_rate(self._rate, self._source)

    @property
    def waiting(self) -> int:
        return self._queue.waiting + self._queue.in_use

    def reorder(self, ranks: Mapping[int, float]) -> None:
        """Change the order its callers pass in (:meth:`ConcurrencyCap.reorder`)."""
        self._queue.reorder(ranks)

    def paused_for(self) -> float:
        """Seconds until the current Retry-After pause ends (0 if none)."""
        return max(0.0, self._paused_until - self._now())

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def _capacity(self, rate: float) -> float:
        """The bucket's burst: at most ``burst_seconds`` of the rate (>= 1)."""
        return max(1.0, min(self._burst, rate * self._burst_seconds))

    def _set_rate(self, rate: float) -> None:
        rate = min(self.max_rate, max(self.min_rate, rate))
        if rate != self._rate:
            self._rate = rate
            self._limiter.set_rate(rate, self._capacity(rate))

    def set_max_rate(self, max_rate: float) -> None:
        """A newly known ceiling (e.g. ``--rate``)."""
        if max_rate <= 0:
            raise ValueError("max_rate must be > 0")
        self.max_rate = self._ceiling = max_rate
        self.min_rate = min(self.min_rate, max_rate)
        self._floor_soft = min(self._floor_soft, max_rate)
        self._set_rate(min(self._rate, max_rate))

    def on_published(self, rate: float) -> None:
        """The server published its limit (requests/second): an untold gate takes it
        (up to its ceiling)."""
        if not self._discover or rate <= 0:
            return
        rate = min(rate, self._ceiling)
        if self._source == "header" and abs(rate - self.max_rate) <= 1e-9 * rate:
            return
        self.max_rate = rate
        self.min_rate = min(self.min_rate, rate)
        self._floor_soft = min(self._floor_soft, rate)
        self._slow_start = False
        self._source = "header"
        self._event_at = None  # no congestion yet at this limit
        self._set_rate(ENGINE_RATE_HEADER_SHARE * rate)

    async def acquire(self, priority: int = Priority.CONTINUE) -> None:
        async with self._queue.slot(priority):
            paused = await self._wait_pause()
            self._grow()
            await self._limiter.acquire()
            # A 429 may have arrived while we waited for the bucket.
            if await self._wait_pause() or paused:
                # The server's bucket may hold a single token after a pause:
                # spacing restarts from this send, no burst of saved tokens.
                self._limiter.fill()
            self._record_send()
        self.stats.acquired += 1
        self.stats.by_priority[priority] = self.stats.by_priority.get(priority, 0) + 1

    async def _wait_pause(self) -> bool:
        """Sleep out the Retry-After pause, if any; whether there was one."""
        # A deadline that later 429s may push out, not an event: re-check
        # after each sleep (asyncio may also wake a hair early).
        waited = False
        while (delay := self._paused_until - self._now()) > 0:
            waited = True
            await asyncio.sleep(delay)
        return waited

    @asynccontextmanager
    async def slot(self, priority: int = Priority.CONTINUE) -> AsyncIterator[None]:
        """Take one request's worth of rate (nothing to give back)."""
        await self.acquire(priority)
        yield

    # -- measurement ---------------------------------------------------------
    def _record_send(self) -> None:
        now = self._now()
        sent = self._sent
        sent.append(now)
        while sent[0] < now - self._window:
            sent.popleft()
        self._step_sent += 1

    def _send_rate(self, now: float) -> float | None:
        """Requests sent per second over the last window, pauses excluded."""
        sent = self._sent
        since = max(now - self._window, min(self._paused_until, now))
        if sent and sent[0] >= since:  # the common case: no pause inside the window
            n, first = len(sent), sent[0]
        else:
            recent = [t for t in sent if t >= since]
            n, first = len(recent), (recent[0] if recent else now)
        if n < 2 or now <= first:
            return None
        return n / (now - first)

    # -- adaptation ----------------------------------------------------------
    def _target(self, now: float) -> float:
        """CUBIC in rate units: concave up to the anchor, then a convex probe."""
        top = self.max_rate * (ENGINE_RATE_HEADER_SHARE if self._source == "header" else 1.0)
        if self._event_at is None:
            return top
        t = max(0.0, now - max(self._event_at, self._paused_until))
        k = self._recovery
        if t < k:
            return self._anchor - (self._anchor - self._restart) * (1.0 - t / k) ** 3
        return min(top, self._anchor * (1.0 + self._probe * ((t - k) / k) ** 3))

    def _grow(self) -> None:
        now = self._now()
        if self._slow_start:
            self._slow_start_step(now)
            return
        target = self._target(now)
        if target <= self._rate:
            return
        if self._discover:
            # No rate nobody used: past twice the measured send rate, growth waits.
            sent = self._send_rate(now)
            target = min(target, max(self._rate, 2.0 * sent if sent is not None else 0.0))
        self._set_rate(target)

    def _slow_start_step(self, now: float) -> None:
        if self._step_at is None:
            self._step_at = now
            return
        dt = now - self._step_at
        if dt < self._step:
            return
        self._last_step_ok_rate = self._step_ok / dt
        used = self._step_sent >= ENGINE_RATE_SATURATED * self._rate * dt
        self._step_at, self._step_sent, self._step_ok = now, 0, 0
        if used and self._paused_until <= now:
            self._set_rate(2.0 * self._rate)
            if self._rate >= self.max_rate:
                self._slow_start = False
                self._source = "ceiling"

    def on_success(self, latency: float | None = None) -> None:
        """A non-429 answer below 500; ``latency``: seconds, for light requests only."""
        self._ok_since_event += 1
        self._step_ok += 1
        if self._discover:
            now = self._now()
            self._answer(now, ok=True)
            if latency is not None and self._slowed(latency):
                self._soft_event(now)
        self._grow()

    def on_error(self) -> None:
        """A 5xx or a dropped connection: overload from an unlimited server, in numbers."""
        if not self._discover:
            return
        now = self._now()
        self._answer(now, ok=False)
        answers = self._answers
        failed = sum(1 for _, ok in answers if not ok)
        if len(answers) >= ENGINE_RATE_ERROR_MIN and failed >= ENGINE_RATE_ERROR_SHARE * len(
            answers
        ):
            self._soft_event(now)

    def _answer(self, now: float, *, ok: bool) -> None:
        answers = self._answers
        answers.append((now, ok))
        while answers[0][0] < now - self._window:
            answers.popleft()

    def _slowed(self, latency: float) -> bool:
        """Smoothed light-answer time well above the fastest seen."""
        self._fastest = min(self._fastest, latency)
        a = ENGINE_RATE_LATENCY_SMOOTHING
        s = latency if self._smoothed is None else (1 - a) * self._smoothed + a * latency
        self._smoothed = s
        fastest = self._fastest
        return s > max(ENGINE_RATE_LATENCY_FACTOR * fastest, fastest + ENGINE_RATE_LATENCY_RISE)

    def _soft_event(self, now: float) -> None:
        """Slow answers or failures: cut softly, at most once per recovery time."""
        if self._soft_at is not None and now - self._soft_at < self._recovery:
            return
        if self._event_at is not None and now - self._event_at < self._recovery:
            return
        self._soft_at = now
        sent = self._send_rate(now)
        upper = min(self._rate, sent) if sent is not None else self._rate
        restart = max(self._soft * upper, min(self._floor_soft, self._rate))
        self._anchor = self._restart = restart
        self._begin_event(now)
        self._set_rate(restart)
        self.stats.decreases += 1

    def _begin_event(self, now: float) -> None:
        self._event_at = now
        self._event_paused = 0.0
        self._ok_since_event = 0
        if self._slow_start:
            self._slow_start = False
        if self._discover and self._source in ("probing", "ceiling"):
            self._source = "discovered"

    def on_rate_limited(self, retry_after: float | None = None, *, elapsed: float = 0.0) -> None:
        """A 429; ``elapsed``: how long ago its request was sent (0 if unknown)."""
        now = self._now()
        wait = retry_after if retry_after is not None and retry_after >= 0 else None
        until = now + (wait if wait is not None else ENGINE_RETRY_AFTER_DEFAULT)
        self.stats.rate_limited += 1
        sent_at = now - max(0.0, elapsed)
        same_event = self._event_at is not None and (
            sent_at < self._event_at or now < self._paused_until
        )
        if not same_event:
            self._decrease_at(now)  # before the pause: it measures the send rate up to now
        if until > self._paused_until:
            added = until - max(now, self._paused_until)
            self.stats.paused_seconds += added
            self._event_paused += added
            self._paused_until = until

    def _decrease_at(self, now: float) -> None:
        if self._source == "header":
            # The server said its limit: a 429 at it is timing (requests
            # bunch on the wire), not a wrong estimate.  Hold a margin under
            # it, probe back towards it slowly; no halving.
            top = ENGINE_RATE_HEADER_SHARE * self.max_rate
            self._anchor = self._restart = max(self._margin * top, self.min_rate)
            self._begin_event(now)
            self._set_rate(self._restart)
            self.stats.decreases += 1
            return
        sent = self._send_rate(now)
        upper = min(self._rate, sent) if sent is not None else self._rate
        cut = self._decrease * upper
        delivered = None
        if self._event_at is not None and now > self._event_at:
            # Successes since the last event per second bound the limit: over
            # the whole interval from below, outside its pause from above
            # (the server's bucket refilled during the pause).  Told, the
            # gate comes down from far above: the lower bound.  Discovering,
            # it comes up from below: the upper one, never above the send rate.
            span = now - self._event_at
            if self._discover and span - self._event_paused > 0.1 * span:
                delivered = min(upper, self._ok_since_event / (span - self._event_paused))
            else:
                delivered = self._ok_since_event / span
        elif self._slow_start:
            # The first overload: what the last full step delivered.
            delivered = min(upper, self._last_step_ok_rate)
        if delivered is not None and delivered >= cut:
            anchor = max(delivered, self.min_rate)
            pinned = self._pinned
            if pinned is not None and abs(anchor - pinned) <= ENGINE_RATE_SAME_LIMIT * pinned:
                self._recovery = min(self._recovery_max, 2.0 * self._recovery)
            self._pinned = self._anchor = anchor
            self._restart = self._margin * anchor
        else:
            self._anchor = self._restart = max(cut, self.min_rate)
        self._begin_event(now)
        self._set_rate(self._restart)
        self.stats.decreases += 1

    def on_quota(self, remaining: int | None, reset_after: float | None) -> None:
        if remaining is not None and remaining <= 0 and reset_after is not None:
            until = self._now() + max(0.0, reset_after)
            self._paused_until = max(self._paused_until, until)

    async def aclose(self) -> None:
        """Give back what the gate holds (nothing, for a gate of one process's own)."""

    def __repr__(self) -> str:
        return f"<RateGate {self.name!r} {self._rate:.2f}/{self.max_rate:.2f} rps {self._source}>"


# --------------------------------------------------------------------------
# One key's rate shared by several processes (genbatch run --ray)
# --------------------------------------------------------------------------
class SharedSourceLost(Exception):
    """Mixed into what a :class:`TokenSource` or credit source raises when its
    owner is gone for good: the run stops (rows stay resumable), saying this."""


@dataclass(frozen=True, slots=True)
class SharedState:
    """What the owner of a shared rate tells each of its users.

    ``pause``: seconds from now nobody sends (a 429's Retry-After), relative
    so that clocks of other machines do not matter.  ``version`` grows with
    every change a watcher must see (a pause, a new rate).
    """

    share: float
    rate: float
    source: str
    ceiling: float
    pause: float = 0.0
    users: int = 1
    version: int = 0


@dataclass(frozen=True, slots=True)
class Lease:
    """Tokens granted (each one request's worth) and the state when granted."""

    tokens: int
    state: SharedState


@dataclass(slots=True)
class GateReport:
    """What one user of a shared gate saw since its last report.

    The owner adapts its rate on it exactly as a process's own gate adapts on
    each answer: successes (with light-answer latencies), 5xx and dropped
    connections, 429s (``(retry_after, elapsed)`` each), a published limit.
    ``hungry``: callers waited for tokens (the user could use more share).
    """

    ok: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    limited: list[tuple[float | None, float]] = field(default_factory=list)
    published: float | None = None
    sent: int = 0
    hungry: bool = False

    def empty(self) -> bool:
        return not (self.ok or self.errors or self.limited or self.sent or self.hungry) and (
            self.published is None
        )


class TokenSource(Protocol):
    """The owner of a shared rate, as one of its users reaches it."""

    async def lease(self, want: int, report: GateReport) -> Lease:
        """Up to ``want`` tokens (issued at the shared rate), after taking ``report``."""
        ...

    async def report(self, report: GateReport) -> SharedState:
        """Take ``report`` now (a 429, a published limit: everyone must know)."""
        ...

    async def watch(self, version: int) -> SharedState:
        """The state once its version is past ``version`` (a long poll)."""
        ...

    async def give_back(self, tokens: int, report: GateReport) -> None:
        """Tokens leased and not spent, and the last report: this user is done."""
        ...


class LeasedRateGate(RateGate):
    """A rate gate whose rate belongs to a gate shared with other processes.

    The shared gate (one per API key, held by the :class:`TokenSource`'s
    owner) does everything a :class:`RateGate` does — discovery, CUBIC, the
    Retry-After pause — on what all its users report.  This one:

    * spends tokens it leased in batches (``ENGINE_LEASE_SECONDS`` of its
      share), asking for the next batch while half of one is left, so the
      owner is not on any request's path;
    * paces its sends at its *share* of the shared rate (the owner splits it
      by demand), so tokens that arrive together leave spread out and the
      users' sum never bunches above the shared rate;
    * reports answers with each lease, and a 429 or a published limit at
      once; a watcher applies every change of the shared state (a pause
      stops this process's sends at once and drops the tokens it holds:
      after a pause they would be a burst);
    * gives back what it did not spend when it closes (:meth:`aclose`).

    ``rate`` is the share (what the tuner and the poll hub size work by);
    :meth:`describe` tells the shared rate.
    """

    def __init__(self, source: TokenSource, start: SharedState, *, name: str = "api") -> None:
        ceiling = max(start.ceiling, ENGINE_RATE_MIN)
        super().__init__(
            min(max(start.share, ENGINE_RATE_MIN), ceiling), max_rate=ceiling, name=name
        )
        self._tokens_source = source
        self._shared = start
        self._tokens = 0
        self._leasing: asyncio.Task[None] | None = None
        self._watching: asyncio.Task[None] | None = None
        self._reporting: set[asyncio.Task[None]] = set()
        self._report = GateReport()
        self._published: float | None = None
        self._failure: BaseException | None = None
        self._closed = False

    # -- what the engine reads -------------------------------------------------
    @property
    def source(self) -> str:
        return self._shared.source

    @property
    def shared(self) -> SharedState:
        """The shared gate's state as last heard."""
        return self._shared

    def describe(self) -> str:
        shared = self._shared
        return f"{describe_rate(shared.rate, shared.source)}, shared by {shared.users}"

    # -- tokens ----------------------------------------------------------------
    def _batch(self) -> int:
        want = round(self._rate * ENGINE_LEASE_SECONDS)
        return max(ENGINE_LEASE_MIN, min(ENGINE_LEASE_MAX, want))

    def _prefetch(self) -> None:
        if self._closed or self._leasing is not None or self._failure is not None:
            return
        if self._tokens <= self._batch() // 2:
            self._leasing = asyncio.ensure_future(self._lease())

    async def _lease(self) -> None:
        report, self._report = self._report, GateReport()
        try:
            lease = await self._tokens_source.lease(self._batch(), report)
        except Exception as exc:
            self._failure = exc  # every acquirer raises it (nobody awaits this task)
            return
        finally:
            self._leasing = None
        self._tokens += lease.tokens
        self._apply(lease.state)
        self._prefetch()

    def _start(self) -> None:
        if self._watching is None and not self._closed:
            self._watching = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while not self._closed:  # (a cancel can be lost in an awaited wait_for)
            try:
                state = await self._tokens_source.watch(self._shared.version)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failure = exc
                return
            self._apply(state)

    def _apply(self, state: SharedState) -> None:
        if state.version < self._shared.version:
            return  # an answer overtaken by a newer one
        self._shared = state
        self.max_rate = max(state.ceiling, ENGINE_RATE_MIN)
        self._set_rate(max(state.share, ENGINE_RATE_MIN))
        if state.pause > 0:
            until = self._now() + state.pause
            if until > self._paused_until:
                self._paused_until = until
                self._tokens = 0  # spent after the pause they would be a burst

    async def acquire(self, priority: int = Priority.CONTINUE) -> None:
        self._start()
        async with self._queue.slot(priority):
            while True:
                if self._failure is not None:
                    raise self._failure
                paused = await self._wait_pause()
                if self._tokens <= 0:
                    self._report.hungry = True
                    self._prefetch()
                    leasing = self._leasing
                    if leasing is None:
                        raise RuntimeError(f"rate gate {self.name!r} is closed")
                    await asyncio.shield(leasing)
                    continue
                await self._limiter.acquire()
                if await self._wait_pause() or paused:
                    self._limiter.fill()
                if self._tokens > 0:  # a pause may have dropped them meanwhile
                    break
            self._tokens -= 1
            self._report.sent += 1
            if self._queue._waiters:  # (same module) O(1), not the filtered count
                self._report.hungry = True  # callers queue behind the pace: it could use more
            self._prefetch()
            self._record_send()
        self.stats.acquired += 1
        self.stats.by_priority[priority] = self.stats.by_priority.get(priority, 0) + 1

    # -- what the server answered ---------------------------------------------
    def on_success(self, latency: float | None = None) -> None:
        report = self._report
        report.ok += 1
        if latency is not None and len(report.latencies) < ENGINE_LEASE_LATENCIES:
            report.latencies.append(latency)

    def on_error(self) -> None:
        self._report.errors += 1

    def on_published(self, rate: float) -> None:
        if rate <= 0 or rate == self._published:
            return
        self._published = rate
        self._report.published = rate
        self._report_now()

    def on_rate_limited(self, retry_after: float | None = None, *, elapsed: float = 0.0) -> None:
        now = self._now()
        wait = retry_after if retry_after is not None and retry_after >= 0 else None
        until = now + (wait if wait is not None else ENGINE_RETRY_AFTER_DEFAULT)
        self.stats.rate_limited += 1
        if until > self._paused_until:
            self.stats.paused_seconds += until - max(now, self._paused_until)
            self._paused_until = until
            self._tokens = 0
        self._report.limited.append((retry_after, elapsed))
        self._report_now()

    def _report_now(self) -> None:
        if self._closed:
            return
        report, self._report = self._report, GateReport()

        async def send() -> None:
            with contextlib.suppress(Exception):  # the next lease carries the news anyway
                self._apply(await self._tokens_source.report(report))

        task = asyncio.ensure_future(send())
        self._reporting.add(task)
        task.add_done_callback(self._reporting.discard)

    async def aclose(self) -> None:
        """Stop watching and give back the tokens not spent (with the last report)."""
        if self._closed:
            return
        self._closed = True
        tasks = [t for t in (self._leasing, self._watching, *self._reporting) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        tokens, self._tokens = self._tokens, 0
        if self._failure is None:
            with contextlib.suppress(Exception):
                await self._tokens_source.give_back(tokens, self._report)

    def __repr__(self) -> str:
        return (
            f"<LeasedRateGate {self.name!r} share {self._rate:.2f} of "
            f"{self._shared.rate:.2f} rps, {self._tokens} tokens>"
        )


@dataclass(slots=True)
class Limits:
    """Every gate one run uses, built from the CLI's numbers."""

    api: RateGate
    agent: RateGate
    rows: ConcurrencyCap
    generations: ConcurrencyCap
    renders: ConcurrencyCap
    uploads: ConcurrencyCap
    downloads: ConcurrencyCap

    @classmethod
    def create(
        cls,
        *,
        rate: float | None = None,
        agent_rate: float | None = None,
        burst: float = ENGINE_RATE_BURST,
        rows_in_flight: int = ENGINE_ROWS_IN_FLIGHT,
        generations: int = ENGINE_CAP_GENERATIONS,
        renders: int = ENGINE_CAP_RENDERS,
        uploads: int = ENGINE_CAP_UPLOADS,
        downloads: int = ENGINE_CAP_DOWNLOADS,
    ) -> Limits:
        """The gates.  ``rate``: told, each host's gate runs at it and never above;
        None: each discovers its host's limit (see :class:`RateGate`).  A gate's
        ``burst`` is capped at one second of its rate (>= 1), and live at
        ENGINE_RATE_BURST_SECONDS of its current rate."""

        def gate(gate_rate: float | None, name: str) -> RateGate:
            if gate_rate is None:
                start = ENGINE_RATE_START
                return RateGate(
                    start,
                    max_rate=ENGINE_RATE_CEILING,
                    discover=True,
                    burst=min(burst, max(1.0, start)),
                    name=name,
                )
            return RateGate(gate_rate, burst=min(burst, max(1.0, gate_rate)), name=name)

        api_rate = rate
        agent_rate = agent_rate if agent_rate is not None else api_rate
        return cls(
            api=gate(api_rate, "api"),
            agent=gate(agent_rate, "agent"),
            rows=ConcurrencyCap(rows_in_flight, "rows"),
            generations=ConcurrencyCap(generations, "generations"),
            renders=ConcurrencyCap(renders, "renders"),
            uploads=ConcurrencyCap(uploads, "uploads"),
            downloads=ConcurrencyCap(downloads, "downloads"),
        )
