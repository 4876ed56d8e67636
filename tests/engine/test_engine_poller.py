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


def test_quantile_tracker_converges_to_the_target_quantile() -> None:
    """Simulate polling U[60,120] s jobs: one poll at E, then 'soon after'."""
    rng = random.Random(3)
    model = _Model("video_from_text", 90.0)
    for _ in range(5_000):
        duration = rng.uniform(60, 120)
        hit = duration <= model.estimate
        model.observe(hit, None if hit else model.estimate, quantile=0.85, eta=0.02, floor=0.1)
    # The 0.85 quantile of U[60,120] is 111.
    assert 105 < model.estimate < 117


def test_quantile_tracker_recovers_from_a_bad_seed() -> None:
    rng = random.Random(4)
    low = _Model("render", 1.0)  # seeded far too low
    for _ in range(60):
        duration = rng.uniform(25, 55)
        hit = duration <= low.estimate
        # After a miss the job is polled until done; its last miss is just
        # before its completion.
        low.observe(hit, None if hit else duration * 0.95, quantile=0.85, eta=0.05, floor=0.1)
    assert low.estimate > 25  # a miss's lower bound lifts it at once
    high = _Model("render", 400.0)  # seeded far too high
    for _ in range(600):
        duration = rng.uniform(25, 55)
        high.observe(duration <= high.estimate, None, quantile=0.85, eta=0.05, floor=0.1)
    assert high.estimate < 100


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        PollHub(scale=0)
    with pytest.raises(ValueError):
        PollHub(quantile=1.0)


async def test_scale_shrinks_seeds() -> None:
    async with PollHub(scale=0.002) as hub:
        assert hub.estimate("video_from_text") == pytest.approx(90 * 0.002)
        assert hub.estimate("never-heard-of-it") == pytest.approx(30 * 0.002)
