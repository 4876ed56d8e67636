"""The poll hub: one scheduler for every pending generation, render and job.

No task sleeps per job.  Every watched job is a small slotted record in one
heap ordered by next-due time; a single scheduler task wakes at the earliest
due time and starts that poll (at most ``max_inflight`` polls run at once,
each passing the shared rate gate at :attr:`Priority.POLL`).  10,000 pending
jobs are a few MB and one timer.

When to poll.  GEN's objects carry no timestamps and its latencies differ
per model and change, so each *kind* (an opaque key such as
``"video_from_text:veo_3"``) learns its completion times during the run,
with no prior and no time scale:

* **Scouting.**  A kind with fewer than ``ENGINE_POLL_CALIBRATED`` samples
  bounded on both sides (below) is uncalibrated.  Up to
  ``ENGINE_POLL_SCOUTS`` of its jobs at a time are scouts, polled
  ``ENGINE_POLL_SCOUT_FIRST`` seconds after watch, then at elapsed times
  growing by ``ENGINE_POLL_SCOUT_FACTOR``.  Its other jobs are parked (no
  polls) until the kind calibrates -- then each is scheduled from its own
  start (due now if already past its first rung) -- or a scout leaves while
  the kind is still uncalibrated (a parked job takes its place), or the
  kind's prior (``ENGINE_POLL_SEED_SECONDS``) has passed: the
  prior only bounds how long a job waits unpolled, it is never a poll time.
  A fast server is seen within a fraction of a second; a slow one costs a
  few scouts' polls, not a dozen per job.  A scout found done at its first
  poll only says "faster than that": it is not counted, and the kind's next
  scouts look sooner.
* **Samples.**  A finished job teaches one completion time: its exact
  duration when the result says (``duration=``: the server's own
  timestamps), else a point drawn uniformly from its bracket -- from when
  the last poll that saw it unfinished was sent (0 for a hit at its planned
  first poll) to when the poll that saw it done was answered.  Draws, not
  midpoints: midpoints pile up between rungs and the quantiles would lock
  onto them, while with draws the share of samples below a rung is the
  share of jobs done by it, so a rung placed too early or too late walks to
  its quantile.  Once calibrated, the prior plays no part.  Kept:
  ``ENGINE_POLL_WINDOW`` samples, a random one replaced when full (a cohort
  resolves in duration order; "the last N" would be its slowest).  A job
  found again after a restart (``elapsed``) is polled at once and teaches
  only an exact duration.
* **The ladder.**  A calibrated kind's jobs are polled at rungs on the
  learned distribution: quantiles ``ENGINE_POLL_LADDER`` when the rate
  budget has slack, fewer and higher ones (``ENGINE_POLL_BUSY_LADDER``)
  when it is busy -- polls take tokens new work needs -- blended in
  between; each rung jittered in quantile space so jobs started together
  spread out.  Past the last rung, intervals grow geometrically -- with
  slack and no job seen queued, up to twice the top rung's time and at
  most eight times, every 5 % of the kind's median instead: the slowest
  jobs are the ones a run waits for last.  Two polls
  of a job are never closer than ``ENGINE_POLL_MIN_STEP`` x its elapsed time
  (and ``min_interval``), nor further apart than ``max_interval``.  Against
  durations spread +/-33 % this sees a job within ~8-9 % of its duration
  (median) at ~2.6 polls with slack, ~30 % at ~1.1 polls when busy (a
  saturated gate gains nothing from an earlier look; tests/engine/
  test_engine_poller.py, virtual clock).

Slack comes from ``budget`` (the rate gate the client's polls pass, watched
not entered: its acquisitions per second against its rate).  Without one
the hub assumes ``ENGINE_POLL_DEFAULT_SLACK``.

The hub also keeps a census of what each watched job's last poll said
(``pending``: queued by the server; ``processing``: running), so the run
can stop piling work into a server-side queue.

A fetch that raises fails the watcher's future with that exception; the
client has already retried what was retryable.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import random
import time
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Final, Generic, Protocol, Self, TypeVar

from genbatch.engine.limits import Gate, Priority

#: Rough seconds to completion per job kind (the middle of GEN's documented
#: latency ranges).  Only a bound: a job of an uncalibrated kind waits at
#: most this long unpolled.  A ``"type:model"`` kind falls back to its type.
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
#: A kind is calibrated once it has this many samples bounded on both sides
#: (a miss before the hit, or an exact duration); until then up to SCOUTS of
#: its jobs are polled SCOUT_FIRST s after watch, then at elapsed times x
#: SCOUT_FACTOR (brackets of +/-20 %).  A scout done at its first poll makes
#: the kind's next scouts look SCOUT_FACTOR**2 sooner than that.
ENGINE_POLL_CALIBRATED: Final = 3
ENGINE_POLL_SCOUTS: Final = 4
ENGINE_POLL_SCOUT_FIRST: Final = 0.25
ENGINE_POLL_SCOUT_FACTOR: Final = 1.5
#: Rungs (quantiles of the learned completion times) a calibrated kind's jobs
#: are polled at: with slack, four (a job is seen within ~a quarter of the
#: spread: ~8 % of its duration at ~2.6 polls); busy, two high ones (~30 %
#: at ~1.1 polls: with every token used a poll displaces new work, and an
#: earlier look finishes no row sooner -- its next request queues at the
#: gate -- so one look a job for 93 % of them).  Equal length, blended by
#: slack; repeated rungs count once.  The top rung is below 1 so it settles
#: on its quantile (a rung above every job would learn nothing to bring it
#: down).
ENGINE_POLL_LADDER: Final = (0.25, 0.5, 0.75, 0.9)
ENGINE_POLL_BUSY_LADDER: Final = (0.93, 0.98, 0.98, 0.98)
#: Each rung's quantile is moved by up to +/- this, so cohorts spread out and
#: brackets do not all share the same ends -- but never above RUNG_MAX: a
#: rung at the sample's maximum would not settle on a quantile.
ENGINE_POLL_RUNG_JITTER: Final = 0.04
ENGINE_POLL_RUNG_MAX: Final = 0.99
#: Completion times kept per kind (a random sample of recent jobs).
ENGINE_POLL_WINDOW: Final = 128
#: Past the last rung the interval is at least STEP x elapsed and grows by
#: BACKOFF_FACTOR a poll, capped by MAX_INTERVAL seconds.
ENGINE_POLL_STEP: Final = 0.1
ENGINE_POLL_BACKOFF_FACTOR: Final = 1.6
#: ... unless the rate budget has slack and no job is seen queued at the
#: server: then, up to TAIL_SPAN x the top rung's time, a job past its rungs
#: is polled every TAIL_STEP x its kind's median duration (blended with the
#: back-off by slack).  The slowest jobs are the ones a run waits for last,
#: and idle tokens cost nothing; behind a server queue elapsed times include
#: the wait, so "past its rungs" says nothing there.
ENGINE_POLL_TAIL_STEP: Final = 0.05
ENGINE_POLL_TAIL_SPAN: Final = 2.0
#: At most this many tail-cadence polls a job (a heavy-tailed kind's top
#: rung may sit far above its median).
ENGINE_POLL_TAIL_POLLS: Final = 8
#: A job still ``pending`` past the first rung waits in the server's queue
#: (a running job leaves ``pending`` early): the ladder, which models run
#: time, says nothing about it, so its polls space out to this x elapsed.
ENGINE_POLL_QUEUED_STEP: Final = 1.0
ENGINE_POLL_MAX_INTERVAL: Final = 30.0
#: A probe (:meth:`PollHub.want_probes`) is first polled at this share of its
#: kind's fastest completion, then at elapsed times x SCOUT_FACTOR.
ENGINE_POLL_PROBE_FIRST: Final = 0.1
#: Two polls of one job are at least MIN_STEP x its elapsed time apart, and
#: never closer than MIN_INTERVAL seconds: a floor for sub-second jobs, low
#: enough for a 60-140 ms job (text at sim time scale 0.02) to get its rungs.
ENGINE_POLL_MIN_STEP: Final = 0.03
ENGINE_POLL_MIN_INTERVAL: Final = 0.01
#: Rate-gate slack (1 - used share of its rate, measured over this many
#: seconds): at or below LOW polls use the busy ladder, at or above HIGH the
#: slack one, in between a blend.  Without a gate to watch, DEFAULT.
ENGINE_POLL_SLACK_SECONDS: Final = 1.0
ENGINE_POLL_SLACK_LOW: Final = 0.15
ENGINE_POLL_SLACK_HIGH: Final = 0.5
ENGINE_POLL_DEFAULT_SLACK: Final = 0.0
#: Relative jitter (+/-) on scout and back-off delays.
ENGINE_POLL_JITTER: Final = 0.1
#: Polls running concurrently; bounds tasks alive however many jobs wait.
ENGINE_POLL_MAX_INFLIGHT: Final = 64

__all__ = [
    "TERMINAL_STATUSES",
    "Bracket",
    "Census",
    "KindStats",
    "PollHub",
    "RateBudget",
    "is_terminal",
]

T = TypeVar("T")

#: Final states of generations, renders, user jobs and agent runs.
TERMINAL_STATUSES = frozenset({"completed", "failed", "stopped"})

# Job states.
_PARKED, _SCOUT, _LADDER, _GONE = 0, 1, 2, 3
# Census phases of a job's last answer.
_UNKNOWN, _QUEUED, _RUNNING = 0, 1, 2
_PHASES: Final = {"pending": _QUEUED, "processing": _RUNNING, "running": _RUNNING}


def _status(result: object) -> object:
    return result.get("status") if isinstance(result, Mapping) else getattr(result, "status", None)


def is_terminal(result: object) -> bool:
    """Default ``done`` test: ``result.status`` (or ``result["status"]``) is final."""
    return _status(result) in TERMINAL_STATUSES


@dataclass(frozen=True, slots=True)
class Bracket:
    """When one job finished, in wall-clock epoch seconds (for the journal).

    ``done_after``: the last poll that saw it unfinished was sent (None: no
    such poll).  ``done_by``: the poll that saw it finished was answered.
    ``done_at``: the exact completion when the server's timestamps say
    (the hub leaves it None; :class:`~genbatch.engine.watch.HubWatcher` fills it).
    """

    done_after: float | None
    done_by: float
    done_at: float | None = None


@dataclass(frozen=True, slots=True)
class Census:
    """Watched jobs by their last poll: ``pending`` (queued) or ``processing``/``running``."""

    queued: int
    running: int
    #: Probes seen started by the server so far (:meth:`PollHub.want_probes`).
    acks: int = 0
    #: Probes not yet seen started.
    probing: int = 0


@dataclass(slots=True)
class KindStats:
    """Per-kind figures (a snapshot from :meth:`PollHub.stats`)."""

    kind: str
    #: Median learned completion time (the prior until calibrated).
    estimate: float
    watched: int = 0
    resolved: int = 0
    polls: int = 0
    first_hits: int = 0
    errors: int = 0
    delay_sum: float = 0.0
    fastest: float = float("inf")
    #: Real samples learned (exact or drawn from a bracket), and whether
    #: there are enough to schedule by them.
    samples: int = 0
    calibrated: bool = False

    @property
    def polls_per_job(self) -> float:
        return self.polls / self.resolved if self.resolved else 0.0

    @property
    def first_hit_rate(self) -> float:
        return self.first_hits / self.resolved if self.resolved else 0.0

    @property
    def detection_delay(self) -> float:
        """Rough mean seconds from completion to detection.

        Exact when the job's duration was known; otherwise half the window
        between the previous poll (or, for a first-poll hit, the fastest
        completion seen for the kind) and the poll that saw it.  Benchmarks
        measure the exact figure from the simulator's ledger.
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
    """One kind: its recent completion times (seconds since watch, sorted), scouts, parked jobs."""

    __slots__ = (
        "bound",
        "first",
        "informed",
        "parked",
        "rng",
        "scouts",
        "size",
        "sorted",
        "stats",
        "window",
    )

    def __init__(
        self, kind: str, bound: float, first: float, *, size: int = ENGINE_POLL_WINDOW
    ) -> None:
        self.window: list[float] = []
        self.sorted: list[float] = []
        self.size = max(size, 1)
        self.bound = bound
        self.stats = KindStats(kind, bound)
        self.rng = random.Random(len(kind))
        self.scouts = 0
        self.parked: deque[_Job[Any]] = deque()
        #: Scouts' first poll (seconds after watch); shrinks while scouts are
        #: found done at it, which says only "faster than that".
        self.first = first
        #: Samples that bound the job from below too (a miss before, or exact):
        #: what calibration counts.
        self.informed = 0

    @property
    def calibrated(self) -> bool:
        return self.stats.calibrated

    def quantile(self, q: float) -> float:
        """Interpolated between order statistics (few samples still give a spread)."""
        xs = self.sorted
        pos = min(max(q, 0.0), 1.0) * (len(xs) - 1)
        i = int(pos)
        if i + 1 >= len(xs):
            return xs[-1]
        return xs[i] + (pos - i) * (xs[i + 1] - xs[i])

    @property
    def estimate(self) -> float:
        return self.quantile(0.5) if self.sorted else self.bound

    def add(self, sample: float) -> None:
        """Keep ``size`` samples; when full, a random one makes room."""
        if len(self.window) < self.size:
            self.window.append(sample)
        else:
            i = self.rng.randrange(self.size)
            del self.sorted[bisect_left(self.sorted, self.window[i])]
            self.window[i] = sample
        insort(self.sorted, sample)
        self.stats.samples += 1


