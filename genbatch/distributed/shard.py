"""One shard: the ordinary engine run on its rows, with its key's shared budget.

A shard is a Ray task (the driver submits :func:`run_shard`); it runs
:func:`genbatch.engine.runner.execute` on ``OUT/shards/<k>/input.parquet`` into
``OUT/shards/<k>/`` — its own journal, results and videos — so a shard that
dies is run again by Ray and resumes from that journal like any interrupted
run: nothing paid twice.  Its API gate and credit ledger lease from the key's
budget actor (:mod:`genbatch.distributed.actor`).

Before it starts the shard writes ``worker.json`` (its pid, host, Ray node, start)
beside its journal: who runs the shard now, for people and for tests.

The key reaches the shard as a :class:`Secret` argument (in the task's
arguments, in memory on the cluster; never in a file or a log).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from genbatch.distributed.actor import ActorSource, CreditHandle
from genbatch.engine.naming import safe_join
from genbatch.engine.runner import RunOptions, SharedBudget, execute
from genbatch.errors import GenError

#: Beside each shard's journal: which process runs it now.
DISTRIBUTED_WORKER_FILE: Final = "worker.json"

__all__ = [
    "DISTRIBUTED_WORKER_FILE",
    "Secret",
    "ShardSpec",
    "run_shard",
    "shard_main",
    "warm_worker",
]


class Secret:
    """A value that never shows in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        return (Secret, (self._value,))


@dataclass(frozen=True, slots=True)
class ShardSpec:
    """What one shard runs (everything but the key, which travels as a :class:`Secret`)."""

    index: int
    key: str  # the key's label (an env var name), never the key
    table: Path
    out_dir: Path
    assets_root: Path
    api_url: str
    agent_url: str
    recipe: Path | None = None
    template: str | None = None
    agent: str | None = None
    max_concurrency: int | None = None
    max_credits: float | None = None
    pricing: Path | None = None
    limit: int | None = None

    @property
    def name(self) -> str:
        return f"shard-{self.index}"


def _node() -> str | None:
    """The Ray node running this process (None outside Ray)."""
    try:
        import ray

        node: str = ray.get_runtime_context().get_node_id()
    except Exception:
        return None
    return node


def _mark(spec: ShardSpec) -> None:
    path = safe_join(spec.out_dir, DISTRIBUTED_WORKER_FILE, companions=(".tmp",))
    tmp = path.with_name(path.name + ".tmp")
    who = {"pid": os.getpid(), "host": socket.gethostname(), "node": _node()}
    tmp.write_text(json.dumps({**who, "started": time.time()}))
    os.replace(tmp, path)


async def shard_main(spec: ShardSpec, key: Secret, actor: Any) -> dict[str, Any]:
    """Run the shard; its summary as JSON data, or ``{"error", "exit_code"}``."""
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    _mark(spec)
    source = ActorSource(actor, spec.name)
    start = await source.register()
    shared = SharedBudget(
        tokens=source,
        start=start,
        credits=CreditHandle(source) if spec.max_credits is not None else None,
    )
    opts = RunOptions(
        table=spec.table,
        out_dir=spec.out_dir,
        api_key=key.reveal(),
        api_url=spec.api_url,
        agent_url=spec.agent_url,
        recipe=spec.recipe,
        template=spec.template,
        agent=spec.agent,
        rate=None,  # the key's budget actor holds the rate (and --rate)
        max_concurrency=spec.max_concurrency,
        max_credits=spec.max_credits,
        pricing=spec.pricing,
        limit=spec.limit,
        progress=False,
        shared=shared,
        assets_root=spec.assets_root,
    )
    try:
        summary = await execute(opts)
    except GenError as exc:
        return {"shard": spec.index, "error": str(exc), "exit_code": exc.exit_code}
    return {"shard": spec.index, "pid": os.getpid(), "node": _node(), **summary.to_json()}


def run_shard(spec: ShardSpec, key: Secret, actor: Any) -> dict[str, Any]:
    """The Ray task's body: one event loop for the shard's run."""
    return asyncio.run(shard_main(spec, key, actor))


def warm_worker() -> int:
    """A Ray task that only loads this module (the engine, the client, their
    imports) into a worker: run once per shard before the shards, the workers
    that then take them start at once.  Its pid."""
    return os.getpid()
