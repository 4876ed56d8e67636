"""The run's timeline as inline SVG, from a few plain functions.

Hand-written SVG rather than a charting library: the page must open with no
network and no dependency, the two charts it needs (a stacked area, a couple
of lines) are a few dozen lines of markup, and a JS framework would cost the
first paint more than it gives.  Data are binned first (:data:`ENGINE_REPORT_BINS`
columns over the run), so a chart is a handful of paths whatever the number
of rows: 10,000 rows draw as fast as 10.

* :func:`occupancy` — how many rows were in each step at each moment (the
  average over a bin), from the journal's step spans;
* :func:`request_rates` — requests/s achieved and the rate gate's rate, from
  run.log's ``pace`` samples;
* :func:`stacked_svg` and :func:`lines_svg` draw them on a shared time axis.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Final

from genbatch.report.data import Pace, Span

#: Columns the run's time is binned into.
ENGINE_REPORT_BINS: Final = 240
#: Drawing size in SVG units (the page scales it to its width).
WIDTH: Final = 960
HEIGHT: Final = 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 10, 28
#: Colour per step kind (and for anything else).
STEP_COLOURS: Final[dict[str, str]] = {
    "clone": "#8e7cc3",
    "fill": "#6fa8dc",
    "upload": "#76a5af",
    "generate": "#f6b26b",
    "render": "#e06666",
    "download": "#93c47d",
    "publish": "#c27ba0",
}
OTHER_COLOUR: Final = "#999999"

__all__ = [
    "ENGINE_REPORT_BINS",
    "STEP_COLOURS",
    "lines_svg",
    "occupancy",
    "pace_bins",
    "request_rates",
    "stacked_svg",
]


def occupancy(
    spans: Iterable[Span], t0: float, t1: float, bins: int = ENGINE_REPORT_BINS
) -> dict[str, list[float]]:
    """Per step kind, the average number of rows in it during each bin of [t0, t1]."""
    width = (t1 - t0) / bins if t1 > t0 else 1.0
    out: dict[str, list[float]] = {}
    for s in spans:
        series = out.get(s.kind)
        if series is None:
            series = out[s.kind] = [0.0] * bins
        a, b = max(s.start, t0), min(s.end, t1)
        if b <= a:
            continue
        first = min(bins - 1, int((a - t0) / width))
        last = min(bins - 1, int((b - t0) / width))
        for i in range(first, last + 1):
            lo = t0 + i * width
            series[i] += (min(b, lo + width) - max(a, lo)) / width
    return out


def request_rates(
    segments: Sequence[Sequence[Pace]], t0: float, t1: float, bins: int = ENGINE_REPORT_BINS
) -> tuple[list[float | None], list[float | None]]:
    """(requests/s achieved, the gate's rate) per bin; None where no sample fell.

    Each segment is one process's samples (its request counter starts at 0);
    the achieved rate between two samples is the counter's rise over their
    gap.  Concurrent processes (shards) add up.
    """
    width = (t1 - t0) / bins if t1 > t0 else 1.0
    achieved: list[float | None] = [None] * bins
    gate: list[float | None] = [None] * bins
    for seg in segments:
        sums = [0.0] * bins
        gates = [0.0] * bins
        counts = [0] * bins
        for prev, cur in itertools.pairwise(seg):
            if not t0 <= cur.t <= t1 or cur.t <= prev.t or cur.requests < prev.requests:
                continue
            i = min(bins - 1, int((cur.t - t0) / width))
            sums[i] += (cur.requests - prev.requests) / (cur.t - prev.t)
            gates[i] += cur.rate
            counts[i] += 1
        for i, n in enumerate(counts):
            if n:
                achieved[i] = (achieved[i] or 0.0) + sums[i] / n
                gate[i] = (gate[i] or 0.0) + gates[i] / n
    return achieved, gate


def pace_bins(segments: Sequence[Sequence[Pace]], t0: float, t1: float) -> int:
    """Bins for the rate chart: none narrower than the usual gap between two samples,
    so consecutive samples join into a line instead of scattered dots."""
    gaps = sorted(b.t - a.t for seg in segments for a, b in itertools.pairwise(seg) if b.t > a.t)
    if not gaps:
        return ENGINE_REPORT_BINS
    return max(1, min(ENGINE_REPORT_BINS, int((t1 - t0) / gaps[len(gaps) // 2])))


def _nice(value: float) -> float:
    """The round number (1, 1.5, 2, 3, 4, 5, 6 or 8 x 10^k) at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0):
        if value <= step * power:
            return step * power
    return 10.0 * power


