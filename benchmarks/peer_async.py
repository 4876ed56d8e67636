"""A competent peer: the asyncio script a strong engineer writes instead of genbatch.

Not the naive baseline (``baseline_naive.py``: urllib, 16 threads) but what
someone who knows asyncio writes in an afternoon from the reference's
walkthrough, told the rate limit:

* one ``aiohttp.ClientSession`` (keep-alive) whose ``TCPConnector`` limit is
  sized to the work (two calls per row in flight);
* an ``aiolimiter.AsyncLimiter(1, 1 / rate)`` — one token per period,
  strictly spaced at the known limit (``--rate``) — that *every* HTTP call
  passes, retries and the CDN download included;
* an ``asyncio.Semaphore(256)`` on rows in flight (``--rows-in-flight``);
* on a 429 it sleeps the ``Retry-After`` and retries that call; a 5xx or a
  connection error is retried after a short exponential backoff (4 tries);
* it polls each generation at a fixed interval: ``--poll`` seconds, default
  5 s x the time scale (the reference's "poll every ~5 s"), or with
  ``--poll-profile sdk`` 2 s x the time scale (the vendor SDK's
  ``waitForGeneration``);
* per row the same calls as the naive baseline (clone, the agent's voice,
  PATCH hook and script, POST generate voiceover and broll with genbatch's
  cards, poll, render, poll, download), but the independent ones at once
  (``asyncio.gather``: the voice and both PATCHes; voiceover and broll), and
  the MP4 streamed to a file.

The per-row "user code" (``--worker`` mode, the top half of this file)
imports only the standard library, aiohttp and aiolimiter.  The harness (the
bottom half, which may import genbatch) starts ``genbatch sim`` as its own
process, runs the worker as a *subprocess* so ``os.wait4`` gives the peer's
own CPU time and peak RSS (neither the simulator's nor the harness's), then
verifies every MP4 like the naive baseline (on disk, of the size the CDN
announced, an ``ftyp`` box) and reads the simulator's ledger: requests by
route and status, 429s, polls per generation, and the detection delay (when
the peer saw a job completed, after GEN completed it, as a fraction of the
job's duration).

    .venv/bin/python benchmarks/peer_async.py --rows 1000 --rate 500 --burst 20 \\
        --time-scale 0.02 [--profile NAME] [--poll-profile reference|sdk] [--json]

``--rate`` is both the simulator's limit and the limit the peer is told;
with ``--profile NAME`` the profile sets the simulator's limit and ``--rate``
(default: the profile's limit) only what the peer is told.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiolimiter import AsyncLimiter

if TYPE_CHECKING:
    from genbatch.sim.config import SimConfig

TEMPLATE = "tiktok-vo-broll"
ROWS_IN_FLIGHT = 256
#: Poll intervals at time scale 1: the reference's "poll every ~5 s", the SDK's 2 s.
POLL_PROFILES = {"reference": 5.0, "sdk": 2.0}
#: Tries of one call on a 5xx or a connection error, and the first backoff (doubling).
TRIES = 4
BACKOFF_SECONDS = 0.2
#: Sleep on a 429 without a (readable) Retry-After.
RETRY_AFTER_DEFAULT = 1.0
REQUEST_TIMEOUT = 60.0
CHUNK = 1 << 16
KEY_ENV = "GEN_API_KEY"


# ==========================================================================
# What the peer writes (stdlib + aiohttp + aiolimiter; never genbatch)
# ==========================================================================
def cards(hook: str, script: str) -> list[tuple[str, dict[str, Any]]]:
    """The cells to generate and their cards, copied from the recipe TOML by hand."""
    return [
        (
            "voiceover",
            {
                "generation_type": "speech_from_text",
                "data": {"script": script, "voice_method": "my_voices"},
            },
        ),
        (
            "broll",
            {
                "generation_type": "video_from_text",
                "data": {
                    "prompt": f"Vertical b-roll for a short video about: {hook}. Cinematic "
                    "handheld shots, natural light, no text overlays.",
                    "model": "veo_3_fast",
                    "aspect_ratio": "9:16",
                    "duration": 5,
                    "negative_prompt": "no text overlays, no watermarks",
                },
            },
        ),
    ]


def rows_for(n: int) -> list[dict[str, str]]:
    """The same synthetic rows `genbatch bench` and the naive baseline use."""
    width = max(5, len(str(n)))
    return [
        {
            "row_id": f"bench-{i:0{width}d}",
            "hook": f"Hook for bench row {i}.",
            "script": f"Script for bench row {i}.",
        }
        for i in range(n)
    ]


class Retryable(Exception):
    """A 5xx answer: worth another try after a short backoff."""


class Peer:
    """One session, one limiter every call passes, fixed-interval polls."""

    def __init__(
        self, session: aiohttp.ClientSession, base: str, key: str, rate: float, poll: float
    ) -> None:
        self.session = session
        self.base = base
        self.headers = {"X-API-Key": key}
        self.limiter = AsyncLimiter(1, 1 / rate)  # strictly spaced at the known limit
        self.poll = poll
        self.requests = 0
        self.rate_limited = 0
        self.retried = 0
        self.polls = 0
        #: generation id -> wall time (epoch) of the poll that saw it completed.
        self.seen: dict[int, float] = {}

    async def _send(self, method: str, url: str, body: Any, api: bool, sink: Path | None) -> Any:
        """One call through the limiter, retried on 429 (Retry-After) and 5xx/errors."""
        errors = 0
        while True:
            await self.limiter.acquire()
            self.requests += 1
            try:
                async with self.session.request(
                    method, url, json=body, headers=self.headers if api else None
                ) as resp:
                    if resp.status == 429:
                        self.rate_limited += 1
                        await resp.read()
                        delay = retry_after(resp.headers.get("Retry-After"))
                    elif resp.status >= 500:
                        raise Retryable(f"{method} {url}: {resp.status}")
                    elif resp.status >= 400:
                        text = (await resp.text())[:200]
                        raise RuntimeError(f"{method} {url}: {resp.status} {text}")
                    elif sink is not None:
                        return await stream_to(resp, sink)
                    else:
                        return json.loads(await resp.read())
            except (TimeoutError, aiohttp.ClientError, Retryable):
                errors += 1
                if errors >= TRIES:
                    raise
                self.retried += 1
                delay = BACKOFF_SECONDS * 2 ** (errors - 1)
            await asyncio.sleep(delay)

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        return await self._send(method, self.base + path, body, True, None)

    async def download(self, url: str, target: Path) -> int:
        size: int = await self._send("GET", url, None, False, target)
        return size

    async def wait(self, generation_id: int) -> Any:
        while True:
            await asyncio.sleep(self.poll)
            gen = await self.call("GET", f"/generations/{generation_id}")
            self.polls += 1
            if gen["status"] == "completed":
                self.seen[generation_id] = time.time()
                return gen
            if gen["status"] in ("failed", "stopped"):
                raise RuntimeError(f"generation {generation_id} {gen['status']}")


def retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value is not None else RETRY_AFTER_DEFAULT
    except ValueError:
        return RETRY_AFTER_DEFAULT


async def stream_to(resp: aiohttp.ClientResponse, target: Path) -> int:
    """Stream a CDN answer to ``target``; its size, checked against Content-Length."""
    expected = int(resp.headers["Content-Length"])
    got = 0
    with target.open("wb") as f:
        async for chunk in resp.content.iter_chunked(CHUNK):
            f.write(chunk)
            got += len(chunk)
    if got != expected:
        raise RuntimeError(f"{target.name}: got {got} of {expected} bytes")
    return expected


async def make_video(peer: Peer, agent: str, row: dict[str, str], videos: Path) -> int:
    """One row, start to finish; returns the MP4's size."""
    q = f"?agent_id={agent}"
    engine = await peer.call(
        "POST", f"/templates/spreadsheets/{TEMPLATE}/clone", {"agent_id": int(agent)}
    )
    eid = engine["id"]
    titles = {c["id"]: c["title"] for c in engine["spreadsheet_columns"]}
    first_row = engine["spreadsheet_rows"][0]["spreadsheet_cells"]
    cells = {titles[c["column_id"]]: c for c in first_row}
    core, *_ = await asyncio.gather(
        peer.call("GET", f"/agents/{agent}/core"),
        *(
            peer.call(
                "PATCH",
                f"/vidsheet/{eid}/cells/{cells[name]['id']}{q}",
                {"spreadsheet_cell": {"value": row[name]}},
            )
            for name in ("hook", "script")
        ),
    )
    voice = (core.get("default_user_voice") or {}).get("voice_id")

    async def generate(name: str, card: dict[str, Any]) -> None:
        data = dict(card["data"])
        if card["generation_type"] == "speech_from_text":
            data.setdefault("voice_id", voice)  # the agent's own voice
        body = {"generation_type": card["generation_type"], "data": data}
        gen = await peer.call(
            "POST", f"/vidsheet/{eid}/cells/{cells[name]['id']}/generate{q}", body
        )
        await peer.wait(gen["generation_id"])

    await asyncio.gather(*(generate(n, c) for n, c in cards(row["hook"], row["script"])))
    render = await peer.call(
        "POST", f"/vidsheet/{eid}/cells/{cells['final_video']['id']}/render{q}"
    )
    done = await peer.wait(render["generation_id"])
    return await peer.download(done["output_resources"][0]["url"], videos / f"{row['row_id']}.mp4")


