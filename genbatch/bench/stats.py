"""Small statistics of a run's timings: quantiles, and the overlap of time intervals.

Rows and jobs run in parallel waves, so "how long" is often the length of a
union of intervals rather than a sum, and "how many at once" their peak
overlap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["peak_overlap", "percentile", "quantiles", "union_length"]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated quantile ``q`` in [0, 1]; None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def quantiles(
    values: Sequence[float], qs: Sequence[float] = (0.5, 0.95)
) -> dict[str, float | None]:
    """``{"p50": ..., "p95": ...}`` (or the quantiles ``qs``) rounded to 0.1 ms.

    None for no values.
    """
    out: dict[str, float | None] = {}
    for q in qs:
        v = percentile(values, q)
        out[f"p{round(q * 100)}"] = None if v is None else round(v, 4)
    return out


def union_length(intervals: Iterable[tuple[float, float]]) -> float:
    """Total length covered by possibly overlapping intervals (parallel waves)."""
    total, end = 0.0, -math.inf
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def peak_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """Most intervals open at one moment (one ending as another starts: not both)."""
    events: list[tuple[float, int]] = []
    for a, b in intervals:
        events += [(a, 1), (b, -1)]
    peak = now = 0
    for _, d in sorted(events, key=lambda e: (e[0], e[1])):
        now += d
        peak = max(peak, now)
    return peak
