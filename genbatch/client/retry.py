"""The retry policy: a pure decision per attempt, plus counters by reason.

``decide()`` sees only what happened (status or failure kind, headers), how
many retries were already made, and whether resending is safe; the clock and
the jitter draw are arguments, so tests can enumerate it exhaustively and the
base client stays a thin loop around it (the openai-python shape).

Money rule: a request whose resend could pay twice (a POST with side effects
and no caller-supplied ``Idempotency-Key``) is resent only when it provably
never reached the server — a connect failure — or when the server explicitly
refused it with 429 (ASSUMPTION in ``assumptions.py``).  Anything else is
raised so the caller can reconcile instead of guessing.  A caller that
reconciles even keyed POSTs itself (the engine's paid steps: GEN may not honour
the key) passes ``resend_ambiguous=False``: then an attempt that may have taken
effect (a failure after connecting, or a 5xx) is never resent.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

import aiohttp

from genbatch import _constants as C

#: Exponential backoff with full jitter: min(max, initial * 2**attempt) * U(0,1).
CLIENT_BACKOFF_INITIAL: Final = 0.5
CLIENT_BACKOFF_MAX: Final = 8.0
#: A server-given Retry-After longer than this is not slept on; it surfaces as a
#: RateLimitError carrying retry_after, so a batch can defer the work instead.
CLIENT_RETRY_AFTER_CAP: Final = 60.0

__all__ = [
    "Decision",
    "Failure",
    "RetryCounters",
    "RetryPolicy",
    "classify_exception",
    "decide",
    "parse_rate_policy",
    "parse_retry_after",
]


class Failure(StrEnum):
    """How an attempt failed when no HTTP status came back."""

    CONNECT = "connect"  # refused / DNS / unreachable: the request never left
    CONNECT_TIMEOUT = "connect_timeout"  # timed out before a socket existed: never left
    TIMEOUT = "timeout"  # sent (maybe), answer too slow: may have taken effect
    DISCONNECT = "disconnect"  # reset / closed mid-exchange: may have taken effect
    FATAL = "fatal"  # bad URL, TLS certificate, redirect loop: retrying cannot help


#: Failures after which the request provably did not reach the server.
NEVER_SENT: Final = frozenset({Failure.CONNECT, Failure.CONNECT_TIMEOUT})
#: Statuses worth retrying for a request that is safe to resend (openai-python's set).
RETRY_STATUSES: Final = frozenset({408, 409, 429})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Knobs of the policy; defaults live in ``_constants``."""

    max_retries: int = C.CLIENT_MAX_RETRIES
    backoff_initial: float = CLIENT_BACKOFF_INITIAL
    backoff_max: float = CLIENT_BACKOFF_MAX
    retry_after_cap: float = CLIENT_RETRY_AFTER_CAP
    #: Resend a side-effecting POST after a 429 (the server refused it unprocessed).
    unsafe_retry_on_429: bool = True


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do after one attempt.

    ``reason`` names the cause (``status_503``, ``connect``, ``unsafe_post`` …)
    for counters and logs; ``retry_after`` is the server's requested wait in
    seconds when it sent one (also when it is over the cap and we give up).
    """

    retry: bool
    delay: float
    reason: str
    retry_after: float | None = None


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, or ``Retry-After``
    as seconds or an HTTP date (relative to ``now``, epoch seconds).  None if
    absent or unparseable; negative waits become 0."""
    ms = headers.get("retry-after-ms") or headers.get("Retry-After-Ms")
    if ms:
        try:
            value = float(ms) / 1000.0
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return max(0.0, value)
    raw = headers.get("retry-after") or headers.get("Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        return max(0.0, when.timestamp() - now)
    return max(0.0, value) if math.isfinite(value) else None


def parse_rate_policy(value: str | None) -> float | None:
    """Requests/second a ``RateLimit-Policy`` header allows (the most restrictive
    policy), or None when absent or unreadable (see ``assumptions.RATE_POLICY_HEADER``)."""
    if not value:
        return None
    best: float | None = None
    for policy in value.split(","):
        quota: float | None = None
        window = 1.0
        for i, part in enumerate(policy.split(";")):
            key, sep, raw = part.strip().partition("=")
            try:
                if not sep and i == 0:
                    quota = float(key)  # the older draft: "60;w=1"
                elif key == "q":
                    quota = float(raw)
                elif key == "w":
                    window = float(raw)
            except ValueError:
                continue
        if quota is None or not (quota > 0 and window > 0 and math.isfinite(quota / window)):
            continue
        rate = quota / window
        best = rate if best is None else min(best, rate)
    return best


def _retryable(status: int | None, failure: Failure | None) -> tuple[str, bool] | None:
    """(reason, safe_for_unsafe_post) if this outcome is worth retrying at all."""
    if failure is not None:
        if failure is Failure.FATAL:
            return None
        return failure.value, failure in NEVER_SENT
    assert status is not None
    if status == 429:
        return "status_429", True
    if status in RETRY_STATUSES or status >= 500:
        return f"status_{status}", False
    return None


def decide(
    policy: RetryPolicy,
    *,
    attempt: int,
    method: str,
    idempotent: bool | None = None,
    status: int | None = None,
    failure: Failure | None = None,
    headers: Mapping[str, str] | None = None,
    now: float = 0.0,
    jitter: float = 1.0,
    resend_ambiguous: bool = True,
) -> Decision:
    """Whether and when to retry after attempt number ``attempt`` (0 = the first try).

    ``idempotent``: resending cannot cause a second side effect (GET/PUT/
    PATCH/DELETE, a side-effect-free POST, or a POST carrying the caller's
    own Idempotency-Key); None infers it from the method (only POST is not).
    ``jitter`` is a uniform draw in [0, 1) supplied by the caller.
    ``resend_ambiguous=False``: never resend after an attempt that may have
    taken effect (a failure other than a connect failure, or a 5xx), even when
    ``idempotent`` — the caller reconciles first (reason ``ambiguous:…``).
    """
    if failure is None and (status is None or status < 400):
        return Decision(False, 0.0, "ok")
    found = _retryable(status, failure)
    if found is None:
        reason = failure.value if failure is not None else f"status_{status}"
        return Decision(False, 0.0, f"not_retryable:{reason}")
    reason, safe_anyway = found
    if status == 429 and not policy.unsafe_retry_on_429:
        safe_anyway = False
    if idempotent is None:
        idempotent = method.upper() != "POST"
    if not (idempotent or safe_anyway):
        return Decision(False, 0.0, f"unsafe_post:{reason}")
    retry_after = parse_retry_after(headers, now) if headers else None
    maybe_took_effect = (failure is not None and failure not in NEVER_SENT) or (
        status is not None and status >= 500
    )
    if maybe_took_effect and not resend_ambiguous:
        return Decision(False, 0.0, f"ambiguous:{reason}", retry_after)
    if retry_after is not None and retry_after > policy.retry_after_cap:
        return Decision(False, 0.0, f"retry_after_over_cap:{reason}", retry_after)
    if attempt >= policy.max_retries:
        return Decision(False, 0.0, f"exhausted:{reason}", retry_after)
    if retry_after is not None:
        # Never sooner than asked; a little extra spreads a herd that was
        # told the same instant.
        return Decision(True, retry_after * (1.0 + 0.1 * jitter), reason, retry_after)
    ceiling = min(policy.backoff_max, policy.backoff_initial * (2.0**attempt))
    return Decision(True, ceiling * jitter, reason)


def classify_exception(exc: BaseException) -> Failure:
    """Map an aiohttp / asyncio exception to a ``Failure`` kind.

    Only a failure to *connect* proves the request never left; a reset or a
    read timeout after connecting may have reached a handler.
    """
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return Failure.FATAL
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Failure.CONNECT
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return Failure.CONNECT_TIMEOUT
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return Failure.TIMEOUT
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return Failure.DISCONNECT
    return Failure.FATAL


@dataclass
class RetryCounters:
    """Counts of attempts and of retry / give-up decisions by reason (for benchmarks)."""

    requests: int = 0
    calls: int = 0
    retries_by_reason: Counter[str] = field(default_factory=Counter)
    giveups_by_reason: Counter[str] = field(default_factory=Counter)
    status_counts: Counter[int] = field(default_factory=Counter)
    rate_limited: int = 0
    retry_sleep_seconds: float = 0.0

    def record(self, decision: Decision) -> None:
        if decision.retry:
            self.retries_by_reason[decision.reason] += 1
            self.retry_sleep_seconds += decision.delay
        elif decision.reason != "ok":
            self.giveups_by_reason[decision.reason] += 1

    @property
    def retries(self) -> int:
        return sum(self.retries_by_reason.values())

    def snapshot(self) -> dict[str, object]:
        """A plain-dict copy for reports."""
        return {
            "calls": self.calls,
            "requests": self.requests,
            "retries": self.retries,
            "retries_by_reason": dict(self.retries_by_reason),
            "giveups_by_reason": dict(self.giveups_by_reason),
            "status_counts": dict(self.status_counts),
            "rate_limited": self.rate_limited,
            "retry_sleep_seconds": round(self.retry_sleep_seconds, 3),
        }
