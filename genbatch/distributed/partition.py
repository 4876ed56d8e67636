"""Which shard runs which row: by API key first, then contiguous row ranges.

A table may name, per row, the environment variable that holds its key (column
``api_key_env``; empty or absent: the run's own key, ``GEN_API_KEY``).  Only the
variable's *name* is in the table and in the files written here; the key is read
from the environment of the process that starts the run.

Every key gets at least one shard; the ``--shards`` asked for are spread over
the keys by their number of rows, and each key's rows are cut into contiguous
ranges in table order.  A row's shard is where its journal is, so it must never
change while its output dir lives: the assignment is kept in
``OUT/shards/assignment.parquet`` and a rerun keeps every row where it was.
Rows new to the table go to their key's shards (a new key gets shards of its
own); a row whose key changed is refused (its earlier steps were paid with the
other key's workspace).
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from genbatch._constants import CLIENT_ENV_API_KEY
from genbatch.engine.naming import UnsafePathError, safe_join
from genbatch.engine.table import ENGINE_KEY_COLUMN, TableError, read_frame
from genbatch.errors import InputError

#: The column naming, per row, the environment variable holding its API key.
DISTRIBUTED_KEY_COLUMN: Final = ENGINE_KEY_COLUMN
#: Where shard dirs live under the output dir, and the files kept beside them.
DISTRIBUTED_SHARDS_DIR: Final = "shards"
DISTRIBUTED_ASSIGNMENT_FILE: Final = "assignment.parquet"
#: Each shard's input: its rows of the table, the key column dropped.
DISTRIBUTED_SHARD_INPUT: Final = "input.parquet"
#: The label of rows with no key column value: the run's own key.
DISTRIBUTED_DEFAULT_KEY: Final = CLIENT_ENV_API_KEY

_ENV_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

__all__ = [
    "DISTRIBUTED_DEFAULT_KEY",
    "DISTRIBUTED_KEY_COLUMN",
    "Partition",
    "Shard",
    "partition",
    "resolve_keys",
    "row_ids",
    "safe_dir",
    "shard_dir",
    "write_inputs",
]


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard: its number, the key's label (an env var name) and its rows.

    ``positions``: the rows' 0-based places in the table, ascending.
    """

    index: int
    key: str
    positions: tuple[int, ...]

    def limit(self, limit: int | None) -> int | None:
        """Its share of ``--limit N``: the first N rows of the table are a prefix of
        every shard's rows (they are in table order)."""
        if limit is None:
            return None
        return sum(1 for p in self.positions if p < limit)


@dataclass(frozen=True, slots=True)
class Partition:
    """Every shard of a run, and what changed since the output dir's last run."""

    shards: tuple[Shard, ...]
    #: Rows kept where an earlier run put them, and rows placed now.
    kept: int
    placed: int

    def labels(self) -> list[str]:
        return sorted({s.key for s in self.shards})


def safe_dir(base: Path, *parts: str) -> Path:
    """``base/parts...``: each part a directory or nothing yet, never a link (our own
    names only: shard numbers and fixed names)."""
    path = base
    for part in parts:
        path = path / part
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            raise UnsafePathError(f"{path} must be a directory, not a link or a file")
    return path


def shard_dir(out_dir: Path, index: int) -> Path:
    """``OUT/shards/<index>`` (checked: no link planted on the way)."""
    return safe_dir(out_dir, DISTRIBUTED_SHARDS_DIR, str(index))


def row_ids(frame: pl.DataFrame) -> list[str]:
    """Row keys as the journal keys them (an empty id: the row's 1-based number)."""
    ids: list[str] = []
    for n, raw in enumerate(frame.get_column("row_id").to_list(), start=1):
        text = "" if raw is None else str(raw).strip()
        ids.append(text or f"#{n}")
    return ids


def _row_keys(frame: pl.DataFrame, ids: Sequence[str]) -> list[str]:
    if DISTRIBUTED_KEY_COLUMN not in frame.columns:
        return [DISTRIBUTED_DEFAULT_KEY] * frame.height
    keys: list[str] = []
    for rid, raw in zip(ids, frame.get_column(DISTRIBUTED_KEY_COLUMN).to_list(), strict=True):
        name = "" if raw is None else str(raw).strip()
        if not name:
            keys.append(DISTRIBUTED_DEFAULT_KEY)
        elif not _ENV_NAME.match(name):
            raise InputError(
                f"row {rid!r}: {DISTRIBUTED_KEY_COLUMN} {name[:40]!r} is not an environment "
                "variable name (letters, digits and _); it names the variable holding "
                "the row's API key, never the key itself"
            )
        else:
            keys.append(name)
    return keys


