"""Work in flight sized by what the run measures, not by constants.

Two caps decide how much a run keeps going at once, and neither has a right
value that holds for every server:

* **Rows in flight** (Little's law): to keep the rate gate saturated, the
  rows started must supply ``rate x row duration / requests per row``
  requests per second of work.  Rows that are too few leave the gate idle
  while jobs run; too many only hold memory and credits.  The tuner measures
  the three figures as the run goes (the gate's rate, how long finished
  rows took from their first request, requests per row) and sets the rows cap to that, times
  ``ENGINE_TUNE_HEADROOM``, within ``[ENGINE_TUNE_ROWS_MIN, max_rows]``
  (``--max-concurrency``, or ``ENGINE_TUNE_ROWS_MAX`` for memory).
* **Generation jobs in flight** (the server's job capacity): a back end that
  runs only so many jobs per workspace queues the rest as ``pending``.
  Piling more jobs into that queue finishes nothing sooner — it pushes each
  started row's next job (and its render) behind new rows' first ones.  When
  the poll hub's census shows many of our jobs ``pending`` against few
  ``processing`` for a while, the generations cap comes down to what the
  server runs (plus a little, so it never idles); when the queue is gone and
  callers wait at the cap, it climbs back.

**The end game.**  Once every row left in the table could be served within
two rows' time (their requests at the gate's rate), the tuner admits them
all (within the rows cap's bounds) and lets their first steps pass ahead of
other rows' renders and downloads (:data:`~genbatch.engine.limits.END_GAME_RANKS`;
polls stay first, so no job is seen later): the last rows start sooner and
the run ends closer to its rate bound instead of one row's chain of jobs
after its last request.  Not when the server queues our jobs (more rows
would only wait for its job slots).

Told ``--max-concurrency``, the rows cap never exceeds it.  Every figure
decays (an exponential average), so a server that changes pace is followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

from genbatch.engine.limits import END_GAME_RANKS, ConcurrencyCap, RateGate

#: Seconds between two adjustments.
ENGINE_TUNE_INTERVAL: Final = 1.0
#: The generations cap is adjusted this often (seconds): a queue builds fast.
ENGINE_TUNE_GENERATIONS_INTERVAL: Final = 0.25
#: ... and starts here, doubling while callers wait and no job reads pending
#: (slow start: a back end with a job cap is not flooded before the first
#: polls can show its queue).
ENGINE_TUNE_GENERATIONS_START: Final = 64
#: Rows in flight = HEADROOM x Little's law (durations vary; a row waits at
#: the gate too), within [MIN, MAX] (MAX bounds memory; --max-concurrency lower).
ENGINE_TUNE_HEADROOM: Final = 1.5
ENGINE_TUNE_ROWS_MIN: Final = 32
ENGINE_TUNE_ROWS_MAX: Final = 2048
#: Rows finished before the law is trusted (until then the initial cap holds).
ENGINE_TUNE_MIN_SAMPLES: Final = 4
#: Until then -- and whenever every row slot is taken while the rate gate
#: went under this share of its rate in the last second -- rows grow by
#: ROWS_GROWTH a second: the rows are what holds the run back.
ENGINE_TUNE_ROWS_UNDERUSED: Final = 0.9
ENGINE_TUNE_ROWS_GROWTH: Final = 1.5
#: The end game begins once the rows left need at most this many rows' time
#: of the gate (their requests at its rate): one is too late for the last
#: rows' first steps to get ahead, more than two parks renders for long.
ENGINE_TUNE_END_GAME: Final = 2.0
#: Weight of each new row duration in the running average.
ENGINE_TUNE_SMOOTHING: Final = 0.05
#: The server is queueing our jobs when at least this many (and this share of
#: those running) read `pending`, for QUEUE_TICKS adjustments in a row.
ENGINE_TUNE_QUEUE_MIN: Final = 8
ENGINE_TUNE_QUEUE_SHARE: Final = 0.5
ENGINE_TUNE_QUEUE_TICKS: Final = 2
#: What the server runs is the peak census of this many adjustments.
ENGINE_TUNE_PEAK_TICKS: Final = 8
#: Then the generations cap is what the server runs x SLACK + EXTRA.
ENGINE_TUNE_QUEUE_SLACK: Final = 1.1
ENGINE_TUNE_QUEUE_EXTRA: Final = 2
#: Jobs probed per round while callers wait at the generations cap (the
#: poll hub polls them early until they read running: PollHub.want_probes).
ENGINE_TUNE_PROBES: Final = 4
#: Without a queue, a cap callers wait at grows by this factor per adjustment
#: (fast: a cap under the server's capacity leaves it idle; too high, the
#: queue shows again within a tick or two and the cap comes down).
ENGINE_TUNE_GROWTH: Final = 2.0

__all__ = ["Census", "Tuner"]


class Census(Protocol):
    """Our watched jobs by what their last poll said (the poll hub's census)."""

    @property
    def queued(self) -> int: ...

    @property
    def running(self) -> int: ...

    @property
    def acks(self) -> int: ...

    @property
    def probing(self) -> int: ...


class Tuner:
    """Adjusts the rows and generations caps once a second; see the module docstring."""

    def __init__(
        self,
        *,
        gate: RateGate,
        rows: ConcurrencyCap,
        generations: ConcurrencyCap,
        requests: Callable[[], int],
        census: Callable[[], Census] | None = None,
        probe: Callable[[int], None] | None = None,
        remaining: Callable[[], int] | None = None,
        on_end_game: Callable[[int], None] | None = None,
        max_rows: int = ENGINE_TUNE_ROWS_MAX,
        max_generations: int | None = None,
    ) -> None:
        self._gate = gate
        self._rows = rows
        self._gens = generations
        self._requests = requests
        self._census = census
        self._probe = probe
        self._acks_mark = 0
        self._remaining = remaining
        self._on_end_game = on_end_game
        self.max_rows = max(1, max_rows)
        self.max_generations = max_generations or generations.limit
        self._duration: float | None = None
        self._finished = 0
        self._queue_ticks = 0
        self._running_seen: deque[int] = deque(maxlen=ENGINE_TUNE_PEAK_TICKS)
        self._use_mark: tuple[float, int] | None = None  # (loop time, gate acquisitions)
        self._released_mark = generations.released
        #: The server queues our jobs (the generations cap follows its capacity).
        self.server_queue = False
        #: The last rows are all admitted and their first steps go first.
        self.end_game = False
        self._task: asyncio.Task[None] | None = None
        if census is not None:
            generations.set_limit(min(generations.limit, ENGINE_TUNE_GENERATIONS_START))

    # -- what the run tells it ---------------------------------------------------
    def row_finished(self, seconds: float) -> None:
        """A row that ran for ``seconds``, from its first request clearing the
        gate to its end (not from admission: see ``services.RowClock``)."""
        self._finished += 1
        a = max(ENGINE_TUNE_SMOOTHING, 1.0 / self._finished)  # a plain mean at first
        d = self._duration
        self._duration = seconds if d is None else (1 - a) * d + a * seconds

    # -- the loop ------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="genbatch-tuner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        every = max(1, round(ENGINE_TUNE_INTERVAL / ENGINE_TUNE_GENERATIONS_INTERVAL))
        for n in itertools.count(1):
            await asyncio.sleep(ENGINE_TUNE_GENERATIONS_INTERVAL)
            if n % every:
                self._tune_generations()
                self._check_end_game()
            else:
                self.tick()

    def tick(self) -> None:
        """One adjustment of both caps."""
        self._tune_generations()
        self._tune_rows()
        self._check_end_game()

    def _check_end_game(self) -> None:
        if self.end_game or self._remaining is None or self.server_queue:
            return
        if self._finished < ENGINE_TUNE_MIN_SAMPLES or self._duration is None:
            return
        left = self._remaining()
        per_row = self._per_row()
        budget = ENGINE_TUNE_END_GAME * self._gate.rate * self._duration
        if per_row <= 0 or left * per_row > budget:
            return
        self.end_game = True
        self._gate.reorder(END_GAME_RANKS)
        rows = self._rows
        rows.set_limit(min(self.max_rows, max(rows.limit, rows.in_use + left)))
        if self._on_end_game is not None:
            self._on_end_game(left)

    def _tune_rows(self) -> None:
        target = self.rows_target()
        rows, now = self._rows, time.monotonic()
        acquired, mark = self._gate.stats.acquired, self._use_mark
        self._use_mark = (now, acquired)
        if mark is not None and now > mark[0] and not self.server_queue:
            used = (acquired - mark[1]) / ((now - mark[0]) * self._gate.rate)
            if used < ENGINE_TUNE_ROWS_UNDERUSED and rows.in_use >= rows.limit:
                grown = min(self.max_rows, math.ceil(rows.limit * ENGINE_TUNE_ROWS_GROWTH))
                target = max(target or 0, grown)
        if target is not None:
            if self.end_game:
                target = max(target, self._rows.limit)  # the last rows are in
            if self.server_queue:
                # More rows would only wait for job slots: hold at what runs.
                target = min(target, max(self._rows.in_use, ENGINE_TUNE_ROWS_MIN))
            self._rows.set_limit(target)

    def rows_target(self) -> int | None:
        """Little's law, or None while too few rows have finished to measure."""
        if self._finished < ENGINE_TUNE_MIN_SAMPLES or self._duration is None:
            return None
        started = self._finished + self._rows.in_use
        per_row = self._per_row()
        if per_row <= 0 or started <= 0:
            return None
        need = ENGINE_TUNE_HEADROOM * self._gate.rate * self._duration / per_row
        return int(min(self.max_rows, max(ENGINE_TUNE_ROWS_MIN, math.ceil(need))))

    def _per_row(self) -> float:
        """Requests per row so far (rows in flight count as half done)."""
        return self._requests() / max(1.0, self._finished + 0.5 * self._rows.in_use)

    def _tune_generations(self) -> None:
        if self._census is None:
            return
        census = self._census()
        queued = census.queued
        # What the server runs: the census sees a job's status as of its last
        # poll, so it undercounts; the peak of the last few ticks is closer.
        self._running_seen.append(census.running)
        running = max(self._running_seen)
        if queued >= max(ENGINE_TUNE_QUEUE_MIN, ENGINE_TUNE_QUEUE_SHARE * running) and running:
            self._queue_ticks += 1
        else:
            self._queue_ticks = 0
        gens = self._gens
        released, self._released_mark = self._released_mark, gens.released
        acks = census.acks - self._acks_mark
        self._acks_mark = census.acks
        if (
            self._probe is not None
            and gens.waiting
            and not self._gate.waiting  # the gate, not this cap, holds the run back
            and census.probing == 0
            and queued == 0
        ):
            self._probe(ENGINE_TUNE_PROBES)  # the next round: are new jobs run?
        if self._queue_ticks >= ENGINE_TUNE_QUEUE_TICKS:
            cap = max(1, math.ceil(running * ENGINE_TUNE_QUEUE_SLACK) + ENGINE_TUNE_QUEUE_EXTRA)
            if cap < gens.limit:
                gens.set_limit(cap)
            self.server_queue = True
        elif queued == 0 and gens.waiting and gens.limit < self.max_generations:
            # Clocked by jobs that finished (TCP's slow start): a cap grows by
            # what came back, at most doubling, so a server's queue shows in
            # the census before the cap has run far past its capacity.  And
            # by probes seen started: each stands for 1/PROBES of the cap,
            # so a round of probes all running doubles it -- at GEN's real
            # latencies jobs finish minutes after they start, a probe reads
            # running within seconds, and a queued one never does.
            done = gens.released - released
            by_acks = math.ceil(acks * gens.limit / ENGINE_TUNE_PROBES)
            grown = min(math.ceil(gens.limit * ENGINE_TUNE_GROWTH), gens.limit + done + by_acks)
            gens.set_limit(min(self.max_generations, max(gens.limit, grown)))
            if gens.limit >= self.max_generations:
                self.server_queue = False
