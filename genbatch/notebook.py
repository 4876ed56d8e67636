"""``run_frame``: a polars DataFrame in, the run's results frame out — from a notebook.

The same engine as ``genbatch run`` (:func:`genbatch.engine.runner.execute`),
so the same journal, resume and exactly-once semantics: the frame is written
as Parquet to ``OUT/frame.parquet`` and run as that table.  The path is
fixed per output dir, so a second call with the same ``out`` is the same run
to the engine: completed rows are kept, rows cut off are reconciled before
anything is re-sent, and a row whose values changed (or every row, after the
template or recipe changed) is redone, its earlier video kept as
``NAME.vN.mp4``.

An entry point beside the command line, not under it: it resolves the API
the way ``genbatch run`` does (``GEN_API_KEY``/``GEN_API_URL`` through
:class:`~genbatch.settings.Settings`, or ``sim=True`` for an in-process
simulator) without importing :mod:`genbatch.cli`.

Jupyter runs an event loop in the kernel's thread, where ``asyncio.run``
refuses to start; :func:`run_frame` then runs the batch on a loop of its own
in a worker thread and blocks until it ends.  In a notebook cell
``await arun_frame(...)`` runs it on the kernel's loop instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import polars as pl

from genbatch._constants import CLIENT_ENV_API_KEY, SIM_DEMO_AGENT_ID, SIM_DEMO_API_KEY
from genbatch.engine.journal import ENGINE_JOURNAL_FILE, journal_table, live_holder
from genbatch.engine.naming import UnsafePathError, open_nofollow, safe_join
from genbatch.engine.plan import StartError, prepare
from genbatch.engine.results import ENGINE_RESULTS_PARQUET
from genbatch.engine.runner import RunOptions, RunSummary, execute
from genbatch.errors import GenError, InputError
from genbatch.settings import Settings

#: The file the frame becomes inside the output dir: one fixed name, so the
#: engine keys every call on the same out dir to the same table (and resumes).
NOTEBOOK_FRAME_FILE: Final = "frame.parquet"
#: Where a call without ``out`` writes: ``outputs/frame-<content hash>/``
#: (relative to the working directory, as ``genbatch run``'s ``outputs/``).
NOTEBOOK_OUT_ROOT: Final = "outputs"
NOTEBOOK_OUT_PREFIX: Final = "frame-"
#: Hex digits of the frame's content hash in the default dir's name.
NOTEBOOK_HASH_CHARS: Final = 12
#: ``sim=True`` plays the simulator ``genbatch run --sim`` plays: job latencies
#: x0.01 (a 90 s video in under a second) and a 50 requests/s limit it publishes.
NOTEBOOK_SIM_TIME_SCALE: Final = 0.01
NOTEBOOK_SIM_RATE: Final = 50.0

__all__ = ["arun_frame", "default_out", "run_frame"]

_T = TypeVar("_T")

_NO_KEY = (
    f"no API key: pass api_key=... or set {CLIENT_ENV_API_KEY} "
    "(GEN dashboard > your agent > API > Create API Key), "
    "or pass sim=True to rehearse against the built-in simulator"
)


@dataclass(frozen=True, slots=True)
class _Target:
    api_key: str
    api_url: str
    agent_url: str
    agent: str | None


# --------------------------------------------------------------------------
# The frame as the run's table
# --------------------------------------------------------------------------
def _check_frame(df: object) -> pl.DataFrame:
    """The frame, or :class:`InputError` saying what is wrong with it as a table."""
    if isinstance(df, pl.LazyFrame):
        raise InputError("run_frame takes a polars.DataFrame: collect() the LazyFrame first")
    if not isinstance(df, pl.DataFrame):
        kind = f"{type(df).__module__}.{type(df).__qualname__}"
        hint = "; polars.from_pandas(df) converts it" if "pandas" in kind else ""
        raise InputError(f"run_frame takes a polars.DataFrame, not {kind}{hint}")
    for name, dtype in df.schema.items():
        if dtype == pl.Object:
            raise InputError(
                f"column {name!r} holds Python objects, which a table cannot store: "
                "cast it to text or numbers"
            )
    return df


def _parquet(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    try:
        frame.write_parquet(buf)
    except (pl.exceptions.PolarsError, ValueError, TypeError) as exc:
        raise InputError(f"the frame cannot be written as a table: {exc}") from None
    return buf.getvalue()


def default_out(df: pl.DataFrame) -> Path:
    """``outputs/frame-<hash>/``: keyed by the frame's content (column names and
    values), so two different frames never share a run.  An edited frame gets a
    new dir (and pays for every row again): pass ``out=`` to resume it instead."""
    frame = _check_frame(df)
    digest = hashlib.sha256()
    digest.update("\x1f".join(frame.columns).encode())
    try:
        digest.update(frame.write_ndjson().encode())
    except (pl.exceptions.PolarsError, ValueError, TypeError):
        digest.update(_parquet(frame))  # a type JSON cannot show: its Parquet bytes
    return (
        Path(NOTEBOOK_OUT_ROOT) / f"{NOTEBOOK_OUT_PREFIX}{digest.hexdigest()[:NOTEBOOK_HASH_CHARS]}"
    )


def _stage(frame: pl.DataFrame, out_dir: Path, *, fresh: bool) -> Path:
    """Write the frame as ``OUT/frame.parquet``; its path (the run's table).

    Refused before anything is written when the dir is another table's run
    (unless ``fresh``), a process is running it now, or it holds files
    genbatch did not write.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"out={str(out_dir)!r} is a file, not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = safe_join(out_dir, NOTEBOOK_FRAME_FILE, companions=(".tmp",))
    except (OSError, UnsafePathError) as exc:
        raise InputError(f"out={str(out_dir)!r}: {exc}") from None
    owner = journal_table(out_dir)
    if owner is not None and owner != path.resolve() and not fresh:
        raise InputError(
            f"out={str(out_dir)!r} holds the run of {owner}, not of a frame: "
            "pass another out (a dir of its own per batch), or fresh=True to start over there"
        )
    ours = {NOTEBOOK_FRAME_FILE, NOTEBOOK_FRAME_FILE + ".tmp"}
    if owner is None and any(p.name not in ours for p in out_dir.iterdir()):
        raise InputError(
            f"out={str(out_dir)!r} already holds files and no {ENGINE_JOURNAL_FILE}: "
            "pass an empty or new directory (genbatch writes videos/ and results there)"
        )
    if live_holder(out_dir) is not None:
        raise InputError(
            f"out={str(out_dir)!r} is being run by another process now: "
            "wait for it, or pass another out"
        )
    data = _parquet(frame)
    with contextlib.suppress(OSError):
        if path.read_bytes() == data:
            return path  # the same frame again: leave the table untouched
    tmp = path.with_name(path.name + ".tmp")
    try:
        with os.fdopen(open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except (OSError, UnsafePathError) as exc:
        raise InputError(
            f"out={str(out_dir)!r}: cannot write {NOTEBOOK_FRAME_FILE}: {exc}"
        ) from None
    return path


# --------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------
def _settings(base_url: str | None, agent_url: str | None, **env: object) -> Settings:
    try:
        return Settings.from_env(api_url=base_url, agent_url=agent_url or base_url, **env)
    except ValueError as exc:
        raise InputError(f"bad base_url/agent_url: {exc}") from None


def _remote(
    *,
    sim: bool,
    api_key: str | None,
    base_url: str | None,
    agent_url: str | None,
    agent: str | None,
) -> _Target:
    """An API already running, resolved as ``genbatch run`` resolves its flags:
    ``api_key`` or ``GEN_API_KEY`` at ``base_url`` or ``GEN_API_URL`` (else GEN
    itself); with ``sim``, the simulator at ``base_url`` (``genbatch sim``),
    with the demo key and agent unless given."""
    if sim:
        where = _settings(base_url, agent_url, api_key=api_key or SIM_DEMO_API_KEY)
        return _Target(
            where.key() or SIM_DEMO_API_KEY,
            where.api_url,
            where.agent_url,
            agent or str(SIM_DEMO_AGENT_ID),
        )
    settings = _settings(base_url, agent_url, api_key=api_key)
    key = settings.key()
    if not key:
        raise InputError(_NO_KEY)
    return _Target(key, settings.api_url, settings.agent_url, agent)


@asynccontextmanager
async def _serve(
    remote: _Target | None, api_key: str | None, agent: str | None
) -> AsyncIterator[_Target]:
    """``remote``, or (None) a fresh in-process simulator for the block, as
    ``genbatch run --sim`` starts one: the demo key, workspace and agent."""
    if remote is not None:
        yield remote
        return
    from genbatch.sim.config import SimConfig
    from genbatch.sim.serve import SimServer

    cfg = SimConfig(
        api_keys=(api_key,) if api_key else (),
        time_scale=NOTEBOOK_SIM_TIME_SCALE,
        rate=NOTEBOOK_SIM_RATE,
        burst=int(NOTEBOOK_SIM_RATE),
    )
    async with SimServer(cfg) as server:
        yield _Target(api_key or SIM_DEMO_API_KEY, server.api_url, server.agent_url, agent)


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------
async def arun_frame(
    df: pl.DataFrame,
    *,
    template: str | None = None,
    recipe: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    sim: bool = False,
    api_key: str | None = None,
    base_url: str | None = None,
    agent_url: str | None = None,
    agent: str | int | None = None,
    rate: float | None = None,
    max_concurrency: int | None = None,
    max_credits: float | None = None,
    limit: int | None = None,
    fresh: bool = False,
    progress: bool = True,
) -> pl.DataFrame:
    """Run ``df`` as ``genbatch run`` runs a table; the results frame.

    ``df`` has a ``row_id`` column and the columns the recipe needs (``genbatch
    templates --sim`` lists them per template: ``hook``, ``script``...); every
    row becomes one video.  ``template``/``recipe``, ``agent``, ``rate``,
    ``max_concurrency``, ``max_credits``, ``limit`` and ``fresh`` mean what
    the flags of ``genbatch run`` mean.

    ``out`` (default ``outputs/frame-<hash of the frame's content>/``, so two
    different frames never mix) receives ``frame.parquet`` (the frame as the
    run's table), ``videos/``, ``results.parquet``/``results.csv``, the
    journal and ``run.log``.  Call again with the same frame and ``out`` and
    the run resumes, paying for nothing twice; with an edited frame and the
    same ``out`` only the changed rows are redone.  Asset paths a recipe
    uploads (``music``) resolve inside ``out``, where the table is.

    The key comes from ``api_key`` or ``GEN_API_KEY``; ``sim=True`` runs
    against a fresh in-process simulator instead (or the one at
    ``base_url``).  ``progress=False`` silences the progress lines
    (on stderr: a live panel on a terminal, a plain line every few seconds
    in a notebook or a log).

    Returns the same columns as ``OUT/results.parquet`` (``row_id, status,
    reason, ..., mp4_path`` relative to ``out``), one row per input row: a row
    that could not run ends ``failed`` with a reason naming its field, as in
    the CLI.  Raises :class:`~genbatch.errors.InputError` when the frame,
    recipe or ``out`` cannot run at all (no ``row_id``, a column the recipe
    needs missing, duplicate ids, no key), :class:`~genbatch.errors.GenError`
    when the key is refused, and ``KeyboardInterrupt`` when interrupted (the
    journal keeps every row: call again to resume).
    """
    frame = _check_frame(df)
    if limit is not None and limit < 0:
        raise InputError("limit must be >= 0")
    if max_concurrency is not None and max_concurrency < 1:
        raise InputError("max_concurrency must be >= 1")
    out_dir = Path(out) if out is not None else default_out(frame)
    recipe_path = Path(recipe) if recipe is not None else None
    agent_id = str(agent) if agent is not None else None
    local_sim = sim and base_url is None
    remote = (
        None
        if local_sim
        else _remote(
            sim=sim, api_key=api_key, base_url=base_url, agent_url=agent_url, agent=agent_id
        )
    )
    run_agent = remote.agent if remote is not None else (agent_id or str(SIM_DEMO_AGENT_ID))
    created = not out_dir.exists()
    table = _stage(frame, out_dir, fresh=fresh)
    try:
        # What the engine checks before a run, raised as the input error it is.
        prepare(table, recipe=recipe_path, template=template, agent=run_agent, pricing=None)
    except StartError as exc:
        if created:  # a frame that cannot run leaves no dir behind
            table.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise InputError(_as_arguments(str(exc))) from None
    async with _serve(remote, api_key, run_agent) as t:
        summary = await execute(
            RunOptions(
                table=table,
                out_dir=out_dir,
                api_key=t.api_key,
                api_url=t.api_url,
                agent_url=t.agent_url,
                recipe=recipe_path,
                template=template,
                agent=t.agent,
                rate=rate,
                max_concurrency=max_concurrency,
                max_credits=max_credits,
                fresh=fresh,
                limit=limit,
                progress=progress,
            )
        )
    if progress:
        print(_summary_line(summary), file=sys.stderr, flush=True)
    if summary.aborted:
        raise GenError(f"{summary.aborted}; check {CLIENT_ENV_API_KEY} (rerun to resume)")
    if summary.interrupted:
        raise KeyboardInterrupt
    parquet = summary.results.parquet if summary.results else out_dir / ENGINE_RESULTS_PARQUET
    return pl.read_parquet(parquet)


#: The engine's start errors name the CLI's flags; here they are arguments.
_FLAG_TO_ARGUMENT: Final = (
    ("pass --agent ID", "pass agent=ID"),
    ("--template SLUG", "template=SLUG"),
    ("--recipe FILE", "recipe=FILE"),
)


def _as_arguments(message: str) -> str:
    for flag, argument in _FLAG_TO_ARGUMENT:
        message = message.replace(flag, argument)
    return message


def _summary_line(summary: RunSummary) -> str:
    c = summary.counts
    parts = [f"{c.get(k, 0)} {k}" for k in ("completed", "failed", "skipped", "pending")]
    kept = summary.identity.get("kept", 0)
    redone = summary.identity.get("redone", 0)
    extra = f" ({kept} kept, {redone} redone)" if kept or redone else ""
    rows = f"{summary.total} row{'' if summary.total == 1 else 's'}"
    return (
        f"genbatch: {rows}: {', '.join(parts)}{extra}; "
        f"{summary.credits:g} credits; results in {summary.out_dir}"
    )


def run_frame(
    df: pl.DataFrame,
    *,
    template: str | None = None,
    recipe: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    sim: bool = False,
    api_key: str | None = None,
    base_url: str | None = None,
    agent_url: str | None = None,
    agent: str | int | None = None,
    rate: float | None = None,
    max_concurrency: int | None = None,
    max_credits: float | None = None,
    limit: int | None = None,
    fresh: bool = False,
    progress: bool = True,
) -> pl.DataFrame:
    """:func:`arun_frame`, blocking until the run ends; works inside a running
    event loop too (Jupyter), by running the batch on its own loop in a worker
    thread.  Arguments, result and errors: see :func:`arun_frame`."""

    def make() -> Coroutine[Any, Any, pl.DataFrame]:
        return arun_frame(
            df,
            template=template,
            recipe=recipe,
            out=out,
            sim=sim,
            api_key=api_key,
            base_url=base_url,
            agent_url=agent_url,
            agent=agent,
            rate=rate,
            max_concurrency=max_concurrency,
            max_credits=max_credits,
            limit=limit,
            fresh=fresh,
            progress=progress,
        )

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    return _in_worker_thread(make)


def _in_worker_thread(make: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run ``make()`` to its end on a new loop in another thread (this one's loop
    is busy running us).  ^C here cancels the batch — every row stays
    resumable — and is raised once the worker has stopped.

    The wait is on an event, never an interruptible ``Thread.join``: on 3.11 a
    join cut short by ^C marks the thread stopped while it still runs.
    """
    started, finished = threading.Event(), threading.Event()
    box: dict[str, Any] = {}

    async def main() -> _T:
        box["loop"], box["task"] = asyncio.get_running_loop(), asyncio.current_task()
        started.set()
        return await make()

    def work() -> None:
        try:
            with asyncio.Runner() as runner:
                box["result"] = runner.run(main())
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc
        finally:
            started.set()
            finished.set()

    worker = threading.Thread(target=work, name="genbatch-run-frame", daemon=True)
    worker.start()
    try:
        while not finished.wait(0.1):  # short waits: ^C reaches this thread between them
            pass
    except KeyboardInterrupt:
        started.wait()
        loop, task = box.get("loop"), box.get("task")
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(task.cancel)
        finished.wait()
        worker.join()
        raise
    worker.join()
    if "error" in box:
        error: BaseException = box["error"]
        raise error
    result: _T = box["result"]
    return result
