"""``genbatch sim`` — serve the offline GEN simulator until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from genbatch.sim.config import (
    SIM_DEFAULT_BURST,
    SIM_DEFAULT_CREDITS,
    SIM_DEFAULT_HOST,
    SIM_DEFAULT_PORT,
    SIM_DEFAULT_RATE,
    SIM_DEFAULT_SEED,
    SIM_DEFAULT_TIME_SCALE,
    SimConfig,
)
from genbatch.sim.serve import serve_forever

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``genbatch sim`` to the CLI."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sim",
        help="run the offline GEN simulator (API host and agent host on two ports)",
        description="Serve a stateful GEN API simulator: the API host (with CDN, storage and "
        "the /_sim admin) on --port and the agent host on --agent-port, sharing one state.",
    )
    p.add_argument("--host", default=SIM_DEFAULT_HOST, help="bind address (default %(default)s)")
    p.add_argument(
        "--port",
        type=int,
        default=SIM_DEFAULT_PORT,
        help="API host port (default %(default)s; 0 picks a free port)",
    )
    p.add_argument(
        "--agent-port",
        type=int,
        default=None,
        help="agent host port (default: --port + 1, or a free port when --port is 0; "
        "0 picks a free port)",
    )
    p.add_argument(
        "--api-key",
        action="append",
        default=[],
        dest="api_keys",
        metavar="KEY",
        help="accept this API key (repeatable); the demo key is always accepted",
    )
    p.add_argument("--rate", type=float, default=SIM_DEFAULT_RATE, help="requests/s per key")
    p.add_argument("--burst", type=int, default=SIM_DEFAULT_BURST, help="token bucket size")
    p.add_argument("--credits", type=float, default=SIM_DEFAULT_CREDITS, help="starting balance")
    p.add_argument(
        "--time-scale",
        type=float,
        default=SIM_DEFAULT_TIME_SCALE,
        help="multiply every job latency (0.01 = 100x faster)",
    )
    p.add_argument("--faults", default="", help="e.g. 500:0.02,reset_after:0.01,slow:0.05@2")
    p.add_argument("--seed", type=int, default=SIM_DEFAULT_SEED, help="RNG seed (reproducible)")
    p.add_argument("--admin-key", default=None, help="require X-Sim-Admin-Key on /_sim/")
    p.add_argument(
        "--legacy-paths",
        action="store_true",
        help="speak the teaching document's API: engine routes under /v1/autocontentengine "
        "and its object shapes (default: today's /v1/vidsheet API)",
    )
    p.add_argument(
        "--price",
        action="append",
        default=[],
        type=_price,
        metavar="KEY=CREDITS",
        help="credits per call for a model or generation type, instead of GEN's published "
        "typical cost (repeatable; e.g. --price veo_3=400 --price render=20)",
    )
    p.set_defaults(func=cmd_sim)


def _price(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    try:
        credits = float(value)
    except ValueError:
        credits = -1.0
    if not sep or not key.strip() or credits < 0:
        raise argparse.ArgumentTypeError(f"expected KEY=CREDITS (credits >= 0), got {text!r}")
    return key.strip(), credits


def cmd_sim(args: argparse.Namespace) -> int:
    agent_port = args.agent_port
    if agent_port is None:
        agent_port = args.port + 1 if args.port else 0
    try:
        config = SimConfig(
            api_keys=tuple(args.api_keys),
            rate=args.rate,
            burst=args.burst,
            credits=args.credits,
            time_scale=args.time_scale,
            faults=args.faults,
            seed=args.seed,
            admin_key=args.admin_key,
            host=args.host,
            port=args.port,
            agent_port=agent_port,
            legacy_paths=args.legacy_paths,
            prices=tuple(args.price),
        )
    except ValueError as exc:
        print(f"genbatch sim: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve_forever(config, lambda line: print(line, flush=True)))
    except OSError as exc:
        print(
            f"genbatch sim: cannot listen on {args.host} ports {args.port} (api) and "
            f"{agent_port} (agent): {exc}",
            file=sys.stderr,
        )
        return 2
    return 0
