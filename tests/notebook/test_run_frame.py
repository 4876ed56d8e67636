"""``genbatch.run_frame`` / ``arun_frame``: a polars frame through the real engine.

Every run talks to a real simulator over HTTP: in-process (``sim=True``) where
one call is the whole story, or as its own process (``SimProcess``) where a
second call must find the first call's world — its ledger then proves a rerun
paid for nothing twice and an edited row paid only for itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import genbatch
from genbatch._constants import CLIENT_ENV_API_KEY, SIM_DEMO_AGENT_ID
from genbatch.engine.results import RESULT_COLUMNS
from genbatch.errors import InputError
from genbatch.notebook import NOTEBOOK_FRAME_FILE, default_out
from genbatch.sim.config import SimConfig
from genbatch.sim.launch import SimProcess
from genbatch.sim.media import read_manifest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "inputs" / "demo.csv"
TEMPLATE = "tiktok-vo-broll"
AGENT = str(SIM_DEMO_AGENT_ID)
#: A key recognisable anywhere it could leak.
KEY = "gb-notebook-test-key-5c0e9a7d21f4b3e8"


def vo_frame(n: int, prefix: str = "nb") -> pl.DataFrame:
    """``n`` rows for tiktok-vo-broll: the columns its default recipe needs."""
    return pl.DataFrame(
        {
            "row_id": [f"{prefix}-{i:02d}" for i in range(n)],
            "hook": [f"Hook number {i}" for i in range(n)],
            "script": [f"Script for video {i}." for i in range(n)],
        }
    )


def check_videos(results: pl.DataFrame, out: Path, frame: pl.DataFrame) -> None:
    """Every row completed, its MP4 on disk as recorded and made from its own hook."""
    hooks = dict(zip(frame["row_id"], frame["hook"], strict=True))
    for row in results.iter_rows(named=True):
        assert row["status"] == "completed", row
        video = out / row["mp4_path"]
        data = video.read_bytes()
        assert len(data) == row["bytes"]
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        manifest = read_manifest(data)
        assert manifest is not None
        assert manifest["cells"]["hook"] == hooks[row["row_id"]]
        assert str(manifest["engine_id"]) == row["engine_id"]


def generations(ledger: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(g["id"]): g for g in ledger["generations"]}


# --------------------------------------------------------------------------
# One call: an in-process simulator
# --------------------------------------------------------------------------
def test_twelve_row_frame_in_twelve_videos_out(tmp_path: Path) -> None:
    frame = pl.read_csv(DEMO)  # the bundled demo: 12 rows over six templates
    assert frame.height == 12
    out = tmp_path / "out"
    before = set(tmp_path.rglob("*"))

    results = genbatch.run_frame(frame, out=out, sim=True, progress=False)

    assert results.columns == list(RESULT_COLUMNS)
    assert results["row_id"].to_list() == frame["row_id"].to_list()
    assert results["status"].to_list() == ["completed"] * 12
    check_videos(results, out, frame)
    assert results["template"].to_list() == frame["template"].to_list()
    # The results frame is OUT/results.parquet, read back.
    assert results.equals(pl.read_parquet(out / "results.parquet"))
    # The frame became the run's table inside out; nothing was written outside it.
    assert pl.read_parquet(out / NOTEBOOK_FRAME_FILE).equals(frame)
    created = set(tmp_path.rglob("*")) - before
    assert created and all(p == out or out in p.parents for p in created)


# --------------------------------------------------------------------------
# Several calls: a simulator of its own, whose ledger outlives each call
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim_proc() -> Iterator[SimProcess]:
    config = SimConfig(
        api_keys=(KEY,), rate=1000.0, burst=1000, credits=100_000.0, time_scale=0.002, seed=1
    )
    with SimProcess(config) as sim:
        yield sim


def test_rerun_resumes_and_an_edited_row_alone_is_redone(
    sim_proc: SimProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    frame = vo_frame(4)
    where = {"base_url": sim_proc.api_url, "agent_url": sim_proc.agent_url, "agent": AGENT}
    start = generations(sim_proc.ledger())

    first = genbatch.run_frame(
        frame, template=TEMPLATE, out=out, api_key=KEY, progress=False, **where
    )
    assert first["status"].to_list() == ["completed"] * 4
    check_videos(first, out, frame)
    after_first = sim_proc.ledger()
    paid = set(generations(after_first)) - set(start)
    assert paid  # the first call paid for its rows

    # The same frame into the same out: resumed, nothing new paid (key from the env).
    monkeypatch.setenv(CLIENT_ENV_API_KEY, KEY)
    second = genbatch.run_frame(frame, template=TEMPLATE, out=out, progress=False, **where)
    after_second = sim_proc.ledger()
    assert set(generations(after_second)) == set(generations(after_first))
    assert after_second["credits"]["charged"] == after_first["credits"]["charged"]
    keep = ["row_id", "status", "engine_id", "mp4_path", "sha256", "credits"]
    assert second.select(keep).equals(first.select(keep))

    # One row's hook edited: that row alone is redone, on a new engine.
    edited = frame.with_columns(
        pl.when(pl.col("row_id") == "nb-02")
        .then(pl.lit("A sharper hook for two"))
        .otherwise(pl.col("hook"))
        .alias("hook")
    )
    third = genbatch.run_frame(edited, template=TEMPLATE, out=out, progress=False, **where)
    after_third = sim_proc.ledger()
    new = [g for k, g in generations(after_third).items() if k not in generations(after_second)]
    assert third["status"].to_list() == ["completed"] * 4
    check_videos(third, out, edited)
    by_id = {r["row_id"]: r for r in first.iter_rows(named=True)}
    redone = third.filter(pl.col("row_id") == "nb-02").row(0, named=True)
    assert redone["engine_id"] != by_id["nb-02"]["engine_id"]
    assert redone["sha256"] != by_id["nb-02"]["sha256"]
    assert new and {str(g["engine_id"]) for g in new} == {redone["engine_id"]}
    for row in third.filter(pl.col("row_id") != "nb-02").iter_rows(named=True):
        assert row["engine_id"] == by_id[row["row_id"]]["engine_id"]
        assert row["sha256"] == by_id[row["row_id"]]["sha256"]
    # The earlier video of the edited row is kept, never overwritten.
    kept = out / "videos" / "nb-02.v1.mp4"
    assert hashlib.sha256(kept.read_bytes()).hexdigest() == by_id["nb-02"]["sha256"]


# --------------------------------------------------------------------------
# Inside a running event loop (as in Jupyter)
# --------------------------------------------------------------------------
async def test_arun_frame_awaited_inside_a_running_loop(tmp_path: Path) -> None:
    frame = vo_frame(3, prefix="aw")
    out = tmp_path / "out"
    results = await genbatch.arun_frame(frame, template=TEMPLATE, out=out, sim=True, progress=False)
    assert results["status"].to_list() == ["completed"] * 3
    check_videos(results, out, frame)


async def test_run_frame_called_inside_a_running_loop(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    frame = vo_frame(3, prefix="sy")
    out = tmp_path / "out"
    threads_before = {t.name for t in threading.enumerate()}

    results = genbatch.run_frame(frame, template=TEMPLATE, out=out, sim=True, progress=False)

    assert results["status"].to_list() == ["completed"] * 3
    check_videos(results, out, frame)
    # The batch ran on a loop of its own in a worker thread, now gone; ours still runs.
    assert "genbatch-run-frame" not in threads_before
    assert "genbatch-run-frame" not in {t.name for t in threading.enumerate()}
    assert asyncio.get_running_loop() is loop
    await asyncio.sleep(0)


#: Jupyter's situation: a loop running in the main thread with no SIGINT handler of
#: its own, so ^C raises KeyboardInterrupt where the cell's code is — in run_frame.
INTERRUPTED_CELL = """
import asyncio, os, signal, sys, threading
import polars as pl
import genbatch

