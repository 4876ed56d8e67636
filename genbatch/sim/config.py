"""What a simulator run is parametrised by: :class:`SimConfig` and its defaults.

The in-process server, the ``genbatch sim`` command and the process launcher
all read their defaults here.  GEN publishes no rate limit, so the default
rate and burst are a plausible guess a user can change.  A *profile*
(genbatch/sim/profile.py, ``genbatch sim --profile NAME``,
:meth:`SimConfig.from_profile`) sets several of these at once so the simulator
plays an API unlike its defaults: no limit, a job cap, faster models...
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from genbatch.sim.faults import parse_faults
from genbatch.sim.profile import LATENCY_KEYS, load_profile

SIM_DEFAULT_HOST: Final = "127.0.0.1"
SIM_DEFAULT_PORT: Final = 8787
#: CLI defaults of `genbatch sim`.  Rate/burst are per API key (token bucket);
#: GEN publishes no limit, so these are a plausible guess a user can change.
SIM_DEFAULT_RATE: Final = 50.0
SIM_DEFAULT_BURST: Final = 100
SIM_DEFAULT_CREDITS: Final = 1_000_000.0
SIM_DEFAULT_TIME_SCALE: Final = 1.0
SIM_DEFAULT_SEED: Final = 0

__all__ = ["SimConfig"]


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything a simulator run is parametrised by (the CLI flags, as data)."""

    api_keys: tuple[str, ...] = ()
    #: Requests/s per API key (token bucket); None: no rate limit at all (no
    #: bucket, no 429 from the limiter, no rate headers).
    rate: float | None = SIM_DEFAULT_RATE
    burst: int = SIM_DEFAULT_BURST
    credits: float = SIM_DEFAULT_CREDITS
    time_scale: float = SIM_DEFAULT_TIME_SCALE
    faults: str = ""
    seed: int = SIM_DEFAULT_SEED
    admin_key: str | None = None
    host: str = SIM_DEFAULT_HOST
    #: The API host's port (api.gen.pro's stand-in: /v1, CDN, storage, /_sim admin); 0 = free.
    port: int = 0
    #: The agent host's port (agent.gen.pro's stand-in: /v1/agent/..., /v1/research); 0 = free.
    agent_port: int = 0
    data_dir: Path | None = None
    #: Serve the teaching document's dialect: engine routes only under the old
    #: ``/v1/autocontentengine`` prefix, with its object shapes.  Default: today's
    #: API (``/v1/vidsheet``, docs/dialect.md).
    legacy_paths: bool = False
    #: Credits per call by model or generation type, ahead of the published prices.
    prices: tuple[tuple[str, float], ...] = ()
    #: Send ``X-RateLimit-Limit/Remaining/Reset`` and ``RateLimit-Policy: <rate>;w=1``
    #: on every API answer (only while there is a limit).  False: none of them (a
    #: 429 still carries ``Retry-After``).
    rate_headers: bool = True
    #: Today's generation object carries ``created_at``/``updated_at`` (ISO 8601 UTC,
    #: ms, Z).  False: it has none, as GEN documents it today.
    timestamps: bool = False
    #: Generations (cells, layers; not renders, not user jobs) one workspace may
    #: have running at once; the rest wait in a FIFO queue reading ``pending``.
    #: None: no cap.
    job_cap: int | None = None
    #: Latency ranges (seconds at time scale 1) by model, generation type or
    #: ``render`` (any kind of ``clock.SIM_LATENCY``): a model's wins over its type's.
    latency: tuple[tuple[str, tuple[float, float]], ...] = ()
    #: Requests/s the server answers before answers queue (each API request holds
    #: a virtual server for 1/capacity s).  None: answers never queue.
    capacity: float | None = None
    #: The profile this config came from (banner and ledger only).
    profile: str | None = None

    def __post_init__(self) -> None:
        parse_faults(self.faults)  # fail at construction, not at the first request
        if self.rate is not None and not (_number(self.rate) and self.rate > 0):
            raise ValueError("rate must be > 0 (None: no rate limit)")
        if not _integer(self.burst) or self.burst < 1:
            raise ValueError("burst must be an integer >= 1")
        if self.job_cap is not None and not (_integer(self.job_cap) and self.job_cap >= 1):
            raise ValueError("job_cap must be an integer >= 1 (None: no cap)")
        if self.capacity is not None and not (_number(self.capacity) and self.capacity > 0):
            raise ValueError("capacity must be > 0 requests/s (None: unlimited)")
        _check_latency(self.latency)
        if self.time_scale < 0:
            raise ValueError("time_scale must be >= 0")
        if not (0 <= self.port <= 65535 and 0 <= self.agent_port <= 65535):
            raise ValueError("port and agent_port must be 0..65535")
        if self.port and self.port == self.agent_port:
            raise ValueError("the API host and the agent host need two ports (port == agent_port)")

    @classmethod
    def from_profile(cls, name_or_path: str | Path, **overrides: Any) -> SimConfig:
        """The config of a named profile (``"limit-60"``) or a profile file, then ``overrides``.

        ``SimConfig.from_profile("queue-50", api_keys=("k1",), time_scale=0.01)``.
        A bad profile raises :class:`~genbatch.sim.profile.ProfileError` (a
        ValueError) naming the file and the key.
        """
        return cls(**{**load_profile(name_or_path), **overrides})

    def latency_map(self) -> dict[str, tuple[float, float]]:
        """:attr:`latency` as a dict (key -> (lo, hi) seconds at time scale 1)."""
        return {key: (float(lo), float(hi)) for key, (lo, hi) in self.latency}


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_latency(latency: object) -> None:
    if not isinstance(latency, tuple):
        raise ValueError("latency must be a tuple of (key, (lo, hi)) pairs")
    seen: set[str] = set()
    for item in latency:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], tuple)):
            raise ValueError("latency must be a tuple of (key, (lo, hi)) pairs")
        key, bounds = item
        if key not in LATENCY_KEYS:
            raise ValueError(
                f"latency: unknown key {key} (a generation type, a model, render, or another "
                "job kind: see genbatch/sim/clock.py SIM_LATENCY and templates.MODELS)"
            )
        if key in seen:
            raise ValueError(f"latency: {key} is given twice")
        seen.add(key)
        if not (
            len(bounds) == 2 and all(_number(b) for b in bounds) and 0 <= bounds[0] <= bounds[1]
        ):
            raise ValueError(f"latency: {key} needs a range lo <= hi, both >= 0 seconds")
