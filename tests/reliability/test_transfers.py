"""Cases 8, 9, 11: the MP4 download cut short, trickling, stalled, or out of disk.

A render is paid for once; whatever happens to the bytes afterwards must be
fixed by fetching bytes again (Range or a fresh GET), never by rendering
again — and no partial file may ever sit under a final ``.mp4`` name.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from faultproxy import ProxyThread
from harness import CANARY_KEY, Case, ProxyFactory, SimFactory

from genbatch.client import GenClient

pytestmark = pytest.mark.reliability

CDN_VIDEO = rb"^GET /cdn/outputs/render_"


def _renders(ledger: dict[str, Any]) -> int:
    return sum(1 for g in ledger["generations"] if g["type"] == "render")


def _video_gets(proxy: ProxyThread) -> Counter[bytes]:
    return Counter(
        line.split(b" ")[1].split(b"?")[0]
        for line in proxy.stats.requests
        if line.startswith(b"GET /cdn/outputs/render_")
    )


@pytest.mark.parametrize("how", ["proxy", "sim"])
@pytest.mark.case(
    "8",
    fault="truncated MP4",
    how="{how}",
)
def test_truncated_mp4_is_resumed_without_a_new_charge(
    case: Case, sims: SimFactory, proxies: ProxyFactory, how: str
) -> None:
    sim = sims(seed=8, fresh=how == "sim")  # seeded dice: the truncations replay exactly
    proxy = proxies(sim, seed=8)
    if how == "proxy":
        case.how = "fault proxy closes the CDN connection after 1,500 body bytes (3 times)"
        toxic = proxy.add("limit_data", match=CDN_VIDEO, nbytes=1_500, times=3)
    else:
        case.how = "sim fault truncate:0.5 (/_sim/config): CDN body cut short, Content-Length kept"
        sim.config(faults="truncate:0.5")
    table, ids = case.table(4)
    out = case.out()
    res = case.run(table, out, proxy.url)
    sim.config(faults="")
    assert res.rc == 0, res.stderr
    gets = _video_gets(proxy)
    led = sim.ledger()
    case.check(out, led, ids, fetch=sim.fetch)
    assert _renders(led) == 4, "a truncated download was fixed by rendering again"
    assert sum(gets.values()) > len(ids), "no download was ever retried"
    if how == "proxy":
        assert toxic.hits == 3
    case.note(f"{sum(gets.values()) - len(ids)} extra CDN GETs (Range resumes); 4 renders, 4 MP4s")


@pytest.mark.case(
    "9",
    fault="slow sliced download; a stalled one",
    how="fault proxy slices CDN bodies into 256-byte writes 120 ms apart (~2 s per MP4, "
    "longer than the 1.5 s request timeout), and stalls one download mid-body; "
    "transfer stall timeout 1 s (launch.py)",
)
def test_slow_download_completes_and_a_stall_is_ended_by_the_stall_timeout(
    case: Case, sims: SimFactory, proxies: ProxyFactory
) -> None:
    sim = sims(seed=9)
    proxy = proxies(sim, seed=9)
    slicer = proxy.add("slicer", match=CDN_VIDEO, size=256, delay_ms=120)
    stall = proxy.add("timeout", match=CDN_VIDEO, after_bytes=1_000, times=1)
    table, ids = case.table(2)
    out = case.out()
    res = case.run(table, out, proxy.url, timeouts=(1.5, 1.0))
    assert res.rc == 0, res.stderr
    assert slicer.hits >= 2 and stall.hits == 1
    proxy.clear()
    gets = _video_gets(proxy)
    # The stalled one was fetched again (Range); the other once.
    assert sorted(gets.values())[-1] >= 2 and sum(gets.values()) >= 3, gets
    led = sim.ledger()
    case.check(out, led, ids, fetch=sim.fetch)
    assert _renders(led) == 2
    case.note(
        "each MP4 took longer than the request timeout and completed; the stalled one was "
        "abandoned by the 1 s stall timeout and resumed"
    )


def _mount_tmpfs(path: Path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` at ``path``; the reason it cannot, or None."""
    if shutil.which("mount") is None:
        return "no mount(8) on this machine"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return f"mount -t tmpfs refused: {done.stderr.strip() or done.returncode}"
    return None


@pytest.mark.case(
    "11",
    fault="disk full while downloading",
    how="videos/ is an 8 KiB tmpfs (room for two MP4s); then remounted at 1 MiB and rerun",
)
def test_disk_full_leaves_the_row_retryable_and_resume_downloads_only(
    case: Case, sims: SimFactory, proxies: ProxyFactory
) -> None:
    sim = sims(seed=11)
    table, ids = case.table(4)
    out = case.out()
    videos = out / "videos"
    videos.mkdir(parents=True)
    case.freeze(out)
    why = _mount_tmpfs(videos, "8k")
    if why is not None:
        pytest.skip(f"cannot build a full disk here: {why}")
    try:
        res = case.run(table, out, sim.url)
        assert res.rc == 1, res.stderr
        led = sim.ledger()
        case.check(out, led, ids, fetch=sim.fetch)
        rows = {r["row_id"]: r for r in _table_rows(out)}
        full = [r for r in rows.values() if r["status"] != "completed"]
        assert full, "the disk never filled"
        for r in full:
            assert r["status"] == "failed" and "space" in (r["reason"] or "").lower(), r
        renders = _renders(led)
        assert renders == 4
        subprocess.run(["mount", "-o", "remount,size=1m", str(videos)], check=True)
        res = case.run(table, out, sim.url)
        assert res.rc == 0, res.stderr
        led = sim.ledger()
        case.check(out, led, ids, fetch=sim.fetch)
        assert _renders(led) == renders, "the resume rendered again instead of downloading"
        assert len(led["generations"]) == 4 * 3
        case.note(f"{len(full)} rows failed with ENOSPC, no partial MP4; the rerun only downloaded")
    finally:
        _umount(videos)


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], check=False)


def _table_rows(out: Path) -> list[dict[str, Any]]:
    import polars as pl

    return pl.read_parquet(out / "results.parquet").to_dicts()


@pytest.mark.case(
    "11",
    fault="disk full under the client's download (library level)",
    how="GenClient.download of a CDN MP4 into a full 8 KiB tmpfs",
)
async def test_client_download_on_a_full_disk_leaves_no_part_file(
    case: Case, sims: SimFactory
) -> None:
    sim = sims(seed=111)
    disk = case.work / "disk"
    disk.mkdir()
    why = _mount_tmpfs(disk, "8k")
    if why is not None:
        pytest.skip(f"cannot build a full disk here: {why}")
    try:
        with contextlib.suppress(OSError):
            (disk / "filler").write_bytes(b"\0" * 8192)
        dest = disk / "clip.mp4"
        url = sim.url + "/cdn/outputs/template_tiktok-vo-broll_sample.mp4"
        async with GenClient(CANARY_KEY, api_url=sim.api_url, agent_url=sim.agent_url) as c:
            with pytest.raises(OSError):
                await c.download(url, dest)
        left = sorted(p.name for p in disk.iterdir() if p.name != "filler")
        case.invariants.add("I4")
        assert left == [], f"left behind: {left}"
        case.note("ENOSPC raised to the caller; no clip.mp4 nor clip.mp4.part left")
    finally:
        _umount(disk)
