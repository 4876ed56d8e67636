"""What a simulator run is parametrised by: :class:`SimConfig` and its defaults.

The in-process server, the ``genbatch sim`` command and the process launcher
all read their defaults here.  GEN publishes no rate limit, so the default
rate and burst are a plausible guess a user can change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from genbatch.sim.faults import parse_faults

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
    rate: float = SIM_DEFAULT_RATE
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

    def __post_init__(self) -> None:
        parse_faults(self.faults)  # fail at construction, not at the first request
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        if self.time_scale < 0:
            raise ValueError("time_scale must be >= 0")
        if not (0 <= self.port <= 65535 and 0 <= self.agent_port <= 65535):
            raise ValueError("port and agent_port must be 0..65535")
        if self.port and self.port == self.agent_port:
            raise ValueError("the API host and the agent host need two ports (port == agent_port)")
