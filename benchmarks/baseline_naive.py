"""The naive baseline: what a user writes from the reference's curl walkthrough.

Standard library only (``urllib``, no keep-alive) and a ``ThreadPoolExecutor``
of 16; per row, in order, exactly the walkthrough:

1. ``POST /v1/templates/spreadsheets/tiktok-vo-broll/clone``;
2. ``PATCH`` each text cell (hook, script) — "drop text into a cell";
3. ``POST …/cells/:id/generate`` for each ingredient cell genbatch's default
   recipe generates (voiceover, broll), with the same creation cards genbatch
   sends (the recipe's card over the template cell's own card);
4. poll each generation every 5 s (× the time scale) until completed;
5. ``POST …/cells/:final_video/render``, poll it the same way;
6. download the MP4 from ``output_resources[0].url``.

On a 429 it sleeps a fixed 5 s (× the time scale) and tries again; any other
error fails the row.  This is a fair baseline: the same generations, render
and download per row, checked at the end (every MP4 present, its size equal
to the CDN's Content-Length and an ``ftyp`` box at its start), against the
same simulator settings genbatch gets.

The harness around it (starting ``genbatch sim`` as its own process, reading
its ledger, checking the cards match genbatch's) is not part of "what the
user writes" and imports genbatch; the per-row code below does not.

    .venv/bin/python benchmarks/baseline_naive.py --rows 1000 --rate 500 --burst 20 \\
        --time-scale 0.02 [--json]

Prints makespan, rows completed, and from the simulator's ledger: requests by
route and status, 429s, polls and polls per generation.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from genbatch._constants import SIM_DEMO_AGENT_ID, SIM_DEMO_API_KEY
from genbatch.bench.analysis import api_requests
from genbatch.bench.run import bench_sim
from genbatch.engine.recipe import Recipe
from genbatch.sim.launch import SimProcess

TEMPLATE = "tiktok-vo-broll"
THREADS = 16
POLL_SECONDS = 5.0  # "poll every ~5s until status == completed" (the reference)
BACKOFF_SECONDS = 5.0  # fixed sleep after a 429
AGENT = SIM_DEMO_AGENT_ID
KEY = SIM_DEMO_API_KEY


# --------------------------------------------------------------------------
# What the user writes
# --------------------------------------------------------------------------
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


class Api:
    """urllib with the API key; a 429 sleeps a fixed time and tries again."""

    def __init__(self, base: str, key: str, poll: float, backoff: float) -> None:
        self.base = base
        self.key = key
        self.poll = poll
        self.backoff = backoff
        self.retries_429 = 0
        self._lock = threading.Lock()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        while True:
            req = urllib.request.Request(
                self.base + path,
                data=data,
                method=method,
                headers={"X-API-Key": self.key, "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    return json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                if exc.code != 429:
                    raise
                exc.read()
                with self._lock:
                    self.retries_429 += 1
                time.sleep(self.backoff)

    def wait(self, generation_id: int) -> Any:
        while True:
            time.sleep(self.poll)
            gen = self.call("GET", f"/generations/{generation_id}")
            if gen["status"] == "completed":
                return gen
            if gen["status"] in ("failed", "stopped"):
                raise RuntimeError(f"generation {generation_id} {gen['status']}")


def make_video(api: Api, row: dict[str, str], videos: Path) -> int:
    """One row, start to finish; returns the MP4's size."""
    q = f"?agent_id={AGENT}"
    engine = api.call("POST", f"/templates/spreadsheets/{TEMPLATE}/clone", {"agent_id": AGENT})
    eid = engine["id"]
    # Today's sheet: rows hold the cells; a cell names its column by id.
    titles = {c["id"]: c["title"] for c in engine["spreadsheet_columns"]}
    first_row = engine["spreadsheet_rows"][0]["spreadsheet_cells"]
    cells = {titles[c["column_id"]]: c for c in first_row}
    voice = (api.call("GET", f"/agents/{AGENT}/core").get("default_user_voice") or {}).get(
        "voice_id"
    )
    for name in ("hook", "script"):
        api.call(
            "PATCH",
            f"/vidsheet/{eid}/cells/{cells[name]['id']}{q}",
            {"spreadsheet_cell": {"value": row[name]}},
        )
    started = []
    for name, card in cards(row["hook"], row["script"]):
        data = dict(card["data"])
        if card["generation_type"] == "speech_from_text":
            data.setdefault("voice_id", voice)  # the agent's own voice
        body = {"generation_type": card["generation_type"], "data": data}
        gen = api.call("POST", f"/vidsheet/{eid}/cells/{cells[name]['id']}/generate{q}", body)
        started.append(gen["generation_id"])
    for gid in started:
        api.wait(gid)
    final = cells["final_video"]["id"]
    render = api.call("POST", f"/vidsheet/{eid}/cells/{final}/render{q}")
    done = api.wait(render["generation_id"])
    url = done["output_resources"][0]["url"]
    target = videos / f"{row['row_id']}.mp4"
    with urllib.request.urlopen(url, timeout=60) as resp:
        expected = int(resp.headers["Content-Length"])
        body = resp.read()
    if len(body) != expected:
        raise RuntimeError(f"{row['row_id']}: got {len(body)} of {expected} bytes")
    target.write_bytes(body)
    return expected


