"""The report page: one self-contained HTML file (CSS, JS and SVG inline).

It opens from disk with no network; thumbnails and MP4s are linked by paths
relative to the output dir, never embedded (10,000 base64 images would make
the page tens of megabytes before its first paint).  Built to stay usable at
10,000 rows: images load lazily, grid cards are ``content-visibility:auto``
(the browser lays out only what is near the screen), one ``<video
preload="none">`` in a dialog plays whichever card is clicked (not a player
per card), the status filter is one attribute on the grid matched by CSS,
and the charts are binned (:mod:`genbatch.report.charts`).

Every text that came from a row, a server or a file is escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Final

from genbatch.report.charts import (
    ENGINE_REPORT_BINS,
    STEP_COLOURS,
    lines_svg,
    occupancy,
    pace_bins,
    request_rates,
    stacked_svg,
)
from genbatch.report.data import STEP_ORDER, RowView, RunData
from genbatch.report.summary import STATUS_ORDER, Totals, failures, time_words, totals

#: Row ids listed inline per failure reason; the rest fold into a <details>.
ENGINE_REPORT_IDS_SHOWN: Final = 30

__all__ = ["Card", "render_page"]


@dataclass(frozen=True, slots=True)
class Card:
    """One grid card: a row and the links the page uses for it (relative URLs)."""

    row: RowView
    thumbnail: str | None
    video: str | None


_CSS = """
:root{--bg:#fafafa;--fg:#1d1d1f;--mut:#6e6e73;--card:#fff;--line:#e3e3e8;
--ok:#2e7d32;--bad:#c62828;--skip:#b26a00;--run:#1565c0}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;
color:var(--fg);background:var(--bg)}
header,section{max-width:1400px;margin:0 auto;padding:12px 20px}
h1{font-size:22px;margin:8px 0 2px}h1 small{color:var(--mut);font-weight:400}
h2{font-size:17px;margin:18px 0 8px}.sub{color:var(--mut);margin:0}
.note{color:var(--skip);margin:4px 0 0}
.totals{display:flex;flex-wrap:wrap;gap:10px;margin:0}
.totals div{background:var(--card);border:1px solid var(--line);border-radius:8px;
padding:8px 14px;min-width:130px}
.totals dt{color:var(--mut);font-size:12px}.totals dd{margin:0;font-size:20px;font-weight:600}
.totals dd small{display:block;font-size:12px;font-weight:400;color:var(--mut)}
.words p{margin:4px 0;max-width:110ch}
figure{margin:0 0 14px;background:var(--card);border:1px solid var(--line);border-radius:8px;
padding:8px}
figcaption{color:var(--mut);font-size:12px;padding:2px 6px}
.chart{width:100%;height:auto;display:block}
.chart text{font-size:11px;fill:var(--mut)}.chart .grid{stroke:#eee}
.chart .ax{stroke:#bbb}
.chart .gate{fill:none;stroke:#888;stroke-width:1.5;stroke-dasharray:5 4}
.chart .sent{fill:none;stroke:#1565c0;stroke-width:2}.chart circle.sent{fill:#1565c0}
.chart circle.gate{fill:#888}
.legend{display:flex;flex-wrap:wrap;gap:12px;font-size:12px;padding:2px 6px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
table{border-collapse:collapse;background:var(--card);width:100%}
td,th{border:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
th{font-weight:600;font-size:12px;color:var(--mut)}td.n{text-align:right;width:5em}
.ids a{margin-right:6px;white-space:nowrap}
.filter button{border:1px solid var(--line);background:var(--card);border-radius:14px;
padding:3px 12px;margin:0 6px 8px 0;cursor:pointer}
.filter button[aria-pressed=true]{background:var(--fg);color:#fff}
#grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;overflow:hidden;
content-visibility:auto;contain-intrinsic-size:auto 250px}
.card:target{outline:3px solid var(--run)}
.thumb{display:flex;align-items:center;justify-content:center;height:150px;background:#222;
color:#bbb;text-decoration:none;font-size:13px}
.thumb img{max-width:100%;max-height:150px;object-fit:contain}
.thumb.ph{background:repeating-linear-gradient(45deg,#ececf0,#ececf0 8px,#e2e2e8 8px,#e2e2e8 16px);
color:var(--mut)}
.meta{display:flex;justify-content:space-between;gap:6px;padding:6px 8px 0}
.id{font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.st{font-size:11px;border-radius:9px;padding:1px 7px;color:#fff;background:var(--mut);
white-space:nowrap}
.s-completed{background:var(--ok)}.s-failed{background:var(--bad)}
.s-skipped,.s-interrupted{background:var(--skip)}.s-running,.s-pending{background:var(--run)}
.cr{padding:0 8px;color:var(--mut);font-size:12px}
.why{margin:2px 8px 8px;font-size:12px;color:var(--bad);overflow-wrap:anywhere}
dialog{border:0;border-radius:8px;padding:8px;background:#111;color:#ddd;max-width:92vw}
dialog video{display:block;max-width:88vw;max-height:80vh}
dialog p{margin:6px 0 0;font-size:12px}
"""

_JS = """
(()=>{const g=document.getElementById('grid'),d=document.getElementById('player');
const v=d.querySelector('video'),c=d.querySelector('p');
g.addEventListener('click',e=>{const a=e.target.closest('a[data-play]');
if(!a||!d.showModal)return;e.preventDefault();v.src=a.getAttribute('href');
c.textContent=a.dataset.play;d.showModal();v.play().catch(()=>{});});
d.addEventListener('close',()=>{v.pause();v.removeAttribute('src');v.load();});
d.addEventListener('click',e=>{if(e.target===d)d.close();});
document.querySelectorAll('.filter button').forEach(b=>b.addEventListener('click',()=>{
g.dataset.f=b.dataset.f;document.querySelectorAll('.filter button').forEach(
x=>x.setAttribute('aria-pressed',String(x===b)));}));})();
"""


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _dur(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {sec:02d} s"


def _totals(t: Totals) -> str:
    rows = ", ".join(f"{n:,} {escape(s)}" for s, n in t.rows.items() if n)
    boxes = [
        ("rows", f"{t.total_rows:,}", rows or "none yet"),
        ("credits", f"{t.credits:,.0f}", "charged, as the journal recorded them"),
        (
            "API requests",
            "n/a" if t.api_requests is None else f"{t.api_requests:,}",
            "" if t.requests is None else f"{t.requests:,} with CDN downloads",
        ),
        ("429s", "n/a" if t.rate_limited is None else f"{t.rate_limited:,}", "rate limited"),
        ("makespan", _dur(t.makespan), "first row started to last row ended"),
    ]
    bound = t.bound
    if bound is not None:
        ratio = f"makespan is {t.makespan / bound:.2f}x it" if bound > 0 else ""
        boxes.append(
            (
                "rate-limit bound",
                _dur(bound),
                f"{t.api_requests:,} requests at {t.rate_limit:g}/s "
                f"({escape(t.rate_limit_source)}); {ratio}",
            )
        )
    else:
        boxes.append(("rate-limit bound", "n/a", escape(t.rate_limit_source)))
    items = "".join(
        f'<div data-k="{escape(k)}"><dt>{escape(k)}</dt><dd>{v}<small>{small}</small></dd></div>'
        for k, v, small in boxes
    )
    return f'<dl class="totals">{items}</dl>'


def _timeline(data: RunData, t: Totals) -> str:
    if data.first is None or data.last is None:
        return "<p>No step has run yet.</p>"
    t0, t1 = data.first, max(data.last, data.first + 1e-3)
    series = occupancy(data.spans, t0, t1)
    ordered: dict[str, list[float]] = {k: series[k] for k in STEP_ORDER if k in series}
    ordered.update({k: v for k, v in series.items() if k not in ordered})
    legend = "".join(
        f'<span><i style="background:{STEP_COLOURS.get(k, "#999")}"></i>{escape(k)}</span>'
        for k in ordered
    )
    bin_s = (t1 - t0) / ENGINE_REPORT_BINS
    parts = [
        '<figure id="steps">',
        f'<div class="legend">{legend}</div>',
        stacked_svg(ordered, t0, t1, "rows in each step over time"),
        f"<figcaption>Rows in each step over time, from {_when(t0)} to {_when(t1)} "
        f"({_dur(t1 - t0)}); each column is the average over {bin_s:.3g} s.</figcaption>",
        "</figure>",
    ]
    sent, gate = request_rates(data.pace, t0, t1, pace_bins(data.pace, t0, t1))
    if any(v is not None for v in sent):
        gates = sorted(g for g in gate if g)
        use = f" The gate's median rate was {gates[len(gates) // 2]:.3g}/s." if gates else ""
        if t.api_requests is not None and t.makespan > 0:
            api = t.api_requests / t.makespan
            use += f" API requests alone averaged {api:.3g}/s over the run"
            limit = t.rate_limit
            use += f", {api / limit:.0%} of the {limit:g}/s limit." if limit else "."
        parts += [
            '<figure id="rate">',
            '<div class="legend"><span><i style="background:#1565c0"></i>requests/s sent '
            '(CDN downloads included)</span><span><i style="background:#888"></i>rate gate '
            "(allowed API requests/s)</span></div>",
            lines_svg(
                [("requests/s", sent, "sent"), ("gate", gate, "gate")],
                t0,
                t1,
                "request rate and rate gate over time",
                "/s",
            ),
            "<figcaption>Requests per second genbatch sent and the rate its gate allowed, "
            "from run.log's pace samples (one a second). The gate paces API requests only; "
            "video downloads from the CDN go around it, so the line can stand above the "
            f"gate.{use}</figcaption>",
            "</figure>",
        ]
    else:
        parts.append(
            "<p>run.log has no pace samples for this run (written once a second by "
            "runs since they were added): no request-rate chart.</p>"
        )
    return "".join(parts)


def _failures(data: RunData, index: dict[int, int]) -> str:
    groups = failures(data)
    if not groups:
        return "<p>No row failed or was skipped.</p>"
    out = ["<table><tr><th>rows</th><th>status</th><th>reason</th><th>row ids</th></tr>"]
    for g in groups:
        links = [
            f'<a href="#r{index[id(r)]}">{escape(r.row_id)}</a>'
            for r in g.rows[:ENGINE_REPORT_IDS_SHOWN]
        ]
        rest = g.rows[ENGINE_REPORT_IDS_SHOWN:]
        more = ""
        if rest:
            hidden = "".join(f'<a href="#r{index[id(r)]}">{escape(r.row_id)}</a>' for r in rest)
            more = f"<details><summary>and {len(rest):,} more</summary>{hidden}</details>"
        code = f" <small>({escape(g.error_code)})</small>" if g.error_code else ""
        out.append(
            f'<tr class="fail"><td class="n">{len(g.rows):,}</td><td>{escape(g.status)}</td>'
            f'<td class="reason">{escape(g.reason)}{code}</td>'
            f'<td class="ids">{"".join(links)}{more}</td></tr>'
        )
    out.append("</table>")
    return "".join(out)


def _card(n: int, c: Card, several: bool) -> str:
    r = c.row
    name = escape(r.row_id)
    if c.video is not None:
        inner = (
            f'<img loading="lazy" decoding="async" src="{escape(c.thumbnail)}" alt="{name}">'
            if c.thumbnail is not None
            else "&#9654; play"
        )
        ph = "" if c.thumbnail is not None else " ph"
        thumb = f'<a class="thumb{ph}" href="{escape(c.video)}" data-play="{name}">{inner}</a>'
    elif c.thumbnail is not None:
        thumb = (
            f'<div class="thumb"><img loading="lazy" decoding="async" '
            f'src="{escape(c.thumbnail)}" alt="{name}"></div>'
        )
    else:
        thumb = '<div class="thumb ph">no video</div>'
    where = f" · {escape(r.source.run_dir.name)}" if several else ""
    why = f'<p class="why">{escape(r.reason)}</p>' if r.reason and r.status != "completed" else ""
    return (
        f'<article class="card" id="r{n}" data-s="{escape(r.status)}" data-row="{name}">'
        f'{thumb}<div class="meta"><span class="id" title="{name}">{name}</span>'
        f'<span class="st s-{escape(r.status)}">{escape(r.status)}</span></div>'
        f'<div class="cr">{r.credits:,.6g} credits{where}</div>{why}</article>'
    )


def render_page(title: str, data: RunData, cards: Sequence[Card]) -> str:
    """The whole page for ``data``; ``cards`` in the order the grid shows them."""
    t = totals(data)
    index = {id(c.row): n for n, c in enumerate(cards)}
    several = len(data.sources) > 1
    runs = ", ".join(escape(s.run_id) for s in data.sources)
    state = "live: the run is still going" if data.live else "finished or stopped"
    words = "".join(
        (f"<h3>{escape(label)}</h3>" if label else "")
        + "".join(f"<p>{escape(s)}</p>" for s in sentences)
        for label, sentences in time_words(data)
    )
    present = [s for s in STATUS_ORDER if t.rows.get(s)] + [
        s for s in t.rows if s not in STATUS_ORDER and t.rows[s]
    ]
    buttons = '<button data-f="all" aria-pressed="true">all</button>' + "".join(
        f'<button data-f="{escape(s)}" aria-pressed="false">{escape(s)} ({t.rows[s]:,})</button>'
        for s in present
    )
    rules = "".join(
        f'#grid[data-f="{escape(s)}"] .card:not([data-s="{escape(s)}"]){{display:none}}'
        for s in present
    )
    grid = "".join(_card(n, c, several) for n, c in enumerate(cards))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>genbatch report: {escape(title)}</title><style>{_CSS}{rules}</style></head>"
        f"<body><header><h1>genbatch report <small>{escape(title)}</small></h1>"
        f'<p class="sub">run {runs} · {state} · generated {_when(data.now)}</p>'
        + "".join(f'<p class="note">{escape(n)}</p>' for n in data.notes)
        + "</header>"
        f'<section id="totals"><h2>Totals</h2>{_totals(t)}</section>'
        f'<section id="time" class="words"><h2>Where the time went</h2>{words}</section>'
        f'<section id="timeline"><h2>Timeline</h2>{_timeline(data, t)}</section>'
        f'<section id="failures"><h2>Failures by reason</h2>{_failures(data, index)}</section>'
        f'<section id="rows"><h2>Every row</h2><nav class="filter">{buttons}</nav>'
        f'<div id="grid" data-f="all">{grid}</div></section>'
        '<dialog id="player"><video controls preload="none" playsinline></video><p></p>'
        f"</dialog><script>{_JS}</script></body></html>\n"
    )
