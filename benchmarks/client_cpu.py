"""Client CPU per request: ``GenClient.generations.get`` against raw aiohttp, same sim.

The simulator runs as its own process (``python -m genbatch sim``), so this
process's CPU time (``time.process_time``, all threads) is the client's alone.
One generation is created, then each run issues N reads of
``GET /v1/generations/:id`` at a fixed concurrency:

- raw:    ``session.get(url, headers=auth)`` → ``await resp.read()`` →
          ``orjson.loads`` (what any consumer of the JSON must do at least);
- client: ``await gen.generations.get(id)`` — route formatting, auth headers,
          the retry decision, counters, error mapping, and a pydantic model.

Raw and client runs alternate (so drift hits both), the medians of CPU
seconds per request are compared, and the ratio is printed.  Target: ≤ 1.5×.

    .venv/bin/python benchmarks/client_cpu.py [--requests 3000] [--runs 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import orjson

from genbatch import _constants as C
from genbatch.client import GenClient
from genbatch.sim.config import SimConfig
from genbatch.sim.launch import SimProcess

KEY = "bench-client-cpu-key"
#: Rate limit out of the way; short latencies.
SIM = SimConfig(api_keys=(KEY,), rate=1e9, burst=1_000_000_000, time_scale=0.001)


async def _spread(n: int, concurrency: int, one: Callable[[], Awaitable[object]]) -> float:
    """CPU seconds for ``n`` calls of ``one`` spread over ``concurrency`` workers."""
    per, extra = divmod(n, concurrency)

    async def worker(k: int) -> None:
        for _ in range(k):
            await one()

    gc.collect()
    start = time.process_time()
    await asyncio.gather(*(worker(per + (i < extra)) for i in range(concurrency)))
    return time.process_time() - start


async def main(requests: int, runs: int, concurrency: int) -> dict[str, object]:
    with SimProcess(SIM) as sim:
        url = sim.url
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with (
            aiohttp.ClientSession(connector=connector) as raw_session,
            GenClient(
                KEY, api_url=sim.api_url, agent_url=sim.agent_url, pool_limit=concurrency
            ) as gen,
        ):
            agent = C.SIM_DEMO_AGENT_ID
            eng = await gen.templates.clone("tiktok-vo-broll", agent)
            hook = eng.cell("hook")
            assert hook is not None
            started = await gen.generations.generate(
                eng.id, hook.id, agent, {"generation_type": "text", "data": {"prompt": "hi"}}
            )
            gid = started.generation_id
            target = f"{url}/v1/generations/{gid}"
            headers = {"X-API-Key": KEY}

            async def raw_one() -> object:
                async with raw_session.get(target, headers=headers) as r:
                    body = await r.read()
                    if r.status != 200:
                        raise RuntimeError(r.status)
                return orjson.loads(body)

            async def client_one() -> object:
                return await gen.generations.get(gid)

            # warm both paths (connections, caches) before measuring
            await _spread(200, concurrency, raw_one)
            await _spread(200, concurrency, client_one)
            raw: list[float] = []
            client: list[float] = []
            for _ in range(runs):
                raw.append(await _spread(requests, concurrency, raw_one) / requests)
                client.append(await _spread(requests, concurrency, client_one) / requests)
            assert gen.stats.retries == 0, gen.stats.snapshot()
    raw_med, client_med = statistics.median(raw), statistics.median(client)
    return {
        "requests_per_run": requests,
        "runs": runs,
        "concurrency": concurrency,
        "raw_us_per_request": [round(x * 1e6, 1) for x in raw],
        "client_us_per_request": [round(x * 1e6, 1) for x in client],
        "raw_median_us": round(raw_med * 1e6, 1),
        "client_median_us": round(client_med * 1e6, 1),
        "ratio": round(client_med / raw_med, 3),
        "target": "<= 1.5",
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=8)
    a = p.parse_args()
    result = asyncio.run(main(a.requests, a.runs, a.concurrency))
    print(json.dumps(result, indent=2))
    ratio = result["ratio"]
    assert isinstance(ratio, float)
    sys.exit(0 if ratio <= 1.5 else 1)