# --------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------
def rows_for(n: int) -> list[dict[str, str]]:
    """The same synthetic rows `genbatch bench` writes (same text per row)."""
    width = max(5, len(str(n)))
    return [
        {
            "row_id": f"bench-{i:0{width}d}",
            "hook": f"Hook for bench row {i}.",
            "script": f"Script for bench row {i}.",
        }
        for i in range(n)
    ]


def check_same_work() -> None:
    """The cards above are genbatch's default recipe's, exactly (fairness guard)."""
    recipe = Recipe.default(TEMPLATE)
    row = rows_for(1)[0]
    plan = recipe.plan_row(row)
    ours = {name: card for name, card in cards(row["hook"], row["script"])}
    theirs = {
        g.cell: {"generation_type": g.generation_type, "data": dict(g.data)}
        for g in plan.generations
    }
    if ours != theirs or plan.cell_values != {"hook": row["hook"], "script": row["script"]}:
        raise SystemExit(f"baseline cards differ from genbatch's recipe:\n{ours}\n{theirs}")
    if plan.render is None or plan.publish is not None or plan.assets:
        raise SystemExit("the recipe's shape changed (render/publish/assets): update the baseline")


def verify(videos: Path, sizes: dict[str, int], rows: list[dict[str, str]]) -> int:
    """Every completed row's MP4 is on disk, of the size the CDN announced, an MP4."""
    good = 0
    for row in rows:
        size = sizes.get(row["row_id"])
        path = videos / f"{row['row_id']}.mp4"
        if size is None or not path.is_file():
            continue
        data = path.read_bytes()
        if len(data) == size and size > 8 and data[4:8] == b"ftyp":
            good += 1
    return good


def run(args: argparse.Namespace) -> dict[str, Any]:
    check_same_work()
    spec = bench_sim(  # the simulator `genbatch bench` runs against, same flags
        rate=args.rate,
        burst=args.burst,
        time_scale=args.time_scale,
        faults=args.faults,
        seed=args.seed,
    )
    work = Path(tempfile.mkdtemp(prefix="genbatch-naive-"))
    videos = work / "videos"
    videos.mkdir()
    rows = rows_for(args.rows)
    sizes: dict[str, int] = {}
    failures: dict[str, str] = {}
    try:
        with SimProcess(spec, log=work / "sim.log") as sim:
            api = Api(
                sim.api_url,  # the naive script never calls the agent host
                KEY,
                poll=POLL_SECONDS * args.time_scale,
                backoff=BACKOFF_SECONDS * args.time_scale,
            )

            def one(row: dict[str, str]) -> None:
                try:
                    sizes[row["row_id"]] = make_video(api, row, videos)
                except Exception as exc:  # the row fails; the others go on
                    failures[row["row_id"]] = repr(exc)[:200]

            cpu0 = time.process_time()
            t0 = time.monotonic()
            with ThreadPoolExecutor(max_workers=args.threads) as pool:
                list(pool.map(one, rows))
            makespan = time.monotonic() - t0
            cpu = time.process_time() - cpu0
            ledger = sim.ledger()
        good = verify(videos, sizes, rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    by_route = {k: v for k, v in ledger["requests"]["by_route"].items() if "/_sim/" not in k}
    by_status = dict(ledger["requests"]["by_status"])
    admin = sum(v for k, v in ledger["requests"]["by_route"].items() if "/_sim/" in k)
    by_status["200"] = by_status.get("200", 0) - admin
    polls = by_route.get("GET /v1/generations/{id}", 0)
    gens = len(ledger["generations"])
    return {
        "baseline": "naive (urllib, 16 threads, poll every 5 s x scale, fixed 429 sleep)",
        "rows": args.rows,
        "threads": args.threads,
        "rate": args.rate,
        "burst": args.burst,
        "time_scale": args.time_scale,
        "completed": len(sizes),
        "verified_mp4": good,
        "failed": len(failures),
        "failures": dict(list(failures.items())[:5]),
        "makespan_s": round(makespan, 3),
        "requests": sum(by_route.values()),
        "api_requests": api_requests(by_route),
        "by_route": by_route,
        "by_status": by_status,
        "rate_limited": int(by_status.get("429", 0)),
        "polls": polls,
        "generations": gens,
        "polls_per_generation": round(polls / gens, 3) if gens else None,
        "cpu_s": round(cpu, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "nproc": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=500.0, help="sim rate limit, requests/s")
    parser.add_argument("--burst", type=int, default=20, help="sim token bucket size")
    parser.add_argument("--time-scale", type=float, default=0.02)
    parser.add_argument("--faults", default="")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"naive baseline: {result['completed']}/{result['rows']} rows "
            f"({result['verified_mp4']} MP4s verified) in {result['makespan_s']:.2f} s; "
            f"{result['api_requests']} API requests, {result['rate_limited']} 429s, "
            f"{result['polls']} polls = {result['polls_per_generation']} per generation; "
            f"CPU {result['cpu_s']:.2f} s"
        )
        for route, n in sorted(result["by_route"].items(), key=lambda kv: -kv[1]):
            print(f"  {n:>8}  {route}")
        print("  by status: " + ", ".join(f"{k}: {v}" for k, v in result["by_status"].items()))
    ok = result["verified_mp4"] == result["rows"]
    if not ok:
        print(f"NOT all rows verified: {result['failures']}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
