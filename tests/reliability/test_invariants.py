"""The invariant checker has teeth: each invariant, broken on purpose, is caught.

One clean run, then a copy of its output dir (or of the ledger) is damaged
the way a bug would damage it, and ``check_invariants`` must name the
invariant.  A checker that passes everything would make the matrix worthless.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import CANARY_KEY, SimProc, run_genbatch, vo_table
from invariants import InvariantError, check_invariants, snapshot

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from harness import start_sim

    logs = tmp_path_factory.mktemp("inv-logs")
    sim: SimProc = start_sim(logs, seed=99)
    try:
        work = tmp_path_factory.mktemp("inv")
        table, ids = vo_table(work / "t.csv", 2)
        out = work / "out"
        res = run_genbatch(table, out, sim.url)
        assert res.rc == 0, res.stderr
        yield out, sim.ledger(), ids, res.outputs
    finally:
        sim.stop()


def _copy(out: Path, tmp_path: Path) -> tuple[Path, Any]:
    work = tmp_path / "w"
    work.mkdir()
    dst = work / "out"
    shutil.copytree(out, dst)
    return dst, snapshot(work, dst)


def test_a_clean_run_passes(clean: Any, tmp_path: Path) -> None:
    out, led, ids, outputs = clean
    dst, before = _copy(out, tmp_path)
    assert check_invariants(dst, led, ids, [CANARY_KEY], outputs=outputs, before=before) == (
        "I1",
        "I2",
        "I3",
        "I4",
        "I5",
        "I6",
    )


def _gen_twice(led: dict[str, Any]) -> None:
    g = dict(led["generations"][0], id=99_999, idempotency_key="other")
    led["generations"].append(g)


def _unrecorded_charge(led: dict[str, Any]) -> None:
    led["credits"]["charged"] += 5


DAMAGE: dict[str, tuple[str, Callable[..., None]]] = {
    "row-missing-from-results": ("I1", lambda out, led, ids, w: ids.append("ghost")),
    "cell-paid-twice": ("I2", lambda out, led, ids, w: _gen_twice(led)),
    "charge-not-reported": ("I3", lambda out, led, ids, w: _unrecorded_charge(led)),
    "part-file-left": (
        "I4",
        lambda out, led, ids, w: (out / "videos" / "r00.mp4.part").write_bytes(b"x"),
    ),
    "mp4-cut-short": (
        "I4",
        lambda out, led, ids, w: (out / "videos" / "r00.mp4").write_bytes(
            (out / "videos" / "r00.mp4").read_bytes()[:-100]
        ),
    ),
    "key-in-log": (
        "I5",
        lambda out, led, ids, w: (out / "run.log").open("a").write(f"key={CANARY_KEY}\n"),
    ),
    "file-outside": ("I6", lambda out, led, ids, w: (w / "escaped.mp4").write_bytes(b"x")),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_each_broken_invariant_is_caught(clean: Any, tmp_path: Path, damage: str) -> None:
    out, led, ids, outputs = clean
    dst, before = _copy(out, tmp_path)
    led, ids = copy.deepcopy(led), list(ids)
    inv, hurt = DAMAGE[damage]
    hurt(dst, led, ids, dst.parent)
    with pytest.raises(InvariantError, match=rf"^{inv}:"):
        check_invariants(dst, led, ids, [CANARY_KEY], outputs=outputs, before=before)


def test_a_signature_in_captured_output_is_caught(clean: Any, tmp_path: Path) -> None:
    out, led, ids, _ = clean
    dst, before = _copy(out, tmp_path)
    leaked = ["PUT http://127.0.0.1/_storage/k?X-Amz-Expires=300&X-Amz-Signature=ab12cd34"]
    with pytest.raises(InvariantError, match=r"^I5:"):
        check_invariants(dst, led, ids, [CANARY_KEY], outputs=leaked, before=before)
    masked = ["PUT http://127.0.0.1/_storage/k?X-Amz-Signature=[REDACTED]"]
    check_invariants(dst, led, ids, [CANARY_KEY], outputs=masked, before=before)
