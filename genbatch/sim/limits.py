"""Per-API-key token bucket, and a server's capacity.

The bucket answers in O(1) with no task and no lock: tokens are refilled
from elapsed time when a request arrives.  Its numbers feed the 429
``Retry-After`` and the ``X-RateLimit-*`` headers a polite client reads.

:class:`Capacity` is the other way a server says "too fast": no refusal, but
answers that take longer the harder it is pushed (``SimConfig.capacity``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(slots=True)
class Verdict:
    """Outcome of one :meth:`TokenBucket.take`."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until one token is available (0 when allowed)


class TokenBucket:
    """One bucket per key; ``rate`` tokens a second, at most ``burst`` stored."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._state: dict[str, list[float]] = {}

    def configure(self, rate: float | None = None, burst: int | None = None) -> None:
        if rate is not None:
            self.rate = rate
        if burst is not None:
            self.burst = burst
            for st in self._state.values():
                st[0] = min(st[0], float(burst))

    def reset(self) -> None:
        self._state.clear()

    def take(self, key: str, now: float | None = None) -> Verdict:
        t = time.monotonic() if now is None else now
        st = self._state.get(key)
        burst = float(self.burst)
        if st is None:
            st = self._state[key] = [burst, t]
        else:
            st[0] = min(burst, st[0] + (t - st[1]) * self.rate)
            st[1] = t
        rate = self.rate if self.rate > 0 else 1e-9
        if st[0] >= 1.0:
            st[0] -= 1.0
            return Verdict(True, self.burst, int(st[0]), math.ceil((burst - st[0]) / rate), 0)
        retry = max(1, math.ceil((1.0 - st[0]) / rate))
        return Verdict(False, self.burst, 0, math.ceil((burst - st[0]) / rate), retry)


# ASSUMPTION: one virtual server per process, every API request holds it
# 1/capacity s (docs/sim-assumptions.md, "capacity").
class Capacity:
    """A virtual server that serves ``rate`` requests a second, one after another.

    Each request holds it ``1 / rate`` s: ``busy_until = max(now, busy_until) +
    1/rate``, and the request is answered once it is served (:meth:`delay` says
    how long from now).  A server with no limit of its own whose latency climbs
    when pushed too hard; no task, no lock.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.busy_until = 0.0

    def delay(self, now: float | None = None) -> float:
        """Seconds until a request arriving ``now`` (monotonic) is served."""
        t = time.monotonic() if now is None else now
        self.busy_until = max(t, self.busy_until) + 1.0 / self.rate
        return self.busy_until - t

    def reset(self) -> None:
        self.busy_until = 0.0
