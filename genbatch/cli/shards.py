"""``genbatch run TABLE --ray [ADDRESS] --shards N``: the run in shards on a Ray cluster.

``genbatch/cli/run.py`` adds the flags (:func:`add_ray_args`) to ``run`` and hands
a run that has ``--ray`` to :func:`run_sharded`.  Ray is imported only when a
run asks for it (``genbatch --help`` stays fast; a plain install has no Ray and
``--ray`` then says how to get it, exit 2).  docs/ray.md is the user's guide.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING, Final

from genbatch.cli import UsageError
from genbatch.cli.target import target

if TYPE_CHECKING:
    from genbatch.distributed.driver import ShardedSummary
    from genbatch.distributed.merge import ShardedStatus

#: ``--ray`` with no address: a private Ray on this machine.
RAY_LOCAL: Final = "local"

__all__ = ["add_ray_args", "run_sharded", "wants_ray"]


def add_ray_args(p: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]`` and ``--shards N``."""
    p.add_argument(
        "--ray",
        nargs="?",
        const=RAY_LOCAL,
        default=None,
        metavar="ADDRESS",
        help="run in shards on Ray: the cluster at ADDRESS (`ray start --head` prints it), "
        "or alone a private Ray on this machine (loopback only); needs "
        "pip install 'genbatch[ray]' (docs/ray.md)",
    )
    p.add_argument(
        "--shards",
        type=int,
        default=None,
        metavar="N",
        help="with --ray: shards to split the table into (default 4, at least one per "
        "API key of the api_key_env column); --max-credits then caps each key, "
        "--max-concurrency each shard",
    )


def wants_ray(args: argparse.Namespace) -> bool:
    """Whether the parsed ``run`` flags ask for a sharded run."""
    return getattr(args, "ray", None) is not None or getattr(args, "shards", None) is not None


def run_sharded(args: argparse.Namespace) -> int:
    """Run the table in shards; the exit code (docs/design.md §6)."""
    if args.ray is None:
        raise UsageError("--shards needs --ray (a sharded run runs on Ray)")
    if args.shards is not None and args.shards < 1:
        raise UsageError("--shards must be >= 1")
    if args.limit is not None and args.limit < 0:
        raise UsageError("--limit must be >= 0")
    from genbatch.distributed.cluster import import_ray

    import_ray()  # RayMissing (exit 2, how to install) before anything else
    try:
        result = asyncio.run(_run(args))
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result.to_json(), indent=2, default=str))
    else:
        from genbatch.cli.run import print_summary

        print_summary(result.summary)
        print(
            f"ray:     {len(result.shards)} shards; Ray, key actors and shard workers "
            f"ready in {result.ray_seconds:.1f} s",
            flush=True,
        )
        for shard in result.shards:
            if shard.error:
                print(f"  shard {shard.index} ({shard.key}): {shard.error}", file=sys.stderr)
    if result.summary.aborted:
        print(f"genbatch: {result.summary.aborted}", file=sys.stderr)
    return result.exit_code


async def _run(args: argparse.Namespace) -> ShardedSummary:
    from genbatch.cli.run import default_out
    from genbatch.distributed.driver import DISTRIBUTED_SHARDS_DEFAULT, ShardedRun
    from genbatch.distributed.driver import run_sharded as drive

    quiet = args.json or args.quiet

    def progress(status: ShardedStatus) -> None:
        if not quiet:
            print(status.lines()[0], file=sys.stderr, flush=True)

    async with target(args) as t:
        return await drive(
            ShardedRun(
                table=args.table,
                out_dir=args.out or default_out(args.table),
                api_key=t.api_key,
                api_url=t.api_url,
                agent_url=t.agent_url,
                address=None if args.ray == RAY_LOCAL else args.ray,
                shards=args.shards or DISTRIBUTED_SHARDS_DEFAULT,
                recipe=args.recipe,
                template=args.template,
                agent=t.agent,
                rate=t.rate,
                max_concurrency=args.max_concurrency,
                max_credits=args.max_credits,
                pricing=args.pricing,
                fresh=args.fresh,
                limit=args.limit,
                progress=progress,
            )
        )
