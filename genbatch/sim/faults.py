"""The fault spec (``--faults``) and its seeded dice.

Spec: comma-separated ``kind:probability[@arg]``, e.g.
``500:0.02,reset_after:0.01,slow:0.05@2,429:0.01@3``.  Each kind rolls its
own draw from one seeded RNG, and only when that kind is configured, so a
given spec and seed replay the same faults in the same order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Every fault kind and whether it takes an ``@arg`` (seconds).
KINDS: dict[str, bool] = {
    "500": False,  # 500 internal_error before any side effect
    "503": False,  # 503 before any side effect
    "reset": False,  # connection reset before the side effect
    "reset_after": False,  # side effect committed, then the connection is reset
    "slow": True,  # the response is delayed by @seconds
    "gen_fail": False,  # a generation/render ends failed (refunded)
    "truncate": False,  # a CDN body is cut short (Content-Length still full)
    "upload_expired": False,  # a presigned upload URL is born expired
    "bad_digest": False,  # storage rejects the PUT with BadDigest
    "429": True,  # a 429 storm for @seconds on top of the token bucket
}
#: Kinds that act on the API middleware (everything under /v1).
REQUEST_KINDS = ("500", "503", "reset", "reset_after", "slow", "429")
#: Default @arg when a kind that takes one is given none.
DEFAULT_ARGS: dict[str, float] = {"slow": 1.0, "429": 2.0}


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    probability: float
    arg: float | None


def parse_faults(spec: str) -> dict[str, Fault]:
    """Parse a spec; ValueError names the bad part, so the CLI can say it."""
    out: dict[str, Fault] = {}
    for raw in spec.split(","):
        part = raw.strip()
        if not part:
            continue
        kind, sep, rest = part.partition(":")
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(KINDS)})")
        if not sep:
            raise ValueError(f"fault {part!r} needs a probability, e.g. {kind}:0.05")
        prob_s, at, arg_s = rest.partition("@")
        try:
            prob = float(prob_s)
            arg = float(arg_s) if at else DEFAULT_ARGS.get(kind)
        except ValueError:
            raise ValueError(f"fault {part!r}: probability and @arg must be numbers") from None
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"fault {part!r}: probability must be within 0..1")
        if at and not KINDS[kind]:
            raise ValueError(f"fault {part!r}: {kind} takes no @arg")
        if arg is not None and arg < 0:
            raise ValueError(f"fault {part!r}: @arg must be >= 0")
        out[kind] = Fault(kind, prob, arg)
    return out


class Faults:
    """The active faults plus the RNG that decides each one."""

    def __init__(self, spec: str, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self.set(spec)

    def reseed(self) -> None:
        """Restart the dice from the seed (``POST /_sim/reset``): the draws replay."""
        self._rng = random.Random(self.seed)

    def set(self, spec: str) -> None:
        self.active = parse_faults(spec)
        self.spec = ",".join(
            f"{f.kind}:{f.probability}" + (f"@{f.arg:g}" if f.arg is not None else "")
            for f in self.active.values()
        )
        #: True when any request-level kind is on: the middleware's fast-path test.
        self.any_request = any(k in self.active for k in REQUEST_KINDS)

    def roll(self, kind: str) -> bool:
        f = self.active.get(kind)
        if f is None or f.probability <= 0.0:
            return False
        return f.probability >= 1.0 or self._rng.random() < f.probability

    def arg(self, kind: str) -> float:
        f = self.active.get(kind)
        return f.arg if f is not None and f.arg is not None else DEFAULT_ARGS.get(kind, 0.0)
