"""The poll hub: one scheduler for every pending generation, render and job.

No task sleeps per job.  Every watched job is a small slotted record in one
heap ordered by next-due time; a single scheduler task wakes at the earliest
due time and starts that poll (at most ``max_inflight`` polls run at once,
each passing the shared rate gate at :attr:`Priority.POLL`).  10,000 pending
jobs are a few MB and one timer.

When to poll.  Polls spend the same rate budget as new work, so the hub aims
to look once, just after the job is done:

* the first poll comes at the kind's estimate ``E`` (``video_from_text``,
  ``render``, ...), seeded from ``ENGINE_POLL_SEED_SECONDS`` × ``scale`` (the
  simulator's time scale, so rehearsals learn nothing wrong);
* ``E`` tracks the ``ENGINE_POLL_FIRST_QUANTILE`` quantile of completion
  times by stochastic approximation (Robbins–Monro): a job found done at its
  first poll shrinks ``E`` by ``η(1-q)``, a job not yet done grows it by
  ``ηq``, so at equilibrium a fraction ``q`` of jobs need exactly one poll.
  This works on what polling can observe — "done by then or not" — where an
  average of detection times would only ever learn its own schedule;
* after a miss the next polls follow ``E·start·factor^k`` with jitter,
  clamped to ``[min, max] × scale``.

A fetch that raises fails the watcher's future with that exception; the
client has already retried what was retryable.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from genbatch._constants import (
    ENGINE_POLL_BACKOFF_FACTOR,
    ENGINE_POLL_BACKOFF_START,
    ENGINE_POLL_BOOTSTRAP_JOBS,
    ENGINE_POLL_FIRST_QUANTILE,
    ENGINE_POLL_JITTER,
    ENGINE_POLL_LEARN_RATE,
    ENGINE_POLL_LEARN_RATE_BOOTSTRAP,
    ENGINE_POLL_MAX_INFLIGHT,
    ENGINE_POLL_MAX_INTERVAL,
    ENGINE_POLL_MIN_INTERVAL,
    ENGINE_POLL_SEED_DEFAULT,
    ENGINE_POLL_SEED_SECONDS,
)
from genbatch.engine.limits import Gate, Priority

__all__ = ["TERMINAL_STATUSES", "KindStats", "PollHub", "is_terminal"]

T = TypeVar("T")

#: Final states of generations, renders, user jobs and agent runs.
TERMINAL_STATUSES = frozenset({"completed", "failed", "stopped"})

# A first poll later than this multiple of E (gate congestion) says nothing
# about whether the job was done *by E*, so a hit there is not learned from.
_LATE_FIRST_POLL = 1.5


def is_terminal(result: object) -> bool:
    """Default ``done`` test: ``result.status`` (or ``result["status"]``) is final."""
    status = (
        result.get("status") if isinstance(result, Mapping) else getattr(result, "status", None)
    )
    return status in TERMINAL_STATUSES


@dataclass(slots=True)
class KindStats:
    """Per-kind figures (a snapshot from :meth:`PollHub.stats`)."""

    kind: str
    estimate: float
    watched: int = 0
    resolved: int = 0
    polls: int = 0
    first_hits: int = 0
    errors: int = 0
    delay_sum: float = 0.0
    fastest: float = float("inf")

    @property
    def polls_per_job(self) -> float:
        return self.polls / self.resolved if self.resolved else 0.0

    @property
    def first_hit_rate(self) -> float:
        return self.first_hits / self.resolved if self.resolved else 0.0

    @property
    def detection_delay(self) -> float:
        """Rough mean seconds from completion to detection.

        A job is done somewhere between the previous poll (or, for a first
        poll hit, the fastest completion seen for the kind) and the poll that
        saw it; half that window is the estimate.  Benchmarks measure the
        exact figure from the simulator's ledger.
        """
        return self.delay_sum / self.resolved if self.resolved else 0.0


class _Model:
    """The quantile tracker for one kind."""

    __slots__ = ("estimate", "learned", "stats")

    def __init__(self, kind: str, estimate: float) -> None:
        self.estimate = estimate
        self.learned = 0
        self.stats = KindStats(kind, estimate)

    def observe(
        self, hit: bool, last_miss: float | None, *, quantile: float, eta: float, floor: float
    ) -> None:
        """One Robbins–Monro step toward the ``quantile`` of completion times.

        ``hit``: done at the first poll (planned at the estimate).
        ``last_miss``: the latest time the job was seen unfinished.
        """
        boot = self.learned < ENGINE_POLL_BOOTSTRAP_JOBS
        step = ENGINE_POLL_LEARN_RATE_BOOTSTRAP if boot else eta
        self.learned += 1
        if hit:
            self.estimate *= 1.0 - step * (1.0 - quantile)
        else:
            self.estimate *= 1.0 + step * quantile
            if last_miss is not None:
                # Not done at last_miss: this kind can take at least that long.
                self.estimate = max(self.estimate, last_miss)
        self.estimate = max(self.estimate, floor)


class _Job(Generic[T]):
    __slots__ = (
        "done",
        "fetch",
        "first_at",
        "future",
        "interval",
        "job_id",
        "last_miss",
        "learn",
        "model",
        "polls",
        "t0",
    )

    def __init__(
        self,
        model: _Model,
        job_id: str,
        fetch: Callable[[str], Awaitable[T]],
        done: Callable[[T], bool],
        future: asyncio.Future[T],
        t0: float,
        learn: bool,
    ) -> None:
        self.model = model
        self.job_id = job_id
        self.fetch = fetch
        self.done = done
        self.future = future
        self.t0 = t0
        self.learn = learn
        self.polls = 0
        self.last_miss: float | None = None
        self.first_at = model.estimate  # E when the first poll was planned
        self.interval = 0.0


class PollHub:
    """One scheduler for all pending jobs.  Use as ``async with PollHub() as hub``."""

    def __init__(
        self,
        *,
        gate: Gate | None = None,
        priority: int = Priority.POLL,
        scale: float = 1.0,
        seeds: Mapping[str, float] | None = None,
        max_inflight: int = ENGINE_POLL_MAX_INFLIGHT,
        quantile: float = ENGINE_POLL_FIRST_QUANTILE,
        learn_rate: float = ENGINE_POLL_LEARN_RATE,
        backoff_start: float = ENGINE_POLL_BACKOFF_START,
        backoff_factor: float = ENGINE_POLL_BACKOFF_FACTOR,
        min_interval: float = ENGINE_POLL_MIN_INTERVAL,
        max_interval: float = ENGINE_POLL_MAX_INTERVAL,
        jitter: float = ENGINE_POLL_JITTER,
        seed: int | None = None,
    ) -> None:
        if scale <= 0 or max_inflight < 1 or not 0 < quantile < 1:
            raise ValueError("need scale > 0, max_inflight >= 1 and 0 < quantile < 1")
        self._gate = gate
        self._priority = priority
        self._scale = scale
        self._seeds = dict(ENGINE_POLL_SEED_SECONDS)
        self._seeds.update(seeds or {})
        self._max_inflight = max_inflight
        self._q = quantile
        self._eta = learn_rate
        self._start = backoff_start
        self._factor = backoff_factor
        self._min = min_interval * scale
        self._max = max_interval * scale
        self._jitter = jitter
        self._rng = random.Random(seed)
        self._models: dict[str, _Model] = {}
        self._heap: list[tuple[float, int, _Job[Any]]] = []
        self._seq = itertools.count()
        self._inflight: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle -------------------------------------------------------------
    async def __aenter__(self) -> Self:
        self._ensure_started()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _ensure_started(self) -> None:
        if self._closed:
            raise RuntimeError("poll hub is closed")
        if self._scheduler is None:
            self._scheduler = asyncio.get_running_loop().create_task(
                self._run(), name="genbatch-poll-hub"
            )

    async def close(self) -> None:
        """Stop polling; every still-pending watcher's future is cancelled."""
        self._closed = True
        tasks = [t for t in (self._scheduler, *self._inflight) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, _, job in self._heap:
            job.future.cancel()
        self._heap.clear()

    # -- public ----------------------------------------------------------------
    def estimate(self, kind: str) -> float:
        """Current first-poll target for ``kind``, in seconds."""
        return self._model(kind).estimate

    @property
    def pending(self) -> int:
        """Jobs waiting for a poll (scheduled) plus polls running now."""
        return len(self._heap) + len(self._inflight)

    def stats(self) -> dict[str, KindStats]:
        """Per-kind snapshot (copies; safe to keep)."""
        out = {}
        for kind, model in self._models.items():
            s = model.stats
            out[kind] = KindStats(
                kind,
                model.estimate,
                s.watched,
                s.resolved,
                s.polls,
                s.first_hits,
                s.errors,
                s.delay_sum,
                s.fastest,
            )
        return out

    def watch(
        self,
        kind: str,
        job_id: str,
        fetch: Callable[[str], Awaitable[T]],
        *,
        done: Callable[[T], bool] = is_terminal,
        elapsed: float = 0.0,
    ) -> asyncio.Future[T]:
        """Poll ``fetch(job_id)`` until ``done(result)``; the future gets the result.

        ``kind`` picks the duration model (a generation type, ``"render"``,
        ``"publish_content"``, ...).  ``elapsed``: seconds the job has already
        been running (a job found again after a restart): its first poll
        comes sooner, and it teaches the model nothing.  Cancelling the
        future stops watching.
        """
        self._ensure_started()
        loop = asyncio.get_running_loop()
        model = self._model(kind)
        future: asyncio.Future[T] = loop.create_future()
        job = _Job(model, str(job_id), fetch, done, future, loop.time() - elapsed, elapsed == 0)
        model.stats.watched += 1
        first = max(model.estimate - elapsed, 0.0)
        self._push(job, job.t0 + elapsed + self._jittered(first))
        return future

    # -- internals ---------------------------------------------------------------
    def _model(self, kind: str) -> _Model:
        model = self._models.get(kind)
        if model is None:
            seed = self._seeds.get(kind, ENGINE_POLL_SEED_DEFAULT) * self._scale
            model = self._models[kind] = _Model(kind, seed)
        return model

    def _jittered(self, delay: float) -> float:
        return delay * (1.0 + self._rng.uniform(-self._jitter, self._jitter))

    def _push(self, job: _Job[Any], due: float) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), job))
        if self._heap[0][2] is job:
            self._wakeup.set()  # a new earliest deadline

    async def _run(self) -> None:
        try:
            await self._schedule()
        except Exception as exc:
            # A scheduler bug must not leave watchers waiting forever.
            for _, _, job in self._heap:
                if not job.future.done():
                    job.future.set_exception(exc)
            self._heap.clear()
            raise

    async def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._heap or len(self._inflight) >= self._max_inflight:
                await self._wakeup.wait()
                self._wakeup.clear()
                continue
            due, _, job = self._heap[0]
            delay = due - loop.time()
            if delay > 0:
                timer = loop.call_at(due, self._wakeup.set)
                try:
                    await self._wakeup.wait()
                finally:
                    timer.cancel()
                self._wakeup.clear()
                continue
            heapq.heappop(self._heap)
            if job.future.done():
                continue  # the watcher gave up
            task = loop.create_task(self._poll(job))
            self._inflight.add(task)
            task.add_done_callback(self._poll_done)

    def _poll_done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wakeup.set()  # a poll slot is free

    async def _poll(self, job: _Job[Any]) -> None:
        loop = asyncio.get_running_loop()
        stats = job.model.stats
        try:
            if self._gate is not None:
                async with self._gate.slot(self._priority):
                    result = await job.fetch(job.job_id)
            else:
                result = await job.fetch(job.job_id)
            finished = job.done(result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stats.errors += 1
            if not job.future.done():
                job.future.set_exception(exc)
            return
        job.polls += 1
        stats.polls += 1
        at = loop.time() - job.t0
        if job.future.done():
            return
        if finished:
            self._learn(job, at)
            job.future.set_result(result)
            return
        job.last_miss = at
        job.interval = (
            job.model.estimate * self._start if job.polls == 1 else job.interval * self._factor
        )
        job.interval = min(self._max, max(self._min, job.interval))
        self._push(job, loop.time() + self._jittered(job.interval))

    def _learn(self, job: _Job[Any], at: float) -> None:
        model = job.model
        stats = model.stats
        stats.resolved += 1
        stats.fastest = min(stats.fastest, at)
        hit = job.polls == 1
        stats.first_hits += hit
        lower = job.last_miss if job.last_miss is not None else min(stats.fastest, at)
        stats.delay_sum += (at - lower) / 2
        if not job.learn or (hit and at > job.first_at * _LATE_FIRST_POLL):
            return
        model.observe(hit, job.last_miss, quantile=self._q, eta=self._eta, floor=self._min)
