"""Many small files through ``transfer.download``: CPU and wall per file.

    .venv/bin/python benchmarks/small_downloads.py [--files 2000] [--size 3500] [--concurrency 8]

A rendered short from the simulator is a few KB, so per-file overhead (worker-thread
hops, fsyncs) rather than bytes decides how fast a run's downloads drain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from genbatch.client.transfer import download


async def main(files: int, size: int, concurrency: int) -> dict[str, float]:
    body = os.urandom(size)

    async def blob(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/v/{n}", blob)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    sem = asyncio.Semaphore(concurrency)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)

        async def one(i: int) -> None:
            async with sem:
                await download(session, str(server.make_url(f"/v/{i}")), out / f"{i}.mp4")

        async with aiohttp.ClientSession() as session:
            cpu0, t0 = time.process_time(), time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(files)))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    await server.close()
    return {
        "files": files,
        "wall_ms_per_file": round(1000 * wall / files, 3),
        "cpu_us_per_file": round(1e6 * cpu / files, 1),
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size", type=int, default=3500)
    ap.add_argument("--concurrency", type=int, default=8)
    a = ap.parse_args()
    print(json.dumps(asyncio.run(main(a.files, a.size, a.concurrency))))