class _Job(Generic[T]):
    """One watched job; also its future's done callback (no closure per job)."""

    __slots__ = (
        "done",
        "duration",
        "fetch",
        "future",
        "hub",
        "interval",
        "job_id",
        "last_miss",
        "learn",
        "model",
        "on_resolved",
        "phase",
        "planned",
        "polls",
        "probe",
        "rung",
        "seq",
        "state",
        "t0",
        "tail",
    )

    def __init__(
        self,
        hub: PollHub,
        model: _Model,
        job_id: str,
        fetch: Callable[[str], Awaitable[T]],
        done: Callable[[T], bool],
        future: asyncio.Future[T],
        t0: float,
        learn: bool,
    ) -> None:
        self.hub = hub
        self.model = model
        self.job_id = job_id
        self.fetch = fetch
        self.done = done
        self.duration: Callable[[T], float | None] | None = None
        self.on_resolved: Callable[[Bracket], None] | None = None
        self.future = future
        self.t0 = t0
        #: Brackets teach (False for a job found again after a restart).
        self.learn = learn
        #: The next poll is at its scheduled time, so a hit there bounds the
        #: job from 0 (False for a poll that comes late: after a park).
        self.planned = True
        self.state = _LADDER
        self.phase = _UNKNOWN
        self.polls = 0
        self.rung = 0  # ladder rungs passed (each is climbed once, whatever its jitter)
        self.tail = 0  # polls at the tail cadence (ENGINE_POLL_TAIL_STEP) so far
        self.seq = -1  # the live heap entry's sequence number
        self.last_miss: float | None = None
        self.interval = 0.0
        #: Polled early until the server is seen running it (a probe).
        self.probe = False

    def __call__(self, _future: asyncio.Future[T]) -> None:
        self.hub._release(self)