async def peer_run(opts: argparse.Namespace, key: str) -> dict[str, Any]:
    """Every row, at most ``rows_in_flight`` at once; what happened, for the harness."""
    rows = rows_for(opts.rows)
    videos = Path(opts.videos)
    sizes: dict[str, int] = {}
    failures: dict[str, str] = {}
    gate = asyncio.Semaphore(opts.rows_in_flight)
    connector = aiohttp.TCPConnector(limit=2 * opts.rows_in_flight)  # two calls per row at most
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        peer = Peer(session, opts.base_url, key, opts.rate, opts.poll)

        async def one(row: dict[str, str]) -> None:
            async with gate:
                try:
                    sizes[row["row_id"]] = await make_video(peer, opts.agent, row, videos)
                except Exception as exc:  # the row fails; the others go on
                    failures[row["row_id"]] = repr(exc)[:200]

        t0 = time.monotonic()
        await asyncio.gather(*(one(row) for row in rows))
        makespan = time.monotonic() - t0
    return {
        "makespan_s": makespan,
        "sizes": sizes,
        "failures": failures,
        "requests": peer.requests,
        "rate_limited": peer.rate_limited,
        "retried": peer.retried,
        "polls": peer.polls,
        "seen": {str(k): v for k, v in peer.seen.items()},
    }


