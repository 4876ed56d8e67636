"""How many ``GET /v1/generations/:id`` a second the simulator answers as its own process.

Starts ``python -m genbatch sim`` as a subprocess on 127.0.0.1 (rate limit
out of the way), creates one generation, then this process hammers
``GET /v1/generations/:id`` with aiohttp for a fixed duration, several runs,
and prints the median.  The sim must never be a client benchmark's
bottleneck: the target is >= 3,000 req/s on a 2-core machine.

    .venv/bin/python benchmarks/sim_throughput.py [--seconds 5] [--runs 3] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import aiohttp

from genbatch.sim.config import SimConfig
from genbatch.sim.launch import SimProcess

KEY = "bench-key"
#: Rate limit out of the way; short latencies.
SIM = SimConfig(api_keys=(KEY,), rate=1e9, burst=1_000_000_000, time_scale=0.001)


async def make_generation(session: aiohttp.ClientSession, url: str) -> int:
    """A completed video generation (with output_resources): a representative poll body."""
    agent = 1000
    async with session.post(
        f"{url}/v1/templates/spreadsheets/tiktok-vo-broll/clone", json={"agent_id": agent}
    ) as r:
        eng = await r.json()
    # today's sheet: a cell names its column by id; the column's title is the name
    titles = {c["id"]: c["title"] for c in eng["spreadsheet_columns"]}
    cells = {
        titles[c["column_id"]]: c["id"]
        for row in eng["spreadsheet_rows"]
        for c in row["spreadsheet_cells"]
    }
    base = f"{url}/v1/vidsheet/{eng['id']}/cells"
    body = {"spreadsheet_cell": {"value": "The $2 taco at 2am saved my life."}}
    async with session.patch(f"{base}/{cells['hook']}?agent_id={agent}", json=body) as r:
        r.raise_for_status()
    async with session.post(f"{base}/{cells['broll']}/generate?agent_id={agent}") as r:
        gid = int((await r.json())["generation_id"])
    while True:
        async with session.get(f"{url}/v1/generations/{gid}") as r:
            if (await r.json())["status"] == "completed":
                return gid
        await asyncio.sleep(0.05)


async def hammer(url: str, seconds: float, concurrency: int) -> tuple[float, int]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers={"X-API-Key": KEY}) as session:
        gid = await make_generation(session, url)
        target = f"{url}/v1/generations/{gid}"
        ok = errors = 0
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal ok, errors
            while time.perf_counter() < stop_at:
                async with session.get(target) as r:
                    await r.read()
                    if r.status == 200:
                        ok += 1
                    else:
                        errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return ok / (time.perf_counter() - t0), errors


def sim_rss_mb(pid: int) -> float:
    """Resident memory of the sim process (Linux /proc), in MB; 0 when unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with SimProcess(SIM) as sim:
        url = sim.url
        rates = []
        for i in range(args.runs):
            rate, errors = asyncio.run(hammer(url, args.seconds, args.concurrency))
            rates.append(rate)
            print(f"run {i + 1}: {rate:,.0f} req/s ({errors} non-200)", flush=True)
        print(f"sim RSS after the runs: {sim_rss_mb(sim.pid or 0):.0f} MB", flush=True)
        print(
            f"median: {statistics.median(rates):,.0f} req/s "
            f"(GET /v1/generations/:id, {args.runs} x {args.seconds:g} s, "
            f"concurrency {args.concurrency}, nproc {os.cpu_count()})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
