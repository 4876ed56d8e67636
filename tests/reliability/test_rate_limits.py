"""Cases 1–2: rate-limit storms and absurd Retry-After values.

The fault proxy answers API requests with 429 itself (never forwarding
them), so every 429 and the exact Retry-After it carried are known, and its
request log shows when the next request arrived — "no request before
Retry-After" is read off the wire, not from the engine's own counters.
"""

from __future__ import annotations

import email.utils
import math
import threading
import time
from collections.abc import Callable

import pytest
from faultproxy import ProxyThread
from harness import Case, ProxyFactory, SimFactory

from genbatch.engine.limits import ENGINE_RETRY_AFTER_DEFAULT

pytestmark = pytest.mark.reliability

API = rb"^[A-Z]+ /v1/"
#: Requests already past the gate when the 429 came back may land just after it.
GRACE = 0.3


def too_many(retry_after: str | None) -> bytes:
    body = b'{"error": "rate limit exceeded", "error_code": "rate_limited"}'
    extra = f"Retry-After: {retry_after}\r\n" if retry_after is not None else ""
    return (
        f"HTTP/1.1 429 Too Many Requests\r\n{extra}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def _after_first_generate(
    proxy: ProxyThread, action: Callable[[bool], None], *, window: float
) -> threading.Thread:
    def run() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(b"/generate?" in r for r in proxy.stats.requests):
                break
            time.sleep(0.005)
        action(True)
        time.sleep(window)
        action(False)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("form", ["seconds", "http-date", "absent"])
@pytest.mark.case(
    "1",
    fault="429 storm (60 % of API calls for 1.2 s)",
    how="fault proxy answers 60 % of /v1 requests with 429, Retry-After as {form}",
)
def test_429_storm_waits_out_retry_after_and_recovers(
    case: Case, sims: SimFactory, proxies: ProxyFactory, form: str
) -> None:
    case.how = case.how.format(form=form)
    sim = sims(seed=11)
    proxy = proxies(sim, seed=11)
    given: list[tuple[float, float]] = []  # (monotonic time answered, wait asked)

    def answer() -> bytes:
        now = time.monotonic()
        if form == "seconds":
            given.append((now, 1.0))
            return too_many("1")
        if form == "http-date":
            when = math.ceil(time.time()) + 2
            given.append((now, when - time.time()))
            return too_many(email.utils.formatdate(when, usegmt=True))
        given.append((now, ENGINE_RETRY_AFTER_DEFAULT))
        return too_many(None)

    names: list[str] = []

    def storm(on: bool) -> None:
        if on:
            names.append(
                proxy.add("respond", "upstream", match=API, toxicity=0.6, response=answer).name
            )
        else:
            proxy.remove(names[0])

    table, ids = case.table(3)
    out = case.out()
    stormer = _after_first_generate(proxy, storm, window=1.2)
    res = case.run(table, out, proxy.url)
    stormer.join(timeout=35)
    assert given, "the storm never hit"
    assert res.rc == 0, res.stderr
    case.check(out, sim.ledger(), ids, fetch=sim.fetch)
    # No API request reached the wire while a Retry-After we were given ran.
    api = [(t, line) for t, line, _ in proxy.stats.log if line.split(b" ")[1].startswith(b"/v1/")]
    for t429, wait in given:
        early = [line for t, line in api if t429 + GRACE < t < t429 + wait - 0.02]
        assert not early, f"sent {early[:3]} within a {wait:.2f}s Retry-After"
    # ... and the rate came back: the run went on and finished after the storm.
    last = max(t for t, _ in given)
    after = [line for t, line in api if t > last + 0.05]
    assert after, "no request after the storm"
    summary = res.summary or {}
    case.note(
        f"{len(given)} × 429 (Retry-After {form}); no request inside any wait; "
        f"{len(after)} requests after the storm; "
        f"{summary.get('rate_limited')} 429s seen by genbatch"
    )


@pytest.mark.case(
    "1",
    fault="429s from the server's own token bucket",
    how="sim rate 8, burst 4 (/_sim/config) while genbatch runs at --rate 200 (real 429s with "
    "Retry-After and X-RateLimit-*); checked from the sim's own request log",
)
def test_real_token_bucket_429s_are_waited_out(case: Case, sims: SimFactory) -> None:
    sim = sims(seed=13, rate=8.0, burst=4)
    table, ids = case.table(2)
    out = case.out()
    res = case.run(table, out, sim.url)
    assert res.rc == 0, res.stderr
    led = sim.ledger()
    case.check(out, led, ids, fetch=sim.fetch)
    log = [e for e in led["requests"]["log"] if e["route"].split(" ")[1].startswith("/v1/")]
    limited = [e["t"] for e in log if e["status"] == "429"]
    assert limited, "the bucket never said 429"
    # The bucket's Retry-After is >= 1 s (whole seconds): nothing may arrive inside it.
    for t in limited:
        early = [e["route"] for e in log if t + GRACE < e["t"] < t + 1.0 - 0.02]
        assert not early, f"{early[:3]} inside a 1 s Retry-After"
    case.note(f"{len(limited)} real 429s; no request inside any Retry-After; all rows completed")


@pytest.mark.parametrize(
    "value",
    [
        "3600",
        "garbage",
    ],
)
@pytest.mark.case(
    "2",
    fault="absurd Retry-After",
    how="fault proxy answers one paid POST with 429, Retry-After: {value}",
)
def test_absurd_retry_after_is_capped_and_never_hangs(
    case: Case, sims: SimFactory, proxies: ProxyFactory, value: str
) -> None:
    case.how = case.how.format(value=value if value != "garbage" else "'soon-ish' (garbage)")
    sim = sims(seed=12)
    proxy = proxies(sim, seed=12)
    raw = "soon-ish" if value == "garbage" else value
    toxic = proxy.add(
        "respond",
        "upstream",
        match=rb"^POST /v1/vidsheet/\d+/cells/\d+/generate",
        times=1,
        response=too_many(raw),
    )
    table, ids = case.table(2)
    out = case.out()
    # A normal run of this table takes ~2 s; an honoured hour-long wait is a hang.
    res = case.run(table, out, proxy.url, timeout=8)
    assert toxic.hits == 1
    assert res.rc in (0, 1), res.stderr
    case.check(out, sim.ledger(), ids, fetch=sim.fetch)
    case.note(f"Retry-After {raw!r}: run ended in {res.seconds:.1f} s, rc {res.rc}")
