"""The render's thumbnail, kept beside its MP4 as ``<stem>.jpg`` and in the results."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from storagehelp import AGENT, KEY, no_aws_env, results, vo_table

from genbatch.engine.naming import NameAllocator, thumbnail_name
from genbatch.engine.runner import RunOptions, execute
from genbatch.sim.config import SimConfig
from genbatch.sim.serve import SimServer


def test_sim_run_keeps_each_thumbnail_beside_its_video(tmp_path: Path) -> None:
    table = vo_table(tmp_path / "t.csv", 3)
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable, "-m", "genbatch", "run", str(table), "--template", "tiktok-vo-broll",
            "--sim", "--sim-time-scale", "0.002", "--out", str(out), "--quiet",
        ],
        env=no_aws_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = results(out)
    names = sorted(p.name for p in (out / "videos").iterdir())
    assert names == sorted(f"r{i:02d}.{ext}" for i in range(3) for ext in ("jpg", "mp4"))
    for row_id, r in rows.items():
        assert r["mp4_path"] == f"videos/{row_id}.mp4"
        assert r["thumbnail"] == f"videos/{row_id}.jpg"
        assert r["video_url"] is None and r["thumbnail_url"] is None
        jpg = (out / r["thumbnail"]).read_bytes()
        assert jpg[:3] == b"\xff\xd8\xff" and jpg[-2:] == b"\xff\xd9"  # a whole JPEG
    csv_head = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert {"thumbnail", "video_url", "thumbnail_url"} <= set(csv_head)


async def test_a_thumbnail_that_cannot_be_had_never_fails_the_row(tmp_path: Path) -> None:
    sim = await SimServer(
        SimConfig(api_keys=(KEY,), rate=1000.0, burst=1000, time_scale=0.002, seed=5)
    ).start()
    gone: list[str] = []

    async def drop_thumbnails(row_id: str, what: str) -> None:
        # The CDN loses every thumbnail just before the row downloads: GET answers 404.
        if what == "download:start":
            cdn = sim.world.shared.cdn
            for key in [k for k in cdn if k.startswith("thumbnails/")]:
                del cdn[key]
                gone.append(key)

    try:
        table = vo_table(tmp_path / "t.csv", 2)
        out = tmp_path / "out"
        summary = await execute(
            RunOptions(
                table=table, out_dir=out, api_key=KEY, api_url=sim.api_url,
                agent_url=sim.agent_url, agent=AGENT, template="tiktok-vo-broll", rate=1000.0,
                progress=False, milestone=drop_thumbnails,
            )
        )  # fmt: skip
    finally:
        await sim.close()
    assert gone  # the fault happened
    assert summary.exit_code == 0
    rows = results(out)
    for row_id, r in rows.items():
        assert r["status"] == "completed"
        assert r["thumbnail"] is None  # column empty, the video there
        video = (out / r["mp4_path"]).read_bytes()
        assert hashlib.sha256(video).hexdigest() == r["sha256"]
        assert not (out / "videos" / f"{row_id}.jpg").exists()
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["r00.mp4", "r01.mp4"]
    events = [json.loads(line) for line in (out / "run.log").read_text().splitlines()]
    failed: list[dict[str, Any]] = [e for e in events if e["event"] == "thumbnail"]
    assert sorted(e["row_id"] for e in failed) == ["r00", "r01"]
    assert all("404" in e["error"] for e in failed)


@pytest.mark.parametrize(
    ("video", "thumb"),
    [
        ("r1.mp4", "r1.jpg"),
        ("clip", "clip.jpg"),
        ("x.jpg", "x.thumb.jpg"),
        ("X.JPG", "X.thumb.jpg"),
    ],
)
def test_thumbnail_name(video: str, thumb: str) -> None:
    assert thumbnail_name(video) == thumb


def test_a_video_never_takes_another_rows_thumbnail_name() -> None:
    names = NameAllocator()
    first = names.assign("a", "x.mp4")  # its thumbnail will be x.jpg
    second = names.assign("b", "x.jpg")  # a video named like that thumbnail
    third = names.assign("c", "X.mp4")  # same name, other case
    assert first == "x.mp4"
    assert second != "x.jpg" and second.endswith(".jpg")
    assert third.casefold() != "x.mp4"
    taken = [first, second, third]
    files = [n.casefold() for n in taken] + [thumbnail_name(n).casefold() for n in taken]
    assert len(files) == len(set(files))  # no two files share a name
    assert len(names) == 3
