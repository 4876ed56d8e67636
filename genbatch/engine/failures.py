"""How a failure ends a call, a step, a row or the run.

One vocabulary for the row pipeline, the paid-POST guard and the job
watcher, so they all read an error the same way:

* :func:`is_transient`: worth trying the same idempotent call again;
* :func:`through_outage`: ride out an outage on a free read that decides
  money, then :class:`RowSuspended` (the row stays resumable, never failed);
* :class:`RunAborted` (401): the whole run stops, rows in flight resumable;
* :class:`RowEnd`: the row ends now with a terminal status, and
  :func:`fail_step` journals the failed step and picks that status (running
  out of credits *skips* the row and stops new paid work; anything else
  fails it);
* :func:`believed_retry_after` / :func:`retry_wait`: which Retry-After is
  honoured, since one absurd value must not park the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final, Literal, TypeVar

from genbatch.client.retry import CLIENT_RETRY_AFTER_CAP
from genbatch.engine.credits import CreditLedger
from genbatch.engine.journal import Journal
from genbatch.engine.limits import ENGINE_RETRY_AFTER_DEFAULT
from genbatch.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    GenError,
    InsufficientCreditsError,
    NoActiveCreditsError,
    RateLimitError,
    RequestValidationError,
    ServerError,
    TransferError,
)

#: Free reads that decide money — polls of a paid job, the reconcile read of
#: an in-doubt POST — are retried through an outage for this long (seconds,
#: wall clock) before the row is left pending for the next run to resume.
ENGINE_OUTAGE_MAX: Final = 3600.0
#: The reason given for rows skipped because the account ran out of credits.
REASON_NO_CREDITS: Final = "insufficient credits"

__all__ = [
    "ENGINE_OUTAGE_MAX",
    "REASON_NO_CREDITS",
    "RowEnd",
    "RowSuspended",
    "RunAborted",
    "Terminal",
    "believed_retry_after",
    "credits_exhausted",
    "error_code",
    "fail_step",
    "is_transient",
    "retry_wait",
    "through_outage",
]

#: How a row can end (besides ``pending``, which is not an end).
Terminal = Literal["completed", "failed", "skipped"]
T = TypeVar("T")


class RunAborted(GenError):
    """The whole run must stop (401): rows in flight stay resumable."""


class RowSuspended(GenError):
    """A read that decides money kept failing: leave the row resumable, not failed.

    A paid job must be watched to its outcome; writing it off would leave a
    charge nobody reports (I3).  The row stays ``running`` in the journal
    (``pending`` in the results) and the next run picks it up.
    """


class RowEnd(Exception):
    """Raised inside the row pipeline: end the row now with this terminal status."""

    def __init__(self, status: Terminal, reason: str, error_code: str | None = None) -> None:
        super().__init__(reason)
        self.status: Terminal = status
        self.reason = reason
        self.error_code = error_code


def is_transient(exc: BaseException) -> bool:
    """Worth trying the same (idempotent) call again later."""
    if isinstance(exc, RateLimitError | ServerError | APIConnectionError | TransferError):
        return True
    return isinstance(exc, APIResponseValidationError)


def credits_exhausted(exc: BaseException) -> bool:
    """The account has no credits left for paid work (a 422 from GEN)."""
    return isinstance(exc, InsufficientCreditsError | NoActiveCreditsError)


def error_code(exc: BaseException) -> str | None:
    """The short code the journal and the results file record for ``exc``."""
    if isinstance(exc, APIStatusError):
        return exc.error_code or f"http_{exc.status}"
    if isinstance(exc, TransferError):
        return exc.code or "transfer_error"
    if isinstance(exc, APIConnectionError):
        return "connection_error"
    if isinstance(exc, RequestValidationError):
        return "request_validation"
    return type(exc).__name__


def fail_step(
    journal: Journal,
    ledger: CreditLedger,
    row_id: str,
    step: str,
    exc: BaseException,
    status: str = "failed",
) -> RowEnd:
    """Journal ``step`` as ended by ``exc``; the :class:`RowEnd` to raise.

    Out of credits, the ledger stops granting paid work and the row is
    skipped (a later run with credits does it); otherwise the row failed.
    """
    code = error_code(exc)
    journal.finish_step(row_id, step, status, error_code=code)  # type: ignore[arg-type]
    if credits_exhausted(exc):
        ledger.exhaust(REASON_NO_CREDITS)
        return RowEnd("skipped", REASON_NO_CREDITS, code)
    return RowEnd("failed", f"{step}: {exc}", code)


async def through_outage(
    call: Callable[[], Awaitable[T]],
    *,
    backoff: tuple[float, float],
    what: str,
    limit: float = ENGINE_OUTAGE_MAX,
    on_error: Callable[[BaseException], None] | None = None,
) -> T:
    """``call()`` until it succeeds, riding out transient failures for ``limit`` s.

    ``backoff`` is the client policy's (initial, max): the pause between
    tries doubles up to max.  401 aborts the run; any other non-transient
    error is raised; past ``limit`` the row is suspended (:class:`RowSuspended`).
    """
    deadline = time.monotonic() + limit
    attempt = 0
    while True:
        try:
            return await call()
        except AuthenticationError as exc:
            raise RunAborted(str(exc)) from None
        except Exception as exc:
            if not is_transient(exc):
                raise
            if on_error is not None:
                on_error(exc)
            if time.monotonic() >= deadline:
                raise RowSuspended(
                    f"{what} failed for {limit:.0f} s ({exc}); rerun to resume"
                ) from None
            initial, cap = backoff
            await asyncio.sleep(min(cap, initial * (2**attempt)))
            attempt += 1


def believed_retry_after(seconds: float | None) -> float | None:
    """A server's Retry-After, or None when absent or too absurd to honour.

    Past the client's cap, one absurd value ("3600") must not park the whole
    run: the gate pauses for ENGINE_RETRY_AFTER_DEFAULT instead and the step
    is tried again a bounded number of times.
    """
    if seconds is None or seconds < 0 or seconds > CLIENT_RETRY_AFTER_CAP:
        return None
    return seconds


def retry_wait(exc: RateLimitError) -> float:
    """How long a step waits after a 429 that outlasted the client's retries."""
    wait = believed_retry_after(exc.retry_after)
    return wait if wait is not None else ENGINE_RETRY_AFTER_DEFAULT
