"""How the command line writes numbers for people: counts and durations."""

from __future__ import annotations

__all__ = ["count", "duration"]


def count(n: int, noun: str) -> str:
    """``1 row``, ``1,000 rows``: how a person reads a count."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 20 min``: how a person reads a duration."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    h, m = divmod(minutes, 60)
    return f"{h:,} h {m} min" if m else f"{h:,} h"
