"""Gates: caps never exceeded, priority order, 429 pauses everyone, adaptive rate.

Assertions are about order and counts (and "not before" bounds, which
cannot flake), never about how long something took.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from genbatch.engine.limits import (
    END_GAME_RANKS,
    ENGINE_RATE_HEADER_SHARE,
    ConcurrencyCap,
    Limits,
    Priority,
    RateGate,
    through,
)

T = TypeVar("T")


async def settle() -> None:
    """Let every ready task run until all are blocked again."""
    for _ in range(5):
        await asyncio.sleep(0)


# -- ConcurrencyCap ----------------------------------------------------------
async def test_cap_is_never_exceeded() -> None:
    cap = ConcurrencyCap(3, "t")
    active = peak = done = 0

    async def work() -> None:
        nonlocal active, peak, done
        async with cap.slot():
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.001)
            active -= 1
            done += 1

    await asyncio.gather(*(work() for _ in range(40)))
    assert peak == 3 and done == 40 and cap.in_use == 0


def wait_at(
    cap: ConcurrencyCap, order: list[str], arrivals: list[tuple[str, int]]
) -> list[asyncio.Task[None]]:
    """One task per ``(name, priority)`` queued at ``cap``; served, it appends its name."""

    async def waiter(name: str, prio: int) -> None:
        async with cap.slot(prio):
            order.append(name)

    return [asyncio.create_task(waiter(n, p)) for n, p in arrivals]


async def test_cap_serves_lower_priority_numbers_first_fifo_within() -> None:
    cap = ConcurrencyCap(1)
    await cap.acquire()
    order: list[str] = []
    arrivals = [("start1", 3), ("poll1", 0), ("cont", 2), ("finish", 1), ("poll2", 0)]
    tasks = wait_at(cap, order, arrivals)
    await settle()
    assert cap.waiting == 5
    cap.release()
    await asyncio.gather(*tasks)
    assert order == ["poll1", "poll2", "finish", "cont", "start1"]


async def test_the_end_game_order_puts_a_rows_first_steps_ahead_of_finishing_ones() -> None:
    cap = ConcurrencyCap(1)
    await cap.acquire()
    order: list[str] = []
    tasks = wait_at(cap, order, [("start1", 3), ("finish1", 1), ("cont1", 2), ("poll1", 0)])
    await settle()
    cap.reorder(END_GAME_RANKS)  # waiters already queued are reordered too
    tasks += wait_at(cap, order, [("finish2", 1), ("start2", 3)])
    await settle()
    cap.release()
    await asyncio.gather(*tasks)
    # Polls stay first; then the next steps of started rows, new rows, and
    # only then renders and downloads.
    assert order == ["poll1", "cont1", "start1", "start2", "finish1", "finish2"]


async def test_cap_cancelled_waiters_do_not_leak_slots() -> None:
    cap = ConcurrencyCap(1)
    await cap.acquire()
    got: list[str] = []

    async def waiter(name: str) -> None:
        async with cap.slot():
            got.append(name)

    a = asyncio.create_task(waiter("a"))
    b = asyncio.create_task(waiter("b"))
    c = asyncio.create_task(waiter("c"))
    await settle()
    a.cancel()  # cancelled while waiting: skipped
    await settle()
    cap.release()  # grants b ...
    b.cancel()  # ... which is cancelled before it runs: must pass the slot on
    await asyncio.gather(a, b, c, return_exceptions=True)
    assert got == ["c"]
    assert cap.in_use == 0 and cap.waiting == 0


async def test_cap_set_limit_admits_waiters() -> None:
    cap = ConcurrencyCap(1)
    await cap.acquire()
    entered = asyncio.Event()

    async def waiter() -> None:
        await cap.acquire()
        entered.set()

    task = asyncio.create_task(waiter())
    await settle()
    assert not entered.is_set()
    cap.set_limit(2)
    await asyncio.wait_for(entered.wait(), 5)
    assert cap.in_use == 2
    await task


def test_cap_misuse() -> None:
    with pytest.raises(ValueError):
        ConcurrencyCap(0)
    with pytest.raises(RuntimeError):
        ConcurrencyCap(1).release()


# -- RateGate ----------------------------------------------------------------
async def test_rate_gate_serves_by_priority() -> None:
    gate = RateGate(200.0, burst=1)
    order: list[str] = []

    async def call(name: str, prio: int) -> None:
        await gate.acquire(prio)
        order.append(name)

    await call("first", Priority.START)  # burst of 1: the bucket is now full
    arrivals = [("start", Priority.START), ("poll", Priority.POLL), ("cont", Priority.CONTINUE)]
    arrivals += [("finish", Priority.FINISH), ("poll2", Priority.POLL)]
    await asyncio.gather(*(call(n, p) for n, p in arrivals))
    # "start" reached the bucket first (nobody was queued); then by priority.
    assert order == ["first", "start", "poll", "poll2", "finish", "cont"]
    assert gate.stats.acquired == 6
    assert gate.stats.by_priority[Priority.POLL] == 2


async def test_a_429_blocks_everyone_until_retry_after() -> None:
    loop = asyncio.get_running_loop()
    gate = RateGate(1000.0)
    await gate.acquire()
    gate.on_rate_limited(0.05)
    until = loop.time() + 0.05 - 1e-3  # lower bound on the pause end
    times: list[float] = []

    async def call() -> None:
        await gate.acquire()
        times.append(loop.time())

    await asyncio.gather(*(call() for _ in range(5)))
    assert len(times) == 5
    assert min(times) >= until  # nobody went early
    assert gate.paused_for() == 0.0


async def test_retry_after_reaches_waiters_already_at_the_bucket() -> None:
    loop = asyncio.get_running_loop()
    gate = RateGate(20.0)
    await gate.acquire()  # next token in ~50 ms
    waiter = asyncio.create_task(gate.acquire())
    await settle()
    gate.on_rate_limited(0.2)  # arrives while the waiter sleeps on the bucket
    pause_end = loop.time() + 0.2 - 1e-3
    await waiter
    assert loop.time() >= pause_end


async def test_one_decrease_per_congestion_event() -> None:
    gate = RateGate(10.0, min_rate=1.0, decrease=0.5)
    gate.on_rate_limited(0.01)
    assert gate.rate == 5.0
    gate.on_rate_limited(0.01)  # same episode (inside the pause): pause extends, rate holds
    assert gate.rate == 5.0 and gate.stats.rate_limited == 2 and gate.stats.decreases == 1
    await asyncio.sleep(0.03)
    # After the pause, but its request was sent before the decrease: same overload.
    gate.on_rate_limited(0.0, elapsed=0.5)
    assert gate.stats.decreases == 1
    gate.on_rate_limited(0.0)  # sent after it: a new event
    assert gate.stats.decreases == 2 and gate.rate < 5.0
    for _ in range(5):
        await asyncio.sleep(0.001)
        gate.on_rate_limited(0.0)
    assert gate.rate == 1.0  # floored at min_rate


async def test_default_pause_when_no_retry_after() -> None:
    gate = RateGate(10.0)
    gate.on_rate_limited(None)
    assert 0.5 < gate.paused_for() <= 1.0


async def test_quota_exhausted_pauses_without_slowing_down() -> None:
    gate = RateGate(10.0)
    gate.on_quota(remaining=0, reset_after=0.5)
    assert gate.paused_for() > 0.4 and gate.rate == 10.0
    gate.on_quota(remaining=3, reset_after=5)
    assert gate.paused_for() <= 0.5


async def test_set_max_rate_lowers_the_current_rate() -> None:
    gate = RateGate(50.0)
    gate.set_max_rate(5.0)
    assert gate.rate == 5.0 and gate.max_rate == 5.0
    for _ in range(10):
        gate.on_success()
    assert gate.rate == 5.0
    await gate.acquire()


async def test_rate_change_while_waiting_still_admits_everyone() -> None:
    gate = RateGate(0.01, max_rate=1000.0, min_rate=0.01)  # next token: 100 s
    await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    await settle()
    gate.on_success()  # climbs to 1000/s: the bucket's wake-up timer is re-armed
    assert gate.rate == 1000.0
    await asyncio.wait_for(waiter, 30)  # without the re-arm it would sleep 100 s
    assert gate.stats.acquired == 2


def test_rate_gate_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RateGate(0)
    with pytest.raises(ValueError):
        RateGate(1, decrease=1.5)
    with pytest.raises(ValueError):
        RateGate(1).set_max_rate(0)


def test_rate_gate_configurable_outside_a_loop() -> None:
    gate = RateGate(10.0)
    gate.set_max_rate(4.0)
    assert gate.rate == 4.0


# -- composition ---------------------------------------------------------------
async def test_through_enters_in_order_and_releases() -> None:
    limits = Limits.create(rate=1000.0, renders=1)
    inside = 0
    peak = 0

    async def render() -> None:
        nonlocal inside, peak
        async with through(limits.renders, limits.api, priority=Priority.FINISH):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.001)
            inside -= 1

    await asyncio.gather(*(render() for _ in range(6)))
    assert peak == 1
    assert limits.renders.in_use == 0
    assert limits.api.stats.acquired == 6
    assert limits.api.stats.by_priority == {Priority.FINISH: 6}


async def test_exception_inside_through_releases_caps() -> None:
    cap = ConcurrencyCap(1)
    with pytest.raises(RuntimeError):
        async with through(cap):
            raise RuntimeError("boom")
    assert cap.in_use == 0


def test_limits_defaults() -> None:
    limits = Limits.create(rate=7.0)
    assert limits.api.max_rate == 7.0 and limits.agent.max_rate == 7.0
    assert limits.rows.limit > 0 and limits.downloads.limit > 0


def test_limits_create_burst_is_capped_at_one_second_of_rate() -> None:
    # the bucket's capacity is the burst (aiolimiter's max_rate)
    assert Limits.create(rate=7.0).api._limiter.max_rate == 1.0  # default: strictly spaced
    limits = Limits.create(rate=400.0, agent_rate=2.0, burst=4.0)
    assert limits.api._limiter.max_rate == 4.0
    assert limits.agent._limiter.max_rate == 1.0  # a slow gate is strictly spaced
    assert Limits.create(rate=0.5, burst=4.0).api._limiter.max_rate == 1.0  # never below 1


# -- the adaptive gate against a fake server, on a virtual clock ---------------
class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer instead of sleeping.

    Each idle turn also moves it a nanosecond, so a deadline computed in
    floating point is always reached.  No wall-clock timing anywhere.
    """

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0
        select = self._selector.select  # type: ignore[attr-defined]

        def jump(timeout: float | None = None) -> Any:
            self._now += timeout if timeout else 1e-9
            return select(0)

        self._selector.select = jump  # type: ignore[attr-defined]

    def time(self) -> float:
        return self._now


