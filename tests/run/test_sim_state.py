"""`--sim` keeps its simulator's world in a state dir between commands (issue 13).

Through the CLI as subprocesses against the real in-process simulator: ^C and
the same command again, the README's journey with `--sim` on every command,
one command at a time per dir, a damaged state refused with the fix.  And
in-process against :class:`SimServer` with a state dir: jobs run on while
nobody serves the world, URLs follow the new port, a later time scale
applies, keys given to the server are never written to disk.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from runhelp import AGENT, LAUNCH, results, table_ids, vo_table, write_csv

from genbatch import GenClient
from genbatch.cli import main
from genbatch.sim.config import SimConfig
from genbatch.sim.serve import SimServer
from genbatch.sim.state import SIM_STATE_FILE, StateDir
from genbatch.sim.world import World

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
GENBATCH = (sys.executable, "-m", "genbatch")
#: Every vo-broll row of the ^C test: enough that several are in flight at the ^C.
ROWS = 30


def state_dir() -> Path:
    """The state dir tests/conftest.py gave this test (subprocesses inherit it)."""
    return Path(os.environ["GENBATCH_SIM_STATE"])


def saved_world(root: Path) -> World:
    """The world saved in ``root``, as the next server would load it (not served)."""
    world = World.from_config(SimConfig(), root / "data")
    world.base_url = "http://127.0.0.1:9"
    state = StateDir(root)
    state.load(world, state.read(world))
    return world


def saved_ledger(root: Path) -> dict[str, Any]:
    """``GET /_sim/ledger`` of the world saved in ``root``, as JSON would carry it."""
    data: dict[str, Any] = orjson.loads(orjson.dumps(saved_world(root).ledger(time.time())))
    return data


def assert_paid_once(led: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """I2 and I3 (docs/design.md §7) from the simulator's ledger: per cell at most one
    generation not refunded, no idempotency key behind two, and the credits it kept
    are the credits the result table reports."""
    alive: dict[tuple[Any, Any], list[Any]] = defaultdict(list)
    keys: Counter[str] = Counter()
    for gen in led["generations"]:
        assert gen["status"] not in ("pending", "processing"), gen
        if gen["status"] == "completed":
            alive[(gen["engine_id"], gen["cell_id"])].append(gen["id"])
        if gen["idempotency_key"]:
            keys[gen["idempotency_key"]] += 1
    assert not {cell: ids for cell, ids in alive.items() if len(ids) > 1}, "a cell paid twice"
    assert not [k for k, n in keys.items() if n > 1]
    net = led["credits"]["charged"] - led["credits"]["refunded"]
    assert abs(net - sum(r["credits"] or 0.0 for r in rows)) < 1e-6


def wait_for(path: Path, pattern: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Until ``path`` holds ``pattern`` (the process must still be running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the command ended before the moment the test waits for"
        if path.is_file() and re.search(pattern, path.read_text(encoding="utf-8")):
            return
        time.sleep(0.05)
    raise AssertionError(f"{pattern} never appeared in {path}")


# ---------------------------------------------------------------------------- the CLI
@pytest.mark.slow  # two CLI subprocesses
def test_ctrl_c_then_the_same_command_finishes_every_row(tmp_path: Path) -> None:
    table = vo_table(tmp_path / "t.csv", ROWS)
    out = tmp_path / "o"
    cmd = [
        *GENBATCH,
        "run",
        str(table),
        "--sim",
        "--template",
        "tiktok-vo-broll",
        "--out",
        str(out),
    ]
    with (tmp_path / "err1.txt").open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_for(out / "run.log", r'"event": "row"', proc, timeout=90)  # one row done
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    first_err = (tmp_path / "err1.txt").read_text(encoding="utf-8")
    assert proc.returncode == 130, first_err
    # The first --sim command in this dir says where the world is and how to start over.
    assert f"rm -r {state_dir()}" in first_err
    stopped = [r for r in results(out) if r["status"] == "pending"]
    assert len(stopped) >= 2, "the ^C came when rows were in flight"
    interrupted = saved_ledger(state_dir())
    assert interrupted["generations"], "the world the ^C left behind was saved"

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)

    assert again.returncode == 0, again.stderr
    assert "rm -r" not in again.stderr  # the world was there already
    rows = results(out)
    assert sorted(r["row_id"] for r in rows) == table_ids(table)
    assert [r["status"] for r in rows] == ["completed"] * ROWS
    assert not [r for r in rows if r["error_code"] == "not_found"]
    assert "not_found" not in (out / "run.log").read_text(encoding="utf-8")
    led = saved_ledger(state_dir())
    assert {g["id"] for g in interrupted["generations"]} <= {g["id"] for g in led["generations"]}
    assert_paid_once(led, rows)


@pytest.mark.slow  # two CLI subprocesses
def test_a_row_stopped_before_its_download_fetches_from_the_new_port(tmp_path: Path) -> None:
    # The first command stops (^C) while a row's render is done and its download
    # not begun; the next `--sim` serves on another port, so the URL the first
    # one noted leads nowhere: the row reads its render again for the URL.
    table = vo_table(tmp_path / "t.csv", 6)
    out = tmp_path / "o"
    cmd = [sys.executable, str(LAUNCH), "run", str(table), "--sim"]
    cmd += ["--template", "tiktok-vo-broll", "--out", str(out)]
    halting = {**os.environ, "GENBATCH_TEST_HALT_AT": "download:start"}
    proc = subprocess.Popen(cmd, env=halting, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    seen = []
    try:
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace")
            seen.append(line)
            if line.startswith("GENBATCH-TEST-HALT"):
                break
    finally:
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[1].decode("utf-8", "replace")
    assert proc.returncode == 130, "".join(seen) + rest
    halted = next(ln for ln in seen if ln.startswith("GENBATCH-TEST-HALT"))
    row_id = halted.split("row=", 1)[1].split()[0]
    noted = next(r for r in results(out) if r["row_id"] == row_id)
    assert noted["status"] == "pending"

    env = {k: v for k, v in os.environ.items() if k != "GENBATCH_TEST_HALT_AT"}
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)

    assert again.returncode == 0, again.stderr
    rows = results(out)
    assert [r["status"] for r in rows] == ["completed"] * 6
    assert (out / "videos" / f"{row_id}.mp4").stat().st_size > 0
    assert "Cannot connect" not in (out / "run.log").read_text(encoding="utf-8")
    assert_paid_once(saved_ledger(state_dir()), rows)


def _journey_commands() -> list[list[str]]:
    """The sh block of the README's journey section, one argv per command."""
    section = README.read_text(encoding="utf-8").split("## From agents to published posts")[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line, comments=True) for line in block.replace("\\\n", " ").splitlines()]


