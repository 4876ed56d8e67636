"""The simulator's aiohttp application: one middleware in front of every route.

One middleware (not a chain) keeps the hot path short: settle due jobs,
authenticate, take a rate-limit token, roll the request faults, replay an
idempotent POST, run the handler, count the request in the ledger.  The
3,000 req/s target for ``GET /v1/generations/:id`` depends on it.

Two hosts, one process: :class:`~genbatch.sim.serve.SimServer` binds the API
host and the agent host to two ports of this one app and records which port is
the agent host's in :class:`HostPorts`.  The middleware decides the host by the
local port a request arrived on, so a call sent to the wrong host fails here as
it would in production (404 naming the right host), before any authentication.

Order matters: 401 before the bucket (an unknown key spends nothing), the
bucket before faults (a 429 storm is "on top of" it), faults before the
handler (500/503/reset happen before any side effect), ``reset_after`` after
it (the side effect is committed and the answer never arrives).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import re
import socket
import struct
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from aiohttp import web

from genbatch.sim import (
    routes_admin,
    routes_assets,
    routes_engines,
    routes_generations,
    routes_ideas,
    routes_jobs,
    routes_setup,
)
from genbatch.sim.config import SimConfig
from genbatch.sim.dialect import prefix_refusal, served
from genbatch.sim.entities import ApiError, key_hash
from genbatch.sim.limits import Verdict
from genbatch.sim.routes_assets import SIM_DIRECT_UPLOAD_MAX_BYTES
from genbatch.sim.routes_common import (
    ADMIN_KEY,
    PRESIGNER,
    REQ_API_KEY,
    REQ_DROPPED,
    REQ_USER,
    STORE,
    WORLD,
    error_response,
    jresp,
)
from genbatch.sim.storage import BlobStore, Presigner
from genbatch.sim.world import World

log = logging.getLogger("genbatch.sim")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# ASSUMPTION: Idempotency-Key per API key, replays marked (docs/sim-assumptions.md).
#: Header a replayed idempotent answer carries (Stripe's name).
REPLAYED_HEADER = "Idempotent-Replayed"
#: What a request is told with no rate limit (no bucket): allowed, no headers sent.
_UNLIMITED: Final = Verdict(True, 0, 0, 0, 0)


#: Paths the agent host (agent.gen.pro) serves: the teaching document's Step 2
#: agent endpoints and the vendor's newer ones (docs/dialect.md §1, "agent host").
#: Everything else under /v1 (user_jobs for train_social included), the CDN, the
#: presigned storage and the /_sim admin belong to the API host.
_AGENT_PATH: Final = re.compile(
    r"/v1/(?:agent|research|ideas)(?:/.*)?|/v1/agents/[^/]+/recurring-jobs(?:/.*)?"
)
_AGENT_HOST: Final = "the agent host (agent.gen.pro/v1 in production)"
_API_HOST: Final = "the API host (api.gen.pro/v1 in production)"


def agent_host_path(path: str) -> bool:
    """True when ``path`` belongs to the agent host, False when to the API host."""
    return _AGENT_PATH.fullmatch(path) is not None


@dataclass(slots=True)
class HostPorts:
    """Which local ports are the agent host's; every other port is the API host's.

    :class:`~genbatch.sim.serve.SimServer` fills it when it binds.  Empty (an app
    served some other way, on one port): no host split, that port serves both.
    """

    agent: set[int] = field(default_factory=set)


HOST_PORTS = web.AppKey("host_ports", HostPorts)


def _local_port(request: web.Request) -> int | None:
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return int(sockname[1])
    return None


# ASSUMPTION: the other host's paths 404 before auth (docs/sim-assumptions.md, "hosts").
def host_refusal(request: web.Request, agent_ports: set[int]) -> ApiError | None:
    """The 404 for a request that reached the wrong host, else None.

    The host is the local port the request arrived on (the two sites share one
    app); with no agent port recorded the app is not split and serves both.
    """
    if not agent_ports:
        return None
    on_agent = _local_port(request) in agent_ports
    path = request.path
    if agent_host_path(path) == on_agent:
        return None
    right, wrong = (_API_HOST, "agent host") if on_agent else (_AGENT_HOST, "API host")
    return ApiError(
        404, "not_found", f"{request.method} {path} is served by {right}, not the {wrong}"
    )


def _api_key(request: web.Request) -> str | None:
    key = request.headers.get("X-API-Key")
    if key:
        return key
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return None


def drop_connection(request: web.Request) -> web.Response:
    """Reset the TCP connection (RST via SO_LINGER 0): the client gets no answer.

    Returning a response afterwards is harmless: aiohttp's write fails with a
    ConnectionError, which it treats as a client disconnect.
    """
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=599)


def _quota(rate: float) -> str:
    """A rate as RateLimit-Policy writes it: ``60``, ``2.5`` (never ``6e+01``)."""
    rate = float(rate)  # a Python caller may configure an int
    return str(int(rate)) if rate.is_integer() else repr(rate)


# ASSUMPTION: Retry-After and X-RateLimit-Reset in seconds (docs/sim-assumptions.md,
# "rate-headers"); a server that publishes its limit says it as the IETF draft's
# RateLimit-Policy, quota per window of 1 s (docs/sim-assumptions.md, "rate-policy").
def _rate_headers(
    resp: web.StreamResponse, world: World, limit: int, remaining: int, reset: int
) -> None:
    """The rate headers, when the world has a limit and announces it (``rate_headers``)."""
    bucket = world.bucket
    if bucket is None or not world.rate_headers or limit < 1:  # limit 0: taken unlimited
        return
    h = resp.headers
    h["X-RateLimit-Limit"] = str(limit)
    h["X-RateLimit-Remaining"] = str(remaining)
    h["X-RateLimit-Reset"] = str(reset)
    h["RateLimit-Policy"] = f"{_quota(bucket.rate)};w=1"


def _is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


async def _api(request: web.Request, handler: Handler, world: World) -> web.StreamResponse:
    if world.capacity is not None:  # the server is busy: this answer waits its turn
        await asyncio.sleep(world.capacity.delay())
    key = _api_key(request)
    user = world.accounts.user_for_key(key) if key else None
    if user is None or key is None:
        raise ApiError(401, "unauthorized", "missing or invalid API key")
    request[REQ_USER] = user
    request[REQ_API_KEY] = key
    bucket = world.bucket
    verdict = bucket.take(key) if bucket is not None else _UNLIMITED
    faults = world.faults
    resp: web.StreamResponse
    if faults.any_request:
        storm = world.storms.get(key, 0.0)
        t = time.monotonic()
        if storm <= t and faults.roll("429"):
            storm = world.storms[key] = t + faults.arg("429")
        if storm > t:
            resp = error_response(429, "rate_limited", "rate limit exceeded (storm); retry later")
            resp.headers["Retry-After"] = str(max(1, math.ceil(storm - t)))
            _rate_headers(resp, world, verdict.limit, 0, max(1, math.ceil(storm - t)))
            return resp
    if not verdict.allowed and bucket is not None:
        resp = error_response(
            429, "rate_limited", f"rate limit exceeded: {bucket.rate:g} requests/s per key"
        )
        resp.headers["Retry-After"] = str(verdict.retry_after)
        _rate_headers(resp, world, verdict.limit, 0, verdict.reset)
        return resp
    if faults.any_request:
        if faults.roll("500"):
            raise ApiError(500, "internal_error", "simulated internal error")
        if faults.roll("503"):
            raise ApiError(503, "service_unavailable", "simulated service unavailable")
        if faults.roll("reset"):
            request[REQ_DROPPED] = True
            return drop_connection(request)
        if faults.roll("slow"):
            await asyncio.sleep(faults.arg("slow"))
    idem = request.headers.get("Idempotency-Key") if request.method == "POST" else None
    if idem:
        resp = await _idempotent(request, handler, world, (key, idem))
    else:
        resp = await handler(request)
    _rate_headers(resp, world, verdict.limit, verdict.remaining, verdict.reset)
    if faults.any_request and faults.roll("reset_after"):
        request[REQ_DROPPED] = True
        return drop_connection(request)
    return resp


async def _idempotent(
    request: web.Request, handler: Handler, world: World, slot: tuple[str, str]
) -> web.StreamResponse:
    """First answer for (api key, Idempotency-Key) is kept; repeats replay it."""
    seen = world.idempotent.get(slot)
    if isinstance(seen, asyncio.Future):
        await asyncio.shield(seen)
        seen = world.idempotent.get(slot)
    if isinstance(seen, tuple):
        status, body = seen
        replay = web.Response(body=body, status=status, content_type="application/json")
        replay.headers[REPLAYED_HEADER] = "true"
        return replay
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    world.idempotent[slot] = fut
    try:
        resp = await handler(request)
    except BaseException:
        world.idempotent.pop(slot, None)
        raise
    finally:
        fut.set_result(None)
    if isinstance(resp, web.Response) and resp.status < 400 and resp.body is not None:
        world.idempotent[slot] = (resp.status, bytes(resp.body))  # type: ignore[arg-type]
    else:
        world.idempotent.pop(slot, None)
    return resp


def _admin_allowed(request: web.Request) -> bool:
    admin_key = request.app.get(ADMIN_KEY)
    if admin_key:
        return request.headers.get("X-Sim-Admin-Key") == admin_key
    return _is_loopback(request.remote)


@web.middleware
async def sim_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    world = request.app[WORLD]
    world.maybe_settle(time.time())  # never raises: settle() contains its failures
    path = request.path
    resp: web.StreamResponse
    agent_ports = request.app[HOST_PORTS].agent
    wrong_host = host_refusal(request, agent_ports)
    if not world.base_url and not agent_ports:
        # An unsplit app nobody configured: CDN/upload URLs on the host it is reached at.
        world.base_url = f"{request.scheme}://{request.host}"
    resource = None if wrong_host is not None else request.match_info.route.resource
    route = f"{request.method} {resource.canonical if resource is not None else '<unmatched>'}"
    status = 500
    try:
        if wrong_host is not None:  # routing comes before auth: which host, then which prefix
            raise wrong_host
        refusal = prefix_refusal(path, world.legacy_paths)
        if refusal is not None:
            raise refusal
        if path.startswith("/v1/"):
            resp = await _api(request, handler, world)
        elif path.startswith("/_sim/"):
            if not _admin_allowed(request):
                raise ApiError(403, "forbidden", "admin API: loopback only or X-Sim-Admin-Key")
            resp = await handler(request)
        else:
            resp = await handler(request)
        status = resp.status
        return resp
    except ApiError as exc:
        status = exc.status
        return error_response(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        status = exc.status
        if exc.status == 404:
            return error_response(404, "not_found", f"no route {request.method} {path}")
        if exc.status == 405:
            return error_response(405, "method_not_allowed", f"{request.method} not allowed here")
        if exc.status == 413:
            return error_response(413, "validation_error", "request body too large")
        raise
    except (asyncio.CancelledError, ConnectionError):
        status = 499
        raise
    except Exception:
        log.exception("sim handler crashed on %s", route)
        status = 500
        return error_response(500, "internal_error", "internal simulator error")
    finally:
        status_key = "reset" if request.get(REQ_DROPPED) else str(status)
        c = world.counters
        c.by_route[route] += 1
        c.by_status[status_key] += 1
        key = request.get(REQ_API_KEY)
        c.log.append((time.time(), request.method, route, status_key, key_hash(key) if key else ""))


def create_app(
    world: World | None = None,
    *,
    store: BlobStore | None = None,
    admin_key: str | None = None,
) -> web.Application:
    """The GEN simulator as an aiohttp application (both hosts, CDN, storage, admin).

    :class:`~genbatch.sim.serve.SimServer` serves it on two ports (API host and
    agent host) and sets ``world.base_url``, the API host's root, which CDN and
    upload URLs are built on.
    """
    if world is None:
        world = World.from_config(SimConfig(), Path(tempfile.mkdtemp(prefix="genbatch-sim-")))
    app = web.Application(middlewares=[sim_middleware], client_max_size=SIM_DIRECT_UPLOAD_MAX_BYTES)
    app[WORLD] = world
    app[STORE] = store or BlobStore(world.data_dir / "blobs")
    app[PRESIGNER] = Presigner(world.shared.secret)
    app[HOST_PORTS] = HostPorts()
    if admin_key:
        app[ADMIN_KEY] = admin_key
    for module in (
        routes_setup,
        routes_ideas,
        routes_jobs,
        routes_engines,
        routes_generations,
        routes_assets,
        routes_admin,
    ):
        app.add_routes(served(module.routes, world.legacy_paths))
    return app


__all__ = [
    "HOST_PORTS",
    "HostPorts",
    "agent_host_path",
    "create_app",
    "drop_connection",
    "host_refusal",
    "jresp",
]
