"""Helpers for the engine's end-to-end tests: run a table, read the ledger, check I1–I6.

Every check here reads real artefacts — the simulator's ledger over HTTP,
the result table, the files on disk — never engine internals.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
import polars as pl

from genbatch._constants import SIM_DEMO_AGENT_ID
from genbatch.engine.runner import RunOptions, RunSummary, execute
from genbatch.sim.serve import SimServer

#: A key long enough to be recognisable if it ever leaked into a file (I5).
SECRET_KEY = "gb-test-secret-key-7f3a9c21d5e84b60"
#: ``python -m genbatch`` with the tests' halt-at-a-milestone hook (see there).
LAUNCH = Path(__file__).parents[1] / "reliability" / "launch.py"
AGENT = str(SIM_DEMO_AGENT_ID)
SCALE = 0.002
ALIVE = ("completed", "pending", "processing")


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def vo_table(path: Path, n: int, prefix: str = "r") -> Path:
    """``n`` rows for tiktok-vo-broll (hook, script)."""
    return write_csv(
        path,
        ["row_id", "hook", "script"],
        [[f"{prefix}{i:02d}", f"Hook number {i}", f"Script for video {i}."] for i in range(n)],
    )


#: What the simulator charges one tiktok-vo-broll row of :func:`vo_table`: a
#: four-word voiceover (1 credit at 30 a minute of speech), 5 s of veo_3_fast
#: (30 a second) and a render (50) — GEN's published typical costs.
VO_ROW_COST = 1.0 + 150.0 + 50.0
#: What the default pricing.toml estimates for that row (a voiceover is
#: estimated at 15, whatever its length).
VO_ROW_ESTIMATE = 15.0 + 150.0 + 50.0


def vo_recipe(model: str = "veo_3_fast", publish: str = "") -> str:
    """A tiktok-vo-broll recipe that fills and generates every layer it renders.

    ``model``: the b-roll's model (``"{model}"`` takes it from a column);
    ``publish``: a ``[publish]`` section to add (none: no publish).
    """
    return f"""
