"""Waiting for jobs on the poll hub: one watcher for rows and for agent runs.

:class:`HubWatcher` turns "poll this id until it ends" into one await on a
shared :class:`~genbatch.engine.poller.PollHub` (no task sleeps per job).  Its
users differ only in what a failed poll or a long wait means, so those are
its fields, set once by a preset:

* :meth:`HubWatcher.for_rows` (the run's pipeline): a paid job must be
  watched to its outcome, so a poll that still fails after the client's own
  retries is ridden out per the client's backoff for ``ENGINE_OUTAGE_MAX``,
  then the row is suspended (left resumable), never written off.  Polls go
  at :attr:`Priority.POLL`: learning an outcome comes first.
* :meth:`HubWatcher.for_runs` (agent runs, research, train_social): a wait
  is bounded by ``max_wait`` (a run still going is reported
  :class:`StillRunning`, not abandoned), and a failed poll is watched again
  a few times (``ENGINE_RUN_WATCH_ATTEMPTS``) — the run is probably fine
  while the API flaps.

Either way a retried poll comes at once (the job's elapsed time is known)
and teaches the hub's duration model only an exact duration.

Generations carry ``created_at``/``updated_at`` where the API sends them:
their difference (one clock, no skew) is the job's exact duration, which the
hub learns instead of a poll bracket, and ``updated_at`` is the completion
time handed to the journal (:class:`~genbatch.engine.poller.Bracket`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Final, TypeVar

from genbatch._constants import ENGINE_RUN_MAX_WAIT
from genbatch.client import assumptions as A
from genbatch.engine.failures import through_outage
from genbatch.engine.limits import Priority
from genbatch.engine.poller import TERMINAL_STATUSES, Bracket, PollHub, is_terminal
from genbatch.engine.services import PRIORITY
from genbatch.errors import APIError, AuthenticationError, GenError

if TYPE_CHECKING:  # types only: the client's models load with the client
    from genbatch.client import GenClient
    from genbatch.client.models import AgentRun, Generation, UserJob

#: A poll of a run or job that failed after the client's retries is watched
#: again this many times before the run/job is reported failed.
ENGINE_RUN_WATCH_ATTEMPTS: Final = 3

__all__ = ["HubWatcher", "StillRunning"]

T = TypeVar("T")

#: Final states of an agent run: "awaiting_approval" ends a wait too (someone must act).
_RUN_END: Final = A.RUN_DONE | A.RUN_FAILED


class StillRunning(GenError):
    """A bounded wait ran out; the job goes on (its id says where to look later)."""

    def __init__(self, kind: str, job_id: str, waited: float) -> None:
        super().__init__(f"{kind} {job_id} still running after {waited:g}s; check it later")


@dataclass(frozen=True, slots=True)
class HubWatcher:
    """Waits for generations, user jobs and agent runs through a shared :class:`PollHub`.

    Fills :class:`genbatch.engine.services.JobWatcher`.  Build it with
    :meth:`for_rows` or :meth:`for_runs` (the module docstring says why they differ).
    """

    client: GenClient
    hub: PollHub
    #: Seconds one wait may take before :class:`StillRunning`; None: until the job ends.
    max_wait: float | None = None
    #: Watches of one job after failed polls; None: ride out the outage (through_outage).
    attempts: int | None = None
    #: Rate-gate priority of every poll; None: the caller's.
    priority: int | None = None
    #: Statuses that end a user job.
    job_end: frozenset[str] = TERMINAL_STATUSES

    @classmethod
    def for_rows(cls, client: GenClient, hub: PollHub) -> HubWatcher:
        """The pipeline's watcher: paid jobs, watched through an outage, polls first."""
        return cls(client, hub, priority=Priority.POLL)

    @classmethod
    def for_runs(
        cls, client: GenClient, hub: PollHub, max_wait: float = ENGINE_RUN_MAX_WAIT
    ) -> HubWatcher:
        """The agents' watcher: bounded waits, a few re-watches, the API's job end states."""
        return cls(
            client,
            hub,
            max_wait=max_wait,
            attempts=ENGINE_RUN_WATCH_ATTEMPTS,
            job_end=A.USER_JOB_DONE | A.USER_JOB_FAILED,
        )

    async def generation(
        self,
        generation_id: str,
        kind: str,
        elapsed: float = 0.0,
        *,
        on_bracket: Callable[[Bracket], None] | None = None,
    ) -> Generation:
        """The generation once it is completed, failed or stopped.

        ``on_bracket``: told when it finished (wall clock), with the exact
        time when the generation carries its timestamps.
        """
        seen: list[Bracket] = []
        gen = await self._watch(
            kind,
            generation_id,
            self.client.generations.get,
            is_terminal,
            elapsed,
            duration=_took,
            on_resolved=None if on_bracket is None else seen.append,
            probe=kind != "render",  # renders do not pass the generations cap
        )
        if on_bracket is not None and seen:
            exact = _took(gen) is not None
            done_at = _epoch(getattr(gen, "updated_at", None)) if exact else None
            on_bracket(replace(seen[-1], done_at=done_at))
        return gen

    async def user_job(
        self,
        job_id: str,
        agent_id: str,
        kind: str,
        elapsed: float = 0.0,
        *,
        settled: Callable[[UserJob], bool] | None = None,
        on_bracket: Callable[[Bracket], None] | None = None,
    ) -> UserJob:
        """The user job once its status is one of :attr:`job_end` (or ``settled`` says so).

        ``settled``: another reason to stop watching — a monitoring job never
        ends, it is settled once its first results are in.  ``on_bracket``:
        told when it finished (wall clock).
        """

        async def fetch(jid: str) -> UserJob:
            return await self.client.user_jobs.get(jid, agent_id)

        end = self.job_end

        def done(job: UserJob) -> bool:
            return job.status in end or (settled is not None and settled(job))

        return await self._watch(kind, job_id, fetch, done, elapsed, on_resolved=on_bracket)

    async def run(self, run_id: str, kind: str = "agent_run", elapsed: float = 0.0) -> AgentRun:
        """The agent run once it ended or awaits approval."""
        return await self._watch(
            kind, run_id, self.client.runs.get, lambda r: r.status in _RUN_END, elapsed
        )

    async def _watch(
        self,
        kind: str,
        job_id: str,
        get: Callable[[str], Awaitable[T]],
        done: Callable[[T], bool],
        elapsed: float,
        *,
        duration: Callable[[T], float | None] | None = None,
        on_resolved: Callable[[Bracket], None] | None = None,
        probe: bool = False,
    ) -> T:
        fetch = _at_priority(get, self.priority)
        loop = asyncio.get_running_loop()
        start: float | None = None

        async def once() -> T:
            # A retry knows how long the job has run: polled at once, no bracket learned.
            nonlocal start
            since = elapsed if start is None else max(loop.time() - start, 1e-6)
            if start is None:
                start = loop.time() - elapsed
            return await self.hub.watch(
                kind,
                job_id,
                fetch,
                done=done,
                elapsed=since,
                duration=duration,
                on_resolved=on_resolved,
                probe=probe,
            )

        if self.attempts is None:
            policy = self.client.policy
            waiting = through_outage(
                once,
                backoff=(policy.backoff_initial, policy.backoff_max),
                what=f"polling {kind} {job_id}",
            )
        else:
            waiting = _rewatch(once, self.attempts)
        if self.max_wait is None:
            return await waiting
        try:
            async with asyncio.timeout(self.max_wait):
                return await waiting
        except TimeoutError:
            raise StillRunning(kind, job_id, self.max_wait) from None


