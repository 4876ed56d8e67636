"""``genbatch sim`` — serve the offline GEN simulator until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap
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
from genbatch.sim.profile import (
    load_profile,
    parse_latency,
    profile_description,
    profile_names,
)

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``genbatch sim`` to the CLI."""
    names = profile_names()
    width = max(len(n) for n in names) + 2
    profiles = "\n".join(
        textwrap.fill(
            profile_description(n),
            width=79,
            initial_indent=f"  {n:<{width}}",
            subsequent_indent=" " * (width + 2),
        )
        for n in names
    )
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sim",
        help="run the offline GEN simulator (API host and agent host on two ports)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Serve a stateful GEN API simulator: the API host (with CDN, storage and the "
            "/_sim admin) on --port and the agent host on --agent-port, sharing one state.",
            width=79,
        ),
        epilog="named profiles (--profile NAME; or a TOML file of your own,\n"
        "see genbatch/sim/profile.py):\n" + profiles,
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
    p.add_argument(
        "--profile",
        default=None,
        metavar="NAME_OR_FILE",
        help="play a profile: a named one (listed below) or a TOML file; flags given "
        "explicitly override its values",
    )
    p.add_argument(
        "--profile-name",
        default=None,
        metavar="NAME",
        help="label the banner and ledger with NAME without loading anything (the process "
        "launcher passes it with every setting spelled out)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help=f"requests/s per key (default {SIM_DEFAULT_RATE:g}; 0 = no rate limit at all)",
    )
    p.add_argument(
        "--burst", type=int, default=None, help=f"token bucket size (default {SIM_DEFAULT_BURST})"
    )
    p.add_argument(
        "--rate-headers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="send X-RateLimit-Limit/Remaining/Reset and RateLimit-Policy: RATE;w=1 while "
        "there is a limit (default: on; a 429 carries Retry-After either way)",
    )
    p.add_argument(
        "--timestamps",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="today's generation object carries created_at/updated_at (default: off, as GEN "
        "documents it)",
    )
    p.add_argument(
        "--job-cap",
        type=int,
        default=None,
        metavar="N",
        help="generations (cells, layers; not renders) a workspace runs at once; the rest "
        "queue, reading pending (default 0 = no cap)",
    )
    p.add_argument(
        "--capacity",
        type=float,
        default=None,
        metavar="REQ_PER_S",
        help="requests/s the server answers before answers queue and slow down "
        "(default 0 = unlimited)",
    )
    p.add_argument(
        "--latency",
        action="append",
        default=[],
        type=_latency,
        metavar="KEY=LO:HI",
        help="latency range in seconds at time scale 1 for a model, a generation type or "
        "render (repeatable; a model's beats its type's; e.g. --latency render=100:200)",
    )
    p.add_argument(
        "--credits",
        type=float,
        default=SIM_DEFAULT_CREDITS,
        help=f"starting balance of each workspace (default {SIM_DEFAULT_CREDITS:,.0f})",
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=None,
        help=f"multiply every job latency (default {SIM_DEFAULT_TIME_SCALE:g}; 0.01 = 100x faster)",
    )
    p.add_argument(
        "--faults",
        default="",
        help="fault mix, e.g. 500:0.02,reset_after:0.01,slow:0.05@2 (default: none)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=SIM_DEFAULT_SEED,
        help=f"RNG seed (reproducible; default {SIM_DEFAULT_SEED})",
    )
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


def _latency(text: str) -> tuple[str, tuple[float, float]]:
    try:
        return parse_latency(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _config(args: argparse.Namespace, agent_port: int) -> SimConfig:
    """The profile's values (if any), then the flags given explicitly (ValueError when bad)."""
    for flag in ("rate", "job_cap", "capacity"):
        if (getattr(args, flag) or 0) < 0:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 0 (0: none)")
    values: dict[str, Any] = load_profile(args.profile) if args.profile else {}
    if args.rate is not None:
        values["rate"] = args.rate if args.rate > 0 else None
    if args.job_cap is not None:
        values["job_cap"] = args.job_cap if args.job_cap > 0 else None
    if args.capacity is not None:
        values["capacity"] = args.capacity if args.capacity > 0 else None
    for name in ("burst", "rate_headers", "timestamps", "time_scale"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    if args.latency:  # per key, over the profile's
        values["latency"] = tuple({**dict(values.get("latency", ())), **dict(args.latency)}.items())
    if args.profile_name is not None:
        values["profile"] = args.profile_name
    return SimConfig(
        **values,
        api_keys=tuple(args.api_keys),
        credits=args.credits,
        faults=args.faults,
        seed=args.seed,
        admin_key=args.admin_key,
        host=args.host,
        port=args.port,
        agent_port=agent_port,
        legacy_paths=args.legacy_paths,
        prices=tuple(args.price),
    )


def cmd_sim(args: argparse.Namespace) -> int:
    from genbatch.sim.serve import serve_forever  # aiohttp: not for --help

    agent_port = args.agent_port
    if agent_port is None:
        agent_port = args.port + 1 if args.port else 0
    try:
        config = _config(args, agent_port)
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
