"""Poll hub: one scheduler, every future resolves, memory stays small.

Fetches are in-memory async functions (no HTTP).  Assertions are about
counts, order and bounds — never about how long something took.  Where
timing matters (scouting, the ladder's delay and polls) a virtual-clock
event loop runs the schedule exactly and instantly.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from genbatch.engine.limits import Priority, RateGate
from genbatch.engine.poller import (
    ENGINE_POLL_TAIL_POLLS,
    Bracket,
    Census,
    KindStats,
    PollHub,
    _Model,
    is_terminal,
)

T = TypeVar("T")


class FakeJobs:
    """Jobs that complete at fixed loop times; fetch reports their status."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.done_at: dict[str, float] = {}
        self.polls: dict[str, int] = {}
        self.order: list[str] = []

    def add(self, job_id: str, seconds: float) -> str:
        self.done_at[job_id] = self.loop.time() + seconds
        return job_id

    async def fetch(self, job_id: str) -> dict[str, Any]:
        self.polls[job_id] = self.polls.get(job_id, 0) + 1
        self.order.append(job_id)
        finished = self.loop.time() >= self.done_at[job_id]
        return {"id": job_id, "status": "completed" if finished else "processing"}


def make_hub(seeds: dict[str, float] | None = None, **kw: Any) -> PollHub:
    """A hub with intervals sized for millisecond fake jobs (``seeds``: only bounds)."""
    kw.setdefault("min_interval", 0.002)
    kw.setdefault("max_interval", 0.05)
    kw.setdefault("scout_first", 0.005)
    kw.setdefault("seed", 7)
    return PollHub(seeds=seeds, **kw)


def test_is_terminal() -> None:
    assert is_terminal({"status": "completed"}) and is_terminal({"status": "failed"})
    assert is_terminal({"status": "stopped"}) and not is_terminal({"status": "pending"})

    class Obj:
        status = "processing"

    assert not is_terminal(Obj()) and not is_terminal(object())


async def test_ten_thousand_pending_jobs_cost_a_few_mb_and_all_resolve() -> None:
    jobs = FakeJobs()
    rng = random.Random(1)
    n = 10_000
    ids = [jobs.add(f"gen-{i}", rng.uniform(0.05, 0.3)) for i in range(n)]
    gc.collect()
    tasks_before = len(asyncio.all_tasks())
    async with make_hub({"video_from_text": 0.25}, max_inflight=64) as hub:
        tracemalloc.start()
        try:
            base, _ = tracemalloc.get_traced_memory()
            futures = [hub.watch("video_from_text", i, jobs.fetch) for i in ids]
            pending_bytes = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        # One scheduler task, not one sleeping task per job.
        assert len(asyncio.all_tasks()) - tasks_before <= 2
        assert hub.pending == n
        results = await asyncio.wait_for(asyncio.gather(*futures), 120)
    print(f"10k pending jobs: {pending_bytes / 1e6:.2f} MB traced")
    assert pending_bytes < 8 * 1024 * 1024, f"{pending_bytes / 1e6:.1f} MB for {n} jobs"
    assert [r["id"] for r in results] == ids
    assert all(r["status"] == "completed" for r in results)
    stats = hub.stats()["video_from_text"]
    assert stats.resolved == n and stats.watched == n and stats.errors == 0
    assert stats.polls == sum(jobs.polls.values())
    # Scouts calibrate the kind; every parked job is then polled from its start.
    print(f"polls/job {stats.polls_per_job:.2f}, first-poll hits {stats.first_hit_rate:.0%}")
    assert stats.polls_per_job < 4
    assert hub.pending == 0


async def test_a_resumed_job_is_polled_at_once_and_teaches_nothing() -> None:
    jobs = FakeJobs()
    async with make_hub({"render": 0.2}, jitter=0.0) as hub:
        fresh = hub.watch("render", jobs.add("fresh", 0), jobs.fetch)
        resumed = hub.watch("render", jobs.add("resumed", 0), jobs.fetch, elapsed=5.0)
        await asyncio.gather(fresh, resumed)
        assert jobs.order == ["resumed", "fresh"]
        stats = hub.stats()["render"]
        # The fresh scout was done at its first poll: "faster than that" teaches nothing yet.
        assert stats.resolved == 2 and stats.samples == 0


