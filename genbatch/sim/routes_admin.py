"""The simulator's own admin API under ``/_sim/`` (not GEN's): ledger, config, reset.

Loopback only, or the ``X-Sim-Admin-Key`` header when an admin key is set
(the middleware enforces it).  Tests and benchmarks assert on the ledger.
"""

from __future__ import annotations

from aiohttp import web

from genbatch._constants import SIM_DEMO_WORKSPACE_ID
from genbatch.sim.entities import invalid, reject_unknown
from genbatch.sim.routes_common import jbody, jresp, now, world_of

routes = web.RouteTableDef()
CONFIG_FIELDS = ("rate", "burst", "job_cap", "balance", "faults", "workspace_id", "time_scale")


@routes.get("/_sim/ledger")
async def ledger(request: web.Request) -> web.Response:
    return jresp(world_of(request).ledger(now()))


@routes.get("/_sim/health")
async def health(request: web.Request) -> web.Response:
    return jresp({"ok": True})


@routes.post("/_sim/config")
async def config(request: web.Request) -> web.Response:
    w = world_of(request)
    body = await jbody(request, required=True)
    reject_unknown(body, CONFIG_FIELDS)

    def number(name: str, minimum: float) -> float | None:
        v = body.get(name)
        if v is None:
            return None
        if not isinstance(v, int | float) or isinstance(v, bool) or v < minimum:
            raise invalid(f"{name} must be a number >= {minimum:g}")
        return float(v)

    rate, burst = number("rate", 0.0), number("burst", 1.0)  # rate 0: no limit
    job_cap = number("job_cap", 0.0)  # 0: no cap
    if job_cap is not None and not job_cap.is_integer():
        raise invalid("job_cap must be a whole number >= 0")
    balance, scale = number("balance", float("-inf")), number("time_scale", 0.0)
    faults = body.get("faults")
    if faults is not None:
        if not isinstance(faults, str):
            raise invalid("faults must be a spec string like '500:0.1,slow:0.2@1'")
        try:
            w.faults.set(faults)
        except ValueError as exc:
            raise invalid(str(exc)) from None
    if burst is not None:
        w.set_burst(int(burst))
    if rate is not None:
        w.set_rate(rate or None)
    if job_cap is not None:
        w.set_job_cap(int(job_cap) or None)
    if balance is not None:
        wid = body.get("workspace_id", SIM_DEMO_WORKSPACE_ID)
        ws = w.accounts.workspaces.get(wid) if isinstance(wid, int) else None
        if ws is None:
            raise invalid(f"workspace {wid} not found")
        ws.credit_balance = balance
    if scale is not None:
        w.time_scale = w.clock.time_scale = scale
    return jresp(w.config_view())


@routes.post("/_sim/reset")
async def reset(request: web.Request) -> web.Response:
    w = world_of(request)
    w.reset()
    return jresp({"reset": True, "config": w.config_view()})
