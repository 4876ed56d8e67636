"""What a row needs from its run, and the run's defaults for every row.

The runner builds one :class:`RowServices` and every row's pipeline shares
it; how jobs are polled stays behind :class:`JobWatcher` (the runner fills it
with the poll hub), so the pipeline never sleeps per job.  :data:`PRIORITY`
is the other direction: a row says how urgent its calls are, and the run's
rate-gate hook reads it.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from genbatch.client import GenClient
from genbatch.client.models import Generation, UserJob
from genbatch.engine.credits import CreditLedger, Pricing
from genbatch.engine.journal import Journal
from genbatch.engine.limits import Limits, Priority
from genbatch.engine.poller import Bracket
from genbatch.engine.progress import RunLog

#: Tries per generation/render when the job itself ends failed (each one a new
#: intent with a new key; a failed job is refunded, so a retry pays once more).
ENGINE_MAX_GENERATION_ATTEMPTS: Final = 3
#: Tries per row step that failed for a transient reason (5xx after client
#: retries, connection lost, truncated download) before the row fails.
ENGINE_MAX_STEP_ATTEMPTS: Final = 4
#: Pause before re-trying such a step (seconds; doubled per try).
ENGINE_STEP_RETRY_DELAY: Final = 0.5
#: A scheduled post is waited for (to report its post_id) only when it is due
#: within this many seconds of wall time; later ones complete the row with
#: the publish job's id, instead of holding a row slot for days.
ENGINE_PUBLISH_WAIT_MAX: Final = 900.0

__all__ = [
    "ENGINE_MAX_GENERATION_ATTEMPTS",
    "ENGINE_MAX_STEP_ATTEMPTS",
    "ENGINE_PUBLISH_WAIT_MAX",
    "ENGINE_STEP_RETRY_DELAY",
    "PRIORITY",
    "ROW_CLOCK",
    "SENT_AT",
    "JobWatcher",
    "RowClock",
    "RowServices",
]

#: Priority of the calls made in the current task (read by the rate-gate hook).
PRIORITY: contextvars.ContextVar[int] = contextvars.ContextVar(
    "genbatch_priority", default=Priority.CONTINUE
)
#: Wall-clock time the current task's last request cleared its rate gate (set by
#: the hook): a paid POST's journal entry says when it really went out.
SENT_AT: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "genbatch_sent_at", default=None
)


class RowClock:
    """When a row's first request cleared the rate gate (set once by the hook).

    A row's time in service starts there, not at admission: the time it waited
    for that first request is the queue the rows cap itself makes, and sizing
    the cap by it (Little's law) would grow the queue it measures."""

    __slots__ = ("first_sent",)

    def __init__(self) -> None:
        self.first_sent: float | None = None


#: The current row's clock (each row task sets its own; its sub-tasks share it).
ROW_CLOCK: contextvars.ContextVar[RowClock | None] = contextvars.ContextVar(
    "genbatch_row_clock", default=None
)


class JobWatcher(Protocol):
    """Waits for jobs through the poll hub (no sleeping task per job)."""

    async def generation(
        self,
        generation_id: str,
        kind: str,
        elapsed: float = 0.0,
        *,
        on_bracket: Callable[[Bracket], None] | None = None,
    ) -> Generation:
        """The generation once it is completed, failed or stopped.

        ``elapsed``: seconds it has been running already (found after a restart).
        ``on_bracket``: told when (and between which polls) GEN finished it.
        """
        ...

    async def user_job(
        self, job_id: str, agent_id: str, kind: str, elapsed: float = 0.0
    ) -> UserJob:
        """The user job once it is completed or failed."""
        ...


@dataclass(slots=True)
class RowServices:
    """What every row shares: built once by the runner."""

    client: GenClient
    journal: Journal
    limits: Limits
    ledger: CreditLedger
    pricing: Pricing
    watcher: JobWatcher
    out_dir: Path
    assets_root: Path
    log: RunLog
    max_generation_attempts: int = ENGINE_MAX_GENERATION_ATTEMPTS
    max_step_attempts: int = ENGINE_MAX_STEP_ATTEMPTS
    publish_wait_max: float = ENGINE_PUBLISH_WAIT_MAX
    step_retry_delay: float = ENGINE_STEP_RETRY_DELAY
    #: Steps in flight by group (for the progress view).
    busy: dict[str, int] = field(default_factory=dict)
    #: Optional test hook: awaited after each journal milestone (crash tests).
    milestone: Callable[[str, str], Awaitable[None]] | None = None
    #: Each agent's default voice, read once per run (see :meth:`default_voice`).
    voices: dict[str, asyncio.Task[str | None]] = field(default_factory=dict)

    async def default_voice(self, agent_id: str) -> str | None:
        """The voice a ``my_voices`` card without ``voice_id`` speaks with: the agent's own.

        Agent Core's ``default_user_voice`` is the agent's voice; a template
        clone does not show its cells' cards on today's API, so the row asks
        the agent.  One read per agent per run, shared by every row (a
        failed read is not cached, so the next row asks again).
        """
        task = self.voices.get(agent_id)
        if task is None or (task.done() and task.exception() is not None):
            task = self.voices[agent_id] = asyncio.ensure_future(self._read_voice(agent_id))
        return await asyncio.shield(task)

    async def _read_voice(self, agent_id: str) -> str | None:
        core = await self.client.core.get(agent_id)
        voice = (core.default_user_voice or {}).get("voice_id")
        return str(voice) if voice else None

    async def reached(self, row_id: str, what: str) -> None:
        """Row ``row_id`` passed journal milestone ``what``: await the test hook, if any."""
        if self.milestone is not None:
            await self.milestone(row_id, what)