async def test_misses_back_off_and_resolve() -> None:
    jobs = FakeJobs()
    async with make_hub() as hub:
        result = await hub.watch("lipsync", jobs.add("slowpoke", 0.08), jobs.fetch)
    assert result["status"] == "completed"
    assert 2 <= jobs.polls["slowpoke"] <= 12  # geometric, not every few ms
    stats = hub.stats()["lipsync"]
    assert stats.first_hits == 0 and stats.samples == 1 and not stats.calibrated
    assert 0.08 * 0.6 < stats.estimate < 0.08 * 1.6  # drawn from its last bracket


async def test_custom_done_predicate_and_failed_status() -> None:
    async def fetch(job_id: str) -> str:
        return "failed"

    async with make_hub({"publish_content": 0.001}) as hub:
        result = await hub.watch("publish_content", "1", fetch, done=lambda s: s != "pending")
    assert result == "failed"


async def test_fetch_errors_fail_only_that_watcher() -> None:
    jobs = FakeJobs()

    async def flaky(job_id: str) -> dict[str, Any]:
        if job_id == "bad":
            raise ConnectionError("sim went away")
        return await jobs.fetch(job_id)

    async with make_hub({"text": 0.001}) as hub:
        bad = hub.watch("text", "bad", flaky)
        good = hub.watch("text", jobs.add("good", 0), flaky)
        with pytest.raises(ConnectionError):
            await bad
        assert (await good)["status"] == "completed"
        assert hub.stats()["text"].errors == 1


async def test_cancelled_watch_is_never_polled_again() -> None:
    jobs = FakeJobs()
    async with make_hub({"image_from_text": 0.02}) as hub:
        gone = hub.watch("image_from_text", jobs.add("gone", 10), jobs.fetch)
        kept = hub.watch("image_from_text", jobs.add("kept", 0.03), jobs.fetch)
        gone.cancel()
        await kept
    assert "gone" not in jobs.polls


async def test_close_cancels_pending_watchers() -> None:
    jobs = FakeJobs()
    hub = make_hub({"video_from_text": 60.0})
    fut = hub.watch("video_from_text", jobs.add("x", 60), jobs.fetch)
    await hub.close()
    assert fut.cancelled()
    with pytest.raises(RuntimeError, match="closed"):
        hub.watch("video_from_text", "y", jobs.fetch)


async def test_inflight_polls_are_capped() -> None:
    active = peak = 0
    release = asyncio.Event()
    full = asyncio.Event()

    async def slow_fetch(job_id: str) -> dict[str, str]:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        if active == 3:
            full.set()
        await release.wait()
        active -= 1
        return {"status": "completed"}

    async with make_hub({"media": 0.001}, max_inflight=3) as hub:
        futures = [hub.watch("media", str(i), slow_fetch) for i in range(20)]
        await asyncio.wait_for(full.wait(), 30)
        await asyncio.sleep(0.01)  # room for a (wrong) fourth poll to start
        assert peak == 3
        release.set()
        await asyncio.gather(*futures)
    assert peak == 3


