"""Helpers for the report tests: real runs against the simulator, and reading the page back.

Runs go through the real engine (``execute``) against an in-process
simulator; the page is read with the stdlib's ``html.parser`` into what a
person would check (cards, failure groups, the charts' time span, totals);
a screenshot is taken by headless Chromium and decoded with PyAV.
"""

from __future__ import annotations

import csv
import os
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from genbatch._constants import SIM_DEMO_AGENT_ID
from genbatch.engine.journal import Journal
from genbatch.engine.runner import RunOptions, RunSummary, execute
from genbatch.sim.serve import SimServer

KEY = "k1"  # accepted by every test simulator (tests/conftest.py)
DEMO = Path(__file__).resolve().parents[2] / "inputs" / "demo.csv"
#: Chromium's flags on this machine: no GPU, no sandbox (root), and no background
#: traffic to Google's hosts (there is no network but the package registries).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def vo_rows(n: int, prefix: str) -> list[list[str]]:
    return [[f"{prefix}{i:02d}", f"Hook number {i}", f"Script for video {i}."] for i in range(n)]


async def run_table(sim: SimServer, table: Path, out: Path, **kw: Any) -> RunSummary:
    """``genbatch run`` in-process against ``sim`` (progress off)."""
    opts: dict[str, Any] = {
        "table": table,
        "out_dir": out,
        "api_key": KEY,
        "api_url": sim.api_url,
        "agent_url": sim.agent_url,
        "agent": str(SIM_DEMO_AGENT_ID),
        "rate": 1000.0,
        "progress": False,
    }
    opts.update(kw)
    return await execute(RunOptions(**opts))


def step_bounds(run_dir: Path) -> tuple[float, float]:
    """The first step start and last step end the journal records."""
    starts: list[float] = []
    ends: list[float] = []
    with Journal.open(run_dir, read_only=True) as journal:
        for row in journal.rows():
            for s in journal.steps(row.row_id).values():
                start = s.started_at or s.intent_at or s.finished_at
                if start is not None:
                    starts.append(start)
                if s.finished_at is not None:
                    ends.append(s.finished_at)
    return min(starts), max(ends)


def tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@dataclass
class Card:
    row_id: str
    status: str
    anchor: str
    img: str | None = None
    video: str | None = None
    why: str = ""


@dataclass
class Failure:
    count: int
    status: str
    reason: str
    row_ids: list[str] = field(default_factory=list)


@dataclass
class Chart:
    figure: str
    t0: float
    t1: float
    series: list[str] = field(default_factory=list)


class Page(HTMLParser):
    """What the report shows, read back from its HTML."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.cards: list[Card] = []
        self.failures: list[Failure] = []
        self.charts: list[Chart] = []
        self.totals: dict[str, str] = {}
        self.scripts = 0
        self.videos: list[dict[str, str | None]] = []
        self._card: Card | None = None
        self._fail: Failure | None = None
        self._td = ""  # class of the failure cell being read
        self._figure = ""
        self._total = ""
        self._text: list[str] | None = None  # text being collected, if any
        self._stop = False  # the rest of this cell is not its text (the error code)
        self.feed(html)
        self.close()

    def _collect(self) -> None:
        self._text, self._stop = [], False

    def _take(self) -> str:
        text, self._text = "".join(self._text or []), None
        return text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "script":
            self.scripts += 1
        elif tag == "video":
            self.videos.append(a)
        elif tag == "figure":
            self._figure = a.get("id") or ""
        elif tag == "svg" and "chart" in cls:
            t0, t1 = float(a["data-t0"] or 0), float(a["data-t1"] or 0)
            self.charts.append(Chart(self._figure, t0, t1))
        elif tag in ("polygon", "polyline", "circle") and self.charts and a.get("data-series"):
            self.charts[-1].series.append(a["data-series"] or "")
        elif tag == "article" and "card" in cls:
            self._card = Card(a["data-row"] or "", a["data-s"] or "", a["id"] or "")
        elif self._card is not None and tag == "img":
            self._card.img = a.get("src")
        elif self._card is not None and tag == "a" and "thumb" in cls:
            self._card.video = a.get("href")
        elif self._card is not None and tag == "p" and "why" in cls:
            self._collect()
        elif tag == "tr" and "fail" in cls:
            self._fail = Failure(0, "", "")
        elif self._fail is not None and tag == "td":
            self._td = a.get("class") or "status"
            self._collect()
        elif self._fail is not None and tag == "small":
            self._stop = True
        elif self._fail is not None and tag == "a" and self._td == "ids":
            self._collect()
        elif tag == "div" and a.get("data-k"):
            self._total = a["data-k"] or ""
        elif self._total and tag == "dd":
            self._collect()
        elif self._total and tag == "small":
            self._stop = True

    def handle_data(self, data: str) -> None:
        if self._text is not None and not self._stop:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self._card is not None and self._text is not None:
            self._card.why = self._take()
        elif tag == "article" and self._card is not None:
            self.cards.append(self._card)
            self._card = None
        elif tag == "a" and self._fail is not None and self._td == "ids":
            self._fail.row_ids.append(self._take())
        elif tag == "td" and self._fail is not None:
            text = self._take().strip()
            if self._td == "n":
                self._fail.count = int(text.replace(",", ""))
            elif self._td == "status":
                self._fail.status = text
            elif self._td == "reason":
                self._fail.reason = text
            self._td = ""
        elif tag == "tr" and self._fail is not None:
            self.failures.append(self._fail)
            self._fail = None
        elif tag == "dd" and self._total:
            self.totals[self._total] = self._take().strip()
            self._total = ""


def local(out: Path, href: str) -> Path:
    """The file a relative link in the page (in ``out``) points at."""
    assert "://" not in href and not href.startswith("/"), href
    return (out / unquote(href)).resolve()


def screenshot(chromium: str, page: Path, png: Path, tmp: Path, size: str = "1280,1500") -> None:
    """Headless Chromium's screenshot of ``page`` (a file), with a fresh profile."""
    profile = tmp / "chromium-profile"
    done = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            f"--window-size={size}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "HOME": str(tmp)},
    )
    assert done.returncode == 0 and png.is_file(), done.stderr[-2000:]


def png_pixels(png: Path) -> tuple[int, int, bytes]:
    """(width, height, RGB bytes) of a PNG, decoded with PyAV."""
    import av

    with av.open(str(png)) as container:
        frame = next(container.decode(video=0)).reformat(format="rgb24")
    plane = frame.planes[0]
    row = frame.width * 3
    raw = bytes(plane)
    if plane.line_size != row:  # rows are padded: drop the padding
        raw = b"".join(
            raw[i * plane.line_size : i * plane.line_size + row] for i in range(frame.height)
        )
    return frame.width, frame.height, raw
