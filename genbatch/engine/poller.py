"""The poll hub: one scheduler for every pending generation, render and job.

No task sleeps per job.  Every watched job is a small slotted record in one
heap ordered by next-due time; a single scheduler task wakes at the earliest
due time and starts that poll (at most ``max_inflight`` polls run at once,
each passing the shared rate gate at :attr:`Priority.POLL`).  10,000 pending
jobs are a few MB and one timer.

When to poll.  Polls spend the same rate budget as new work, so the
schedule depends on how busy that budget is:

* each kind (``video_from_text``, ``render``, ...) keeps its recent
  completion times (``ENGINE_POLL_WINDOW``), seeded with a prior spread
  around ``ENGINE_POLL_SEED_SECONDS`` x ``scale`` (the simulator's time
  scale, so rehearsals learn nothing wrong).  Each finished job adds one
  absolute sample -- the middle of its last (not done, done] poll window, or
  ``HIT_SHRINK`` x the first poll's time when that poll already found it
  done -- so a cohort of jobs started together adds samples, it cannot
  compound a multiplicative step (the old tracker ran 1.2 s -> 23 s that way);
* the first poll comes at a quantile of those samples: high (0.85) when the
  rate gate is busy, so one poll usually suffices; low (0.4) when the gate
  has slack, so polls bracket the likely completion;
* after a miss inside the likely window the next poll comes ``STEP`` x the
  job's elapsed time later (a job is seen within ~STEP of its duration),
  beyond the window the interval grows geometrically, clamped to
  ``[min, max] x scale``, all with jitter.

Slack comes from ``budget`` (the rate gate the client's polls pass, watched
not entered: its acquisitions per second against its rate).  Without one
the hub assumes ``ENGINE_POLL_DEFAULT_SLACK``.

A fetch that raises fails the watcher's future with that exception; the
client has already retried what was retryable.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from bisect import bisect_left, insort
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Generic, Protocol, Self, TypeVar

from genbatch.engine.limits import Gate, Priority

#: Expected seconds to completion per job kind at time_scale 1.0 (the middle
#: of the documented latency ranges); learning replaces them within a run.
ENGINE_POLL_SEED_SECONDS: Final[dict[str, float]] = {
    "text": 5.0,
    "speech_from_text": 10.0,
    "image_from_text": 20.0,
    "video_from_text": 90.0,
    "video_from_image": 90.0,
    "video_from_ingredients": 90.0,
    "lipsync": 60.0,
    "captions": 10.0,
    "media": 1.5,
    "render": 40.0,
    "publish_content": 10.0,
    "train_social": 20.0,
    "agent_run": 30.0,
}
#: Seed for a kind not listed above.
ENGINE_POLL_SEED_DEFAULT: Final = 30.0
#: The first poll aims at this quantile of the kind's learned completion
#: times when the rate gate is busy (polls displace new work), and at the
#: tight one when the gate has slack (polls are free; detection delay falls).
ENGINE_POLL_FIRST_QUANTILE: Final = 0.85
ENGINE_POLL_TIGHT_QUANTILE: Final = 0.4
#: Completion times kept per kind (a random sample of recent jobs; their
#: quantiles drive the schedule).  A prior of evenly spread points over seed x (1 +/- spread)
#: fills the window until real jobs push it out.
ENGINE_POLL_WINDOW: Final = 128
ENGINE_POLL_PRIOR_POINTS: Final = 8
ENGINE_POLL_PRIOR_SPREAD: Final = 1 / 3
#: A job done at its first poll is recorded at this fraction of that time
#: (it finished somewhere before), so a first poll set too late walks down.
ENGINE_POLL_HIT_SHRINK: Final = 0.8
#: After a miss inside the likely window (below this quantile), the next poll
#: comes STEP x the job's elapsed time later: a job is seen within ~STEP of
#: its duration.  Past the window the interval grows by the factor, within
#: [min, max] seconds (x scale).
ENGINE_POLL_WINDOW_END_QUANTILE: Final = 0.97
ENGINE_POLL_STEP: Final = 0.1
ENGINE_POLL_BACKOFF_FACTOR: Final = 1.6
ENGINE_POLL_MIN_INTERVAL: Final = 0.5
ENGINE_POLL_MAX_INTERVAL: Final = 30.0
#: Rate-gate slack (1 - used share of its rate, measured over this many
#: seconds): at or below LOW polls use the busy quantile, at or above HIGH
#: the tight one, in between a blend.  Without a gate to watch, DEFAULT.
ENGINE_POLL_SLACK_SECONDS: Final = 1.0
ENGINE_POLL_SLACK_LOW: Final = 0.15
ENGINE_POLL_SLACK_HIGH: Final = 0.5
ENGINE_POLL_DEFAULT_SLACK: Final = 0.0
#: Relative jitter (+/-) on every delay, so jobs started together spread out.
ENGINE_POLL_JITTER: Final = 0.1
#: Polls running concurrently; bounds tasks alive however many jobs wait.
ENGINE_POLL_MAX_INFLIGHT: Final = 64

__all__ = ["TERMINAL_STATUSES", "KindStats", "PollHub", "RateBudget", "is_terminal"]

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


class _Counted(Protocol):
    @property
    def acquired(self) -> int: ...


class RateBudget(Protocol):
    """What the hub reads of a rate gate (:class:`~genbatch.engine.limits.RateGate` fits)."""

    @property
    def rate(self) -> float: ...

    @property
    def stats(self) -> _Counted: ...


class _Model:
    """One kind's recent completion times (seconds since watch), kept sorted."""

    __slots__ = ("rng", "size", "sorted", "stats", "window")

    def __init__(self, kind: str, seed: float, *, size: int = ENGINE_POLL_WINDOW) -> None:
        n, spread = ENGINE_POLL_PRIOR_POINTS, ENGINE_POLL_PRIOR_SPREAD
        prior = [seed * (1 - spread + 2 * spread * (i + 0.5) / n) for i in range(n)]
        self.window = prior
        self.size = max(size, n)
        self.sorted = sorted(prior)
        self.stats = KindStats(kind, seed)
        self.rng = random.Random(len(kind))

    def quantile(self, q: float) -> float:
        xs = self.sorted
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    def add(self, sample: float) -> None:
        """Keep ``size`` samples; when full, a random one makes room.

        Random, not oldest: a cohort of jobs started together resolves in
        duration order, so "the last N" would be its slowest N.
        """
        if len(self.window) < self.size:
            self.window.append(sample)
        else:
            i = self.rng.randrange(self.size)
            del self.sorted[bisect_left(self.sorted, self.window[i])]
            self.window[i] = sample
        insort(self.sorted, sample)

    def observe(self, hit: bool, last_miss: float | None, at: float, *, floor: float) -> None:
        """Learn one finished job.

        ``hit``: done at its first poll, answered ``at`` seconds after watch;
        otherwise it was seen unfinished at ``last_miss`` (when that poll was
        sent) and done at ``at``: the middle of that window is the sample.
        """
        done_by = at * ENGINE_POLL_HIT_SHRINK
        sample = done_by if hit or last_miss is None else (last_miss + at) / 2
        self.add(max(sample, floor))


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
        self.first_at = 0.0  # seconds after t0 the first poll was planned for
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
        tight_quantile: float = ENGINE_POLL_TIGHT_QUANTILE,
        step: float = ENGINE_POLL_STEP,
        backoff_factor: float = ENGINE_POLL_BACKOFF_FACTOR,
        min_interval: float = ENGINE_POLL_MIN_INTERVAL,
        max_interval: float = ENGINE_POLL_MAX_INTERVAL,
        jitter: float = ENGINE_POLL_JITTER,
        budget: RateBudget | None = None,
        seed: int | None = None,
    ) -> None:
        """``gate``: polls pass it (and, if it is a rate gate, it is the budget).
        ``budget``: a rate gate the polls use elsewhere (the client's hooks),
        watched for slack, never entered.  ``quantile``/``tight_quantile``:
        first-poll quantile when that gate is busy / has slack.
        """
        if scale <= 0 or max_inflight < 1 or not 0 < tight_quantile <= quantile < 1 or step <= 0:
            raise ValueError(
                "need scale > 0, max_inflight >= 1, 0 < tight_quantile <= quantile < 1, step > 0"
            )
        self._gate = gate
        self._priority = priority
        self._scale = scale
        self._seeds = dict(ENGINE_POLL_SEED_SECONDS)
        self._seeds.update(seeds or {})
        self._max_inflight = max_inflight
        self._q_busy = quantile
        self._q_tight = tight_quantile
        self._step = step
        self._factor = backoff_factor
        self._min = min_interval * scale
        self._max = max_interval * scale
        self._jitter = jitter
        self._rng = random.Random(seed)
        if budget is None and hasattr(gate, "rate") and hasattr(gate, "stats"):
            budget = gate  # type: ignore[assignment]
        self._budget = budget
        self._slack = ENGINE_POLL_DEFAULT_SLACK
        self._slack_mark: tuple[float, int] | None = None
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
        """Current first-poll target for ``kind``, in seconds after the job starts."""
        return self._model(kind).quantile(self._first_quantile())

    @property
    def slack(self) -> float:
        """Last measured share of the rate budget left unused (0..1)."""
        return self._slack

    @property
    def pending(self) -> int:
        """Jobs waiting for a poll (scheduled) plus polls running now."""
        return len(self._heap) + len(self._inflight)

    def stats(self) -> dict[str, KindStats]:
        """Per-kind snapshot (copies; safe to keep)."""
        out = {}
        q = self._first_quantile()
        for kind, model in self._models.items():
            s = model.stats
            out[kind] = KindStats(
                kind,
                model.quantile(q),
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
        job.first_at = self._jittered(model.quantile(self._first_quantile()))
        first = max(job.first_at - elapsed, 0.0)
        self._push(job, job.t0 + elapsed + first)
        return future

    # -- internals ---------------------------------------------------------------
    def _model(self, kind: str) -> _Model:
        model = self._models.get(kind)
        if model is None:
            seed = self._seeds.get(kind, ENGINE_POLL_SEED_DEFAULT) * self._scale
            model = self._models[kind] = _Model(kind, seed)
        return model

    def _first_quantile(self) -> float:
        """Busy gate: aim high (one poll); slack: aim low and bracket."""
        lo, hi = ENGINE_POLL_SLACK_LOW, ENGINE_POLL_SLACK_HIGH
        w = min(1.0, max(0.0, (self._measure_slack() - lo) / (hi - lo)))
        return self._q_busy - w * (self._q_busy - self._q_tight)

    def _measure_slack(self) -> float:
        """Budget's unused share over the last ``ENGINE_POLL_SLACK_SECONDS`` (smoothed)."""
        budget = self._budget
        if budget is None:
            return self._slack
        try:
            now = asyncio.get_running_loop().time()
        except RuntimeError:
            return self._slack
        acquired = budget.stats.acquired
        mark = self._slack_mark
        if mark is None:
            self._slack_mark = (now, acquired)
        elif now - mark[0] >= ENGINE_POLL_SLACK_SECONDS:
            used = (acquired - mark[1]) / ((now - mark[0]) * max(budget.rate, 1e-9))
            self._slack = 0.5 * self._slack + 0.5 * max(0.0, 1.0 - used)
            self._slack_mark = (now, acquired)
        return self._slack

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
        sent = loop.time() - job.t0
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
        # Not done when the server answered, so not done when we asked.
        job.last_miss = sent
        model = job.model
        if at < model.quantile(ENGINE_POLL_WINDOW_END_QUANTILE):
            interval = self._step * at  # inside the likely window: stay close
        else:
            interval = max(job.interval * self._factor, self._step * at)  # a slow one
        job.interval = min(self._max, max(self._min, interval))
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
        model.observe(hit, job.last_miss, at, floor=self._min)
