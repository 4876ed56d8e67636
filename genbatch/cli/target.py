"""Where the API is, for every engine command: ``--sim``, ``--base-url``, or the environment.

``genbatch run/templates`` and ``genbatch agents/ideas/research/train`` take
the same target flags and resolve them the same way, so both command modules
use this one copy (the rate-gate hooks they share are ``runner.make_hooks``).

``--sim`` keeps its simulator's world in a state dir (``--sim-state``, else
``GENBATCH_SIM_STATE``, else ``.genbatch/sim/``), so the commands of one
rehearsal share one GEN: a run interrupted and started again finds its jobs,
``genbatch ideas`` finds the agent ``genbatch agents apply`` made.  One
command at a time per dir; ``rm -r`` the dir to start over.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from genbatch._constants import CLIENT_ENV_API_KEY, SIM_DEMO_AGENT_ID, SIM_DEMO_API_KEY
from genbatch.errors import GenError, InputError

#: Where `genbatch run TABLE` writes when --out is not given: outputs/<table stem>/.
ENGINE_DEFAULT_OUT_ROOT: Final = "outputs"
#: `--sim` defaults: time scale fast enough for a demo (a 90 s video takes
#: ~0.9 s) and the in-process simulator's rate limit (which it publishes, so a
#: run finds it without being told).
ENGINE_SIM_TIME_SCALE: Final = 0.01
ENGINE_SIM_RATE: Final = 50.0
#: Where `--sim` keeps its simulator's world (relative: under the current dir),
#: unless --sim-state or this environment variable says otherwise.
ENGINE_SIM_STATE_DIR: Final = ".genbatch/sim"
ENGINE_ENV_SIM_STATE: Final = "GENBATCH_SIM_STATE"

__all__ = [
    "NoKey",
    "SimStateBusy",
    "Target",
    "add_target_args",
    "open_target",
    "sim_state_dir",
    "target",
]

_NO_KEY = (
    f"no API key. Set it with `export {CLIENT_ENV_API_KEY}=...` "
    "(GEN dashboard > your agent > API > Create API Key), "
    "or add --sim to rehearse against the built-in simulator."
)


@dataclass(frozen=True, slots=True)
class Target:
    """The API one command talks to, and the rate a user imposed on it (None: discover)."""

    api_key: str
    api_url: str
    agent_url: str
    #: ``--agent`` when the command has it; with ``--sim``, else the demo agent.
    agent: str | None
    rate: float | None
    sim: bool


class NoKey(GenError):
    """Neither GEN_API_KEY nor --sim (exit 2 with this message)."""


class SimStateBusy(GenError):
    """Another --sim command holds the state dir (exit 2 with this message)."""


def sim_state_dir(flag: Path | None = None) -> Path:
    """Where ``--sim`` keeps its world: ``--sim-state``, else the environment, else the default."""
    if flag is not None:
        return flag
    return Path(os.environ.get(ENGINE_ENV_SIM_STATE) or ENGINE_SIM_STATE_DIR)


@asynccontextmanager
async def target(args: argparse.Namespace) -> AsyncIterator[Target]:
    """The API the parsed target flags name (see :func:`open_target`)."""
    if args.sim_state is not None and not args.sim:
        raise InputError(
            "--sim-state says where --sim's built-in simulator keeps its world; it needs --sim"
        )
    async with open_target(
        sim=args.sim,
        base_url=args.base_url,
        agent_url=args.agent_url,
        agent=getattr(args, "agent", None),
        rate=args.rate,
        sim_time_scale=args.sim_time_scale,
        sim_state=sim_state_dir(args.sim_state) if args.sim else None,
    ) as t:
        yield t


@asynccontextmanager
async def open_target(
    *,
    sim: bool = False,
    base_url: str | None = None,
    agent_url: str | None = None,
    agent: str | None = None,
    rate: float | None = None,
    sim_time_scale: float | None = None,
    sim_state: Path | None = None,
) -> AsyncIterator[Target]:
    """The API to talk to; with ``sim``, a simulator running for the block.

    ``sim``: each host at its own port of the simulator.  ``base_url`` alone:
    both hosts at that URL (a server that serves both); ``agent_url``
    overrides the agent host.  Neither: the environment, then GEN's hosts.

    ``sim_time_scale`` only sets the in-process simulator's speed: genbatch
    learns any server's latencies itself, so there is nothing to tell it.
    ``sim_state``: the dir the simulator's world is loaded from and saved to
    (:func:`sim_state_dir`); None: a fresh world of its own, gone after the block.

    Raises :class:`NoKey` without a key, :class:`SimStateBusy` when another
    command holds ``sim_state``, and :class:`GenError` for a bad URL or a
    state dir that cannot be read.
    """
    if sim_time_scale is not None and not sim:
        raise InputError(
            "--sim-time-scale sets the speed of --sim's built-in simulator only; "
            "against another server genbatch learns its latencies itself"
        )
    if sim:
        from genbatch.sim.config import SimConfig
        from genbatch.sim.serve import SimServer
        from genbatch.sim.state import StateInUse

        cfg = SimConfig(
            time_scale=sim_time_scale if sim_time_scale is not None else ENGINE_SIM_TIME_SCALE,
            rate=ENGINE_SIM_RATE,
            burst=int(ENGINE_SIM_RATE),
        )
        server = SimServer(cfg, state_dir=sim_state)
        try:
            await server.start()
        except StateInUse as exc:
            raise SimStateBusy(
                f"{exc}; one --sim command at a time per state dir: wait for it to end, "
                f"or give this one another with --sim-state DIR (or {ENGINE_ENV_SIM_STATE})"
            ) from None
        try:
            if server.state_created:
                print(
                    f"genbatch: --sim keeps its simulator's world in {sim_state}\n"
                    "  for the next --sim command; start over with "
                    f"`rm -r {shlex.quote(str(sim_state))}`",
                    file=sys.stderr,
                )
            yield Target(
                SIM_DEMO_API_KEY,
                server.api_url,
                server.agent_url,
                agent or str(SIM_DEMO_AGENT_ID),
                rate,
                True,
            )
        finally:
            await server.close()
        return
    try:
        from genbatch.settings import Settings  # pydantic: not for --help

        settings = Settings.from_env(api_url=base_url, agent_url=agent_url or base_url)
    except ValueError as exc:
        raise InputError(f"bad --base-url/--agent-url: {exc}") from None
    key = settings.key()
    if not key:
        raise NoKey(_NO_KEY)
    yield Target(
        key,
        settings.api_url,
        settings.agent_url,
        agent,
        rate,
        False,
    )


def add_target_args(p: argparse.ArgumentParser, *, rate_help: str, json_help: str) -> None:
    """``--sim | --base-url``, ``--agent-url``, ``--sim-time-scale`` and ``--sim-state``
    (``--sim`` only), ``--rate``, ``--json``."""
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--sim",
        action="store_true",
        help="run against an in-process simulator (no key needed); otherwise the API key "
        "comes from GEN_API_KEY (never a flag: flags show in ps and shell history)",
    )
    where.add_argument(
        "--base-url",
        metavar="URL",
        help="API base URL, also the agent host's unless --agent-url (default: GEN_API_URL)",
    )
    p.add_argument(
        "--agent-url",
        metavar="URL",
        help="agent host base URL (default: --base-url, else GEN_AGENT_URL); "
        "`genbatch sim` prints both",
    )
    p.add_argument(
        "--sim-time-scale",
        type=float,
        default=None,
        metavar="S",
        help=f"speed of --sim's built-in simulator: job latencies x S (default "
        f"{ENGINE_SIM_TIME_SCALE}); --sim only (genbatch learns any server's latencies)",
    )
    p.add_argument(
        "--sim-state",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"where --sim's simulator keeps its world between commands (default "
        f"{ENGINE_ENV_SIM_STATE}, else {ENGINE_SIM_STATE_DIR}/); one command at a time "
        "per dir; `rm -r DIR` starts over; --sim only",
    )
    p.add_argument("--rate", type=float, default=None, metavar="R", help=rate_help)
    p.add_argument("--json", action="store_true", help=json_help)