async def test_polls_pass_the_rate_gate_at_poll_priority() -> None:
    jobs = FakeJobs()
    gate = RateGate(5000.0)
    async with make_hub({"captions": 0.005}, gate=gate) as hub:
        await asyncio.gather(
            *(hub.watch("captions", jobs.add(str(i), 0.01), jobs.fetch) for i in range(30))
        )
    total = sum(jobs.polls.values())
    assert gate.stats.acquired == total
    assert gate.stats.by_priority == {Priority.POLL: total}


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer instead of sleeping.

    Schedules are then exact and instant to run: no wall-clock timing.
    """

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0
        select = self._selector.select  # type: ignore[attr-defined]

        def jump(timeout: float | None = None) -> Any:
            if timeout:
                self._now += timeout
            return select(0)

        self._selector.select = jump  # type: ignore[attr-defined]

    def time(self) -> float:
        return self._now


def run_virtual(main: Callable[[asyncio.AbstractEventLoop], Awaitable[T]]) -> T:
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.close()


class Budget:
    """A rate gate seen from the hub, ``used`` (0..1) of its rate taken all along."""

    def __init__(self, used: float, rate: float = 100.0) -> None:
        self.rate = rate
        self.used = used

    @property
    def stats(self) -> Budget:
        return self

    @property
    def acquired(self) -> int:
        return int(self.used * self.rate * asyncio.get_running_loop().time())


@dataclass
class Job:
    start: float
    duration: float
    polls: list[float] = field(default_factory=list)  # loop times polls were sent
    seen: float = 0.0  # loop time the watcher got the result

    @property
    def delay(self) -> float:
        return self.seen - (self.start + self.duration)


@dataclass
class Run:
    jobs: list[Job]
    stats: dict[str, KindStats]
    calibrated_at: float | None  # loop time the kind calibrated

    def after(self, share: float) -> list[Job]:
        """Jobs started after ``share`` of the run (the warm-up left out)."""
        cut = self.jobs[int(len(self.jobs) * share)].start
        return [j for j in self.jobs if j.start >= cut]

    @staticmethod
    def median_delay(jobs: list[Job]) -> float:
        fractions = sorted(j.delay / j.duration for j in jobs)
        return fractions[len(fractions) // 2]

    @staticmethod
    def polls_per_job(jobs: list[Job]) -> float:
        return sum(len(j.polls) for j in jobs) / len(jobs)


def simulate(
    low: float,
    high: float,
    *,
    n: int = 600,
    span: float | None = None,
    kind: str = "video_from_text",
    budget: Budget | None = None,
    rtt: float = 0.0,
    exact: bool = False,
    seed: int = 11,
    **hub_kw: Any,
) -> Run:
    """``n`` jobs started at random over ``span`` s, durations U[low, high], virtual clock."""
    span = span if span is not None else max(40 * high, 20.0)

    async def main(loop: asyncio.AbstractEventLoop) -> Run:
        rng = random.Random(seed)
        jobs: dict[str, Job] = {}
        calibrated_at: float | None = None

        async def fetch(job_id: str) -> dict[str, Any]:
            nonlocal calibrated_at
            job = jobs[job_id]
            job.polls.append(loop.time())
            if calibrated_at is None and hub.stats()[kind].calibrated:
                calibrated_at = loop.time()
            await asyncio.sleep(rtt / 2)
            finished = loop.time() >= job.start + job.duration
            await asyncio.sleep(rtt / 2)
            return {"status": "completed" if finished else "processing", "took": job.duration}

        def took(result: dict[str, Any]) -> float:
            return float(result["took"])

        async def one(job_id: str) -> None:
            job = jobs[job_id] = Job(loop.time(), rng.uniform(low, high))
            await hub.watch(kind, job_id, fetch, duration=took if exact else None)
            job.seen = loop.time()

        hub = PollHub(budget=budget, seed=5, **hub_kw)
        async with hub:
            started = []
            for i in range(n):
                started.append(asyncio.ensure_future(one(str(i))))
                await asyncio.sleep(rng.expovariate(n / span))
            await asyncio.gather(*started)
            return Run(list(jobs.values()), hub.stats(), calibrated_at)

    return run_virtual(main)


#: The simulator's latency ranges (seconds at time scale 1): +/-33-40 %.
RANGES = {"video": (60.0, 120.0), "render": (25.0, 55.0), "text": (3.0, 7.0)}


@pytest.mark.parametrize("scale", [1.0, 0.02])
@pytest.mark.parametrize("name", list(RANGES))
def test_the_ladder_sees_jobs_within_a_tenth_of_their_duration_at_under_3_polls(
    name: str, scale: float
) -> None:
    """Full slack: after warm-up, median delay <= 10 % of the job, <= 3 polls a job."""
    low, high = (x * scale for x in RANGES[name])
    run = simulate(low, high, budget=Budget(0.0))
    jobs = run.after(0.25)
    median, polls = Run.median_delay(jobs), Run.polls_per_job(jobs)
    print(f"{name} x{scale} slack: median delay {median:.1%} of the job, {polls:.2f} polls/job")
    assert all(j.delay >= 0 for j in run.jobs)
    assert polls <= 3.0
    assert median <= 0.10


@pytest.mark.parametrize("scale", [1.0, 0.02])
@pytest.mark.parametrize("name", list(RANGES))
def test_a_busy_budget_climbs_fewer_higher_rungs(name: str, scale: float) -> None:
    """Every token used: ~1.1 polls a job, a later look (~30 % of the job).

    With the gate saturated an earlier look finishes no row sooner (its next
    request queues at the gate) and each poll displaces new work."""
    low, high = (x * scale for x in RANGES[name])
    run = simulate(low, high, budget=Budget(0.95))
    jobs = run.after(0.25)
    median, polls = Run.median_delay(jobs), Run.polls_per_job(jobs)
    print(f"{name} x{scale} busy: median delay {median:.1%} of the job, {polls:.2f} polls/job")
    assert polls <= 1.2
    assert median <= 0.4


@pytest.mark.parametrize("scale", [1.0, 0.02])
@pytest.mark.parametrize("name", ["video", "render"])
def test_with_slack_the_slowest_jobs_are_seen_within_a_twentieth_of_the_median(
    name: str, scale: float
) -> None:
    """Past its rungs a job is polled every 5 % of the kind's median duration
    while tokens are idle (the run waits for its slowest jobs last); busy, the
    back-off stays."""
    low, high = (x * scale for x in RANGES[name])
    median = (low + high) / 2
    cut = low + 0.95 * (high - low)

    def slowest(run: Run) -> list[Job]:
        return [j for j in run.after(0.25) if j.duration >= cut]

    idle = simulate(low, high, budget=Budget(0.0))
    busy = simulate(low, high, budget=Budget(0.95))
    assert max(j.delay for j in slowest(idle)) <= 0.06 * median
    assert Run.polls_per_job(idle.after(0.25)) <= 3.0
    assert max(j.delay for j in slowest(busy)) > 0.1 * median
    assert Run.polls_per_job(busy.after(0.25)) <= 1.5


def tail_polls(*, queued: bool) -> list[float]:
    """Poll times of a 400 s job of a kind learned at 60-120 s, with full slack;
    ``queued``: another job of the kind reads ``pending`` all along."""

    async def main(loop: asyncio.AbstractEventLoop) -> list[float]:
        ends: dict[str, float] = {}
        seen: dict[str, list[float]] = {}

        async def fetch(job_id: str) -> dict[str, str]:
            now = loop.time()
            seen.setdefault(job_id, []).append(now)
            if job_id == "stuck":
                return {"status": "pending"}
            return {"status": "completed" if now >= ends[job_id] else "processing"}

        def job(name: str, duration: float) -> str:
            ends[name] = loop.time() + duration
            return name

        async with PollHub(budget=Budget(0.0), seed=3) as hub:
            warm = [hub.watch("video", job(f"w{i}", 60 + 6 * i), fetch) for i in range(11)]
            await asyncio.gather(*warm)
            stuck = hub.watch("video", "stuck", fetch) if queued else None
            t0 = loop.time()
            await hub.watch("video", job("slow", 400), fetch)
            if stuck is not None:
                stuck.cancel()
        return [t - t0 for t in seen["slow"]]

    return run_virtual(main)


def test_the_tail_cadence_needs_no_queue_and_stops_after_eight_polls() -> None:
    """Behind a server queue elapsed times say nothing of run time: no tail
    cadence.  Without one, a job far slower than its kind gets at most
    ``ENGINE_POLL_TAIL_POLLS`` of it, then backs off."""
    free = tail_polls(queued=False)
    held = tail_polls(queued=True)
    window = (115.0, 230.0)  # past the top rung, up to twice its time

    def within(polls: list[float]) -> int:
        return sum(window[0] <= t <= window[1] for t in polls)

    print(f"polls in the window: {within(free)} free, {within(held)} behind a queue")
    assert within(held) <= 6
    assert within(held) < within(free) <= ENGINE_POLL_TAIL_POLLS + 6
    assert max(free) >= 400.0 and max(held) >= 400.0


def test_a_round_trip_delays_detection_by_about_half_of_it() -> None:
    """Polls answered 0.5 s after they are sent: the ladder still holds."""
    run = simulate(60, 120, budget=Budget(0.0), rtt=0.5)
    jobs = run.after(0.25)
    assert Run.polls_per_job(jobs) <= 3.0 and Run.median_delay(jobs) <= 0.10


def test_a_kind_20x_faster_than_its_prior_calibrates_from_a_few_scouts() -> None:
    """video_from_text's prior is 90 s; these take 3-6 s, 200 started over 12 s."""
    run = simulate(3.0, 6.0, n=200, span=12.0)
    assert run.calibrated_at is not None and run.calibrated_at < 10.0  # not ~90 s
    before = [t for j in run.jobs for t in j.polls if t < run.calibrated_at]
    print(f"calibrated at {run.calibrated_at:.2f} s after {len(before)} polls")
    assert len(before) <= 4 * 12  # the scouts only
    assert min(t - j.start for j in run.jobs for t in j.polls[:1]) < 0.5  # scouts look at once
    parked = [j for j in run.jobs if j.polls and j.polls[0] >= run.calibrated_at]
    assert len(parked) > 80
    # Once calibrated, each job's first poll is in its learned window, not at the prior.
    assert all(j.polls[0] - j.start < 2 * 6.0 for j in run.jobs)
    fresh = [j.polls[0] - j.start for j in run.jobs if j.start > run.calibrated_at]
    assert fresh and all(3.0 * 0.8 <= first <= 6.0 * 1.1 for first in fresh)
    assert max(j.delay for j in run.after(0.0)) < 6.0
    stats = run.stats["video_from_text"]
    assert stats.calibrated and stats.samples > 100
    assert 3.0 <= stats.estimate <= 6.0


