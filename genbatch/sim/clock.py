"""Simulated time: scaled, seeded latencies and a due-queue instead of sleeping tasks.

A job's status is a pure function of (started_at, latency, now), so ten
thousand pending jobs cost a few bytes each and no task per job.  The one
thing that must happen at a moment (credits refunded on failure, outputs
created, a scheduled post made) goes into :class:`DueQueue`, which the world
drains on every request and every ledger read.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final, Literal

#: Latency ranges in seconds at time_scale 1.0 (contract "Latency profile").
SIM_LATENCY: Final[dict[str, tuple[float, float]]] = {
    "text": (3.0, 7.0),
    "speech_from_text": (6.0, 14.0),
    "image_from_text": (12.0, 28.0),
    "video_from_text": (60.0, 120.0),
    "video_from_image": (60.0, 120.0),
    "video_from_ingredients": (60.0, 120.0),
    "lipsync": (40.0, 80.0),
    "captions": (5.0, 15.0),
    "media": (1.0, 2.0),
    "render": (25.0, 55.0),
    "publish_content": (5.0, 15.0),
    "train_social": (10.0, 30.0),
    "agent_run": (20.0, 40.0),
    "voice_preview": (3.0, 6.0),
}
#: A job reads `pending` for this first fraction of its latency, then `processing`.
SIM_PENDING_FRACTION: Final = 0.10


Phase = Literal["pending", "processing", "due"]


def iso(t: float) -> str:
    """Epoch seconds → ISO 8601 UTC with milliseconds and a Z suffix."""
    dt = datetime.fromtimestamp(t, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> float:
    """ISO 8601 (with Z or an offset) → epoch seconds; ValueError when malformed."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError("timestamp needs a timezone (e.g. Z)")
    return dt.timestamp()


def phase(pending_until: float, due_at: float, now: float) -> Phase:
    """Where a job is in its life: the documented pending → processing → terminal."""
    if now >= due_at:
        return "due"
    return "pending" if now < pending_until else "processing"


def pending_until(start: float, latency: float) -> float:
    """End of the `pending` stretch: the first ~10 % of a job's latency."""
    return start + latency * SIM_PENDING_FRACTION


class Clock:
    """Wall clock plus a seeded latency draw, multiplied by ``time_scale``.

    ``ranges``: latency ranges by model or job kind that replace
    :data:`SIM_LATENCY`'s (``SimConfig.latency``, a profile's ``[latency]``).
    """

    def __init__(
        self,
        time_scale: float,
        seed: int,
        ranges: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self.time_scale = time_scale
        self._rng = random.Random(seed)
        self.ranges = dict(ranges or {})

    @staticmethod
    def now() -> float:
        return time.time()

    def latency(self, kind: str, model: str | None = None) -> float:
        """A job's latency: the model's range, else the kind's, else the default."""
        ranges = self.ranges
        bounds = (
            (ranges.get(model) if model is not None else None)
            or ranges.get(kind)
            or SIM_LATENCY[kind]
        )
        lo, hi = bounds
        return self._rng.uniform(lo, hi) * self.time_scale

    def fixed(self, seconds: float) -> float:
        return seconds * self.time_scale


class DueQueue:
    """Min-heap of (due time, key); :meth:`pop_due` hands back what has come due."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, tuple[str, int]]] = []
        self._seq = 0  # ties in due time pop in push order; an int, so the queue pickles

    def push(self, due: float, key: tuple[str, int]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, key))

    @property
    def next_due(self) -> float:
        return self._heap[0][0] if self._heap else float("inf")

    def pop_due(self, now: float) -> list[tuple[float, tuple[str, int]]]:
        out: list[tuple[float, tuple[str, int]]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, _, key = heapq.heappop(heap)
            out.append((due, key))
        return out

    def __len__(self) -> int:
        return len(self._heap)