def _epoch(stamp: str | None) -> float | None:
    """An API timestamp (ISO 8601, ``Z`` or an offset) as epoch seconds; None if absent or bad."""
    if not stamp:
        return None
    try:
        dt = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.timestamp() if dt.tzinfo is not None else None


def _took(gen: Generation) -> float | None:
    """Seconds a finished generation took by the server's clock (None without timestamps)."""
    created = _epoch(getattr(gen, "created_at", None))
    updated = _epoch(getattr(gen, "updated_at", None))
    if created is None or updated is None or updated < created:
        return None
    return updated - created


def _at_priority(
    get: Callable[[str], Awaitable[T]], priority: int | None
) -> Callable[[str], Awaitable[T]]:
    """``get`` with its calls passing the rate gate at ``priority`` (read by the hook)."""
    if priority is None:
        return get
    level = priority

    async def fetch(job_id: str) -> T:
        PRIORITY.set(level)
        return await get(job_id)

    return fetch


async def _rewatch(once: Callable[[], Awaitable[T]], attempts: int) -> T:
    """``once()``, again after an API error, ``attempts`` times in all (401 at once)."""
    attempt = 1
    while True:
        try:
            return await once()
        except AuthenticationError:
            raise
        except APIError:
            if attempt >= attempts:
                raise
            attempt += 1
