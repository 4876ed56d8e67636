"""What a person watching a run sees, and what ``run.log`` keeps.

Two outputs, both fed from one :class:`Snapshot` the runner hands over:

* a live view — rich's ``Live`` panel on a terminal (rows by state,
  requests/s, 429s, credits, ETA), or one plain line every few seconds when
  stderr is not a TTY (CI logs, ``| tee``), so logs stay readable;
* ``run.log`` — JSON lines, one event each (run start, row end, summary),
  machine-readable for later digging.

Nothing here ever sees the API key, but text from servers and tables does
pass through (reasons, URLs): every string goes through ``redact`` before it
is written, so a presigned signature cannot land in the log (docs/design.md §7 I5).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table as RichTable

from genbatch.client.redact import redact
from genbatch.engine.naming import open_nofollow, safe_join

ENGINE_RUN_LOG: Final = "run.log"
#: Live progress refresh (TTY) and plain progress line interval (not a TTY).
ENGINE_PROGRESS_REFRESH: Final = 0.5
ENGINE_PROGRESS_PLAIN_INTERVAL: Final = 5.0

__all__ = ["Progress", "RunLog", "Snapshot", "format_eta"]

_STATES = ("pending", "running", "completed", "failed", "skipped")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The run at one instant; cheap to build (counters only)."""

    total: int
    rows: Mapping[str, int]
    requests: int
    rate_limited: int
    credits: float
    started: float
    now: float
    steps: Mapping[str, int] = field(default_factory=dict)
    #: The API gate's rate and where it comes from ("58/s discovered").
    rate: str = ""

    @property
    def done(self) -> int:
        return sum(self.rows.get(s, 0) for s in ("completed", "failed", "skipped"))


def format_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "--:--"
    seconds = int(seconds + 0.5)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


class RunLog:
    """``run.log`` in the output dir: append-only JSON lines, redacted."""

    def __init__(self, out_dir: Path) -> None:
        path = safe_join(out_dir, ENGINE_RUN_LOG, companions=())
        fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self.path = path
        self._fh: IO[str] | None = os.fdopen(fd, "a", encoding="utf-8", buffering=1)

    def event(self, kind: str, **fields: Any) -> None:
        """Write one event line (no-op once closed)."""
        if self._fh is None:
            return
        record = {"t": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": kind}
        record.update(_scrub(fields))
        self._fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")

    def close(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()


class Progress:
    """Periodic progress from ``snapshot()``: rich on a TTY, plain lines otherwise.

    ``enabled=False`` (``--json``, tests) keeps it silent.  The rate and
    ETA are computed from successive snapshots, never from a timer per row.
    """

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        *,
        stream: TextIO | None = None,
        tty: bool | None = None,
        enabled: bool = True,
        title: str = "genbatch run",
    ) -> None:
        self._snapshot = snapshot
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty() if tty is None else tty
        self._enabled = enabled
        self._title = title
        self._task: asyncio.Task[None] | None = None
        self._live: Live | None = None
        self._last: tuple[float, int] | None = None
        self._req_rate = 0.0

    # -- lifecycle -----------------------------------------------------------
    async def __aenter__(self) -> Progress:
        if self._enabled:
            if self._tty:
                console = Console(file=self._stream)
                self._live = Live(
                    self._render(self._snapshot()),
                    console=console,
                    refresh_per_second=max(1, int(1 / ENGINE_PROGRESS_REFRESH)),
                    transient=False,
                )
                self._live.start()
            self._task = asyncio.create_task(self._loop(), name="genbatch-progress")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._enabled:
            self.refresh(final=True)
        if self._live is not None:
            self._live.stop()
            self._live = None

    async def _loop(self) -> None:
        interval = ENGINE_PROGRESS_REFRESH if self._tty else ENGINE_PROGRESS_PLAIN_INTERVAL
        while True:
            await asyncio.sleep(interval)
            self.refresh()

    # -- output ----------------------------------------------------------------
    def refresh(self, *, final: bool = False) -> None:
        snap = self._snapshot()
        if self._last is not None and snap.now > self._last[0]:
            self._req_rate = (snap.requests - self._last[1]) / (snap.now - self._last[0])
        self._last = (snap.now, snap.requests)
        if self._live is not None:
            self._live.update(self._render(snap))
        elif not final:
            print(self.line(snap), file=self._stream, flush=True)

    def eta(self, snap: Snapshot) -> float | None:
        """Seconds left at the pace of rows finished so far (None before the first)."""
        elapsed = snap.now - snap.started
        if snap.done <= 0 or elapsed <= 0:
            return None
        return (snap.total - snap.done) * elapsed / snap.done

    def line(self, snap: Snapshot) -> str:
        rows = " ".join(f"{s}={snap.rows.get(s, 0)}" for s in _STATES)
        return (
            f"[{format_eta(snap.now - snap.started)}] {snap.done}/{snap.total} rows  {rows}  "
            f"req/s={self._req_rate:.1f}  429s={snap.rate_limited}  "
            f"credits={snap.credits:g}  eta={format_eta(self.eta(snap))}"
            + (f"  rate: {snap.rate}" if snap.rate else "")
        )

    def _render(self, snap: Snapshot) -> RichTable:
        table = RichTable(title=self._title, show_header=True, expand=False)
        # Short headers: the whole row fits an 80-column terminal.
        for name in (
            "todo",
            "run",
            "done",
            "fail",
            "skip",
            "req/s",
            "429",
            "credits",
            "time",
            "ETA",
        ):
            table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
        table.add_row(
            *(str(snap.rows.get(s, 0)) for s in _STATES),
            f"{self._req_rate:.1f}",
            str(snap.rate_limited),
            f"{snap.credits:g}",
            format_eta(snap.now - snap.started),
            format_eta(self.eta(snap)),
        )
        notes = [f"rate: {snap.rate}"] if snap.rate else []
        if snap.steps:
            busy = ", ".join(f"{k}: {v}" for k, v in sorted(snap.steps.items()) if v)
            if busy:
                notes.append(f"in flight — {busy}")
        table.caption = "; ".join(notes) or None
        return table


def now() -> float:
    """Wall-clock seconds for snapshots (one place to swap in tests)."""
    return time.monotonic()
