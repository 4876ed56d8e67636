"""The tuner: rows in flight by Little's law, generation jobs by the server's queue."""

from __future__ import annotations

from dataclasses import dataclass

from genbatch.engine.limits import ConcurrencyCap, RateGate
from genbatch.engine.tuning import (
    ENGINE_TUNE_END_GAME,
    ENGINE_TUNE_GENERATIONS_START,
    ENGINE_TUNE_HEADROOM,
    ENGINE_TUNE_MIN_SAMPLES,
    ENGINE_TUNE_ROWS_MIN,
    Tuner,
)


@dataclass
class Census:
    queued: int = 0
    running: int = 0
    acks: int = 0
    probing: int = 0


class Requests:
    n = 0

    def __call__(self) -> int:
        return self.n


def tuner(
    rate: float = 500.0, **kw: object
) -> tuple[Tuner, ConcurrencyCap, ConcurrencyCap, Requests, Census]:
    rows, gens = ConcurrencyCap(256, "rows"), ConcurrencyCap(512, "generations")
    req, census = Requests(), Census()
    t = Tuner(
        gate=RateGate(rate), rows=rows, generations=gens, requests=req,
        census=lambda: census, **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    return t, rows, gens, req, census


def test_rows_in_flight_follow_littles_law() -> None:
    t, rows, _, req, _ = tuner(rate=500.0)
    t.tick()
    assert rows.limit == 256  # nothing measured yet: the initial cap holds
    for _ in range(20):
        t.row_finished(4.0)  # a row takes 4 s ...
    req.n = 20 * 9  # ... and 9 requests
    t.tick()
    expected = ENGINE_TUNE_HEADROOM * 500.0 * 4.0 / 9
    assert abs(rows.limit - expected) <= 1


def test_slow_rows_at_a_fast_rate_need_more_rows_bounded_by_max() -> None:
    t, rows, _, req, _ = tuner(rate=1000.0, max_rows=700)
    for _ in range(ENGINE_TUNE_MIN_SAMPLES):
        t.row_finished(180.0)  # GEN's real latencies: three minutes a row
    req.n = 9 * ENGINE_TUNE_MIN_SAMPLES
    t.tick()
    assert rows.limit == 700  # --max-concurrency (or memory) bounds it


def test_a_slow_rate_needs_few_rows_but_never_below_the_floor() -> None:
    t, rows, _, req, _ = tuner(rate=2.0)
    for _ in range(10):
        t.row_finished(3.0)
    req.n = 90
    t.tick()
    assert rows.limit == ENGINE_TUNE_ROWS_MIN


class Left:
    n = 1000

    def __call__(self) -> int:
        return self.n


def test_the_end_game_admits_the_last_rows_once_they_fit_in_one_rows_time() -> None:
    left, ended = Left(), list[int]()
    t, rows, _, req, _ = tuner(rate=500.0, remaining=left, on_end_game=ended.append)
    for _ in range(20):
        t.row_finished(4.0)  # a row takes 4 s and 10 requests: at 500/s
    req.n = 200  # the gate serves 200 rows' requests in one row's time
    fit = round(200 * ENGINE_TUNE_END_GAME)
    left.n = fit + 1
    t.tick()
    assert not t.end_game and ended == []
    limit = rows.limit
    left.n = fit
    t.tick()
    assert t.end_game and ended == [fit]
    assert rows.limit == max(limit, rows.in_use + fit)  # all of them admitted
    for _ in range(20):
        t.row_finished(0.5)  # rows get quick: Little's law would shrink the cap
    t.tick()
    assert rows.limit >= fit  # the last rows stay admitted


def test_the_end_game_respects_max_concurrency_and_a_server_queue() -> None:
    left = Left()
    t, rows, _, req, _ = tuner(rate=500.0, remaining=left, max_rows=64)
    for _ in range(20):
        t.row_finished(4.0)
    req.n, left.n = 200, 150
    t.tick()
    assert t.end_game and rows.limit == 64  # --max-concurrency still holds
    t2, _, _, req2, census = tuner(rate=500.0, remaining=left)
    census.queued, census.running = 250, 50  # the server queues our jobs
    t2.tick()
    t2.tick()
    assert t2.server_queue
    for _ in range(20):
        t2.row_finished(4.0)
    req2.n, left.n = 200, 10
    t2.tick()
    assert not t2.end_game  # more rows would only wait for job slots


async def test_in_the_end_game_the_gate_serves_new_rows_before_renders() -> None:
    import asyncio

    from genbatch.engine.limits import Priority

    left = Left()
    t, _, _, req, _ = tuner(rate=50.0, remaining=left)
    gate = t._gate
    order: list[str] = []

    async def call(name: str, prio: int) -> None:
        await gate.acquire(prio)
        order.append(name)

    await call("first", Priority.POLL)  # the bucket is full: the rest queue
    calls = [("render", Priority.FINISH), ("render2", Priority.FINISH)]
    calls += [("clone", Priority.START), ("poll", Priority.POLL)]
    tasks = [asyncio.ensure_future(call(n, p)) for n, p in calls]
    await asyncio.sleep(0)
    for _ in range(ENGINE_TUNE_MIN_SAMPLES):
        t.row_finished(2.0)
    req.n, left.n = 40, 10
    t.tick()
    await asyncio.gather(*tasks)
    # The first render reached the bucket first (nobody queued); then the
    # poll, then the new row ahead of the render that queued before it.
    assert t.end_game
    assert order == ["first", "render", "poll", "clone", "render2"]


def test_a_server_queue_brings_the_generations_cap_down_then_back() -> None:
    t, _rows, gens, _, census = tuner()
    assert gens.limit == ENGINE_TUNE_GENERATIONS_START  # slow start
    census.queued, census.running = 250, 50  # a job cap of 50: the rest wait
    t.tick()
    assert gens.limit == ENGINE_TUNE_GENERATIONS_START  # one look could be a blip
    t.tick()
    assert t.server_queue and 50 <= gens.limit <= 60  # what the server runs, and a little
    # The queue drains and callers wait at the cap: it climbs back.
    census.queued, census.running = 0, 40

    async def waiters() -> None:
        import asyncio

        for _ in range(gens.limit):
            await gens.acquire()
        for _ in range(5):  # jobs finish: the growth is clocked by them
            gens.release()
            await gens.acquire()
        task = asyncio.ensure_future(gens.acquire())
        await asyncio.sleep(0)
        before = gens.limit
        t.tick()
        assert gens.limit > before
        task.cancel()

    import asyncio

    asyncio.run(waiters())


def test_no_queue_no_change() -> None:
    t, _, gens, _, census = tuner()
    census.queued, census.running = 3, 200  # a few in their first moments: not a queue
    for _ in range(5):
        t.tick()  # nobody waits at the cap: nothing to grow for
    assert gens.limit == ENGINE_TUNE_GENERATIONS_START and not t.server_queue


def test_without_a_queue_the_generations_cap_grows_by_what_came_back() -> None:
    import asyncio

    async def main() -> list[int]:
        t, _, gens, _, census = tuner()
        census.running = 10
        seen = [gens.limit]
        for done in (64, 10, 1000, 1000, 1000):
            while gens.in_use < gens.limit:  # callers use every slot
                await gens.acquire()
            for _ in range(done):  # jobs that finished meanwhile, their slots taken again
                gens.release()
                await gens.acquire()
            task = asyncio.ensure_future(gens.acquire())  # and one more waits
            await asyncio.sleep(0)
            t.tick()
            task.cancel()
            await asyncio.sleep(0)
            seen.append(gens.limit)
        return seen

    seen = asyncio.run(main())
    # +64 came back: doubled; ~10 (and the slot a cancelled waiter handed
    # back): ~+10; then at most doubling, up to the maximum
    assert seen[:2] == [64, 128]
    assert 138 <= seen[2] <= 139
    assert seen[3] == 2 * seen[2] and seen[4:] == [512, 512]


async def test_a_rows_time_in_service_starts_when_its_first_request_clears_the_gate() -> None:
    """What the tuner is fed: a row's clock starts once, when its first request
    clears the rate gate, so the time rows queue for that first request (a
    queue the rows cap itself makes) never inflates Little's law."""
    import asyncio
    import time

    from genbatch.client.routes import GENERATIONS_GET
    from genbatch.engine.runner import make_hooks, make_limits
    from genbatch.engine.services import ROW_CLOCK, RowClock

    limits = make_limits(rate=20.0, rows_in_flight=None)
    before = make_hooks(limits).before_attempt
    assert before is not None

    async def row() -> tuple[float, float | None, float | None]:
        clock = RowClock()
        ROW_CLOCK.set(clock)
        began = time.monotonic()
        await before(GENERATIONS_GET)
        first = clock.first_sent
        await before(GENERATIONS_GET)  # a later request does not move it
        return began, first, clock.first_sent

    rows = await asyncio.gather(*(row() for _ in range(8)))
    firsts = sorted(f for _, f, _ in rows if f is not None)
    assert len(firsts) == 8 and all(f == again for _, f, again in rows)
    # Eight rows at 20/s: the last one's clock starts ~0.35 s after it began.
    last_began = max(b for b, _, _ in rows)
    assert firsts[-1] - last_began >= 0.25
    # Outside a row nothing is marked.
    assert ROW_CLOCK.get() is None
    await before(GENERATIONS_GET)


def test_probes_seen_running_double_the_generations_cap_long_before_jobs_finish() -> None:
    import asyncio

    from genbatch.engine.tuning import ENGINE_TUNE_PROBES

    async def main() -> tuple[list[int], list[int]]:
        asked: list[int] = []
        t, _, gens, _, census = tuner(probe=asked.append)
        seen = [gens.limit]
        waiters = []
        for _ in range(3):
            while gens.in_use < gens.limit:  # callers use every slot, none finishes
                await gens.acquire()
            waiters.append(asyncio.ensure_future(gens.acquire()))  # and one more waits
            await asyncio.sleep(0)
            t.tick()  # nobody probed yet: a round is asked for, the cap holds
            census.probing = ENGINE_TUNE_PROBES
            seen.append(gens.limit)
            census.acks += ENGINE_TUNE_PROBES  # ... and all seen running
            census.probing = 0
            t.tick()
            seen.append(gens.limit)
            await asyncio.sleep(0)
        for w in waiters:
            w.cancel()
        return seen, asked

    seen, asked = asyncio.run(main())
    start = ENGINE_TUNE_GENERATIONS_START
    assert seen == [start, start, 2 * start, 2 * start, 4 * start, 4 * start, 8 * start]
    assert asked and set(asked) == {ENGINE_TUNE_PROBES}


def test_probes_still_pending_do_not_grow_the_cap() -> None:
    asked: list[int] = []
    t, _, gens, _, census = tuner(probe=asked.append)
    census.queued, census.probing = 3, ENGINE_TUNE_GENERATIONS_START  # none seen running
    for _ in range(5):
        t.tick()
    assert gens.limit == ENGINE_TUNE_GENERATIONS_START and asked == []


async def test_no_probes_while_callers_queue_at_the_rate_gate() -> None:
    import asyncio

    from genbatch.engine.limits import Priority

    asked: list[int] = []
    t, _, gens, _, _ = tuner(rate=5.0, probe=asked.append)
    gate = t._gate
    while gens.in_use < gens.limit:
        await gens.acquire()
    waiter = asyncio.ensure_future(gens.acquire())  # callers wait at the cap ...
    await gate.acquire(Priority.POLL)  # ... and at the gate: its bucket is spent
    queued = [asyncio.ensure_future(gate.acquire(Priority.START)) for _ in range(3)]
    await asyncio.sleep(0)
    t.tick()
    assert asked == []  # the gate holds the run back: polls would take its tokens
    for task in (*queued, waiter):
        task.cancel()
    await asyncio.gather(*queued, waiter, return_exceptions=True)
    t.tick()
    assert asked == []  # nobody waits at the cap any more either