def virtual(coro: Coroutine[Any, Any, T]) -> T:
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


class Bucket:
    """The server: a token bucket (rate, burst); Retry-After in whole seconds >= 1."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.t = float(burst), 0.0

    def take(self, now: float) -> int | None:
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return max(1, math.ceil((1 - self.tokens) / self.rate))


@dataclass
class Outcome:
    accepted: int = 0
    limited: int = 0
    sends: list[float] = field(default_factory=list)
    pauses: list[tuple[float, float]] = field(default_factory=list)
    decreases: int = 0

    def sent_inside_a_pause(self) -> int:
        """Sends after a 429 reached us and before its Retry-After passed."""
        return sum(1 for s in self.sends for a, b in self.pauses if a < s < b - 1e-6)


async def drive(
    server: Bucket, gate: RateGate, *, seconds: float, workers: int = 64, rtt: float = 0.01
) -> Outcome:
    """``workers`` callers with endless demand, each request one ``rtt`` long."""
    loop = asyncio.get_running_loop()
    out = Outcome()
    rng = random.Random(7)

    async def caller() -> None:
        while loop.time() < seconds:
            await gate.acquire()
            sent = loop.time()
            if sent >= seconds:
                return
            out.sends.append(sent)
            await asyncio.sleep(rtt / 2)
            retry_after = server.take(loop.time())
            await asyncio.sleep(rtt / 2)
            if retry_after is None:
                out.accepted += 1
                gate.on_success()
            else:
                out.limited += 1
                now = loop.time()
                out.pauses.append((now, now + retry_after))
                gate.on_rate_limited(float(retry_after), elapsed=rtt)
                # The client's own retry waits Retry-After (+ up to 10 % jitter).
                await asyncio.sleep(retry_after * (1 + 0.1 * rng.random()))

    await asyncio.gather(*(caller() for _ in range(workers)))
    out.decreases = gate.stats.decreases
    return out


@pytest.mark.parametrize(("limit", "rtt"), [(15.0, 0.01), (15.0, 0.06), (40.0, 0.02)])
def test_converges_near_an_unknown_limit_with_few_429s(limit: float, rtt: float) -> None:
    """--rate 200 against a server allowing ``limit``/s (bucket = 1 s of it)."""
    server = Bucket(limit, int(limit))
    gate = RateGate(200.0, burst=4.0)
    out = virtual(drive(server, gate, seconds=40.0, rtt=rtt))
    assert out.accepted >= 0.8 * limit * 40.0  # measured ~97 %
    assert out.decreases <= 8  # 4 to come down from 200, then a probe every ~10 s
    assert out.limited <= 30  # the in-flight requests of those events
    assert out.sent_inside_a_pause() == 0
    assert gate.anchor is not None and 0.85 * limit <= gate.anchor <= 1.1 * limit


def test_small_server_bucket_still_settles_without_429_storms() -> None:
    """A bucket of 3 wastes most of each 1 s pause: slower, but no storm."""
    server = Bucket(15.0, 3)
    out = virtual(drive(server, RateGate(200.0, burst=4.0), seconds=40.0))
    assert out.accepted >= 0.6 * 15.0 * 40.0  # measured ~70 % (before: ~20 %)
    assert out.decreases <= 10 and out.sent_inside_a_pause() == 0


def test_known_limit_never_trips_even_a_one_token_bucket() -> None:
    """At a slow rate the gate spaces requests (burst <= 10 ms of rate)."""
    out = virtual(drive(Bucket(15.0, 1), RateGate(15.0, burst=4.0), seconds=20.0))
    assert out.limited == 0 and out.accepted >= 15.0 * 20.0 - 1


def test_no_burst_after_a_pause() -> None:
    """The first send after a Retry-After is followed by a full period, not a burst."""

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        gate = RateGate(100.0, burst=4.0)  # capacity 1 at 100/s (10 ms)
        await gate.acquire()
        gate.on_rate_limited(1.0)
        times: list[float] = []
        for _ in range(3):
            await gate.acquire()
            times.append(loop.time())
        return times

    times = virtual(main())
    assert times[0] >= 1.0  # not before Retry-After
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1 / 50.0 - 1e-6  # one period of the halved rate, no saved burst


def test_growth_is_per_second_not_per_success() -> None:
    """Two gates hit at the same moment, one with 50x the successes: same rate."""

    async def main() -> tuple[float, float]:
        busy, idle = RateGate(100.0), RateGate(100.0)
        for g in (busy, idle):
            g.on_rate_limited(0.0)
        await asyncio.sleep(2.0)
        for _ in range(500):
            busy.on_success()
        for _ in range(10):
            idle.on_success()
        return busy.rate, idle.rate

    busy, idle = virtual(main())
    assert busy == idle and 50.0 <= busy <= 100.0


def test_climbs_back_with_time_and_never_above_max() -> None:
    async def main() -> list[float]:
        gate = RateGate(20.0)
        gate.on_rate_limited(0.0)
        rates = []
        for _ in range(30):
            await asyncio.sleep(1.0)
            gate.on_success()
            rates.append(gate.rate)
        return rates

    rates = virtual(main())
    assert rates == sorted(rates)  # monotone between 429s
    assert rates[0] < 20.0 and rates[-1] == 20.0  # back at the ceiling, never above


# -- Discovery: told nothing ---------------------------------------------------
def untold() -> RateGate:
    """The gate `genbatch run` builds without --rate."""
    return Limits.create(rate=None).api


def test_untold_gate_starts_low_and_probes_under_the_polite_ceiling() -> None:
    from genbatch.engine.limits import ENGINE_RATE_CEILING, ENGINE_RATE_START

    gate = untold()
    assert gate.rate == ENGINE_RATE_START and gate.max_rate == ENGINE_RATE_CEILING
    assert gate.source == "probing"
    assert Limits.create(rate=60.0).api.source == "told"


def test_a_limit_of_60_is_found_within_10_s_with_few_429s() -> None:
    """No --rate, a server allowing 60/s (bucket 10) that publishes nothing."""

    async def main() -> tuple[Outcome, float | None, str, float]:
        gate = untold()
        seen: list[tuple[float | None, str]] = []

        async def watch() -> None:
            await asyncio.sleep(10.0)
            seen.append((gate.anchor, gate.source))

        out, _ = await asyncio.gather(drive(Bucket(60.0, 10), gate, seconds=40.0), watch())
        anchor, source = seen[0]
        return out, anchor, source, gate.rate

    out, anchor_at_10s, source, final = virtual(main())
    assert source == "discovered"
    assert anchor_at_10s is not None and 0.85 * 60 <= anchor_at_10s <= 1.15 * 60
    assert out.limited <= 0.01 * len(out.sends) + 10  # few 429s, each event's in-flight few
    assert out.decreases <= 6
    assert out.accepted >= 0.85 * 60.0 * 40.0
    assert out.sent_inside_a_pause() == 0
    assert final <= 1.5 * 60


def test_an_unlimited_server_is_driven_to_the_ceiling() -> None:
    """No limit, answers that never slow down: slow start doubles up to the ceiling."""

    async def main() -> tuple[float, str, float]:
        gate = untold()
        loop = asyncio.get_running_loop()
        reached: list[float] = []

        async def caller() -> None:
            while loop.time() < 5.0:
                await gate.acquire()
                await asyncio.sleep(0.005)
                gate.on_success(0.005)
                if gate.source == "ceiling" and not reached:
                    reached.append(loop.time())

        await asyncio.gather(*(caller() for _ in range(64)))
        return gate.rate, gate.source, reached[0] if reached else float("inf")

    rate, source, when = virtual(main())
    assert source == "ceiling" and rate == untold().max_rate
    assert when < 2.5  # 20/s to 1000/s: six doublings of a quarter second each, used


async def _drive_capacity(gate: RateGate, *, capacity: float, seconds: float) -> list[float]:
    """A server with no limit that serves ``capacity`` requests/s: beyond it, answers queue."""
    loop = asyncio.get_running_loop()
    busy_until = 0.0
    rates: list[float] = []

    async def caller() -> None:
        nonlocal busy_until
        while loop.time() < seconds:
            await gate.acquire()
            now = loop.time()
            busy_until = max(now, busy_until) + 1.0 / capacity
            latency = busy_until - now + 0.002
            await asyncio.sleep(latency)
            gate.on_success(latency)

    async def sample() -> None:
        while loop.time() < seconds:
            await asyncio.sleep(0.5)
            rates.append(gate.rate)

    await asyncio.gather(*(caller() for _ in range(256)), sample())
    return rates


def test_an_unlimited_server_is_backed_off_when_its_latency_climbs() -> None:
    rates = virtual(_drive_capacity(untold(), capacity=300.0, seconds=30.0))
    assert max(rates) > 300.0  # driven past what it can serve...
    settled = sorted(rates[-20:])[10]  # median of the last 10 s
    assert settled <= 1.2 * 300.0  # ...then held near it, not at the ceiling
    assert settled >= 0.4 * 300.0


def test_failing_answers_cut_softly_and_not_below_the_start() -> None:
    from genbatch.engine.limits import ENGINE_RATE_START

    async def main() -> tuple[float, float]:
        gate = untold()
        gate._set_rate(400.0)  # as if slow start had climbed
        for _ in range(5):
            await gate.acquire()
        for _ in range(10):
            gate.on_error()
        once = gate.rate
        for _ in range(50):  # a server that only fails: the start rate is the floor
            await asyncio.sleep(5.0)
            for _ in range(10):
                gate.on_error()
        return once, gate.rate

    once, final = virtual(main())
    assert once < 400.0
    assert final >= ENGINE_RATE_START


def test_a_published_limit_is_taken_at_once_up_to_the_ceiling() -> None:
    async def main() -> tuple[float, str, float]:
        gate = untold()
        gate.on_published(60.0)
        first = gate.rate, gate.source
        gate.on_published(1e6)
        return first[0], first[1], gate.rate

    rate, source, capped = virtual(main())
    # held a hair under it: a bucket run at exactly its rate empties by chance
    assert rate == pytest.approx(ENGINE_RATE_HEADER_SHARE * 60.0) and source == "header"
    assert capped == pytest.approx(ENGINE_RATE_HEADER_SHARE * untold().max_rate)
    told = Limits.create(rate=30.0).api
    told.on_published(60.0)  # told: the user's number stands
    assert told.rate == 30.0 and told.source == "told"


def test_an_idle_untold_gate_does_not_grow() -> None:
    async def main() -> float:
        gate = untold()
        for _ in range(20):
            await asyncio.sleep(0.5)
            await gate.acquire()  # one request every half second: nowhere near its rate
            gate.on_success(0.01)
        return gate.rate

    from genbatch.engine.limits import ENGINE_RATE_START

    assert virtual(main()) == ENGINE_RATE_START