def test_exact_durations_are_learned_as_they_are() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> tuple[list[float], list[float]]:
        durations = [1.0, 2.0, 3.0, 4.0, 5.0]

        async def fetch(job_id: str) -> dict[str, Any]:
            return {"status": "completed", "took": durations[int(job_id)]}

        async with PollHub(seed=1) as hub:
            await asyncio.gather(
                *(
                    hub.watch("render", str(i), fetch, duration=lambda r: r["took"])
                    for i in range(len(durations))
                )
            )
            return list(hub._models["render"].sorted), durations

    learned, durations = run_virtual(main)
    assert learned == durations  # not the brackets the polls saw (all done at once)


def test_exact_durations_tighten_the_ladder() -> None:
    drawn = simulate(60, 120, budget=Budget(0.0)).after(0.25)
    exact = simulate(60, 120, budget=Budget(0.0), exact=True).after(0.25)
    print(
        f"brackets: {Run.median_delay(drawn):.1%} at {Run.polls_per_job(drawn):.2f} polls; "
        f"exact: {Run.median_delay(exact):.1%} at {Run.polls_per_job(exact):.2f}"
    )
    assert Run.median_delay(exact) <= 0.10 and Run.polls_per_job(exact) <= 3.0


def test_census_follows_each_jobs_last_status() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> tuple[list[tuple[int, int]], Census]:
        script = {
            "a": ["pending", "pending", "processing", "completed"],
            "b": ["pending", "processing", "running", "processing", "failed"],
            "c": ["pending"] + ["processing"] * 100,  # its watcher gives up
        }
        last: dict[str, str] = {}
        seen: list[tuple[int, int]] = []

        async def fetch(job_id: str) -> dict[str, str]:
            # What the hub counts is what each job's last answer said.
            c = hub.census()
            queued = sum(s == "pending" for s in last.values())
            running = sum(s in ("processing", "running") for s in last.values())
            assert (c.queued, c.running) == (queued, running)
            seen.append((queued, running))
            status = last[job_id] = script[job_id].pop(0)
            if status in ("completed", "failed"):
                del last[job_id]
            return {"status": status}

        async with PollHub(seed=1) as hub:
            futures = [hub.watch("image", j, fetch, elapsed=1.0) for j in script]
            await asyncio.gather(*futures[:2])
            assert hub.census() == Census(0, 1)  # c still running
            futures[2].cancel()
            await asyncio.sleep(0)
            return seen, hub.census()

    seen, after = run_virtual(main)
    assert (2, 1) in seen or (3, 0) in seen  # queued jobs were counted
    assert any(running >= 2 for _, running in seen)
    assert after == Census(0, 0)  # resolved or cancelled: no longer counted


