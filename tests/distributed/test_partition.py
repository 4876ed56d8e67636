"""Rows to shards: by the key a row names, then row ranges; stable across reruns.

No Ray here: the partition is plain files (the shard inputs and the kept
assignment), checked by reading them back.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from runhelp import write_csv

from genbatch.distributed.partition import partition, resolve_keys, write_inputs
from genbatch.errors import InputError

HEADER = ["row_id", "hook", "script", "api_key_env"]


def table(path: Path, keys: list[str]) -> Path:
    return write_csv(path, HEADER, [[f"r{i}", f"h{i}", f"s{i}", k] for i, k in enumerate(keys)])


def test_rows_go_to_their_key_then_in_contiguous_ranges(tmp_path: Path) -> None:
    keys = ["KEY_A", "KEY_B", "", "KEY_A", "KEY_A", "KEY_B", "KEY_A", "", "KEY_A", "KEY_B", "KEY_A"]
    part, frame = partition(table(tmp_path / "t.csv", keys), tmp_path / "out", 4)
    by_key: dict[str, list[list[int]]] = {}
    for shard in part.shards:
        assert {keys[p] or "GEN_API_KEY" for p in shard.positions} == {shard.key}
        by_key.setdefault(shard.key, []).append(list(shard.positions))
    # 6 rows of A, 3 of B, 2 of the run's own key: 4 shards, each key at least one.
    assert {k: len(v) for k, v in by_key.items()} == {"KEY_A": 2, "KEY_B": 1, "GEN_API_KEY": 1}
    a = by_key["KEY_A"]
    assert a == [[0, 3, 4], [6, 8, 10]]  # A's rows in table order, cut in two ranges
    assert sorted(p for s in part.shards for p in s.positions) == list(range(len(keys)))
    paths = write_inputs(part, frame, tmp_path / "out")
    first = pl.read_parquet(paths[part.shards[0].index])
    assert "api_key_env" not in first.columns  # not a recipe variable
    assert first["row_id"].to_list() == [f"r{p}" for p in part.shards[0].positions]


def test_a_rerun_keeps_every_row_where_it_was(tmp_path: Path) -> None:
    out = tmp_path / "out"
    keys = ["KEY_A"] * 6 + ["KEY_B"] * 2
    part, frame = partition(table(tmp_path / "t.csv", keys), out, 3)
    write_inputs(part, frame, out)
    before = {f"r{p}": s.index for s in part.shards for p in s.positions}
    # Two new rows of A, one of a new key C; --shards changed to 8.
    grown = table(tmp_path / "t2.csv", [*keys, "KEY_A", "KEY_C", "KEY_A"])
    again, _ = partition(grown, out, 8)
    after = {f"r{p}": s.index for s in again.shards for p in s.positions}
    assert {rid: after[rid] for rid in before} == before
    assert again.kept == len(keys) and again.placed == 3
    a_shards = {s.index for s in part.shards if s.key == "KEY_A"}
    assert after["r8"] in a_shards and after["r10"] in a_shards
    assert after["r9"] not in {s.index for s in part.shards}  # a new key: a new shard


def test_a_row_whose_key_changed_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    part, frame = partition(table(tmp_path / "t.csv", ["KEY_A", "KEY_B"]), out, 2)
    write_inputs(part, frame, out)
    with pytest.raises(InputError, match=r"row 'r1'.*KEY_A now but was KEY_B"):
        partition(table(tmp_path / "t2.csv", ["KEY_A", "KEY_A"]), out, 2)


def test_keys_come_from_the_environment_by_name(tmp_path: Path) -> None:
    env = {"KEY_A": "secret-a"}
    assert resolve_keys(["GEN_API_KEY", "KEY_A"], "own", env) == {
        "GEN_API_KEY": "own",
        "KEY_A": "secret-a",
    }
    with pytest.raises(InputError, match="names KEY_B, which is not set: export KEY_B="):
        resolve_keys(["KEY_B"], "own", env)
    with pytest.raises(InputError, match="row 'r0': api_key_env 'sk-123 456' is not"):
        partition(table(tmp_path / "t.csv", ["sk-123 456"]), tmp_path / "out", 1)


def test_ray_missing_is_exit_2_saying_how_to_install_it(tmp_path: Path) -> None:
    path = table(tmp_path / "t.csv", [""])
    code = (
        "import sys; sys.modules['ray'] = None\n"  # as on a plain install: import ray fails
        "from genbatch.cli import main\n"
        f"sys.exit(main(['run', {str(path)!r}, '--sim', '--ray', '--shards', '2']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'genbatch[ray]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "outputs").exists()  # nothing started
