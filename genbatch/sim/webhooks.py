"""The simulator's only outbound HTTP: generation webhooks and the automation tests.

An agent's ``automation_config.webhook_url`` gets a POST every time one of that
agent's generations changes status (pending, processing, completed, failed,
stopped); ``test_webhook``/``test_callback`` POST a test payload and report the
real outcome.  Status changes driven by time alone (pending → processing →
done) fire from loop timers, so a receiver hears of them without anyone polling.

The simulator must never send traffic off the machine: a webhook or callback
URL must name a loopback host (127.0.0.0/8, ``::1`` or ``localhost``), checked
when it is configured and again before every delivery.  Deliveries never hold
up an API answer: each URL has one in-order queue drained by one task, each
POST has a short timeout, and a failure is logged and dropped (no retries).
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import time
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import aiohttp
import orjson

from genbatch.sim.entities import Generation, Json, invalid

if TYPE_CHECKING:
    from genbatch.sim.world import World

log = logging.getLogger("genbatch.sim")

__all__ = [
    "SIM_WEBHOOK_EVENT",
    "SIM_WEBHOOK_TIMEOUT",
    "Webhooks",
    "check_hook_url",
    "is_loopback_url",
    "post_json",
]

# ASSUMPTION: the payload of a status update (docs/sim-assumptions.md, "webhooks").
#: ``event`` of every generation status update; the body is {event, generation}.
SIM_WEBHOOK_EVENT: Final = "generation.status_changed"
#: ``event`` of the payload test_webhook / test_callback send.
SIM_WEBHOOK_TEST_EVENT: Final = "test"
#: Seconds one delivery may take before it counts as failed.
SIM_WEBHOOK_TIMEOUT: Final = 5.0
#: Undelivered updates kept per URL; more are dropped (and logged).
SIM_WEBHOOK_QUEUE: Final = 1000
_LOOPBACK_NAMES: Final = ("localhost",)


def is_loopback_url(url: str) -> bool:
    """True for an http(s) URL whose host is a loopback address or ``localhost``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_hook_url(key: str, value: object) -> None:
    """422 unless ``value`` is None (clears it) or an http(s) URL on this machine."""
    if value is None:
        return
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise invalid(f"{key} must be an http(s) URL or null")
    if not is_loopback_url(value):
        raise invalid(
            f"{key} must point at this machine (127.0.0.1, ::1 or localhost): "
            "the simulator never sends traffic elsewhere"
        )


async def post_json(url: str, payload: Json, *, limit: float = SIM_WEBHOOK_TIMEOUT) -> str | None:
    """POST ``payload``; None when the receiver answered 2xx, else why not, in plain words.

    ``limit`` seconds bound the whole delivery (connect, send, answer)."""
    if not is_loopback_url(url):
        return "refused: the simulator only calls loopback URLs"
    body = orjson.dumps(payload)
    headers = {"Content-Type": "application/json", "User-Agent": "genbatch-sim-webhooks"}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit)) as session,
            session.post(url, data=body, headers=headers, allow_redirects=False) as resp,
        ):
            if 200 <= resp.status < 300:
                return None
            return f"the endpoint answered HTTP {resp.status}"
    except TimeoutError:
        return f"timed out after {limit:g} s"
    except aiohttp.ClientConnectorError:
        return "connection refused"
    except (aiohttp.ClientError, OSError):
        return "the connection failed before an answer arrived"