def test_census_counts_are_kept_not_scanned() -> None:
    hub = PollHub()
    assert hub.census() == Census(0, 0)


def test_a_failed_scout_hands_its_place_to_a_parked_job() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> dict[str, list[float]]:
        polls: dict[str, list[float]] = {}

        async def fetch(job_id: str) -> dict[str, str]:
            polls.setdefault(job_id, []).append(loop.time())
            if job_id == "scout":
                raise ConnectionError("gone")
            return {"status": "processing"}

        async with PollHub(seeds={"k": 1000.0}, scouts=1, seed=1) as hub:
            scout = hub.watch("k", "scout", fetch)
            hub.watch("k", "parked", fetch)
            with pytest.raises(ConnectionError):
                await scout
            await asyncio.sleep(5.0)
        return polls

    polls = run_virtual(main)
    assert polls["scout"][0] < 0.5
    assert polls["parked"] and polls["parked"][0] < 0.5  # not at its 1000 s bound
    assert len(polls["parked"]) > 3  # now a scout itself


def test_parked_jobs_wait_for_the_prior_bound_at_most() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> dict[str, list[float]]:
        polls: dict[str, list[float]] = {}

        async def fetch(job_id: str) -> dict[str, str]:
            polls.setdefault(job_id, []).append(loop.time())
            return {"status": "processing"}  # nothing ever finishes: never calibrated

        async with PollHub(seeds={"k": 7.0}, scouts=1, seed=1) as hub:
            hub.watch("k", "scout", fetch)
            hub.watch("k", "parked", fetch)
            hub.watch("k", "restarted", fetch, elapsed=30.0)
            await asyncio.sleep(6.0)
            early = {k: list(v) for k, v in polls.items()}
            await asyncio.sleep(2.0)
        return {**{f"{k}@6": v for k, v in early.items()}, **polls}

    polls = run_virtual(main)
    assert "parked@6" not in polls  # parked: no polls before its bound
    assert polls["restarted@6"][0] == 0.0  # found again after a restart: polled at once, not parked
    assert 7.0 <= polls["parked"][0] < 8.0


