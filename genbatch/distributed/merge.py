"""A sharded run's outputs as one: videos in ``OUT/videos/``, one result table, a status.

Each shard writes into its own dir (journal, results, ``videos/``).  The driver
then makes ``OUT`` look like a single run's:

* every file of a shard's ``videos/`` is hard-linked into ``OUT/videos/`` (same
  bytes, no copy; a copy where links cannot be made).  Names are kept, unless
  two shards chose the same one (a recipe's ``{hook}.mp4``): the later shard's
  gets ``-s<k>`` before the extension.  Which shard file went where is kept in
  ``OUT/shards/videos.json``, so a rerun reuses the same names, and a video a
  shard redid replaces its earlier link, which stays as ``NAME.vN.mp4`` as in a
  single run;
* the shards' result rows become ``OUT/results.parquet`` and ``results.csv``,
  in table order, with paths pointing into ``OUT/videos/`` and a ``shard``
  column;
* :func:`sharded_status` counts rows by status across the shard journals, for
  ``genbatch status OUT``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import polars as pl

from genbatch.distributed.partition import (
    DISTRIBUTED_ASSIGNMENT_FILE,
    DISTRIBUTED_SHARDS_DIR,
    safe_dir,
)
from genbatch.distributed.shard import DISTRIBUTED_WORKER_FILE
from genbatch.engine.journal import Journal, JournalError, live_holder
from genbatch.engine.naming import (
    UnsafePathError,
    keep_earlier,
    safe_join,
    split_ext,
)
from genbatch.engine.pipeline import ENGINE_VIDEOS_DIR
from genbatch.engine.results import (
    ENGINE_RESULTS_CSV,
    ENGINE_RESULTS_PARQUET,
    ResultFiles,
    write_table,
)

#: Which shard file was linked under which name in ``OUT/videos/``.
DISTRIBUTED_VIDEO_MAP: Final = "videos.json"

__all__ = [
    "ShardState",
    "ShardedStatus",
    "link_videos",
    "merge_results",
    "shard_indices",
    "sharded_status",
]


def shard_indices(out_dir: Path) -> list[int]:
    """The shards that have a dir under ``OUT/shards/``, in order."""
    root = out_dir / DISTRIBUTED_SHARDS_DIR
    if not root.is_dir() or root.is_symlink():
        return []
    return sorted(
        int(p.name)
        for p in root.iterdir()
        if p.name.isdigit() and p.is_dir() and not p.is_symlink()
    )


def _map_path(out_dir: Path) -> Path:
    return safe_join(out_dir, DISTRIBUTED_SHARDS_DIR, DISTRIBUTED_VIDEO_MAP, companions=(".tmp",))


def _load_map(out_dir: Path) -> dict[str, str]:
    path = _map_path(out_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _save_map(out_dir: Path, mapping: Mapping[str, str]) -> None:
    path = _map_path(out_dir)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dict(sorted(mapping.items())), indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _place(src: Path, target: Path) -> None:
    """``target`` becomes the same file as ``src``: a hard link, else a copy."""
    try:
        os.link(src, target)
        return
    except OSError:
        pass
    tmp = target.with_name(target.name + ".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, target)


def link_videos(out_dir: Path, index: int) -> dict[str, str]:
    """Link shard ``index``'s videos into ``OUT/videos/``; its paths' new names
    (``"videos/a.mp4" -> "videos/a-s3.mp4"``, only those that changed or not)."""
    source = safe_dir(out_dir, DISTRIBUTED_SHARDS_DIR, str(index), ENGINE_VIDEOS_DIR)
    if not source.is_dir():
        return {}
    videos = safe_dir(out_dir, ENGINE_VIDEOS_DIR)
    videos.mkdir(exist_ok=True)
    mapping = _load_map(out_dir)
    taken = set(mapping.values())
    renamed: dict[str, str] = {}
    for src in sorted(source.iterdir()):
        name = src.name
        if name.endswith(".part") or src.is_symlink() or not src.is_file():
            continue
        key = f"{index}/{name}"
        chosen = mapping.get(key)
        if chosen is None:
            chosen = name
            stem, ext = split_ext(name)
            n = 0
            while chosen in taken or (videos / chosen).exists():
                n += 1
                chosen = f"{stem}-s{index}{'' if n == 1 else f'-{n}'}{ext}"
            mapping[key] = chosen
            taken.add(chosen)
        target = safe_join(videos, chosen)
        if target.exists():
            with contextlib.suppress(OSError):
                if os.path.samefile(src, target):
                    renamed[f"{ENGINE_VIDEOS_DIR}/{name}"] = f"{ENGINE_VIDEOS_DIR}/{chosen}"
                    continue
            # The shard redid this video: the earlier one stays as NAME.vN.
            keep_earlier(target)
        _place(src, target)
        renamed[f"{ENGINE_VIDEOS_DIR}/{name}"] = f"{ENGINE_VIDEOS_DIR}/{chosen}"
    _save_map(out_dir, mapping)
    return renamed


def merge_results(out_dir: Path, ids: Sequence[str]) -> ResultFiles:
    """Every shard's result rows as ``OUT/results.parquet`` and ``results.csv``.

    ``ids``: the table's row ids in order (the merged rows follow it; rows of
    earlier runs it lacks go last, and a row no shard reported — its shard
    never started — is ``pending``: every input row has a line).  Videos are
    linked first, so the paths point into ``OUT/videos/``.
    """
    order = {rid: n for n, rid in enumerate(ids)}
    frames: list[pl.DataFrame] = []
    for index in shard_indices(out_dir):
        try:
            path = safe_join(out_dir, DISTRIBUTED_SHARDS_DIR, str(index), ENGINE_RESULTS_PARQUET)
        except UnsafePathError:
            continue
        if not path.is_file():
            continue
        frame = pl.read_parquet(path)
        renamed = link_videos(out_dir, index)
        text = [c for c, t in frame.schema.items() if t == pl.String and c != "row_id"]
        if renamed and text:
            frame = frame.with_columns(pl.col(c).replace(renamed) for c in text)
        frames.append(frame.with_columns(pl.lit(index, dtype=pl.Int64).alias("shard")))
    merged = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    seen = set(merged["row_id"].to_list()) if merged.height else set()
    unseen = [rid for rid in ids if rid not in seen]
    if unseen:
        filler = pl.DataFrame(
            {
                "row_id": unseen,
                "status": ["pending"] * len(unseen),
                "reason": ["not started: its shard did not run; rerun the same command"]
                * len(unseen),
            },
            schema={"row_id": pl.String, "status": pl.String, "reason": pl.String},
        )
        merged = pl.concat([merged, filler], how="diagonal_relaxed") if frames else filler
    if merged.height:
        last = len(order)
        places = [order.get(rid, last) for rid in merged["row_id"].to_list()]
        merged = (
            merged.with_columns(pl.Series("_place", places, dtype=pl.Int64))
            .sort("_place", maintain_order=True)
            .drop("_place")
        )
    parquet, csv_path = write_table(
        out_dir,
        merged,
        merged.iter_rows(named=True),
        parquet_name=ENGINE_RESULTS_PARQUET,
        csv_name=ENGINE_RESULTS_CSV,
    )
    counts: dict[str, int] = {}
    if merged.height:
        for status in merged["status"].to_list():
            counts[status] = counts.get(status, 0) + 1
    return ResultFiles(parquet, csv_path, merged.height, counts)


# --------------------------------------------------------------------------
# status
# --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ShardState:
    """One shard's rows by status, its key's label and who runs it now."""

    index: int
    key: str | None
    counts: dict[str, int]
    #: The pid holding the shard's journal now (None: nobody runs it).
    live: int | None
    #: ``worker.json``: the last process that started the shard.
    worker: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ShardedStatus:
    """A sharded run: counts by status across the shard journals."""

    out_dir: Path
    shards: tuple[ShardState, ...]
    counts: dict[str, int]
    #: The pid of the driver running the whole run now (None: none).
    live: int | None

    def lines(self) -> list[str]:
        """What ``genbatch status OUT`` prints for it."""
        c = self.counts
        state = f"live (driver pid {self.live})" if self.live else "not running"
        total = sum(c.values())
        lines = [
            f"{self.out_dir}: sharded run, {len(self.shards)} shards, {state}",
            f"  {total:,} rows: {c.get('completed', 0):,} completed, "
            f"{c.get('failed', 0):,} failed, {c.get('skipped', 0):,} skipped, "
            f"{c.get('running', 0):,} running, {c.get('pending', 0):,} pending",
        ]
        for s in self.shards:
            sc = s.counts
            who = f"live pid {s.live}" if s.live else "idle"
            lines.append(
                f"  shard {s.index} ({s.key or '?'}): {sc.get('completed', 0)} completed, "
                f"{sc.get('failed', 0)} failed, {sc.get('skipped', 0)} skipped, "
                f"{sc.get('running', 0) + sc.get('pending', 0)} to go; {who}"
            )
        return lines


def _keys(out_dir: Path) -> dict[int, str]:
    try:
        path = safe_join(out_dir, DISTRIBUTED_SHARDS_DIR, DISTRIBUTED_ASSIGNMENT_FILE)
        frame = pl.read_parquet(path, columns=["shard", "key"]).unique()
    except (UnsafePathError, OSError, pl.exceptions.PolarsError):
        return {}
    return {int(s): str(k) for s, k in frame.iter_rows()}


def _worker(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / DISTRIBUTED_WORKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def sharded_status(out_dir: Path) -> ShardedStatus | None:
    """Rows by status across ``OUT/shards/*/journal.sqlite`` (read-only, beside a
    live run); None when ``out_dir`` holds no sharded run."""
    indices = shard_indices(out_dir)
    if not indices:
        return None
    keys = _keys(out_dir)
    total: dict[str, int] = {}
    shards: list[ShardState] = []
    for index in indices:
        directory = out_dir / DISTRIBUTED_SHARDS_DIR / str(index)
        counts: dict[str, int] = {}
        try:
            journal = Journal.open(directory, read_only=True)
        except (JournalError, UnsafePathError, OSError):
            pass  # not started yet
        else:
            try:
                counts = journal.counts()
            finally:
                journal.close()
        for status, n in counts.items():
            total[status] = total.get(status, 0) + n
        shards.append(
            ShardState(index, keys.get(index), counts, live_holder(directory), _worker(directory))
        )
    return ShardedStatus(out_dir, tuple(shards), total, live_holder(out_dir))
