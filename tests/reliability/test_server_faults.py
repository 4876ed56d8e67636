"""Cases 3–7: the server or the wire fails around a paid POST or a poll.

The money question in each: did the POST take effect?  5xx on a poll
(case 3) and a refused connection (case 7) prove nothing was bought; a 500
after the charge (4), a reset after the body was read (5) and an answer that
never comes (6) are ambiguous — the engine must find the generation the
server did create (the reconcile read) and adopt it, never buy a second one.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from harness import Case, ProxyFactory, SimFactory

pytestmark = pytest.mark.reliability

GENERATE = rb"^POST /v1/vidsheet/\d+/cells/\d+/(generate|render)[ ?]"
POLL = rb"^GET /v1/generations/\d+"


def http_response(status: int, reason: str, body: dict[str, object]) -> bytes:
    raw = json.dumps(body).encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(raw)}\r\nConnection: close\r\n\r\n"
    ).encode() + raw


def _one_generation_per_cell(ledger: dict[str, Any]) -> None:
    cells = [(g["engine_id"], g["cell_id"]) for g in ledger["generations"]]
    assert len(cells) == len(set(cells)), "a cell was generated twice"


@pytest.mark.case(
    "0", fault="none (baseline)", how="sim as its own process, fault proxy with no toxics"
)
def test_baseline_through_the_proxy(case: Case, sims: SimFactory, proxies: ProxyFactory) -> None:
    sim = sims(seed=1)
    proxy = proxies(sim)
    table, ids = case.table(3)
    out = case.out()
    res = case.run(table, out, proxy.url)
    assert res.rc == 0, res.stderr
    led = sim.ledger()
    case.check(out, led, ids, fetch=sim.fetch)
    # The CDN download went through the proxy too (the URL rewrite works).
    assert any(r.startswith(b"GET /cdn/outputs/") for r in proxy.stats.requests)
    assert len(led["generations"]) == 3 * 3


@pytest.mark.case(
    "3",
    fault="5xx on polls",
    how="fault proxy answers 40 % of GET /v1/generations/:id with 503 (never forwarded)",
)
def test_5xx_on_polls_are_retried_and_spend_nothing(
    case: Case, sims: SimFactory, proxies: ProxyFactory
) -> None:
    sim = sims(seed=3)
    proxy = proxies(sim, seed=3)
    toxic = proxy.add(
        "respond",
        "upstream",
        match=POLL,
        toxicity=0.4,
        response=http_response(
            503, "Service Unavailable", {"error": "flap", "error_code": "service_unavailable"}
        ),
    )
    table, ids = case.table(4)
    out = case.out()
    res = case.run(table, out, proxy.url)
    assert toxic.hits > 0
    assert res.rc == 0, res.stderr
    led = sim.ledger()
    case.check(out, led, ids, fetch=sim.fetch)
    _one_generation_per_cell(led)
    case.note(f"{toxic.hits} polls answered 503; every row completed, one generation per cell")


@pytest.mark.case(
    "3",
    fault="5xx on polls, outlasting the poll retries",
    how="fault proxy answers the next 31 GET /v1/generations/:id with 503 (15 in a row "
    "exhausted the client's retries x the watcher's 3 tries before 066808d); backoff x0.1 "
    "(launch.py)",
)
def test_poll_outage_longer_than_the_retries_keeps_the_paid_job(
    case: Case, sims: SimFactory, proxies: ProxyFactory
) -> None:
    sim = sims(seed=33)
    proxy = proxies(sim, seed=33)
    toxic = proxy.add(
        "respond",
        "upstream",
        match=POLL,
        times=31,
        response=http_response(
            503, "Service Unavailable", {"error": "flap", "error_code": "service_unavailable"}
        ),
    )
    table, ids = case.table(1)
    out = case.out()
    res = case.run(table, out, proxy.url, backoff_scale=0.1)
    assert toxic.hits > 0
    led = sim.ledger()
    # Polls are free: a paid job must be watched to its outcome, never written off.
    case.check(out, led, ids, fetch=sim.fetch)
    assert res.rc == 0, res.stderr
    _one_generation_per_cell(led)


@pytest.mark.case(
    "4",
    fault="500 after the charge",
    how="fault proxy forwards POST …/generate|render, then replaces the 201 with a 500",
)
def test_500_after_the_charge_adopts_the_generation(
    case: Case, sims: SimFactory, proxies: ProxyFactory
) -> None:
    sim = sims(seed=4)
    proxy = proxies(sim, seed=4)
    toxic = proxy.add(
        "respond",
        match=GENERATE,
        toxicity=0.5,
        response=http_response(
            500, "Internal Server Error", {"error": "oops", "error_code": "internal_error"}
        ),
    )
    table, ids = case.table(4)
    out = case.out()
    res = case.run(table, out, proxy.url)
    assert toxic.hits > 0
    assert res.rc == 0, res.stderr
    led = sim.ledger()
    case.check(out, led, ids, fetch=sim.fetch)
    _one_generation_per_cell(led)
    assert len(led["generations"]) == 4 * 3
    reconciled = (out / "run.log").read_text().count('"reconciled"')
    assert reconciled >= 1
    case.note(f"{toxic.hits} paid POSTs answered 500 after the charge; {reconciled} adopted")


@pytest.mark.case(
    "5",
    fault="connection reset after the POST body was read",
    how="fault proxy forwards POST …/generate|render, then resets (RST) instead of answering",
)
def test_reset_after_the_post_adopts_the_generation(
    case: Case, sims: SimFactory, proxies: ProxyFactory
) -> None:
    sim = sims(seed=5)
    proxy = proxies(sim, seed=5)
    toxic = proxy.add("reset_peer", match=GENERATE, toxicity=0.5)
    table, ids = case.table(4)
    out = case.out()
    res = case.run(table, out, proxy.url)
    assert toxic.hits > 0
    assert res.rc == 0, res.stderr
    led = sim.ledger()
    case.check(out, led, ids, fetch=sim.fetch)
    _one_generation_per_cell(led)
    assert len(led["generations"]) == 4 * 3
    case.note(f"{toxic.hits} paid POSTs reset after the server took them; none bought twice")


@pytest.mark.case(
    "5",
    fault="reset after the POST, then the reconcile read fails for a while",
    how="fault proxy resets one POST …/generate after the server took it, and answers the "
    "next 21 GET …/cells/:id with 503 (20 wrote the generation off before 066808d); "
    "backoff x0.1 (launch.py)",
)
def test_reconcile_read_outage_keeps_the_paid_generation(
    case: Case, sims: SimFactory, proxies: ProxyFactory
) -> None:
    sim = sims(seed=71)
    proxy = proxies(sim, seed=71)
    reset = proxy.add("reset_peer", match=rb"^POST /v1/vidsheet/\d+/cells/\d+/generate", times=1)
    proxy.add(
        "respond",
        "upstream",
        match=rb"^GET /v1/vidsheet/\d+/cells/\d+",
        times=21,
        response=http_response(
            503, "Service Unavailable", {"error": "flap", "error_code": "service_unavailable"}
        ),
    )
    table, ids = case.table(2)
    out = case.out()
    res = case.run(table, out, proxy.url, backoff_scale=0.1)
    assert reset.hits == 1
    proxy.clear()
    led = sim.ledger()
    case.check(out, led, ids, fetch=sim.fetch)
    assert res.rc == 0, res.stderr
    _one_generation_per_cell(led)


@pytest.mark.case(
    "6",
    fault="read timeout while the server completes",
    how="fault proxy forwards POST …/generate|render and swallows the answer; "
    "client request timeout 1.5 s (launch.py)",
)
def test_read_timeout_adopts_the_generation(
    case: Case, sims: SimFactory, proxies: ProxyFactory
) -> None:
    sim = sims(seed=6)
    proxy = proxies(sim, seed=6)
    toxic = proxy.add("timeout", match=GENERATE, times=2)
    table, ids = case.table(3)
    out = case.out()
    res = case.run(table, out, proxy.url, timeouts=(1.5, 5.0))
    assert toxic.hits == 2
    assert res.rc == 0, res.stderr
    led = sim.ledger()
    case.check(out, led, ids, fetch=sim.fetch)
    _one_generation_per_cell(led)
    assert len(led["generations"]) == 3 * 3
    case.note("2 paid POSTs timed out after the server created the generation; both adopted")


@pytest.mark.case(
    "7",
    fault="connection refused",
    how="fault proxy down (listener closed, live connections reset) for 1 s after the "
    "first paid POST",
)
def test_connection_refused_is_retried_and_charges_nothing(
    case: Case, sims: SimFactory, proxies: ProxyFactory
) -> None:
    sim = sims(seed=7)
    proxy = proxies(sim, seed=7)
    table, ids = case.table(4)
    out = case.out()
    downtime: list[float] = []

    def flap() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(b"/generate?" in r for r in proxy.stats.requests):
                break
            time.sleep(0.005)
        proxy.down(drop_existing=True)
        started = time.monotonic()
        time.sleep(1.0)
        proxy.up()
        downtime.append(time.monotonic() - started)

    flapper = threading.Thread(target=flap, daemon=True)
    flapper.start()
    res = case.run(table, out, proxy.url)
    flapper.join(timeout=35)
    assert downtime, "the proxy never went down"
    assert res.rc == 0, res.stderr
    led = sim.ledger()
    case.check(out, led, ids, fetch=sim.fetch)
    _one_generation_per_cell(led)
    assert len(led["generations"]) == 4 * 3
    case.note(f"proxy down {downtime[0]:.1f} s mid-run; all rows completed, nothing bought twice")