def test_brackets_are_wall_clock_around_the_completion() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> tuple[list[Bracket], float, float]:
        done_at = 3.0
        brackets: list[Bracket] = []

        async def fetch(job_id: str) -> dict[str, str]:
            await asyncio.sleep(0.01)
            return {"status": "completed" if loop.time() >= done_at else "processing"}

        async with PollHub(seed=1) as hub:
            offset = time.time() - loop.time()
            await hub.watch("x", "1", fetch, on_resolved=brackets.append)
            await hub.watch("x", "2", fetch, on_resolved=brackets.append)  # done at once
        return brackets, offset + done_at, offset

    (first, second), completion, offset = run_virtual(main)
    assert first.done_after is not None and first.done_at is None
    assert first.done_after <= completion <= first.done_by
    assert first.done_by - first.done_after < 0.5 * 3.0 + 0.1  # a scout's bracket
    assert abs(first.done_by - completion) < 2.0
    assert second.done_after is None and second.done_by > offset


def test_model_window_keeps_recent_samples_sorted() -> None:
    model = _Model("render", 40.0, 0.25, size=16)
    assert model.estimate == 40.0  # the bound, until it has samples
    for x in range(100):
        model.add(float(x))
    assert model.sorted == sorted(model.window) and len(model.window) == 16
    assert model.stats.samples == 100
    assert model.quantile(0.0) > 16  # the early samples are replaced


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        PollHub(ladder=(0.25, 1.0, 0.5, 0.9))
    with pytest.raises(ValueError):
        PollHub(ladder=(0.25, 0.5), busy_ladder=(0.5, 0.8, 0.9))
    with pytest.raises(ValueError):
        PollHub(scout_factor=1.0)
    with pytest.raises(TypeError):
        PollHub(scale=0.002)  # type: ignore[call-arg]  # no time scale any more


async def test_priors_are_bounds_keyed_by_type_or_kind() -> None:
    async with PollHub(seeds={"video_from_text:veo_3_fast": 20.0}) as hub:
        assert hub.estimate("video_from_text:veo_3") == 90.0  # the type's bound
        assert hub.estimate("video_from_text:veo_3_fast") == 20.0
        assert hub.estimate("never-heard-of-it") == 30.0


