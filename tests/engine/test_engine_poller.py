"""Poll hub: one scheduler, every future resolves, memory stays small.

Fetches are in-memory async functions (no HTTP).  Assertions are about
counts, order and bounds — never about how long something took.
"""

from __future__ import annotations

import asyncio
import gc
import random
import tracemalloc
from typing import Any

import pytest

from genbatch.engine.limits import Priority, RateGate
from genbatch.engine.poller import PollHub, _Model, is_terminal


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


def make_hub(seeds: dict[str, float], **kw: Any) -> PollHub:
    """A hub with intervals sized for millisecond fake jobs."""
    kw.setdefault("min_interval", 0.002)
    kw.setdefault("max_interval", 0.05)
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
    # The first poll aims high, so most jobs need very few polls.
    print(f"polls/job {stats.polls_per_job:.2f}, first-poll hits {stats.first_hit_rate:.0%}")
    assert stats.polls_per_job < 4
    assert hub.pending == 0


async def test_earliest_due_is_polled_first() -> None:
    jobs = FakeJobs()
    async with make_hub({"slow": 0.06, "fast": 0.01}, jitter=0.0) as hub:
        slow = hub.watch("slow", jobs.add("slow", 0), jobs.fetch)
        fast = hub.watch("fast", jobs.add("fast", 0), jobs.fetch)
        await asyncio.gather(slow, fast)
    assert jobs.order == ["fast", "slow"]


async def test_a_resumed_job_is_polled_at_once_and_teaches_nothing() -> None:
    jobs = FakeJobs()
    async with make_hub({"render": 0.2}, jitter=0.0) as hub:
        fresh = hub.watch("render", jobs.add("fresh", 0), jobs.fetch)
        resumed = hub.watch("render", jobs.add("resumed", 0), jobs.fetch, elapsed=5.0)
        await asyncio.gather(fresh, resumed)
        assert jobs.order == ["resumed", "fresh"]
        assert hub.stats()["render"].resolved == 2


async def test_misses_back_off_and_resolve() -> None:
    jobs = FakeJobs()
    async with make_hub({"lipsync": 0.01}) as hub:
        result = await hub.watch("lipsync", jobs.add("slowpoke", 0.08), jobs.fetch)
    assert result["status"] == "completed"
    assert jobs.polls["slowpoke"] >= 2
    stats = hub.stats()["lipsync"]
    assert stats.first_hits == 0
    assert stats.estimate > 0.01  # a miss grows the estimate


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


def simulate(
    low: float,
    high: float,
    *,
    seed: float,
    waves: int,
    per_wave: int,
    gap: float,
    budget: Budget | None = None,
    rtt: float = 0.0,
) -> tuple[list[tuple[float, float]], float, list[float]]:
    """Waves of jobs started together, durations U[low, high], on a virtual clock.

    Returns (duration, detection delay) per job, polls per job, and the
    kind's first-poll estimate after each wave.
    """
    loop = VirtualClockLoop()
    rng = random.Random(11)

    async def main() -> tuple[list[tuple[float, float]], float, list[float]]:
        done_at: dict[str, float] = {}
        polls = 0

        async def fetch(job_id: str) -> dict[str, str]:
            nonlocal polls
            polls += 1
            await asyncio.sleep(rtt / 2)
            status = "completed" if loop.time() >= done_at[job_id] else "processing"
            await asyncio.sleep(rtt / 2)
            return {"status": status}

        out: list[tuple[float, float]] = []
        estimates: list[float] = []
        hub = PollHub(scale=1.0, seeds={"video": seed}, budget=budget, seed=5, min_interval=0.01)
        async with hub:

            async def one(job_id: str, duration: float) -> None:
                start = loop.time()
                done_at[job_id] = start + duration
                await hub.watch("video", job_id, fetch)
                out.append((duration, loop.time() - done_at[job_id]))

            for w in range(waves):
                batch = [one(f"{w}-{i}", rng.uniform(low, high)) for i in range(per_wave)]
                await asyncio.gather(*batch, asyncio.sleep(gap))
                estimates.append(hub.estimate("video"))
        return out, polls / len(out), estimates

    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def test_simultaneous_jobs_do_not_run_the_estimate_away() -> None:
    """The benchmark's failure: 1.2-2.4 s jobs, seeded low, started in cohorts."""
    jobs, polls_per_job, estimates = simulate(1.2, 2.4, seed=1.2, waves=12, per_wave=150, gap=0.5)
    seen = [d for d, _ in jobs]
    print(f"estimates {[round(e, 2) for e in estimates]}, polls/job {polls_per_job:.2f}")
    # Never outside what was observed.
    assert all(min(seen) <= e <= max(seen) for e in estimates)
    assert polls_per_job <= 3


@pytest.mark.parametrize("rtt", [0.0, 0.5])
def test_slack_gate_polls_bracket_completion(rtt: float) -> None:
    """With an idle rate gate: <= 3 polls a job, median delay <= 10 % of the job."""
    jobs, polls_per_job, estimates = simulate(
        60, 120, seed=90, waves=8, per_wave=120, gap=30, budget=Budget(0.2), rtt=rtt
    )
    fractions = sorted(delay / duration for duration, delay in jobs)
    median = fractions[len(fractions) // 2]
    print(f"slack: polls/job {polls_per_job:.2f}, median delay {median:.1%} of the job")
    assert all(delay >= 0 for _, delay in jobs)
    assert polls_per_job <= 3
    assert median <= 0.10
    assert all(60 * 0.8 <= e <= 120 for e in estimates)


def test_busy_gate_polls_once_mostly() -> None:
    """A saturated gate (every token used): first poll high, few extra polls."""
    budget = Budget(0.95)
    _, polls_per_job, estimates = simulate(
        60, 120, seed=90, waves=8, per_wave=120, gap=30, budget=budget
    )
    print(f"busy: polls/job {polls_per_job:.2f}")
    assert polls_per_job <= 1.5
    assert estimates[-1] > 100  # aims near the 0.85 quantile (111)


def test_estimate_recovers_from_bad_seeds() -> None:
    _, _, low = simulate(25, 55, seed=1.0, waves=3, per_wave=100, gap=10)
    assert 25 <= low[-1] <= 55  # one wave of misses teaches the range
    _, _, high = simulate(25, 55, seed=200.0, waves=40, per_wave=25, gap=10)
    assert high[-1] < 100  # hits walk a late first poll down (0.8 x per turnover)


def test_model_window_keeps_recent_samples_sorted() -> None:
    model = _Model("render", 40.0, size=16)
    assert model.quantile(0.0) < 40 < model.quantile(0.99)  # the prior brackets the seed
    for x in range(100):
        model.observe(False, float(x), float(x) + 2, floor=0.1)
    assert model.sorted == sorted(model.window) and len(model.window) == 16
    assert model.quantile(0.0) > 40  # the prior is replaced by (x + x + 2) / 2 samples


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        PollHub(scale=0)
    with pytest.raises(ValueError):
        PollHub(quantile=1.0)
    with pytest.raises(ValueError):
        PollHub(quantile=0.3, tight_quantile=0.5)


async def test_scale_shrinks_seeds() -> None:
    async with PollHub(scale=0.002) as hub:
        # The seed x scale, spread by the prior; the busy first poll aims high in it.
        assert 90 * 0.002 < hub.estimate("video_from_text") < 120 * 0.002
        assert 30 * 0.002 < hub.estimate("never-heard-of-it") < 40 * 0.002