out, base_url, agent_url, key = sys.argv[1:5]
frame = pl.DataFrame({"row_id": ["ki-0", "ki-1"], "hook": ["One", "Two"],
                      "script": ["First script.", "Second script."]})

async def cell():
    threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    try:
        genbatch.run_frame(frame, template="tiktok-vo-broll", out=out, base_url=base_url,
                           agent_url=agent_url, api_key=key, agent="1000", progress=False)
    except KeyboardInterrupt:
        print("interrupted", sorted(t.name for t in threading.enumerate()))
    else:
        print("not interrupted")

asyncio.new_event_loop().run_until_complete(cell())
"""


def test_interrupting_run_frame_in_a_running_loop_stops_it_resumably(
    sim_proc: SimProcess, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    start = set(generations(sim_proc.ledger()))
    sim_proc.config(time_scale=0.05)  # slow enough that ^C lands mid-run
    try:
        done = subprocess.run(
            [sys.executable, "-c", INTERRUPTED_CELL, str(out), sim_proc.api_url,
             sim_proc.agent_url, KEY],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        sim_proc.config(time_scale=0.002)
    # ^C reached the caller as KeyboardInterrupt once the batch's thread had stopped.
    assert done.stdout.strip() == "interrupted ['MainThread']", done.stdout + done.stderr
    assert (out / "journal.sqlite").is_file()
    sent = set(generations(sim_proc.ledger())) - start
    assert sent  # it was stopped mid-run, with generations in flight

    where = {"base_url": sim_proc.api_url, "agent_url": sim_proc.agent_url, "agent": AGENT}
    frame = pl.DataFrame(
        {
            "row_id": ["ki-0", "ki-1"],
            "hook": ["One", "Two"],
            "script": ["First script.", "Second script."],
        }
    )
    results = genbatch.run_frame(
        frame, template=TEMPLATE, out=out, api_key=KEY, progress=False, **where
    )
    assert results["status"].to_list() == ["completed"] * 2
    check_videos(results, out, frame)
    # Nothing the interrupted call sent was paid for again by the one that resumed it.
    ours = [g for k, g in generations(sim_proc.ledger()).items() if k not in start]
    per_cell = Counter((str(g["engine_id"]), str(g["cell_id"])) for g in ours)
    assert ours and max(per_cell.values()) == 1, per_cell
    assert {e for e, _ in per_cell} == set(results["engine_id"].to_list())


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------
def test_a_missing_required_column_is_an_input_error_naming_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    frame = vo_frame(2).drop("script")
    with pytest.raises(InputError, match="'script'"):
        genbatch.run_frame(frame, template=TEMPLATE, out=out, sim=True, progress=False)
    assert not out.exists()  # a frame that cannot run leaves no dir behind

    with pytest.raises(InputError, match="'row_id'"):
        genbatch.run_frame(
            vo_frame(2).drop("row_id"), template=TEMPLATE, out=out, sim=True, progress=False
        )
    with pytest.raises(InputError, match="duplicate row_id"):
        genbatch.run_frame(
            pl.concat([vo_frame(2), vo_frame(1)]),
            template=TEMPLATE,
            out=out,
            sim=True,
            progress=False,
        )
    # Against a real API the agent comes from the frame or agent=: said as an argument.
    with pytest.raises(InputError, match="'agent_id' column; add one or pass agent=ID"):
        genbatch.run_frame(
            vo_frame(2), template=TEMPLATE, out=out, api_key=KEY, base_url="http://127.0.0.1:9/v1"
        )
    with pytest.raises(InputError, match=r"polars\.DataFrame"):
        rows: Any = vo_frame(2).to_dicts()  # a list of dicts, not a frame
        genbatch.run_frame(rows, template=TEMPLATE, out=out, sim=True)
    assert not out.exists()


def test_a_bad_value_fails_its_row_naming_the_field_and_progress_stays_plain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = vo_frame(1).with_columns(pl.lit("next tuesday").alias("publish_at"))
    out = tmp_path / "out"

    results = genbatch.run_frame(frame, template=TEMPLATE, out=out, sim=True)

    row = results.row(0, named=True)
    assert row["status"] == "failed" and row["error_code"] == "invalid_row"
    assert row["reason"].startswith("publish_at:"), row["reason"]
    err = capsys.readouterr().err
    assert "genbatch: 1 row: 0 completed, 1 failed, 0 skipped, 0 pending; 0 credits" in err
    assert f"results in {out}" in err
    assert "\x1b[" not in err  # stderr is no terminal here: plain text, no escape codes

    genbatch.run_frame(frame, template=TEMPLATE, out=out, sim=True, progress=False)
    assert capsys.readouterr().err == ""


def test_an_out_dir_holding_other_files_is_refused_untouched(tmp_path: Path) -> None:
    out = tmp_path / "notes"
    out.mkdir()
    (out / "analysis.ipynb").write_text("{}", encoding="utf-8")
    with pytest.raises(InputError, match="already holds files"):
        genbatch.run_frame(vo_frame(1), template=TEMPLATE, out=out, sim=True, progress=False)
    assert [p.name for p in out.iterdir()] == ["analysis.ipynb"]


def test_default_out_is_keyed_by_the_frames_content() -> None:
    a, b = vo_frame(2), vo_frame(2).with_columns(pl.lit("other").alias("hook"))
    assert default_out(a) == default_out(vo_frame(2))
    assert default_out(a) != default_out(b)
    assert default_out(a).parent == Path("outputs")
    assert default_out(a).name.startswith("frame-")