def queue_run(report_pending: bool, *, cap: int = 10, n: int = 200) -> float:
    """``n`` jobs of ~1 s posted at once to a server running ``cap`` at a time (FIFO);
    mean polls per job.  ``report_pending``: queued jobs read ``pending`` (else
    ``processing``, a server that hides its queue)."""

    async def main(loop: asyncio.AbstractEventLoop) -> float:
        rng = random.Random(3)
        durations = [rng.uniform(0.8, 1.2) for _ in range(n)]
        ends: list[float] = []
        slots = [0.0] * cap  # when each server slot frees up
        for d in durations:  # FIFO: each job takes the first free slot
            i = min(range(cap), key=slots.__getitem__)
            slots[i] += d
            ends.append(slots[i])
        starts = [e - d for e, d in zip(ends, durations, strict=True)]
        polls = [0] * n

        async def fetch(job_id: str) -> dict[str, str]:
            i, now = int(job_id), loop.time()
            polls[i] += 1
            if now >= ends[i]:
                return {"status": "completed"}
            queued = now < starts[i] and report_pending
            return {"status": "pending" if queued else "processing"}

        async with PollHub(seed=2) as hub:
            await asyncio.gather(*(hub.watch("video", str(i), fetch) for i in range(n)))
        return sum(polls) / n

    return run_virtual(main)


def test_a_job_queued_at_the_server_is_polled_sparsely() -> None:
    """Past the first rung a ``pending`` job waits in a queue: the ladder (run time)
    says nothing about it, so its polls space out geometrically."""
    told = queue_run(report_pending=True)
    hidden = queue_run(report_pending=False)
    assert told <= 6.0, told
    assert told < 0.75 * hidden, (told, hidden)


def test_probes_are_seen_started_long_before_they_finish_and_a_queued_one_never_acks() -> None:
    """At GEN's real latencies a job finishes minutes after it starts; a probe
    says within seconds whether the server runs new jobs (the generations
    cap's slow start is clocked by it, tests/engine/test_engine_tuning.py)."""

    async def main(loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
        runs_at: dict[str, float] = {}  # when the server starts running the job
        ends_at: dict[str, float] = {}
        polls: dict[str, list[float]] = {}

        async def fetch(job_id: str) -> dict[str, str]:
            now = loop.time()
            polls.setdefault(job_id, []).append(now)
            if now >= ends_at[job_id]:
                return {"status": "completed"}
            return {"status": "processing" if now >= runs_at[job_id] else "pending"}

        def job(name: str, pending: float, duration: float) -> str:
            now = loop.time()
            runs_at[name], ends_at[name] = now + pending, now + duration
            return name

        async with PollHub(seed=3) as hub:
            # Calibrate the kind: 100 s jobs, pending for their first 10 s.
            warm = [hub.watch("video", job(f"w{i}", 10, 100 + i), fetch) for i in range(6)]
            await asyncio.gather(*warm)
            hub.want_probes(2)
            t0 = loop.time()
            new = [
                hub.watch("video", job("p1", 10, 100), fetch, probe=True),
                hub.watch("video", job("p2", 12, 100), fetch, probe=True),
                hub.watch("video", job("plain", 10, 100), fetch, probe=True),  # none wanted
                hub.watch("video", job("q", 10, 100), fetch),  # not a candidate
            ]
            await asyncio.sleep(30)
            early = hub.census()
            hub.want_probes(1)
            queued = hub.watch("video", job("queued", 90, 180), fetch, probe=True)
            await asyncio.sleep(60)
            stuck = hub.census()
            await asyncio.gather(*new, queued)
            return {
                "early": early,
                "stuck": stuck,
                "after": hub.census(),
                "first": {k: v[0] - t0 for k, v in polls.items() if k in runs_at and v},
                "queued_polls": len([t for t in polls["queued"] if t < t0 + 90]),
            }

    got = run_virtual(main)
    early, stuck = got["early"], got["stuck"]
    assert (early.acks, early.probing) == (2, 0)  # both seen running within 30 s of 100
    assert got["first"]["p1"] < 10 and got["first"]["p2"] < 12  # looked at early
    assert got["first"]["plain"] > 30 and got["first"]["q"] > 30  # on their ladder
    assert (stuck.acks, stuck.probing) == (2, 1)  # queued for a minute: no ack
    assert got["queued_polls"] <= 15  # probed at geometric steps, not hammered
    assert got["after"].probing == 0 and got["after"].acks == 3  # it ran in the end
