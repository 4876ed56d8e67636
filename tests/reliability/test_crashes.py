"""Case 10: SIGKILL at every point that matters, then the same command again.

A kill is the fault a journal exists for.  After each kill the weak
invariants must already hold (nothing reported that was not paid, no row
twice, no partial file under a final name, no leak, nothing outside the
output dir); after the rerun all of I1–I6 hold and the simulator's ledger
shows every cell bought once.  Kill points come from the engine's halt hook
(``GENBATCH_TEST_HALT_AT``: the process parks at a journal milestone and is
killed there) or from what the fault proxy sees on the wire.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from faultproxy import ProxyThread
from harness import Case, ProxyFactory, SimFactory, run_genbatch

pytestmark = pytest.mark.reliability


def _has(proxy: ProxyThread, prefix: bytes, after: int = 0) -> Callable[[], bool]:
    return lambda: any(r.startswith(prefix) for r in proxy.stats.requests[after:])


def _videos(out: Path, suffix: str) -> Callable[[], bool]:
    videos = out / "videos"
    return lambda: videos.exists() and any(p.name.endswith(suffix) for p in videos.iterdir())


POINTS: dict[str, str] = {
    "after-intent": "halt hook at generate:voiceover:intent (intent durable, POST not sent)",
    "after-generate-post": "halt hook at generate:broll:submitted (POST answered, id journaled)",
    "during-poll": "killed when the proxy sees the first GET /v1/generations/:id",
    "during-reconcile": "a paid POST reset after the server took it; killed when the "
    "reconcile read (GET …/cells/:id) is on the wire",
    "mid-download": "CDN body sliced (256 B / 40 ms); killed when videos/*.part exists",
    "after-rename": "CDN body sliced (512 B / 15 ms); killed when the first videos/*.mp4 exists",
    "before-publish": "publish POST held 3 s in the proxy; killed when it is seen there",
}


@pytest.mark.parametrize("point", list(POINTS))
@pytest.mark.case("10", fault="SIGKILL at {point}", how="{how}; then the same command again")
def test_sigkill_then_resume(
    case: Case, sims: SimFactory, proxies: ProxyFactory, point: str
) -> None:
    case.fault = case.fault.format(point=point)
    case.how = case.how.format(how=POINTS[point])
    sim = sims(seed=10)
    proxy = proxies(sim, seed=10)
    publish = point == "before-publish"
    table, ids = case.table(3 if point == "after-rename" else 2, publish=publish)
    out = case.out()
    kw: dict[str, Any] = {}
    if point == "after-intent":
        kw["halt_at"] = "generate:voiceover:intent"
    elif point == "after-generate-post":
        kw["halt_at"] = "generate:broll:submitted"
    elif point == "during-poll":
        kw["kill_when"] = _has(proxy, b"GET /v1/generations/")
    elif point == "during-reconcile":
        proxy.add("reset_peer", match=rb"^POST /v1/vidsheet/\d+/cells/\d+/generate", times=1)
        kw["kill_when"] = lambda: any(
            r.startswith(b"GET /v1/vidsheet/") and b"/cells/" in r for r in proxy.stats.requests
        )
    elif point == "mid-download":
        proxy.add("slicer", match=rb"^GET /cdn/outputs/render_", size=256, delay_ms=40)
        kw["kill_when"] = _videos(out, ".part")
    elif point == "after-rename":
        # Slow downloads keep the other rows busy, so the run is still alive at the kill.
        proxy.add("slicer", match=rb"^GET /cdn/outputs/render_", size=512, delay_ms=15)
        kw["kill_when"] = _videos(out, ".mp4")
    else:
        proxy.add("latency", "upstream", match=rb"^POST /v1/user_jobs", ms=3000)
        kw["kill_when"] = _has(proxy, b"POST /v1/user_jobs")
    first = case.run(table, out, proxy.url, **kw)
    assert first.killed, f"the run finished before the kill point: {first.stderr[-500:]}"
    case.check(out, sim.ledger(wait_idle=0), ids, final=False)
    proxy.clear()
    again = case.run(table, out, proxy.url)
    assert again.rc == 0, again.stderr
    led = sim.ledger()
    case.check(out, led, ids, fetch=sim.fetch)
    cells = [(g["engine_id"], g["cell_id"]) for g in led["generations"]]
    assert len(cells) == len(set(cells)) == 3 * len(ids)
    if point == "during-reconcile":
        assert '"reconciled"' in (out / "run.log").read_text(), "the resume did not adopt"
    if publish:
        posts = [j for j in led["user_jobs"] if j["type"] == "publish_content"]
        assert len(posts) == len(ids), f"{len(posts)} publish jobs for {len(ids)} rows"
    case.note(f"killed at {point}; rerun completed every row, each cell bought once")


@pytest.mark.case(
    "10",
    fault="SIGINT (^C) mid-download",
    how="CDN body sliced (256 B / 30 ms); SIGINT when the first MP4 GET is on the wire; "
    "then the same command again",
)
def test_sigint_stops_cleanly_and_resumes(
    case: Case, sims: SimFactory, proxies: ProxyFactory
) -> None:
    sim = sims(seed=103)
    proxy = proxies(sim, seed=103)
    proxy.add("slicer", match=rb"^GET /cdn/outputs/render_", size=256, delay_ms=30)
    table, ids = case.table(3)
    out = case.out()
    first = case.run(
        table,
        out,
        proxy.url,
        kill_when=_has(proxy, b"GET /cdn/outputs/render_"),
        stop_signal=signal.SIGINT,
    )
    assert first.killed and first.rc == 130, (first.rc, first.stderr[-800:])
    # A graceful stop writes the table: unfinished rows pending, with how to resume.
    rows = pl.read_parquet(out / "results.parquet").to_dicts()
    assert {r["status"] for r in rows} <= {"completed", "pending"}
    assert all("rerun" in (r["reason"] or "") for r in rows if r["status"] == "pending")
    case.check(out, sim.ledger(wait_idle=0), ids, final=False)
    proxy.clear()
    again = case.run(table, out, proxy.url)
    assert again.rc == 0, again.stderr
    led = sim.ledger()
    case.check(out, led, ids, fetch=sim.fetch)
    assert len(led["generations"]) == 3 * len(ids)
    case.note("^C mid-download: exit 130, table written with pending rows; rerun completed")


@pytest.mark.case(
    "10",
    fault="SIGKILL during the resume",
    how="halt hook at generate:broll:submitted; rerun killed at its first poll; third run",
)
def test_sigkill_during_the_resume(case: Case, sims: SimFactory, proxies: ProxyFactory) -> None:
    sim = sims(seed=101)
    proxy = proxies(sim, seed=101)
    table, ids = case.table(3)
    out = case.out()
    first = case.run(table, out, proxy.url, halt_at="generate:broll:submitted")
    assert first.killed
    case.check(out, sim.ledger(wait_idle=0), ids, final=False)
    seen = len(proxy.stats.requests)
    second = case.run(
        table, out, proxy.url, kill_when=_has(proxy, b"GET /v1/generations/", after=seen)
    )
    assert second.killed
    case.check(out, sim.ledger(wait_idle=0), ids, final=False)
    third = case.run(table, out, proxy.url)
    assert third.rc == 0, third.stderr
    led = sim.ledger()
    case.check(out, led, ids, fetch=sim.fetch)
    cells = [(g["engine_id"], g["cell_id"]) for g in led["generations"]]
    assert len(cells) == len(set(cells)) == 3 * len(ids)
    case.note("two kills in a row (one mid-resume); the third run completed, nothing bought twice")


@pytest.mark.case(
    "10",
    fault="a second process on the same output dir",
    how="first run parked by the halt hook at render:intent; a second `genbatch run` "
    "on the same --out meanwhile; then the first is SIGKILLed and rerun",
)
def test_second_process_on_the_same_output_dir_is_refused(case: Case, sims: SimFactory) -> None:
    sim = sims(seed=102)
    table, ids = case.table(2)
    out = case.out()
    second: list[Any] = []

    def meanwhile() -> None:
        t = time.monotonic()
        second.append(run_genbatch(table, out, sim.url, timeout=20))
        second.append(time.monotonic() - t)

    first = case.run(table, out, sim.url, halt_at="render:intent", on_halt=meanwhile)
    assert first.killed
    refused = second[0]
    case.outputs += refused.outputs
    assert refused.rc == 2, (refused.rc, refused.stderr)
    assert "in use by another genbatch process" in refused.stderr
    case.check(out, sim.ledger(wait_idle=0), ids, final=False)
    again = case.run(table, out, sim.url)
    assert again.rc == 0, again.stderr
    led = sim.ledger()
    case.check(out, led, ids, fetch=sim.fetch)
    assert len(led["generations"]) == 3 * len(ids)
    case.note("the second process exited 2 at once with the holder's pid; nothing was spent by it")