def _clock(seconds: float) -> str:
    """Elapsed time for an axis label: ``45 s``, ``12:30``, ``2:05:00``."""
    if seconds < 60:
        return f"{seconds:.3g} s"
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _frame(t0: float, t1: float, ymax: float, unit: str) -> list[str]:
    """Axes, grid and labels of one chart (SVG elements)."""
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    span = max(t1 - t0, 1e-9)
    step = _nice(span / 6)
    parts = [
        f'<line class="ax" x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{WIDTH - _RIGHT}" '
        f'y2="{_TOP + plot_h}"/>'
    ]
    k = 0
    while k * step <= span + 1e-9:
        x = _LEFT + plot_w * (k * step) / span
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_TOP + plot_h}"/>'
            f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{_clock(k * step)}</text>'
        )
        k += 1
    for frac in (0.5, 1.0):
        y = _TOP + plot_h * (1 - frac)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{WIDTH - _RIGHT}" y2="{y:.1f}"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{ymax * frac:g}{escape(unit)}</text>"
        )
    parts.append(f'<text x="{_LEFT - 6}" y="{_TOP + plot_h + 4}" text-anchor="end">0</text>')
    return parts


def _svg(t0: float, t1: float, label: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" data-t0="{t0:.3f}" data-t1="{t1:.3f}">'
        + "".join(body)
        + "</svg>"
    )


def stacked_svg(series: Mapping[str, Sequence[float]], t0: float, t1: float, label: str) -> str:
    """A stacked area per series (in the mapping's order) over [t0, t1]."""
    bins = max((len(v) for v in series.values()), default=0)
    totals = [sum(v[i] for v in series.values()) for i in range(bins)]
    ymax = _nice(max(totals, default=0.0))
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    parts = _frame(t0, t1, ymax, "")
    base = [0.0] * bins

    def y(v: float) -> float:
        return _TOP + plot_h * (1 - v / ymax)

    for name, values in series.items():
        top = [b + v for b, v in zip(base, values, strict=True)]
        xs = [_LEFT + plot_w * (i + 0.5) / bins for i in range(bins)]
        upper = " ".join(f"{x:.1f},{y(v):.1f}" for x, v in zip(xs, top, strict=True))
        lower = " ".join(
            f"{x:.1f},{y(v):.1f}" for x, v in zip(reversed(xs), reversed(base), strict=True)
        )
        colour = STEP_COLOURS.get(name, OTHER_COLOUR)
        parts.append(
            f'<polygon points="{upper} {lower}" fill="{colour}" data-series="{escape(name)}">'
            f"<title>{escape(name)}</title></polygon>"
        )
        base = top
    return _svg(t0, t1, label, parts)


def lines_svg(
    lines: Sequence[tuple[str, Sequence[float | None], str]],
    t0: float,
    t1: float,
    label: str,
    unit: str,
) -> str:
    """One polyline per ``(name, values per bin, css class)``; a None breaks the line."""
    ymax = _nice(max((v for _, vs, _ in lines for v in vs if v is not None), default=0.0))
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    parts = _frame(t0, t1, ymax, unit)
    for name, values, css in lines:
        bins = len(values)
        runs: list[list[str]] = [[]]
        for i, v in enumerate(values):
            if v is None:
                runs.append([])
                continue
            x = _LEFT + plot_w * (i + 0.5) / bins
            runs[-1].append(f"{x:.1f},{_TOP + plot_h * (1 - v / ymax):.1f}")
        for points in runs:
            if len(points) == 1:  # a lone sample: a dot, not an invisible line
                cx, cy = points[0].split(",")
                parts.append(
                    f'<circle class="{css}" cx="{cx}" cy="{cy}" r="2.5" '
                    f'data-series="{escape(name)}"/>'
                )
            elif points:
                parts.append(
                    f'<polyline class="{css}" points="{" ".join(points)}" '
                    f'data-series="{escape(name)}"/>'
                )
    return _svg(t0, t1, label, parts)
