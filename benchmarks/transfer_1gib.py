"""1 GiB direct upload and download through the simulator: client vs raw, MB/s and peak RSS.

The simulator runs as its own process.  A 1 GiB file of random bytes (fully
written, not sparse) is made in /tmp and deleted afterwards.  Every measured
phase runs in a fresh subprocess so its peak RSS (``ru_maxrss``) is its own:

- upload, raw:    one MD5 pass (hashlib, 1 MiB reads) + ``direct_upload`` +
                  a streamed PUT (async generator of 1 MiB file reads) with
                  the returned headers;
- upload, client: ``GenClient.uploads.upload(path, agent, method="direct")``
                  (streamed MD5 in a thread, direct_upload, streamed PUT,
                  content_resources attach);
- download, raw:  streamed GET → file (1 MiB chunks) + fsync;
- download, client: ``GenClient.download(url, path)`` (→ .part, sha256,
                  Content-Length check, fsync, rename).

Targets: client MB/s ≥ 0.8× raw for both directions; client peak RSS < 100 MB.

    .venv/bin/python benchmarks/transfer_1gib.py [--size-mib 1024] [--rounds 2]
"""

# The raw baselines do blocking file I/O on purpose: that is the plain way.
# ruff: noqa: ASYNC230, ASYNC240

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from genbatch import _constants as C
from genbatch.client import GenClient  # imported before any timing, like aiohttp
from genbatch.sim.config import SimConfig
from genbatch.sim.launch import SimProcess

KEY = "bench-transfer-key"
AGENT = C.SIM_DEMO_AGENT_ID
CHUNK = 1 << 20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


# ----------------------------------------------------------------------------- phases
async def raw_upload(url: str, path: Path) -> str:
    size = path.stat().st_size
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            md5.update(chunk)
    checksum = base64.b64encode(md5.digest()).decode()
    blob = {
        "filename": path.name,
        "byte_size": size,
        "checksum": checksum,
        "content_type": "video/mp4",
    }
    async with aiohttp.ClientSession() as s:
        async with s.post(
            f"{url}/v1/direct_upload", json={"blob": blob}, headers={"X-API-Key": KEY}
        ) as r:
            du = await r.json()

        async def body() -> AsyncIterator[bytes]:
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK):
                    yield chunk

        headers = dict(du["direct_upload"]["headers"], **{"Content-Length": str(size)})
        async with s.put(du["direct_upload"]["url"], data=body(), headers=headers) as r:
            assert r.status == 200, await r.text()
        async with s.post(
            f"{url}/v1/content_resources?agent_id={AGENT}",
            json={"content_resource": {"file": du["signed_id"]}},
            headers={"X-API-Key": KEY},
        ) as r:
            res = await r.json()
    return str(res["url"])


async def client_upload(url: str, path: Path) -> str:
    # the hosts come from GEN_API_URL / GEN_AGENT_URL, which run_phase sets
    async with GenClient(KEY) as gen:
        res = await gen.uploads.upload(path, AGENT, method="direct")
    assert res.url
    return res.url


async def raw_download(url: str, dest: Path) -> str:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        assert r.status == 200
        with open(dest, "wb") as f:
            async for chunk in r.content.iter_chunked(CHUNK):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    return str(dest.stat().st_size)


async def client_download(url: str, dest: Path) -> str:
    async with GenClient(KEY) as gen:
        size, sha = await gen.download(url, dest)
    return f"{size}:{sha}"


PHASES = {
    "upload-raw": raw_upload,
    "upload-client": client_upload,
    "download-raw": raw_download,
    "download-client": client_download,
}


def run_phase(phase: str, url: str, path: str, sim: SimProcess) -> dict[str, object]:
    """Run one phase in a fresh interpreter, told the simulator's two hosts; its seconds and
    peak RSS."""
    hosts = {"GEN_API_URL": sim.api_url, "GEN_AGENT_URL": sim.agent_url}
    out = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--url", url, "--path", path],
        env={**os.environ, **hosts},
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _phase_main(phase: str, url: str, path: str) -> None:
    baseline = peak_rss_mb()
    start = time.perf_counter()
    detail = asyncio.run(PHASES[phase](url, Path(path)))  # type: ignore[operator]
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "phase": phase,
                "seconds": seconds,
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "baseline_rss_mb": round(baseline, 1),
                "detail": detail,
            }
        )
    )


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(CHUNK, left))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
        f.flush()
        os.fsync(f.fileno())
    return digest.hexdigest()


def _order(a: str, b: str, a_first: bool) -> tuple[str, str]:
    return (a, b) if a_first else (b, a)


def main(size_mib: int, rounds: int) -> dict[str, object]:
    size = size_mib << 20
    sim = SimProcess(SimConfig(api_keys=(KEY,), rate=1e6, burst=1_000_000), stop_timeout=30)
    url = sim.start().url
    tmp = Path(tempfile.mkdtemp(prefix="genbatch-bench-", dir="/tmp"))
    try:
        src = tmp / "bench.mp4"
        sha = make_file(src, size)
        results: dict[str, list[dict[str, object]]] = {p: [] for p in PHASES}
        for n in range(rounds):
            # alternate who goes first; flush dirty pages so one phase's
            # writeback is not billed to the next
            first = n % 2 == 0
            for phase in _order("upload-raw", "upload-client", first):
                os.sync()
                results[phase].append(run_phase(phase, url, str(src), sim))
            cdn_url = str(results["upload-client"][-1]["detail"])
            for phase in _order("download-raw", "download-client", first):
                dest = tmp / f"{phase}.mp4"
                os.sync()
                results[phase].append(run_phase(phase, cdn_url, str(dest), sim))
                dest.unlink()
        got = str(results["download-client"][-1]["detail"])
        assert got == f"{size}:{sha}", "client download does not match the source file"
    finally:
        sim.stop()
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()

    def mbps(phase: str) -> float:
        return statistics.median(size / 1e6 / float(r["seconds"]) for r in results[phase])  # type: ignore[arg-type]

    def rss(phase: str) -> float:
        return max(float(r["peak_rss_mb"]) for r in results[phase])  # type: ignore[arg-type]

    summary: dict[str, object] = {"size_mib": size_mib, "rounds": rounds}
    for direction in ("upload", "download"):
        raw, client = mbps(f"{direction}-raw"), mbps(f"{direction}-client")
        summary[direction] = {
            "raw_mb_s": round(raw, 1),
            "client_mb_s": round(client, 1),
            "ratio": round(client / raw, 3),
            "raw_peak_rss_mb": rss(f"{direction}-raw"),
            "client_peak_rss_mb": rss(f"{direction}-client"),
            "seconds": {
                who: [round(float(r["seconds"]), 2) for r in results[f"{direction}-{who}"]]  # type: ignore[arg-type]
                for who in ("raw", "client")
            },
        }
    summary["targets"] = "ratio >= 0.8, client peak RSS < 100 MB"
    return summary


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--phase", choices=sorted(PHASES))
    p.add_argument("--url")
    p.add_argument("--path")
    a = p.parse_args()
    if a.phase:
        _phase_main(a.phase, a.url, a.path)
        sys.exit(0)
    s = main(a.size_mib, a.rounds)
    print(json.dumps(s, indent=2))
    ok = all(
        s[d]["ratio"] >= 0.8 and s[d]["client_peak_rss_mb"] < 100  # type: ignore[index]
        for d in ("upload", "download")
    )
    sys.exit(0 if ok else 1)
