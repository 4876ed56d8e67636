"""Poll one job until it ends — the convenience path for scripts and notebooks.

A batch should not use this (one sleeping task per job); the engine's poll
hub schedules thousands of jobs on one heap and calls the single-shot reads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Final, TypeVar

from genbatch.client.redact import redact
from genbatch.errors import JobFailed, WaitTimeout

#: wait() helpers: first poll delay, geometric growth, cap (seconds).
CLIENT_WAIT_INITIAL: Final = 1.0
CLIENT_WAIT_FACTOR: Final = 1.5
CLIENT_WAIT_MAX: Final = 10.0

T = TypeVar("T")


async def poll_until(
    fetch: Callable[[], Awaitable[T]],
    *,
    kind: str,
    job_id: str,
    status_of: Callable[[T], str],
    error_of: Callable[[T], Any],
    done: Collection[str],
    failed: Collection[str],
    max_wait: float | None = None,
    initial: float | None = None,
    factor: float = CLIENT_WAIT_FACTOR,
    max_interval: float | None = None,
) -> T:
    """Call ``fetch`` with geometric backoff until the status is in ``done``.

    Raises ``JobFailed`` for a status in ``failed`` and ``WaitTimeout`` when
    ``max_wait`` seconds pass first (the job may still finish later).
    """
    started = time.monotonic()
    interval = CLIENT_WAIT_INITIAL if initial is None else initial
    cap = CLIENT_WAIT_MAX if max_interval is None else max_interval
    while True:
        current = await fetch()
        status = status_of(current)
        if status in done:
            return current
        if status in failed:
            error = error_of(current)
            if error is not None:
                error = redact(error if isinstance(error, str) else str(error))
            raise JobFailed(kind=kind, job_id=job_id, status=status, error=error)
        waited = time.monotonic() - started
        if max_wait is not None and waited + interval > max_wait:
            if waited >= max_wait:
                raise WaitTimeout(kind=kind, job_id=job_id, status=status, waited=waited)
            interval = max_wait - waited
        await asyncio.sleep(interval)
        interval = min(cap, interval * factor)
