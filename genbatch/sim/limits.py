"""Per-API-key token bucket and the credit price table.

The bucket answers in O(1) with no task and no lock: tokens are refilled
from elapsed time when a request arrives.  Its numbers feed the 429
``Retry-After`` and the ``X-RateLimit-*`` headers a polite client reads.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Final

#: Credits charged per generation type (contract "Prices"); render included.
SIM_PRICES: Final[dict[str, float]] = {
    "text": 1.0,
    "image_from_text": 4.0,
    "video_from_text": 20.0,
    "video_from_image": 20.0,
    "video_from_ingredients": 20.0,
    "speech_from_text": 2.0,
    "lipsync": 10.0,
    "captions": 2.0,
    "media": 0.0,
    "render": 5.0,
}


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


def price(generation_type: str) -> float:
    """Credits one generation of this type costs (render included)."""
    return SIM_PRICES[generation_type]