def resolve_keys(
    labels: Sequence[str], default_key: str, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Each key label's key, from the environment (``default_key`` for the run's own).

    A variable that is not set is an error naming it (exit 2), before anything runs.
    """
    env = os.environ if env is None else env
    keys: dict[str, str] = {}
    for label in labels:
        if label == DISTRIBUTED_DEFAULT_KEY:
            keys[label] = default_key
            continue
        value = env.get(label, "").strip()
        if not value:
            raise InputError(
                f"the table's {DISTRIBUTED_KEY_COLUMN} column names {label}, which is not "
                f"set: export {label}=... (that workspace's API key) and rerun"
            )
        keys[label] = value
    return keys


def _spread(total: int, weights: Mapping[str, int]) -> dict[str, int]:
    """``total`` shards over keys by weight, each >= 1 (largest remainders)."""
    names = sorted(weights)
    total = max(total, len(names))
    whole = sum(weights.values()) or 1
    exact = {k: total * weights[k] / whole for k in names}
    counts = {k: max(1, int(exact[k])) for k in names}
    while sum(counts.values()) < total:
        k = max(names, key=lambda n: (exact[n] - counts[n], weights[n]))
        counts[k] += 1
    while sum(counts.values()) > total:
        k = max((n for n in names if counts[n] > 1), key=lambda n: counts[n] - exact[n])
        counts[k] -= 1
    return counts


def _ranges(positions: Sequence[int], parts: int) -> list[list[int]]:
    """``positions`` cut into ``parts`` contiguous runs, sizes differing by at most 1."""
    size, extra = divmod(len(positions), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(list(positions[start:end]))
        start = end
    return out


def _earlier(out_dir: Path) -> dict[str, tuple[int, str]]:
    path = safe_join(out_dir, DISTRIBUTED_SHARDS_DIR, DISTRIBUTED_ASSIGNMENT_FILE, companions=())
    if not path.is_file():
        return {}
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path}: cannot read the shard assignment: {exc}") from None
    return {
        rid: (int(shard), key)
        for rid, shard, key in zip(
            frame["row_id"].to_list(), frame["shard"].to_list(), frame["key"].to_list(), strict=True
        )
    }


def partition(table: Path, out_dir: Path, shards: int) -> tuple[Partition, pl.DataFrame]:
    """Assign the table's rows to shards (keeping an earlier run's assignment);
    returns the partition and the table as read."""
    if shards < 1:
        raise InputError("--shards must be >= 1")
    try:
        frame = read_frame(table)
    except TableError as exc:
        raise InputError(str(exc)) from None
    if "row_id" not in frame.columns:
        raise InputError(f"{table}: no 'row_id' column")
    ids = row_ids(frame)
    keys = _row_keys(frame, ids)
    earlier = _earlier(out_dir)
    rows: dict[int, list[int]] = defaultdict(list)
    key_of: dict[int, str] = {}
    for shard, key in earlier.values():
        key_of[shard] = key
    new: dict[str, list[int]] = defaultdict(list)
    kept = 0
    for pos, (rid, key) in enumerate(zip(ids, keys, strict=True)):
        was = earlier.get(rid)
        if was is None:
            new[key].append(pos)
            continue
        if was[1] != key:
            raise InputError(
                f"row {rid!r}: {DISTRIBUTED_KEY_COLUMN} is {key} now but was {was[1]} when "
                f"{out_dir} first ran it (its journal is that key's); restore it, or pass "
                "a new --out"
            )
        rows[was[0]].append(pos)
        kept += 1
    shards_of: dict[str, list[int]] = defaultdict(list)
    for shard, key in sorted(key_of.items()):
        shards_of[key].append(shard)
    next_index = max(key_of, default=-1) + 1
    fresh_keys = {k: len(v) for k, v in new.items() if k not in shards_of}
    room = max(len(fresh_keys), shards - len(key_of))
    for key, count in sorted(_spread(room, fresh_keys).items()) if fresh_keys else ():
        shards_of[key] = list(range(next_index, next_index + count))
        for index in shards_of[key]:
            key_of[index] = key
        next_index += count
    placed = 0
    for key, positions in new.items():
        targets = shards_of[key]
        for index, part in zip(targets, _ranges(positions, len(targets)), strict=True):
            rows[index].extend(part)
            placed += len(part)
    result = tuple(
        Shard(index, key_of[index], tuple(sorted(rows[index])))
        for index in sorted(key_of)
        if rows.get(index)
    )
    return Partition(result, kept, placed), frame


def write_inputs(part: Partition, frame: pl.DataFrame, out_dir: Path) -> dict[int, Path]:
    """Each shard's rows as ``OUT/shards/<k>/input.parquet`` (the key column
    dropped: it is not a recipe variable), and the assignment beside them."""
    ids = row_ids(frame)
    body = frame.drop(DISTRIBUTED_KEY_COLUMN, strict=False)
    paths: dict[int, Path] = {}
    for shard in part.shards:
        directory = shard_dir(out_dir, shard.index)
        directory.mkdir(parents=True, exist_ok=True)
        path = safe_join(directory, DISTRIBUTED_SHARD_INPUT, companions=(".tmp",))
        tmp = path.with_name(path.name + ".tmp")
        body[list(shard.positions)].write_parquet(tmp)
        os.replace(tmp, path)
        paths[shard.index] = path
    assignment = pl.DataFrame(
        {
            "row_id": [ids[p] for s in part.shards for p in s.positions],
            "shard": [s.index for s in part.shards for _ in s.positions],
            "key": [s.key for s in part.shards for _ in s.positions],
        },
        schema={"row_id": pl.String, "shard": pl.Int64, "key": pl.String},
    )
    earlier = _earlier(out_dir)
    if earlier:
        # Rows gone from the table keep their place: they may come back.
        known = set(assignment["row_id"].to_list())
        gone = [(rid, s, k) for rid, (s, k) in earlier.items() if rid not in known]
        if gone:
            assignment = pl.concat(
                [
                    assignment,
                    pl.DataFrame(
                        {
                            "row_id": [g[0] for g in gone],
                            "shard": [g[1] for g in gone],
                            "key": [g[2] for g in gone],
                        },
                        schema=assignment.schema,
                    ),
                ]
            )
    path = safe_join(
        out_dir, DISTRIBUTED_SHARDS_DIR, DISTRIBUTED_ASSIGNMENT_FILE, companions=(".tmp",)
    )
    tmp = path.with_name(path.name + ".tmp")
    assignment.write_parquet(tmp)
    os.replace(tmp, path)
    return paths