class PollHub:
    """One scheduler for all pending jobs.  Use as ``async with PollHub() as hub``."""

    def __init__(
        self,
        *,
        gate: Gate | None = None,
        priority: int = Priority.POLL,
        seeds: Mapping[str, float] | None = None,
        max_inflight: int = ENGINE_POLL_MAX_INFLIGHT,
        ladder: tuple[float, ...] = ENGINE_POLL_LADDER,
        busy_ladder: tuple[float, ...] = ENGINE_POLL_BUSY_LADDER,
        calibrated: int = ENGINE_POLL_CALIBRATED,
        scouts: int = ENGINE_POLL_SCOUTS,
        scout_first: float = ENGINE_POLL_SCOUT_FIRST,
        scout_factor: float = ENGINE_POLL_SCOUT_FACTOR,
        step: float = ENGINE_POLL_STEP,
        backoff_factor: float = ENGINE_POLL_BACKOFF_FACTOR,
        min_step: float = ENGINE_POLL_MIN_STEP,
        min_interval: float = ENGINE_POLL_MIN_INTERVAL,
        max_interval: float = ENGINE_POLL_MAX_INTERVAL,
        jitter: float = ENGINE_POLL_JITTER,
        budget: RateBudget | None = None,
        seed: int | None = None,
    ) -> None:
        """``gate``: polls pass it (and, if it is a rate gate, it is the budget).
        ``budget``: a rate gate the polls use elsewhere (the client's hooks),
        watched for slack, never entered.  ``seeds``: per-kind bounds on how
        long a job of an uncalibrated kind waits unpolled (over the defaults).
        """
        rungs_ok = len(ladder) == len(busy_ladder) > 0 and all(
            0 < q < 1 for q in (*ladder, *busy_ladder)
        )
        if not (
            rungs_ok
            and max_inflight >= 1
            and calibrated >= 1
            and scouts >= 1
            and scout_first > 0
            and scout_factor > 1
            and backoff_factor >= 1
            and step > 0
            and 0 < min_interval <= max_interval
        ):
            raise ValueError(
                "need ladders of equal length with quantiles in (0, 1), max_inflight, "
                "calibrated, scouts >= 1, scout_first > 0, scout_factor > 1, step > 0, "
                "0 < min_interval <= max_interval"
            )
        self._gate = gate
        self._priority = priority
        self._seeds = dict(ENGINE_POLL_SEED_SECONDS)
        self._seeds.update(seeds or {})
        self._max_inflight = max_inflight
        self._ladder_slack = ladder
        self._ladder_busy = busy_ladder
        self._calibrated = calibrated
        self._scouts = scouts
        self._scout_first = scout_first
        self._scout_factor = scout_factor
        self._step = step
        self._factor = backoff_factor
        self._min_step = min_step
        self._min = min_interval
        self._max = max_interval
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
        self._watching = 0
        self._queued = 0
        self._running = 0
        self._probes_wanted = 0
        self._probing = 0
        self._acks = 0
        self._wall = 0.0  # wall clock - loop clock, taken once at start
        # The futures' done callbacks need no context: one empty one, not a copy each.
        self._context = contextvars.Context()

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
            loop = asyncio.get_running_loop()
            self._wall = time.time() - loop.time()
            self._scheduler = loop.create_task(self._run(), name="genbatch-poll-hub")

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
        await asyncio.sleep(0)  # let the futures' release callbacks run

    # -- public ----------------------------------------------------------------
    def estimate(self, kind: str) -> float:
        """``kind``'s median learned completion time (its prior bound until it has samples)."""
        return self._model(kind).estimate

    @property
    def slack(self) -> float:
        """Last measured share of the rate budget left unused (0..1)."""
        return self._slack

    @property
    def pending(self) -> int:
        """Jobs watched and not yet resolved (scheduled, parked or being polled)."""
        return self._watching

    def census(self) -> Census:
        """Watched jobs whose last poll said ``pending`` / ``processing`` (O(1))."""
        return Census(self._queued, self._running, self._acks, self._probing)

    def want_probes(self, n: int) -> None:
        """Make the next ``n`` jobs watched with ``probe=True`` probes.

        A probe of a calibrated kind is polled early, at geometric steps from
        a tenth of its kind's fastest completions, until it reads running (or
        done): an *ack* (:attr:`Census.acks`) that the server runs what it was
        given -- evidence a job cap's queue would withhold, at any latency,
        long before the job completes.  Then it follows its ladder.
        """
        self._probes_wanted = max(self._probes_wanted, n)

    def stats(self) -> dict[str, KindStats]:
        """Per-kind snapshot (copies; safe to keep)."""
        return {k: replace(m.stats, estimate=m.estimate) for k, m in self._models.items()}

    def watch(
        self,
        kind: str,
        job_id: str,
        fetch: Callable[[str], Awaitable[T]],
        *,
        done: Callable[[T], bool] = is_terminal,
        elapsed: float = 0.0,
        duration: Callable[[T], float | None] | None = None,
        on_resolved: Callable[[Bracket], None] | None = None,
        probe: bool = False,
    ) -> asyncio.Future[T]:
        """Poll ``fetch(job_id)`` until ``done(result)``; the future gets the result.

        ``kind`` picks the duration model (opaque: ``"video_from_text:veo_3"``,
        ``"render"``, ...).  ``elapsed``: seconds the job has already been
        running (found again after a restart): polled at once, teaches only
        an exact duration.  ``duration(result)``: seconds the finished job
        took by the server's clock (None: unknown), learned exactly instead of
        from the poll bracket.  ``on_resolved``: told the job's :class:`Bracket`
        just before the future resolves.  ``probe``: it may serve as a probe
        (:meth:`want_probes`).  Cancelling the future stops watching.
        """
        self._ensure_started()
        loop = asyncio.get_running_loop()
        now = loop.time()
        model = self._model(kind)
        future: asyncio.Future[T] = loop.create_future()
        job = _Job(self, model, str(job_id), fetch, done, future, now - elapsed, elapsed <= 0)
        job.duration = duration
        job.on_resolved = on_resolved
        model.stats.watched += 1
        self._watching += 1
        future.add_done_callback(job, context=self._context)
        if elapsed > 0:
            job.planned = False
            self._push(job, now)
        elif model.calibrated:
            if probe and self._probes_wanted > 0:
                self._probes_wanted -= 1
                self._probing += 1
                job.probe = True
                self._push(job, now + self._jittered(self._probe_first(model)))
            else:
                self._push(job, now + self._after(job, 0.0))
        elif model.scouts < self._scouts:
            job.state = _SCOUT
            model.scouts += 1
            self._push(job, now + self._jittered(model.first))
        else:
            job.state = _PARKED
            model.parked.append(job)
            self._push(job, now + model.bound)
        return future

    # -- internals ---------------------------------------------------------------
    def _model(self, kind: str) -> _Model:
        model = self._models.get(kind)
        if model is None:
            seeds = self._seeds
            bound = seeds.get(kind) or seeds.get(kind.partition(":")[0]) or ENGINE_POLL_SEED_DEFAULT
            model = self._models[kind] = _Model(kind, bound, self._scout_first)
        return model

    def _probe_first(self, model: _Model) -> float:
        """A probe's first look: a tenth of the kind's fastest completions (a
        running job has left ``pending`` by then on any server we know)."""
        return max(self._min, ENGINE_POLL_PROBE_FIRST * model.quantile(0.0))

    def _slack_weight(self) -> float:
        """0 with the budget busy, 1 with slack, a blend in between."""
        lo, hi = ENGINE_POLL_SLACK_LOW, ENGINE_POLL_SLACK_HIGH
        return min(1.0, max(0.0, (self._measure_slack() - lo) / (hi - lo)))

    def _ladder(self, w: float) -> list[float]:
        """The rungs' quantiles for slack weight ``w`` (busy: fewer, higher)."""
        return [b + w * (s - b) for s, b in zip(self._ladder_slack, self._ladder_busy, strict=True)]

    def _after(self, job: _Job[Any], e: float) -> float:
        """Seconds after the job's start for its next poll, now that it is ``e`` old."""
        gap = max(self._min, self._min_step * e)
        model = job.model
        if model.calibrated:
            j = ENGINE_POLL_RUNG_JITTER
            w = self._slack_weight()
            ladder = self._ladder(w)
            if job.phase == _QUEUED and e >= model.quantile(ladder[0]):
                job.rung = len(ladder)  # queued: its run has not begun
                job.interval = min(self._max, max(gap, ENGINE_POLL_QUEUED_STEP * e))
                return e + self._jittered(job.interval)
            while job.rung < len(ladder):
                q = min(ENGINE_POLL_RUNG_MAX, ladder[job.rung] + self._rng.uniform(-j, j))
                t = model.quantile(q)
                job.rung += 1
                if t >= e + gap:
                    job.interval = 0.0  # no back-off yet
                    return t
            interval = max(self._step * e, job.interval * self._factor)
            if (
                w > 0.0
                and self._queued == 0  # a server queue stretches elapsed times: no tail
                and job.tail < ENGINE_POLL_TAIL_POLLS
                and e < ENGINE_POLL_TAIL_SPAN * model.quantile(ladder[-1])
            ):
                tight = w * ENGINE_POLL_TAIL_STEP * model.quantile(0.5) + (1.0 - w) * interval
                if tight < interval:
                    interval = tight
                    job.tail += 1
        else:  # a scout, or a job let out of the park: geometric in elapsed time
            interval = (self._scout_factor - 1.0) * e
        job.interval = min(self._max, max(gap, interval))
        return e + self._jittered(job.interval)

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
        job.seq = seq = next(self._seq)
        heapq.heappush(self._heap, (due, seq, job))
        if self._heap[0][2] is job:
            self._wakeup.set()  # a new earliest deadline

    def _set_phase(self, job: _Job[Any], phase: int) -> None:
        old = job.phase
        if old == phase:
            return
        if old == _QUEUED:
            self._queued -= 1
        elif old == _RUNNING:
            self._running -= 1
        if phase == _QUEUED:
            self._queued += 1
        elif phase == _RUNNING:
            self._running += 1
        job.phase = phase

    def _end_probe(self, job: _Job[Any], *, started: bool) -> None:
        """A probe is no longer one; ``started``: the server was seen running it (an ack)."""
        if job.probe:
            job.probe = False
            self._probing -= 1
            self._acks += started

    def _release(self, job: _Job[Any]) -> None:
        """The watcher's future is done (resolved, failed or cancelled): forget the job."""
        self._watching -= 1
        self._end_probe(job, started=False)
        self._set_phase(job, _UNKNOWN)
        was, job.state = job.state, _GONE
        model = job.model
        if was == _SCOUT:
            model.scouts -= 1
            self._promote(model)

    def _promote(self, model: _Model) -> None:
        """An uncalibrated kind lost a scout: parked jobs take the free places.

        The youngest first: it can still be polled at its planned first poll,
        so what it shows teaches; an old one would often just be done.
        """
        if self._closed or model.calibrated:
            return
        now = asyncio.get_running_loop().time()
        while model.scouts < self._scouts and model.parked:
            job = model.parked.pop()
            if job.state != _PARKED or job.future.done():
                continue
            job.state = _SCOUT
            model.scouts += 1
            first = job.t0 + model.first
            job.planned = first > now
            self._push(job, max(first, now))

    def _calibrate(self, model: _Model) -> None:
        """The kind has its samples: each parked job is scheduled from its own start."""
        now = asyncio.get_running_loop().time()
        while model.parked:
            job = model.parked.popleft()
            if job.state != _PARKED or job.future.done():
                continue
            job.state = _LADDER
            due = job.t0 + self._after(job, 0.0)
            job.planned = due > now
            self._push(job, max(due, now))

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
            due, seq, job = self._heap[0]
            if seq != job.seq or job.future.done():
                heapq.heappop(self._heap)  # rescheduled, or the watcher gave up
                continue
            if due > loop.time():
                timer = loop.call_at(due, self._wakeup.set)
                try:
                    await self._wakeup.wait()
                finally:
                    timer.cancel()
                self._wakeup.clear()
                continue
            heapq.heappop(self._heap)
            if job.state == _PARKED:  # the prior bound passed: poll it, late
                job.state = _LADDER
                job.planned = False
            job.seq = -1
            task = loop.create_task(self._poll(job))
            self._inflight.add(task)
            task.add_done_callback(self._poll_done)

    def _poll_done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wakeup.set()  # a poll slot is free

    async def _poll(self, job: _Job[Any]) -> None:
        loop = asyncio.get_running_loop()
        stats = job.model.stats
        sent = loop.time()
        try:
            if self._gate is not None:
                async with self._gate.slot(self._priority):
                    result = await job.fetch(job.job_id)
            else:
                result = await job.fetch(job.job_id)
            finished = job.done(result)
        except asyncio.CancelledError:
            job.future.cancel()  # the hub is closing
            raise
        except Exception as exc:
            stats.errors += 1
            if not job.future.done():
                job.future.set_exception(exc)
            return
        job.polls += 1
        stats.polls += 1
        now = loop.time()
        if job.future.done():
            return
        self._set_phase(job, _PHASES.get(str(_status(result)), _UNKNOWN))
        if finished:
            self._end_probe(job, started=True)  # done: it ran, so it was started
            try:
                self._resolved(job, result, now)
            except Exception as exc:  # a bad duration/on_resolved callback
                job.future.set_exception(exc)
                return
            job.future.set_result(result)
            return
        # Not done when the server answered, so not done when we asked.
        job.last_miss = sent - job.t0
        job.planned = True
        e = now - job.t0
        if job.probe and job.phase != _RUNNING:  # not started yet: look again soon
            gap = max(self._min, (self._scout_factor - 1.0) * e)
            self._push(job, job.t0 + e + self._jittered(gap))
            return
        self._end_probe(job, started=True)
        self._push(job, job.t0 + self._after(job, e))

    def _resolved(self, job: _Job[Any], result: object, now: float) -> None:
        """Learn from a finished job and tell its bracket."""
        model = job.model
        stats = model.stats
        at = now - job.t0
        stats.resolved += 1
        stats.first_hits += job.polls == 1
        stats.fastest = min(stats.fastest, at)
        exact = job.duration(result) if job.duration is not None else None
        lower = job.last_miss if job.last_miss is not None else (0.0 if job.planned else None)
        if exact is not None and exact >= 0:
            stats.delay_sum += max(0.0, at - exact)
            model.add(exact)
            model.informed += 1
        else:
            floor = lower if lower is not None else min(stats.fastest, at)
            stats.delay_sum += (at - floor) / 2
            # Before calibration a hit at the first poll says only "faster than
            # that" (it would fill the first model with guesses down to 0): the
            # next scouts look sooner, down to the floor, where a hit is all we learn.
            informative = lower is not None and (lower > 0 or model.first <= self._min)
            if job.learn and lower is not None and (informative or stats.calibrated):
                model.add(self._rng.uniform(lower, at))
                model.informed += informative
            if job.state == _SCOUT and job.last_miss is None:
                model.first = max(self._min, min(model.first, at / self._scout_factor**2))
        if not stats.calibrated and model.informed >= self._calibrated:
            stats.calibrated = True
            self._calibrate(model)
        if job.on_resolved is not None:
            after = None if job.last_miss is None else job.t0 + job.last_miss + self._wall
            job.on_resolved(Bracket(after, now + self._wall))