def _dated(argv: list[str]) -> list[str]:
    """``argv`` with a ``--publish-at`` that has passed moved a month ahead.

    The README shows a fixed date; once it is in the past `genbatch ideas`
    rightly refuses it, which is not what this test is about.
    """
    out = list(argv)
    for i in range(1, len(out)):
        if out[i - 1] == "--publish-at":
            when = datetime.fromisoformat(out[i].replace("Z", "+00:00"))
            if when <= datetime.now(UTC) + timedelta(days=1):
                out[i] = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


@pytest.mark.slow  # four CLI subprocesses
def test_the_readme_journey_runs_with_sim_on_every_command(tmp_path: Path) -> None:
    commands = _journey_commands()
    assert [c[:2] for c in commands] == [
        ["genbatch", "agents"],
        ["genbatch", "agents"],
        ["genbatch", "ideas"],
        ["genbatch", "run"],
    ]
    (tmp_path / "inputs").mkdir()
    shutil.copy(REPO / "inputs" / "agents.csv", tmp_path / "inputs" / "agents.csv")

    for argv in commands:  # "Add `--sim` to each command to rehearse offline."
        done = subprocess.run(
            [*GENBATCH, *_dated(argv[1:]), "--sim"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, f"{shlex.join(argv)} --sim:\n{done.stderr}"

    out = tmp_path / "outputs" / "ideas"
    rows = results(out)
    assert rows and all(r["status"] == "completed" for r in rows)
    videos = sorted(p.name for p in (out / "videos").glob("*.mp4"))
    assert videos == sorted(Path(r["mp4_path"]).name for r in rows)
    assert all((out / r["mp4_path"]).stat().st_size == r["bytes"] for r in rows)
    assert not (tmp_path / ".genbatch").exists()  # the state went where the env said


@pytest.mark.slow  # three CLI subprocesses
def test_a_second_sim_command_on_the_same_state_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "shared-state"
    table = vo_table(tmp_path / "t.csv", ROWS)
    out = tmp_path / "o"
    first = subprocess.Popen(
        [
            *(*GENBATCH, "run", str(table), "--sim", "--sim-state", str(state)),
            *("--template", "tiktok-vo-broll", "--out", str(out), "--quiet"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(out / "run.log", r'"event": "start"', first, timeout=90)  # it serves the world
        second = subprocess.run(
            [*GENBATCH, "templates", "--sim", "--sim-state", str(state)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)

    assert second.returncode == 2, second.stderr
    assert str(state) in second.stderr and "--sim-state" in second.stderr
    assert f"pid {first.pid}" in second.stderr
    assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1
    # Once the first is gone the dir is free again, with its world.
    third = subprocess.run(
        [*GENBATCH, "templates", "--sim", "--sim-state", str(state), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert third.returncode == 0, third.stderr
    assert saved_ledger(state)["generations"]


@pytest.mark.slow  # CLI subprocesses
@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b"\x00" * 64, id="garbage"),
        pytest.param(lambda b: b.replace(b'"format": 1', b'"format": 99', 1), id="newer-format"),
    ],
)
def test_a_damaged_state_is_refused_with_the_fix(tmp_path: Path, damage: Any) -> None:
    state = tmp_path / "st"
    cmd = [*GENBATCH, "templates", "--sim", "--sim-state", str(state), "--json"]
    made = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    saved = state / SIM_STATE_FILE
    broken = damage(saved.read_bytes())
    saved.write_bytes(broken)

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert str(state) in done.stderr and f"rm -r {state}" in done.stderr
    assert done.stdout == ""
    assert saved.read_bytes() == broken  # never silently replaced


def test_sim_state_without_sim_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = vo_table(tmp_path / "t.csv", 1)
    code = main(
        [
            *("run", str(table), "--template", "tiktok-vo-broll"),
            *("--base-url", "http://127.0.0.1:9/v1", "--sim-state", str(tmp_path / "st")),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--sim-state" in err and "--sim" in err
    assert not (tmp_path / "st").exists()


def test_a_dir_of_other_files_is_not_taken_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["templates", "--sim", "--sim-state", str(mine)]) == 2
    err = capsys.readouterr().err
    assert str(mine) in err and "Traceback" not in err
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


@pytest.mark.slow  # a CLI subprocess
def test_demo_keeps_a_private_world(tmp_path: Path) -> None:
    table = write_csv(
        tmp_path / "t.csv",
        ["row_id", "template", "hook", "script"],
        [[f"r{i}", "tiktok-vo-broll", f"Hook {i}", f"Script {i}."] for i in range(2)],
    )
    done = subprocess.run(
        [
            *(*GENBATCH, "demo", "--quiet", "--table", str(table)),
            *("--out", str(tmp_path / "d"), "--sim-time-scale", "0.002"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert list(state_dir().iterdir()) == []  # the user's state: untouched
    assert not (tmp_path / ".genbatch").exists()
    assert "rm -r" not in done.stderr


# ---------------------------------------------------------------------------- in-process
@pytest.mark.slow  # waits on the wall clock
async def test_jobs_finish_while_nobody_serves_the_world(tmp_path: Path) -> None:
    # An image takes 12-28 s at time scale 1: 0.6-1.4 s here.  One finishes
    # while the first server runs (its cell keeps the output's URL), one is still
    # running when it stops; the next server, on another port, finds the second
    # completed and every stored URL on its own port.
    cfg = SimConfig(api_keys=("k1",), time_scale=0.05, seed=3)
    image = {
        "generation_type": "image_from_text",
        "data": {"prompt": "Taco truck glow at night", "model": "gemini_image"},
    }
    cells = []
    async with SimServer(cfg, state_dir=tmp_path / "st") as sim:
        async with GenClient("k1", api_url=sim.api_url, agent_url=sim.agent_url) as gen:
            started = []
            for _ in range(2):
                engine = await gen.templates.clone("tiktok-text-driven", agent_id=AGENT)
                cell = {c.column_name: c for c in engine.spreadsheet_cells}["background"]
                cells.append(int(cell.id))
                started.append(await gen.generations.generate(engine.id, cell.id, AGENT, image))
            await gen.generations.wait(started[0].generation_id)
            second = await gen.generations.get(started[1].generation_id)
        assert second.status in ("pending", "processing")
        old_root = sim.url
        assert str(sim.world.sheets.cells[cells[0]].value).startswith(old_root + "/cdn/")
        gid = int(started[1].generation_id)
        due = sim.world.generations[gid].due_at

    await asyncio.sleep(max(0.0, due - time.time()) + 0.1)  # it comes due while nobody serves

    async with SimServer(cfg, state_dir=tmp_path / "st") as sim:
        assert not sim.state_created and sim.url != old_root
        async with GenClient("k1", api_url=sim.api_url, agent_url=sim.agent_url) as gen:
            done = await gen.generations.get(gid)
            assert done.status == "completed"
            url = done.output_resources[0].url
            assert url.startswith(sim.url + "/cdn/")
            size, _ = await gen.download(url, tmp_path / "bg.img")
            assert size > 0
        for cell_id in cells:  # the URL stored before the restart and the one made after
            assert str(sim.world.sheets.cells[cell_id].value).startswith(sim.url + "/cdn/")
        led = sim.world.ledger(time.time())
        assert len(led["generations"]) == 2 and led["credits"]["refunded"] == 0


async def test_a_later_time_scale_applies_to_the_loaded_world(tmp_path: Path) -> None:
    async with SimServer(SimConfig(time_scale=0.01), state_dir=tmp_path / "st") as sim:
        assert sim.state_created
        agents = set(sim.world.agents)
    async with SimServer(SimConfig(time_scale=0.5), state_dir=tmp_path / "st") as sim:
        assert not sim.state_created and set(sim.world.agents) == agents
        assert sim.world.config_view()["time_scale"] == 0.5
        assert 3.0 * 0.5 <= sim.world.clock.latency("text") <= 7.0 * 0.5


async def test_a_key_given_to_the_server_is_never_written(tmp_path: Path) -> None:
    secret = "sim-state-test-key-5d1e9a"
    async with SimServer(SimConfig(api_keys=(secret,)), state_dir=tmp_path / "st"):
        pass
    assert secret.encode() not in (tmp_path / "st" / SIM_STATE_FILE).read_bytes()
    async with SimServer(SimConfig(api_keys=(secret,)), state_dir=tmp_path / "st") as sim:
        assert sim.world.accounts.user_for_key(secret) is not None
    async with SimServer(SimConfig(), state_dir=tmp_path / "st") as sim:
        assert sim.world.accounts.user_for_key(secret) is None


async def test_the_world_is_saved_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a hard kill would find: the world as of the last periodic save.
    monkeypatch.setattr("genbatch.sim.state.SIM_STATE_SAVE_EVERY", 0.05)
    async with SimServer(SimConfig(api_keys=("k1",)), state_dir=tmp_path / "st") as sim:
        async with GenClient("k1", api_url=sim.api_url, agent_url=sim.agent_url) as gen:
            engine = await gen.templates.clone("tiktok-text-driven", agent_id=AGENT)
        for _ in range(100):
            await asyncio.sleep(0.05)
            if int(engine.id) in saved_world(tmp_path / "st").sheets.engines:
                break
        else:
            raise AssertionError("the running world was never saved")
