"""``genbatch run --ray``: one table, many shards, one budget per API key.

The driver (the process the user started) checks the table and recipe as a
single run would, takes the output dir's lock, partitions the rows
(:mod:`~genbatch.distributed.partition`), starts one budget actor per key and
one Ray task per shard, waits, then merges the shards' outputs
(:mod:`~genbatch.distributed.merge`).  A shard whose worker dies is run again by
Ray (``max_retries``) and resumes from its journal; a shard that fails for good
leaves its rows ``pending`` — rerun the same command.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from genbatch.distributed.actor import budget_actor
from genbatch.distributed.cluster import RayConnection, connect
from genbatch.distributed.merge import ShardedStatus, merge_results, sharded_status
from genbatch.distributed.partition import (
    DISTRIBUTED_SHARDS_DIR,
    Partition,
    partition,
    resolve_keys,
    row_ids,
    shard_dir,
    write_inputs,
)
from genbatch.distributed.shard import Secret, ShardSpec, run_shard, warm_worker
from genbatch.engine.journal import (
    ENGINE_JOURNAL_FILE,
    Journal,
    JournalError,
    lock_out_dir,
)
from genbatch.engine.pipeline import ENGINE_VIDEOS_DIR
from genbatch.engine.plan import StartError, prepare
from genbatch.engine.progress import ENGINE_RUN_LOG
from genbatch.engine.results import ENGINE_RESULTS_CSV, ENGINE_RESULTS_PARQUET, ResultFiles
from genbatch.engine.runner import RunSummary

#: Shards when --shards is not given (more if the table names more keys).
DISTRIBUTED_SHARDS_DEFAULT: Final = 4
#: Times Ray runs a shard again after its worker or node died.
DISTRIBUTED_SHARD_RETRIES: Final = 3
#: CPUs a shard asks Ray for (one event loop).
DISTRIBUTED_SHARD_CPUS: Final = 1.0
#: Seconds between progress reports while shards run.
DISTRIBUTED_PROGRESS_SECONDS: Final = 2.0
#: Seconds a cancelled shard gets to stop before the driver moves on.
DISTRIBUTED_CANCEL_SECONDS: Final = 10.0
#: Longest wait for the key actors and warm shard workers before the shards go.
DISTRIBUTED_WARM_SECONDS: Final = 60.0

__all__ = [
    "DISTRIBUTED_SHARDS_DEFAULT",
    "ShardOutcome",
    "ShardedRun",
    "ShardedSummary",
    "run_sharded",
]


@dataclass(frozen=True, slots=True)
class ShardedRun:
    """Everything ``genbatch run --ray`` was asked to do, as data."""

    table: Path
    out_dir: Path
    api_key: str
    api_url: str
    agent_url: str
    #: The cluster to join (None: a private Ray on this machine, loopback only).
    address: str | None = None
    shards: int = DISTRIBUTED_SHARDS_DEFAULT
    recipe: Path | None = None
    template: str | None = None
    agent: str | None = None
    rate: float | None = None
    #: Rows in flight per shard.
    max_concurrency: int | None = None
    #: Per API key, shared by that key's shards.
    max_credits: float | None = None
    pricing: Path | None = None
    fresh: bool = False
    limit: int | None = None
    retries: int = DISTRIBUTED_SHARD_RETRIES
    shard_cpus: float = DISTRIBUTED_SHARD_CPUS
    #: Told the shards' counts every few seconds while they run.
    progress: Callable[[ShardedStatus], None] | None = None


@dataclass(slots=True)
class ShardOutcome:
    """How one shard ended: its summary (JSON data), or why it did not finish."""

    index: int
    key: str
    rows: int
    result: dict[str, Any] | None = None
    error: str | None = None
    exit_code: int = 0


@dataclass(slots=True)
class ShardedSummary:
    """The run as one (:attr:`summary`, what a single run reports) and its shards."""

    summary: RunSummary
    shards: list[ShardOutcome]
    #: Seconds to start or join Ray, then to have the key actors up and the
    #: shards' workers loaded (part of ``summary.seconds``, told apart).
    ray_seconds: float
    #: Per key label: its budget actor's gate and credits at the end.
    budgets: dict[str, dict[str, Any]] = field(default_factory=dict)
    kept: int = 0
    placed: int = 0

    @property
    def exit_code(self) -> int:
        return self.summary.exit_code

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary.to_json(),
            "ray_seconds": round(self.ray_seconds, 3),
            "budgets": self.budgets,
            "shards": [
                {
                    "shard": s.index,
                    "key": s.key,
                    "rows": s.rows,
                    "error": s.error,
                    "exit_code": s.exit_code if s.error else (s.result or {}).get("exit_code"),
                    "counts": (s.result or {}).get("counts"),
                    "requests": (s.result or {}).get("requests"),
                    "seconds": (s.result or {}).get("seconds"),
                }
                for s in self.shards
            ],
        }


# --------------------------------------------------------------------------
# The output dir: refused when it is not a sharded run's, locked while we run
# --------------------------------------------------------------------------
def _check_out(out_dir: Path) -> None:
    if not out_dir.is_dir():
        return
    if (out_dir / ENGINE_JOURNAL_FILE).exists():
        raise StartError(
            f"{out_dir} holds a single-process run (journal.sqlite): a sharded run "
            "keeps its journals under shards/; pass another --out, or run it without --ray"
        )
    if (out_dir / DISTRIBUTED_SHARDS_DIR).is_dir():
        return
    ours = (ENGINE_RESULTS_CSV, ENGINE_RESULTS_PARQUET, ENGINE_RUN_LOG)
    taken = [name for name in ours if (out_dir / name).exists()]
    videos = out_dir / ENGINE_VIDEOS_DIR
    if videos.is_dir() and any(videos.iterdir()):
        taken.append(f"{ENGINE_VIDEOS_DIR}/")
    if taken:
        raise StartError(
            f"{out_dir} already holds {', '.join(taken)} but no {DISTRIBUTED_SHARDS_DIR}/: "
            "genbatch did not write them and will not overwrite them; pass an empty or new --out"
        )


def _lock(out_dir: Path) -> int:
    """The output dir's lock (the one a single run takes, so ``genbatch status``
    reads the driver as the live process)."""
    try:
        return lock_out_dir(out_dir)
    except JournalError as exc:
        raise StartError(str(exc)) from None


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------
async def run_sharded(run: ShardedRun) -> ShardedSummary:
    """Run (or resume) the table in shards on Ray; never raises for a row or a shard.

    Raises :class:`~genbatch.errors.InputError` (exit 2) when it cannot start:
    bad table, recipe or flags, an ``api_key_env`` variable not set, an output
    dir that is not a sharded run's or is in use, Ray missing or unreachable.
    """
    started = time.monotonic()
    await asyncio.to_thread(
        prepare,
        run.table,
        recipe=run.recipe,
        template=run.template,
        agent=run.agent,
        pricing=run.pricing,
    )
    out = run.out_dir
    _check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = _lock(out)
    conn: RayConnection | None = None
    try:
        part, frame = await asyncio.to_thread(partition, run.table, out, run.shards)
        keys = resolve_keys(part.labels(), run.api_key)
        inputs = await asyncio.to_thread(write_inputs, part, frame, out)
        if run.fresh:
            _fresh(run, part, inputs)
        # In this thread: Ray sets its signal handlers from the main thread only.
        conn = connect(run.address, cpus=max(len(part.shards), os.cpu_count() or 1))
        outcomes, budgets, interrupted, warm = await _run_shards(run, part, inputs, keys)
        results = await asyncio.to_thread(merge_results, out, row_ids(frame))
        summary = _summarise(run, part, outcomes, results, budgets, interrupted, started)
        return ShardedSummary(
            summary, outcomes, conn.seconds + warm, budgets, kept=part.kept, placed=part.placed
        )
    finally:
        if conn is not None:
            conn.close()
        os.close(lock)


def _fresh(run: ShardedRun, part: Partition, inputs: dict[int, Path]) -> None:
    """``--fresh``: a new run in every shard's journal before any shard starts (a
    shard Ray runs again must resume it, not start yet another)."""
    for shard in part.shards:
        meta = {
            "table": str(Path(os.path.realpath(inputs[shard.index]))),
            "recipe": str(run.recipe or run.template or ""),
        }
        try:
            Journal.open(shard_dir(run.out_dir, shard.index), fresh=True, meta=meta).close()
        except (JournalError, OSError) as exc:
            raise StartError(str(exc)) from None


def _spec(run: ShardedRun, index: int, key: str, table: Path, limit: int | None) -> ShardSpec:
    return ShardSpec(
        index=index,
        key=key,
        table=table,
        out_dir=shard_dir(run.out_dir, index),
        assets_root=run.table.resolve().parent,
        api_url=run.api_url,
        agent_url=run.agent_url,
        recipe=run.recipe.resolve() if run.recipe else None,
        template=run.template,
        agent=run.agent,
        max_concurrency=run.max_concurrency,
        max_credits=run.max_credits,
        pricing=run.pricing.resolve() if run.pricing else None,
        limit=limit,
    )


async def _run_shards(
    run: ShardedRun, part: Partition, inputs: dict[int, Path], keys: dict[str, str]
) -> tuple[list[ShardOutcome], dict[str, dict[str, Any]], bool, float]:
    import ray

    actors, warm_seconds = await _start(run, part)
    task = ray.remote(run_shard).options(
        num_cpus=run.shard_cpus,
        max_retries=run.retries,
        retry_exceptions=False,
        scheduling_strategy="SPREAD",
    )
    outcomes = {s.index: ShardOutcome(s.index, s.key, len(s.positions)) for s in part.shards}
    refs: dict[int, Any] = {}
    for shard in part.shards:
        spec = _spec(run, shard.index, shard.key, inputs[shard.index], shard.limit(run.limit))
        refs[shard.index] = task.remote(spec, Secret(keys[shard.key]), actors[shard.key])
    waiting: dict[asyncio.Future[Any], int] = {
        asyncio.ensure_future(_result(ref)): index for index, ref in refs.items()
    }
    interrupted = False
    try:
        while waiting:
            done, _ = await asyncio.wait(list(waiting), timeout=DISTRIBUTED_PROGRESS_SECONDS)
            for fut in done:
                _settle(outcomes[waiting.pop(fut)], fut.result())
            if run.progress is not None and waiting:
                status = sharded_status(run.out_dir)
                if status is not None:
                    run.progress(status)
    except (asyncio.CancelledError, KeyboardInterrupt):
        interrupted = True
        for ref in refs.values():
            with contextlib.suppress(Exception):
                ray.cancel(ref)
        if waiting:
            await asyncio.wait(list(waiting), timeout=DISTRIBUTED_CANCEL_SECONDS)
        for fut, index in waiting.items():
            if fut.done() and not fut.cancelled():
                _settle(outcomes[index], fut.result())
            else:
                fut.cancel()
    budgets: dict[str, dict[str, Any]] = {}
    for label, actor in actors.items():
        with contextlib.suppress(Exception):
            budgets[label] = await asyncio.wait_for(actor.summary.remote(), 10.0)
        with contextlib.suppress(Exception):
            ray.kill(actor)
    return [outcomes[i] for i in sorted(outcomes)], budgets, interrupted, warm_seconds


async def _start(run: ShardedRun, part: Partition) -> tuple[dict[str, Any], float]:
    """Each key's budget actor, and the shards' imports done in as many workers,
    waited for (at most ``DISTRIBUTED_WARM_SECONDS``: only a head start; a busy
    cluster's shards queue as they would anyway).  Ray's start-up, not the
    run's: a shard taken by a warm worker starts at once.  The actors, and the
    seconds it took."""
    import ray

    started = time.monotonic()
    actors = {label: budget_actor(run.rate, run.max_credits, label) for label in part.labels()}
    warm = ray.remote(warm_worker).options(num_cpus=run.shard_cpus, scheduling_strategy="SPREAD")
    refs = [a.__ray_ready__.remote() for a in actors.values()]
    refs += [warm.remote() for _ in part.shards]
    waits = [asyncio.ensure_future(_result(ref)) for ref in refs]
    try:
        await asyncio.wait(waits, timeout=DISTRIBUTED_WARM_SECONDS)
    except BaseException:  # ^C while Ray starts: leave no actor behind
        for actor in actors.values():
            with contextlib.suppress(Exception):
                ray.kill(actor)
        raise
    finally:
        for fut in waits:
            fut.cancel()
    return actors, time.monotonic() - started


async def _result(ref: Any) -> dict[str, Any] | BaseException:
    """A shard's summary, or the error Ray raised for it (retries exhausted...)."""
    try:
        result: dict[str, Any] = await ref
    except Exception as exc:
        return exc
    return result


def _settle(outcome: ShardOutcome, result: dict[str, Any] | BaseException) -> None:
    if isinstance(result, BaseException):
        text = str(result).strip().splitlines()
        outcome.error = (
            f"shard {outcome.index} did not finish ({type(result).__name__}"
            f"{': ' + text[-1] if text else ''}); its rows stay resumable, rerun the same command"
        )
        outcome.exit_code = 1
        return
    if "error" in result:
        outcome.error = str(result["error"])
        outcome.exit_code = int(result.get("exit_code", 2))
        return
    outcome.result = result


def _summarise(
    run: ShardedRun,
    part: Partition,
    outcomes: list[ShardOutcome],
    results: ResultFiles,
    budgets: dict[str, dict[str, Any]],
    interrupted: bool,
    started: float,
) -> RunSummary:
    done = [o.result for o in outcomes if o.result is not None]

    def total(name: str) -> int:
        return sum(int(r.get(name) or 0) for r in done)

    def merged(name: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in done:
            for k, v in (r.get(name) or {}).items():
                out[k] = out.get(k, 0) + int(v)
        return out

    aborted = next(
        (
            f"shard {o.index} ({o.key}): {o.error}"
            for o in outcomes
            if o.error is not None and o.exit_code == 2
        ),
        None,
    ) or next((f"shard {r['shard']}: {r['aborted']}" for r in done if r.get("aborted")), None)
    counts = results.counts
    rows = sum(len(s.positions) for s in part.shards)
    not_attempted = (
        sum(len(s.positions) - (s.limit(run.limit) or 0) for s in part.shards)
        if run.limit is not None
        else 0
    )
    credits = 0.0
    with contextlib.suppress(Exception):
        import polars as pl

        credits = float(pl.read_parquet(results.parquet)["credits"].fill_null(0.0).sum())
    if len(budgets) == 1:
        rate = dict(next(iter(budgets.values())))
    else:
        rate = {
            "text": "; ".join(f"{k} {b.get('text', '?')}" for k, b in sorted(budgets.items())),
            "keys": budgets,
        }
    return RunSummary(
        run_id=f"sharded-{len(part.shards)}",
        out_dir=run.out_dir,
        total=rows,
        counts={s: counts.get(s, 0) for s in ("completed", "failed", "skipped", "pending")},
        credits=round(credits, 6),
        requests=total("requests"),
        rate_limited=total("rate_limited"),
        seconds=time.monotonic() - started,
        results=results,
        resumed=any(r.get("resumed") for r in done),
        aborted=aborted,
        interrupted=interrupted or any(r.get("interrupted") for r in done),
        not_attempted=not_attempted,
        rate=rate,
        identity=merged("identity"),
        reasons=merged("reasons"),
    )
