"""Per-API-key token bucket.

The bucket answers in O(1) with no task and no lock: tokens are refilled
from elapsed time when a request arrives.  Its numbers feed the 429
``Retry-After`` and the ``X-RateLimit-*`` headers a polite client reads.
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