template = "tiktok-vo-broll"
[cells]
hook = "{{hook}}"
script = "{{script}}"
[[generate]]
cell = "voiceover"
generation_type = "speech_from_text"
data = {{ script = "{{script}}", voice_method = "my_voices" }}
[[generate]]
cell = "broll"
generation_type = "video_from_text"
data = {{ prompt = "b-roll for {{hook}}", model = "{model}", aspect_ratio = "9:16", duration = 5 }}
[render]
enabled = true
{publish}"""


def exact_pricing(directory: Path) -> Path:
    """A pricing file whose estimate for a :func:`vo_table` row is what the simulator charges.

    With estimates equal to charges, what a run admits does not depend on
    whether earlier rows had settled when a later one asked.
    """
    path = directory / "exact-pricing.toml"
    path.write_text(
        "[generation_types]\nspeech_from_text = 1\nvideo_from_text = 300\nrender = 50\n"
        "[per_second]\nveo_3_fast = 30\n"
    )
    return path


async def run_table(sim: SimServer, table: Path, out: Path, **kw: Any) -> RunSummary:
    """``genbatch run`` in-process against ``sim`` (progress off)."""
    opts: dict[str, Any] = {
        "table": table,
        "out_dir": out,
        "api_key": SECRET_KEY,
        "api_url": sim.api_url,
        "agent_url": sim.agent_url,
        "agent": AGENT,
        "rate": 1000.0,
        "progress": False,
    }
    opts.update(kw)
    return await execute(RunOptions(**opts))


async def ledger(base_url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(base_url + "/_sim/ledger") as resp:
        assert resp.status == 200
        data: dict[str, Any] = await resp.json()
        return data


async def sim_config(base_url: str, **body: Any) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(base_url + "/_sim/config", json=body) as resp,
    ):
        assert resp.status == 200, await resp.text()


def results(out: Path) -> list[dict[str, Any]]:
    """results.parquet as dicts, after checking results.csv has the same rows."""
    frame = pl.read_parquet(out / "results.parquet")
    with (out / "results.csv").open(newline="", encoding="utf-8") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert [r["row_id"] for r in csv_rows] == [
        ("'" + r if r[:1] in "=+-@" else r) for r in frame["row_id"].to_list()
    ]
    return frame.to_dicts()


def peak_overlap(spans: Iterable[tuple[float, float | None]]) -> int:
    """Most spans ``(start, end)`` open at once (``end`` None: still open)."""
    spans = list(spans)
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans if b is not None])
    depth = peak = 0
    for _, step in edges:
        depth += step
        peak = max(peak, depth)
    return peak


def table_ids(table: Path) -> list[str]:
    with table.open(newline="", encoding="utf-8") as fh:
        return [row["row_id"] for row in csv.DictReader(fh)]


def check_invariants(
    led: dict[str, Any], out: Path, table: Path, *, charged_before: float = 0.0
) -> list[dict[str, Any]]:
    """docs/design.md §7 I1–I5 on a finished run; returns the result rows.

    ``charged_before``: net credits the simulator had charged before this
    output dir was first run (other tests' spending on a shared simulator).
    """
    rows = results(out)
    # I1: every input row exactly once, with one terminal status.
    assert sorted(r["row_id"] for r in rows) == sorted(table_ids(table))
    assert Counter(r["row_id"] for r in rows).most_common(1)[0][1] == 1
    assert {r["status"] for r in rows} <= {"completed", "failed", "skipped"}, rows
    # I2: no cell paid twice — per cell at most one generation that was not
    # refunded, and no idempotency key behind two generations.
    alive: dict[tuple[Any, Any], list[Any]] = defaultdict(list)
    keys: Counter[str] = Counter()
    for gen in led["generations"]:
        if gen["status"] in ALIVE:
            alive[(gen["engine_id"], gen["cell_id"])].append(gen["id"])
        if gen["idempotency_key"]:
            keys[gen["idempotency_key"]] += 1
    twice = {cell: ids for cell, ids in alive.items() if len(ids) > 1}
    assert not twice, f"cells paid twice: {twice}"
    assert not [k for k, n in keys.items() if n > 1]
    assert not [g for g in led["generations"] if g["status"] in ("pending", "processing")]
    # I3: credits the simulator kept == credits genbatch reports.
    credits = led["credits"]
    net = credits["charged"] - credits["refunded"] - charged_before
    reported = sum(r["credits"] or 0.0 for r in rows)
    assert abs(net - reported) < 1e-6, (net, reported)
    # I4: no partial file; every MP4 is the size and hash the table says.
    videos = out / "videos"
    names = sorted(p.name for p in videos.iterdir()) if videos.exists() else []
    assert not [n for n in names if not n.endswith((".mp4", ".jpg"))], names
    for thumb in {r["thumbnail"] for r in rows if r.get("thumbnail")}:
        assert (out / thumb).read_bytes()[:3] == b"\xff\xd8\xff", thumb
    for r in rows:
        if r["status"] == "completed" and r["mp4_path"]:
            path = out / r["mp4_path"]
            assert path.parent == videos
            data = path.read_bytes()
            assert len(data) == r["bytes"]
            assert hashlib.sha256(data).hexdigest() == r["sha256"]
    assert len([n for n in names if n.endswith(".mp4")]) == sum(1 for r in rows if r["mp4_path"])
    # I5: no key, no presigned signature in anything we wrote.
    assert_no_secrets(out)
    return rows


def assert_no_secrets(out: Path) -> None:
    for root, _, files in os.walk(out):
        for name in files:
            data = (Path(root) / name).read_bytes()
            assert SECRET_KEY.encode() not in data, f"API key leaked into {name}"
            for marker in (b"X-Amz-Signature=", b"Signature="):
                idx = data.find(marker)
                while idx != -1:
                    tail = data[idx + len(marker) : idx + len(marker) + 10]
                    assert tail.startswith(b"[REDACTED]") or tail.startswith(b"%5BREDACTED"), (
                        f"signature in {name}"
                    )
                    idx = data.find(marker, idx + 1)


def snapshot_tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}
