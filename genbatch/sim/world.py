"""The simulator's state: a composition of stores split like the routes, plus the ledger.

Routes parse HTTP and call the store that owns what they touch
(``world.accounts``, ``world.agent_store``, ``world.sheets``, ``world.gens``,
``world.assets``, ``world.jobs``, ``world.chat``); the stores enforce access
(403/404/422 agent_not_found), credits and the job life cycle, and raise
:class:`~genbatch.sim.entities.ApiError` with the reference's error codes.

Jobs (generations, renders, user jobs, agent runs, voice previews) carry their
own ``pending_until``/``due_at``; their status is computed on read.  Work that
must happen at completion (outputs, refunds, ideas, posts) is queued in one
:class:`~genbatch.sim.clock.DueQueue` and settled by :meth:`World.settle`,
which the app calls before every request and every ledger read, so a failed
generation's refund is in the ledger even if nobody polls it.
See docs/design.md §4 (the simulator).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from genbatch.sim.accounts import Accounts
from genbatch.sim.agentstore import AgentStore
from genbatch.sim.assets import Assets
from genbatch.sim.chat import Chat
from genbatch.sim.clock import Clock, DueQueue
from genbatch.sim.config import SimConfig
from genbatch.sim.entities import Agent, Counters, Generation, Json, Run, Shared, UserJob
from genbatch.sim.faults import Faults
from genbatch.sim.generations import Generations
from genbatch.sim.jobs import UserJobs
from genbatch.sim.limits import Capacity, TokenBucket
from genbatch.sim.sheets import Sheets
from genbatch.sim.webhooks import Webhooks

log = logging.getLogger("genbatch.sim")

#: What a saved world is made of (:meth:`World.snapshot`, genbatch/sim/state.py).  The
#: rest of a World is how it serves (time scale, latency, rate, faults, prices, job cap,
#: keys): the config of the process serving it decides those.
WORLD_STATE: Final = (
    "seed",
    "start_credits",
    "data_dir",
    "clock",
    "due",
    "counters",
    "idempotent",
    "shared",
    "accounts",
    "agent_store",
    "assets",
    "sheets",
    "gens",
    "jobs",
    "chat",
)


class World:
    """The stores, the job clock and due queue, the limits, the faults and the ledger."""

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (),
        credits: float,
        time_scale: float,
        seed: int,
        rate: float | None,
        burst: int,
        faults: str,
        data_dir: Path,
        legacy_paths: bool = False,
        prices: Mapping[str, float] | None = None,
        rate_headers: bool = True,
        timestamps: bool = False,
        job_cap: int | None = None,
        latency: Mapping[str, tuple[float, float]] | None = None,
        capacity: float | None = None,
        profile: str | None = None,
    ) -> None:
        self.api_keys = tuple(api_keys)
        #: Which dialect the routes speak: the teaching document's (True) or
        #: today's API (False); see genbatch/sim/dialect.py.
        self.legacy_paths = legacy_paths
        #: Price overrides (``genbatch sim --price``); kept across resets.
        self.prices = dict(prices or {})
        self.start_credits = credits
        self.seed = seed
        self.data_dir = data_dir
        self.time_scale = time_scale
        #: The token bucket per key; None: no rate limit (:meth:`set_rate`).
        self.bucket: TokenBucket | None = None
        self.burst = burst
        self.set_rate(rate)
        #: Send the rate headers (X-RateLimit-*, RateLimit-Policy) while limited.
        self.rate_headers = rate_headers
        #: Today's generation object carries created_at/updated_at.
        self.timestamps = timestamps
        #: Running generations per workspace (None: no cap); see Generations.job_cap.
        self.job_cap = job_cap
        #: Latency ranges by model or kind, ahead of clock.SIM_LATENCY; kept across resets.
        self.latency = dict(latency or {})
        #: The virtual server answers queue behind (None: answers never queue).
        self.capacity = Capacity(capacity) if capacity is not None else None
        #: The profile the config came from (banner, ledger).
        self.profile = profile
        self.faults = Faults(faults, seed + 2)
        self._init_state(base_url="")

    @classmethod
    def from_config(cls, config: SimConfig, data_dir: Path) -> World:
        """The world a :class:`SimConfig` describes (its network settings aside)."""
        return cls(
            api_keys=config.api_keys,
            credits=config.credits,
            time_scale=config.time_scale,
            seed=config.seed,
            rate=config.rate,
            burst=config.burst,
            faults=config.faults,
            data_dir=data_dir,
            legacy_paths=config.legacy_paths,
            prices=dict(config.prices),
            rate_headers=config.rate_headers,
            timestamps=config.timestamps,
            job_cap=config.job_cap,
            latency=config.latency_map(),
            capacity=config.capacity,
            profile=config.profile,
        )

    def _init_state(self, base_url: str) -> None:
        self.clock = Clock(self.time_scale, self.seed, self.latency)
        self.due = DueQueue()
        self.counters = Counters()
        self.idempotent: dict[tuple[str, str], Any] = {}
        self.storms: dict[str, float] = {}  # api key -> monotonic end of a 429 storm
        sh = self.shared = Shared(
            clock=self.clock, due=self.due, faults=self.faults, seed=self.seed, base_url=base_url
        )
        now = self.clock.now()
        # Seeding order is the CDN map's order, which ideas' asset lists depend on.
        self.accounts = Accounts(sh, api_keys=self.api_keys, credits=self.start_credits, now=now)
        self.agent_store = AgentStore(now=now)
        self.assets = Assets(sh, now=now)
        self.sheets = Sheets(sh)
        self.gens = Generations(sh, self.accounts, self.agent_store, self.sheets, self.assets)
        self.gens.prices = self.prices
        self.gens.set_job_cap(self.job_cap)
        self.jobs = UserJobs(sh, self.agent_store)
        self.chat = Chat(sh, self.agent_store, assets=self.assets, gens=self.gens, jobs=self.jobs)
        old_hooks: Webhooks | None = getattr(self, "webhooks", None)
        if old_hooks is not None:
            old_hooks.close()  # a reset: the old world's timers and deliveries stop
        self.webhooks = Webhooks(self)
        self.gens.on_status = self.webhooks.generation_status

    def reset(self) -> None:
        """Back to the seeded start (admin ``POST /_sim/reset``); limits keep their config.

        World, latency RNG (a new clock) and fault RNG all restart from the
        seed, so a pooled simulator replays exactly what a fresh one would.
        """
        if self.bucket is not None:
            self.bucket.reset()
        if self.capacity is not None:
            self.capacity.reset()
        self.faults.reseed()
        self._init_state(base_url=self.base_url)

    # ------------------------------------------------------------------ saved state
    def snapshot(self) -> dict[str, Any]:
        """The state genbatch/sim/state.py saves: stores, clock, due queue, ledger.

        Answers still being made (an Idempotency-Key's future) and the webhooks
        (timers, tasks) stay out; the stores leave out what they cannot keep.
        """
        state = {name: getattr(self, name) for name in WORLD_STATE}
        state["idempotent"] = {k: v for k, v in self.idempotent.items() if isinstance(v, tuple)}
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        """Become a saved world (:meth:`snapshot`), served with this world's settings.

        Jobs keep their wall-clock times, so what came due while nobody served
        the world settles on the first request.  Time scale, latency, rate,
        faults, prices, job cap and keys are this world's (its config's): a
        later ``--sim-time-scale`` sets the speed of the jobs started from now
        on.  Files of the saved world's data dir are found in this one's, which
        may be the same dir moved.
        """
        base_url, old_data = self.base_url, Path(state["data_dir"])
        for name in WORLD_STATE:
            if name != "data_dir":
                setattr(self, name, state[name])
        self.shared.base_url = base_url
        self.shared.faults = self.faults
        self.clock.time_scale = self.time_scale
        self.clock.ranges = dict(self.latency)
        self.gens.prices = self.prices
        self.gens.set_job_cap(self.job_cap)
        self.accounts.add_keys(self.api_keys)
        self.storms = {}  # monotonic times of another process
        if self.bucket is not None:
            self.bucket.reset()
        if self.capacity is not None:
            self.capacity.reset()
        for obj in self.shared.cdn.values():
            if obj.path is not None and obj.path.is_relative_to(old_data):
                obj.path = self.data_dir / obj.path.relative_to(old_data)
        self.webhooks.close()
        self.webhooks = Webhooks(self)
        self.gens.on_status = self.webhooks.generation_status

    # ------------------------------------------------------------------ limits
    def set_rate(self, rate: float | None) -> None:
        """Requests/s per key from now on; None removes the limit (and its headers)."""
        if rate is None:
            self.bucket = None
        elif self.bucket is None:
            self.bucket = TokenBucket(rate, self.burst)
        else:
            self.bucket.configure(rate=rate)

    def set_burst(self, burst: int) -> None:
        self.burst = burst
        if self.bucket is not None:
            self.bucket.configure(burst=burst)

    def set_job_cap(self, job_cap: int | None) -> None:
        """Running generations per workspace from now on (None: no cap)."""
        self.job_cap = job_cap
        self.gens.set_job_cap(job_cap)

    @property
    def base_url(self) -> str:
        """The API host's root, configured by whoever serves the app (SimServer).

        CDN and upload URLs are built on it, never on the host a request came
        in on: a download link must point at the API host even when the agent
        host asked for it.
        """
        return self.shared.base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        self.shared.base_url = value

    # ------------------------------------------------------------------ white-box views
    # Tests assert on these; the stores own them.
    @property
    def keys(self) -> dict[str, int]:
        return self.accounts.keys

    @property
    def agents(self) -> dict[int, Agent]:
        return self.agent_store.agents

    @property
    def generations(self) -> dict[int, Generation]:
        return self.gens.generations

    @property
    def user_jobs(self) -> dict[int, UserJob]:
        return self.jobs.user_jobs

    @property
    def runs(self) -> dict[int, Run]:
        return self.chat.runs

    @property
    def ideas(self) -> dict[int, Json]:
        return self.chat.ideas

    # ------------------------------------------------------------------ settle
    def settle(self, now: float) -> None:
        """Finish every job whose time has come, in due order (deterministic).

        One broken job must not break the request that happened to trigger
        settling: it is logged and, for a generation, failed and refunded.
        """
        for due, (kind, ident) in self.due.pop_due(now):
            try:
                if kind == "gen":
                    self.gens.settle(ident, due)
                elif kind == "job":
                    self.jobs.settle(ident, due)
                elif kind == "run":
                    self.chat.settle(ident, due)
            except Exception:
                log.exception("sim: settling %s %s failed", kind, ident)
                if kind == "gen":
                    self.gens.fail_broken(ident)

    def maybe_settle(self, now: float) -> None:
        if self.due.next_due <= now:
            self.settle(now)

    # ------------------------------------------------------------------ ledger
    def ledger(self, now: float) -> Json:
        """``GET /_sim/ledger``: requests, generations, credits, uploads, jobs, runs, config."""
        self.settle(now)
        c = self.counters
        return {
            "requests": {
                "by_route": dict(c.by_route),
                "by_status": dict(c.by_status),
                "total": sum(c.by_status.values()),
                "log": [
                    {"t": t, "method": m, "route": r, "status": s, "api_key_hash": k}
                    for t, m, r, s, k in c.log
                ],
            },
            "generations": self.gens.ledger(now),
            "credits": self.accounts.ledger(),
            "uploads": self.assets.ledger(),
            "user_jobs": self.jobs.ledger(now),
            "runs": self.chat.ledger(),
            "config": self.config_view(),
        }

    def config_view(self) -> Json:
        """The ledger's ``config``: what this world serves now (rate None: no limit)."""
        return {
            "profile": self.profile,
            "rate": self.bucket.rate if self.bucket is not None else None,
            "burst": self.burst,
            "rate_headers": self.rate_headers,
            "timestamps": self.timestamps,
            "job_cap": self.job_cap,
            "capacity": self.capacity.rate if self.capacity is not None else None,
            "latency": {key: [lo, hi] for key, (lo, hi) in sorted(self.latency.items())},
            "faults": self.faults.spec,
            "time_scale": self.time_scale,
            "seed": self.seed,
        }