def vm_hwm_kib() -> int | None:
    """This process's own peak RSS (Linux ``VmHWM``, KiB).

    Not ``ru_maxrss``: Linux carries a spawning parent's high-water mark
    across ``execve`` into the child's ``ru_maxrss``, so a child of a big
    harness reports the harness's peak.  ``VmHWM`` is this address space's.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def worker(opts: argparse.Namespace) -> int:
    """``--worker``: run the peer, print what happened as JSON on stdout."""
    key = os.environ[KEY_ENV]

    def cpu() -> float:
        u = resource.getrusage(resource.RUSAGE_SELF)
        return u.ru_utime + u.ru_stime

    cpu0 = cpu()
    result = asyncio.run(peer_run(opts, key))
    result["cpu_s"] = cpu() - cpu0
    result["vm_hwm_kib"] = vm_hwm_kib()
    # The fairness guard the harness checks: the user code never loaded genbatch.
    result["imported_genbatch"] = any(m.split(".")[0] == "genbatch" for m in sys.modules)
    json.dump(result, sys.stdout)
    return 0


# ==========================================================================
# Harness (may import genbatch)
# ==========================================================================
def sim_config(
    profile: str | None,
    *,
    rate: float | None = None,
    burst: int | None = None,
    time_scale: float,
    faults: str = "",
    seed: int = 0,
) -> SimConfig:
    """The simulator of one run: a named sim profile, or `genbatch bench`'s simulator.

    ``profile`` None (or ``default``): ``bench_sim`` (``genbatch bench``'s
    simulator: its default limit unless ``rate``/``burst`` are given).  Else a
    named profile or a profile TOML (``genbatch.sim.profile.load_profile``,
    via ``SimConfig.from_profile``), its limit and burst kept unless
    ``rate``/``burst`` are given; the time scale, seed and faults are ours,
    and credits never run out (``genbatch bench``'s balance).
    """
    from genbatch.bench.run import ENGINE_BENCH_CREDITS, bench_sim
    from genbatch.sim.config import SimConfig
    from genbatch.sim.profile import ProfileError

    if profile in (None, "", "default"):
        given: dict[str, Any] = {"time_scale": time_scale, "faults": faults, "seed": seed}
        if rate is not None:
            given["rate"] = rate
        if burst is not None:
            given["burst"] = burst
        return bench_sim(**given)
    overrides: dict[str, Any] = {
        "time_scale": time_scale,
        "seed": seed,
        "credits": ENGINE_BENCH_CREDITS,
    }
    if rate is not None:
        overrides["rate"] = rate
    if burst is not None:
        overrides["burst"] = burst
    if faults:
        overrides["faults"] = faults
    try:
        return SimConfig.from_profile(profile, **overrides)
    except (ProfileError, ValueError) as exc:
        raise SystemExit(f"sim profile {profile}: {exc}") from None


def profile_limit(spec: SimConfig) -> float | None:
    """The simulator's rate limit in requests/s, or None when it has none."""
    rate = getattr(spec, "rate", None)
    return float(rate) if rate is not None and rate > 0 else None


def poll_seconds(poll: float | None, poll_profile: str, time_scale: float) -> float:
    return poll if poll is not None else POLL_PROFILES[poll_profile] * time_scale


def check_same_work() -> None:
    """Our cards are the naive baseline's, which are genbatch's default recipe's."""
    import baseline_naive

    baseline_naive.check_same_work()
    row = rows_for(1)[0]
    if cards(row["hook"], row["script"]) != baseline_naive.cards(row["hook"], row["script"]):
        raise SystemExit("peer cards differ from the naive baseline's (genbatch's recipe)")
    if rows_for(3) != baseline_naive.rows_for(3):
        raise SystemExit("peer rows differ from the naive baseline's")


def required_requests(rows: int) -> int:
    """API requests the work needs at best (genbatch's estimate, one poll per job)."""
    from genbatch.engine.plan import estimate_requests
    from genbatch.engine.recipe import Recipe

    recipe = Recipe.default(TEMPLATE)
    return sum(estimate_requests(recipe.plan_row(row)) for row in rows_for(rows))


def critical_path(generations: list[dict[str, Any]]) -> float:
    """The slowest row's chain of jobs (ledger times): its slowest generation, then its render.

    The same bound as ``genbatch bench``'s: voiceover and broll run at once, the
    render after both; a row is a cloned engine (``engine_id``).
    """
    gens: dict[Any, float] = {}
    renders: dict[Any, float] = {}
    for g in generations:
        done, created = g.get("completed_at"), g.get("created_at")
        if done is None or created is None:
            continue
        into = renders if g.get("type") == "render" else gens
        key = g.get("engine_id")
        into[key] = max(into.get(key, 0.0), float(done) - float(created))
    rows = set(gens) | set(renders)
    return max((gens.get(k, 0.0) + renders.get(k, 0.0) for k in rows), default=0.0)


def detection(seen: dict[str, float], generations: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Seen-completed after GEN completed it, in seconds and as a fraction of the job."""
    delays: list[float] = []
    fractions: list[float] = []
    for g in generations:
        t = seen.get(str(g.get("id")))
        done, created = g.get("completed_at"), g.get("created_at")
        if t is None or done is None or created is None:
            continue
        delay = max(0.0, t - float(done))
        delays.append(delay)
        if float(done) > float(created):
            fractions.append(delay / (float(done) - float(created)))
    if not delays:
        return None
    q = statistics.quantiles
    return {
        "jobs": len(delays),
        "p50_s": round(statistics.median(delays), 4),
        "p95_s": round(q(delays, n=20)[-1], 4) if len(delays) > 1 else round(delays[0], 4),
        "p50_fraction": round(statistics.median(fractions), 4) if fractions else None,
        "p95_fraction": round(q(fractions, n=20)[-1], 4) if len(fractions) > 1 else None,
    }


def run_peer(
    spec: SimConfig,
    *,
    rows: int,
    rate: float,
    poll: float,
    rows_in_flight: int = ROWS_IN_FLIGHT,
    profile: str | None = None,
) -> dict[str, Any]:
    """One peer run against a fresh simulator process serving ``spec``; its figures."""
    import baseline_naive

    from genbatch._constants import SIM_DEMO_AGENT_ID, SIM_DEMO_API_KEY
    from genbatch.bench.analysis import admin_free, api_requests
    from genbatch.sim.launch import SimProcess

    check_same_work()
    work = Path(tempfile.mkdtemp(prefix="genbatch-peer-"))
    videos = work / "videos"
    videos.mkdir()
    try:
        with SimProcess(spec, log=work / "sim.log") as sim:
            argv = [
                sys.executable, str(Path(__file__).resolve()), "--worker",
                "--base-url", sim.api_url, "--agent", str(SIM_DEMO_AGENT_ID),
                "--rows", str(rows), "--rate", repr(rate), "--poll", repr(poll),
                "--rows-in-flight", str(rows_in_flight), "--videos", str(videos),
            ]  # fmt: skip
            env = {**os.environ, KEY_ENV: SIM_DEMO_API_KEY}
            with (work / "out.json").open("wb") as out, (work / "err.txt").open("wb") as err:
                harness_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                t0 = time.monotonic()
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env
                )
                _, status, usage = os.wait4(proc.pid, 0)
                wall = time.monotonic() - t0
                proc.returncode = code = os.waitstatus_to_exitcode(status)
            try:
                got: dict[str, Any] = json.loads((work / "out.json").read_text())
            except ValueError:
                tail = (work / "err.txt").read_text(errors="replace")[-2000:]
                raise SystemExit(f"peer worker exited {code} without a result:\n{tail}") from None
            ledger = sim.ledger()
        good = baseline_naive.verify(videos, got["sizes"], rows_for(rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if got["imported_genbatch"]:
        raise SystemExit("the peer's user code imported genbatch: not a fair peer")
    by_route = admin_free(ledger["requests"]["by_route"])
    by_status = dict(ledger["requests"]["by_status"])
    admin = sum(v for k, v in ledger["requests"]["by_route"].items() if "/_sim/" in k)
    if admin and by_status.get("200", 0) >= admin:
        by_status["200"] -= admin
    api = api_requests(by_route)
    polls = by_route.get("GET /v1/generations/{id}", 0)
    gens = ledger.get("generations", [])
    limited = int(by_status.get("429", 0))
    limit = profile_limit(spec)
    required = required_requests(rows) + 2  # genbatch's preflight (agent + org) included
    rate_bound = max(0, required - spec.burst) / limit if limit else None
    critical = critical_path(gens)
    bound = max(rate_bound or 0.0, critical)
    cpu = float(got["cpu_s"])
    makespan = float(got["makespan_s"])
    return {
        "peer": "asyncio + aiohttp, AsyncLimiter strictly at the known rate, fixed-interval polls",
        "profile": profile,
        "rows": rows,
        "rate": limit,
        "told_rate": rate,
        "burst": spec.burst,
        "time_scale": spec.time_scale,
        "poll_s": poll,
        "rows_in_flight": rows_in_flight,
        "completed": len(got["sizes"]),
        "verified_mp4": good,
        "failed": len(got["failures"]),
        "failures": dict(list(got["failures"].items())[:5]),
        "makespan_s": round(makespan, 3),
        "wall_s": round(wall, 3),
        "lower_bound": {
            "required_requests": required,
            "rate_bound_s": None if rate_bound is None else round(rate_bound, 3),
            "critical_path_s": round(critical, 3),
            "bound_s": round(bound, 3),
            "which": "rate limit"
            if rate_bound is not None and rate_bound >= critical
            else "critical path",
            "ratio": round(makespan / bound, 4) if bound > 0 else None,
        },
        "requests": sum(by_route.values()),
        "api_requests": api,
        "client_requests": got["requests"],
        "achieved_rate": round(got["requests"] / makespan, 1) if makespan > 0 else None,
        "by_route": by_route,
        "by_status": by_status,
        "rate_limited": limited,
        "share_429": round(limited / api, 5) if api else 0.0,
        "retried_5xx": got["retried"],
        "polls": polls,
        "generations": len(gens),
        "polls_per_generation": round(polls / len(gens), 3) if gens else None,
        "detection_delay": detection(got["seen"], gens),
        "cpu_s": round(cpu, 3),
        "cpu_total_s": round(float(usage.ru_utime + usage.ru_stime), 3),
        "cpu_us_per_request": round(1e6 * cpu / got["requests"], 1) if got["requests"] else None,
        # The worker's own VmHWM; ru_maxrss of wait4 is at least the harness's peak
        # at spawn time (Linux keeps the parent's high-water mark across execve).
        "peak_rss_mb": round((got.get("vm_hwm_kib") or usage.ru_maxrss) / 1024, 1),
        "peak_rss_wait4_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        "harness_rss_mb": round(harness_rss / 1024, 1),
        "exit_code": code,
        "nproc": os.cpu_count(),
    }


def render(r: dict[str, Any]) -> str:
    lb = r["lower_bound"]
    rate_part = "n/a" if lb["rate_bound_s"] is None else f"{lb['rate_bound_s']:.2f} s"
    bound = (
        f"; lower bound {lb['bound_s']:.2f} s ({lb['which']}; rate limit {rate_part}, longest "
        f"row's chain {lb['critical_path_s']:.2f} s), ratio "
        + ("n/a" if lb["ratio"] is None else f"{lb['ratio']:.3f}")
    )
    lines = [
        f"peer (asyncio): {r['completed']}/{r['rows']} rows ({r['verified_mp4']} MP4s verified) "
        f"in {r['makespan_s']:.2f} s{bound}",
        f"  told {r['told_rate']:g}/s (sim limit {r['rate'] or 'none'}, burst {r['burst']}), "
        f"poll every {r['poll_s']:g} s, {r['rows_in_flight']} rows in flight, "
        f"time scale {r['time_scale']:g}" + (f", profile {r['profile']}" if r["profile"] else ""),
        f"  {r['api_requests']} API requests ({r['requests']} with the CDN; "
        f"{r['achieved_rate']:g}/s over the makespan), "
        f"{r['rate_limited']} 429s ({r['share_429']:.2%}), {r['retried_5xx']} 5xx/error retries; "
        f"{r['polls']} polls = {r['polls_per_generation']} per generation",
        f"  CPU {r['cpu_s']:.2f} s in the run ({r['cpu_total_s']:.2f} s with interpreter start) "
        f"= {r['cpu_us_per_request']} us per request; peak RSS {r['peak_rss_mb']:.1f} MB",
    ]
    d = r["detection_delay"]
    if d:
        lines.append(
            f"  detection delay: p50 {d['p50_s'] * 1000:.1f} ms, p95 {d['p95_s'] * 1000:.1f} ms; "
            f"p50 {d['p50_fraction']:.1%} of the job's duration"
        )
    for route, n in sorted(r["by_route"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n:>8}  {route}")
    lines.append("  by status: " + ", ".join(f"{k}: {v}" for k, v in r["by_status"].items()))
    return "\n".join(lines)


def add_sim_args(parser: argparse.ArgumentParser, *, rows: int) -> None:
    """The simulator and peer flags the three peer benchmarks share."""
    parser.add_argument("--rows", type=int, default=rows)
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="the sim's limit and what the peer is told, req/s (with --profile: only the "
        "peer's; default: the profile's limit, or the bench simulator's default)",
    )
    parser.add_argument("--burst", type=int, default=None, help="sim token bucket size")
    parser.add_argument("--time-scale", type=float, default=0.02)
    parser.add_argument("--profile", default=None, help="a named sim profile")
    parser.add_argument("--faults", default="")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--poll-profile", choices=sorted(POLL_PROFILES), default="reference")
    parser.add_argument("--poll", type=float, default=None, help="poll interval, s (overrides)")
    parser.add_argument("--rows-in-flight", type=int, default=ROWS_IN_FLIGHT)
    parser.add_argument("--json", action="store_true")


def spec_and_told(args: argparse.Namespace) -> tuple[SimConfig, float]:
    """The simulator ``args`` describe, and the rate the peer is told."""
    with_profile = args.profile not in (None, "", "default")
    spec = sim_config(
        args.profile,
        rate=None if with_profile else args.rate,
        burst=args.burst,
        time_scale=args.time_scale,
        faults=args.faults,
        seed=args.seed,
    )
    told = args.rate if args.rate is not None else profile_limit(spec)
    if told is None:
        raise SystemExit(f"profile {args.profile} has no rate limit: tell the peer one (--rate)")
    return spec, told


def main() -> int:
    if "--worker" in sys.argv[1:]:
        wp = argparse.ArgumentParser()
        wp.add_argument("--worker", action="store_true")
        wp.add_argument("--base-url", required=True)
        wp.add_argument("--agent", required=True)
        wp.add_argument("--rows", type=int, required=True)
        wp.add_argument("--rate", type=float, required=True)
        wp.add_argument("--poll", type=float, required=True)
        wp.add_argument("--rows-in-flight", type=int, default=ROWS_IN_FLIGHT)
        wp.add_argument("--videos", required=True)
        return worker(wp.parse_args())
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_sim_args(parser, rows=1000)
    args = parser.parse_args()
    spec, told = spec_and_told(args)
    result = run_peer(
        spec,
        rows=args.rows,
        rate=told,
        poll=poll_seconds(args.poll, args.poll_profile, args.time_scale),
        rows_in_flight=args.rows_in_flight,
        profile=args.profile,
    )
    print(json.dumps(result, indent=2) if args.json else render(result))
    ok = result["verified_mp4"] == result["rows"]
    if not ok:
        print(f"NOT all rows verified: {result['failures']}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