class Webhooks:
    """Generation status updates to each agent's webhook_url, in order, off the request path."""

    def __init__(self, world: World) -> None:
        self._world = world
        self._queues: dict[str, collections.deque[Json]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._timers: dict[tuple[int, int], asyncio.TimerHandle] = {}
        self._closed = False
        self._busy = False
        self._told: dict[int, str] = {}  # generation id -> last status sent
        self._deferred: collections.deque[tuple[Generation, str, float]] = collections.deque()
        #: Outcome counters (white-box tests read them).
        self.delivered = 0
        self.failed = 0
        self.dropped = 0

    def url_for(self, gen: Generation) -> str | None:
        """The webhook URL of the agent whose engine ``gen`` belongs to, if any."""
        w = self._world
        eng = w.sheets.engines.get(gen.engine_id)
        agent = w.agent_store.agents.get(eng.agent_id) if eng is not None else None
        url = agent.automation.get("webhook_url") if agent is not None else None
        return url if isinstance(url, str) and url else None

    # ------------------------------------------------------------------ the Generations hook
    def generation_status(self, gen: Generation, status: str, now: float) -> None:
        """``Generations.on_status``: queue an update and, for a fresh start, arm the timers
        that notice the time-driven changes (processing, then done)."""
        if self._busy:  # told while building a view (a read settled it): keep the order
            self._deferred.append((gen, status, now))
            return
        self._busy = True
        try:
            self._tell(gen, status, now)
            while self._deferred:
                self._tell(*self._deferred.popleft())
        finally:
            self._busy = False

    def _tell(self, gen: Generation, status: str, now: float) -> None:
        url = self.url_for(gen)
        if url is None or self._closed or self._told.get(gen.id) == status:
            return  # not watched, or not a change
        self._told[gen.id] = status
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a store used outside the server (white-box code): no delivery
            return
        # The wire object GET /v1/generations/:id answers (imported late: routes import us).
        from genbatch.sim.routes_common import generation_view

        view = generation_view(self._world, gen, now)
        view["status"] = status  # the change being told, even if a read settled it since
        self._send(url, {"event": SIM_WEBHOOK_EVENT, "generation": view})
        if status == "pending":
            self._arm(gen)

    def rearm(self) -> None:
        """Arm the timers of every unfinished, watched generation: after a world was
        reloaded (genbatch/sim/state.py), its receivers still hear those jobs end."""
        for gen in self._world.gens.generations.values():
            if gen.final is None and self.url_for(gen) is not None:
                self._arm(gen)

    def _arm(self, gen: Generation) -> None:
        loop = asyncio.get_running_loop()
        for i, at in enumerate((gen.pending_until, gen.due_at)):
            old = self._timers.pop((gen.id, i), None)
            if old is not None:
                old.cancel()
            delay = max(0.0, at - time.time()) + 0.001
            self._timers[(gen.id, i)] = loop.call_later(delay, self._tick, gen.id, i)

    def _tick(self, generation_id: int, which: int) -> None:
        self._timers.pop((generation_id, which), None)
        if self._closed:
            return
        try:
            self._world.gens.observe(generation_id, time.time())
        except Exception:  # a timer must never take the loop down
            log.exception("sim: webhook timer for generation %s failed", generation_id)

    # ------------------------------------------------------------------ delivery
    def _send(self, url: str, payload: Json) -> None:
        queue = self._queues.setdefault(url, collections.deque())
        if len(queue) >= SIM_WEBHOOK_QUEUE:
            self.dropped += 1
            log.warning("sim: webhook queue for %s is full; update dropped", url)
            return
        queue.append(payload)
        if url not in self._workers:
            self._workers[url] = asyncio.get_running_loop().create_task(self._drain(url))

    async def _drain(self, url: str) -> None:
        queue = self._queues[url]
        try:
            while queue and not self._closed:
                error = await post_json(url, queue.popleft())
                if error is None:
                    self.delivered += 1
                else:
                    self.failed += 1
                    log.warning("sim: webhook to %s failed: %s", url, error)
        finally:
            self._workers.pop(url, None)

    async def drain(self) -> None:
        """Wait until every queued update has been attempted (tests, shutdown)."""
        while self._workers:
            await asyncio.gather(*list(self._workers.values()), return_exceptions=True)

    def close(self) -> None:
        """Stop: cancel timers and pending deliveries (the world was reset)."""
        self._closed = True
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in self._workers.values():
            task.cancel()
        self._queues.clear()
