"""report.html for a 10,000-row run: how long ``write_report`` takes, how soon the page paints.

1. A 10,000-row run through the real engine and simulator (``genbatch bench
   --rows N --time-scale S --rate R --out DIR``, subprocess), unless ``DIR``
   already holds a journal (``--reuse``: measure the report of an existing run).
2. ``write_report(DIR)`` timed twice in this process: cold (first frames
   extracted into ``report_files/`` for rows without a stored thumbnail) and
   warm (those frames reused).  Target: < 10 s.
3. The page opened in headless Chromium (Debian's ``/usr/bin/chromium``)
   driven over the DevTools protocol with aiohttp's websocket client:
   navigation to the ``file://`` URL, then ``performance.getEntriesByType
   ('paint')`` (first paint, first contentful paint) and the navigation
   timing (DOMContentLoaded, load), each the median of ``--loads`` loads in
   a fresh tab.

    .venv/bin/python benchmarks/report_10k.py [--rows 10000] [--time-scale 0.02]
        [--rate 500] [--out outputs/bench/report-10k] [--reuse] [--loads 3]

Prints one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from genbatch.report import write_report
from genbatch.report.thumbs import ENGINE_REPORT_FILES_DIR

CHROMIUM = "/usr/bin/chromium"
#: No GPU, no sandbox (root), and no background traffic (there is no network here).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
)
#: Wait this long for Chromium to start and for a page to load.
BROWSER_TIMEOUT = 120.0

_PAINT = """JSON.stringify({
  paint: Object.fromEntries(performance.getEntriesByType('paint').map(e => [e.name, e.startTime])),
  nav: (([n]) => n ? {dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd} : {})(
    performance.getEntriesByType('navigation')),
  cards: document.querySelectorAll('#grid .card').length,
  images: document.images.length,
})"""


def bench_run(out: Path, rows: int, time_scale: float, rate: float) -> float:
    """``genbatch bench`` into ``out``; its wall time in seconds."""
    cmd = [
        sys.executable,
        "-m",
        "genbatch",
        "bench",
        "--rows",
        str(rows),
        "--time-scale",
        str(time_scale),
        "--rate",
        str(rate),
        "--out",
        str(out),
        "--json",
    ]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"genbatch bench failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall


class CDP:
    """A minimal DevTools-protocol session on one page target."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        mid = next(self._ids)
        await self.ws.send_json({"id": mid, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json(timeout=BROWSER_TIMEOUT)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result

    async def event(self, name: str) -> dict[str, Any]:
        while True:
            msg = await self.ws.receive_json(timeout=BROWSER_TIMEOUT)
            if msg.get("method") == name:
                params: dict[str, Any] = msg.get("params", {})
                return params


def _port(profile: Path, proc: subprocess.Popen[bytes]) -> int:
    """The DevTools port Chromium chose (it writes it to DevToolsActivePort)."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + BROWSER_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        with contextlib.suppress(OSError, ValueError):
            return int(marker.read_text().split()[0])
        time.sleep(0.1)
    raise RuntimeError("chromium did not open its DevTools port")


async def paint_timings(port: int, url: str, loads: int) -> list[dict[str, Any]]:
    """Paint and navigation timings of ``loads`` loads of ``url``, each in a fresh tab."""
    base = f"http://127.0.0.1:{port}"
    out = []
    async with aiohttp.ClientSession() as http:
        for _ in range(loads):
            async with http.put(f"{base}/json/new?about:blank") as resp:
                target = await resp.json()
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                cdp = CDP(ws)
                await cdp.call("Page.enable")
                await cdp.call("Page.bringToFront")  # a background tab never paints
                started = time.perf_counter()
                await cdp.call("Page.navigate", url=url)
                await cdp.event("Page.loadEventFired")
                wall = time.perf_counter() - started
                found = await cdp.call("Runtime.evaluate", expression=_PAINT, returnByValue=True)
                figures = json.loads(found["result"]["value"])
                figures["wall_to_load_ms"] = round(wall * 1000, 1)
                out.append(figures)
            async with http.get(f"{base}/json/close/{target['id']}") as resp:
                await resp.read()
    return out


def browse(page: Path, loads: int) -> list[dict[str, Any]]:
    """Start headless Chromium with a fresh profile, time ``loads`` loads of ``page``, stop it."""
    with tempfile.TemporaryDirectory(prefix="report-10k-chromium-") as tmp:
        profile = Path(tmp)
        proc = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "HOME": tmp},
        )
        try:
            return asyncio.run(paint_timings(_port(profile, proc), page.resolve().as_uri(), loads))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--time-scale", type=float, default=0.02)
    ap.add_argument(
        "--rate",
        type=float,
        default=500.0,
        help="the simulator's rate limit (at its default of 50/s, 10,000 rows take 30 min)",
    )
    ap.add_argument("--out", type=Path, default=Path("outputs/bench/report-10k"))
    ap.add_argument("--reuse", action="store_true", help="report on the run already in --out")
    ap.add_argument("--loads", type=int, default=3, help="page loads to take the median of")
    args = ap.parse_args()

    out: Path = args.out
    bench_wall = None
    if not (args.reuse and (out / "journal.sqlite").is_file()):
        bench_wall = round(bench_run(out, args.rows, args.time_scale, args.rate), 1)

    frames = out / ENGINE_REPORT_FILES_DIR
    extracted_before = len(list(frames.glob("*.jpg"))) if frames.is_dir() else 0
    started = time.perf_counter()
    page = write_report(out)
    cold = time.perf_counter() - started
    extracted = (len(list(frames.glob("*.jpg"))) if frames.is_dir() else 0) - extracted_before
    started = time.perf_counter()
    write_report(out)
    warm = time.perf_counter() - started

    loads = browse(page, args.loads)
    paint = [entry["paint"] for entry in loads]
    figures = {
        "rows": args.rows,
        "time_scale": args.time_scale,
        "sim_rate": args.rate,
        "out": str(out),
        "bench_wall_s": bench_wall,
        "write_report_cold_s": round(cold, 2),
        "write_report_warm_s": round(warm, 2),
        "frames_extracted_cold": extracted,
        "page_bytes": page.stat().st_size,
        "first_paint_ms": _median([p["first-paint"] for p in paint if "first-paint" in p]),
        "first_contentful_paint_ms": _median(
            [p["first-contentful-paint"] for p in paint if "first-contentful-paint" in p]
        ),
        "dom_content_loaded_ms": _median([e["nav"]["dcl"] for e in loads if e["nav"]]),
        "load_ms": _median([e["nav"]["load"] for e in loads if e["nav"]]),
        "cards": loads[0]["cards"] if loads else None,
        "target_write_report_s": 10.0,
        "python": platform.python_version(),
        "nproc": os.cpu_count(),
        "load_avg": os.getloadavg()[0],
        "loads": loads,
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
