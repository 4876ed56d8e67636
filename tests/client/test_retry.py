"""The retry policy as a pure function: every branch, plus properties over all inputs."""

from __future__ import annotations

import email.utils
import socket

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from genbatch.client.retry import (
    Decision,
    Failure,
    RetryCounters,
    RetryPolicy,
    classify_exception,
    decide,
    parse_retry_after,
)

POLICY = RetryPolicy(max_retries=3, backoff_initial=0.5, backoff_max=8.0, retry_after_cap=60.0)
NOW = 1_700_000_000.0


def test_success_is_not_retried() -> None:
    d = decide(POLICY, attempt=0, method="GET", status=200)
    assert not d.retry and d.reason == "ok"


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_idempotent_retry_statuses(status: int) -> None:
    d = decide(POLICY, attempt=0, method="GET", status=status, jitter=0.5)
    assert d.retry and d.reason == f"status_{status}"
    assert d.delay == pytest.approx(0.25)  # full jitter: 0.5 * 2**0 * 0.5


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_final(status: int) -> None:
    d = decide(POLICY, attempt=0, method="GET", status=status)
    assert not d.retry and d.reason == f"not_retryable:status_{status}"


def test_backoff_grows_and_caps() -> None:
    delays = [
        decide(POLICY, attempt=a, method="GET", status=503, jitter=0.999).delay for a in range(3)
    ]
    assert delays[0] < delays[1] < delays[2]
    big = RetryPolicy(max_retries=50)
    assert decide(big, attempt=20, method="GET", status=503, jitter=0.999).delay <= big.backoff_max


def test_exhausted_after_max_retries() -> None:
    d = decide(POLICY, attempt=3, method="GET", status=503)
    assert not d.retry and d.reason == "exhausted:status_503"


def test_retry_after_seconds_is_a_floor() -> None:
    d = decide(
        POLICY, attempt=0, method="GET", status=429, headers={"Retry-After": "3"}, jitter=0.0
    )
    assert d.retry and d.delay == 3.0 and d.retry_after == 3.0
    d = decide(
        POLICY, attempt=0, method="GET", status=503, headers={"Retry-After": "2"}, jitter=0.9
    )
    assert 2.0 <= d.delay <= 2.2


def test_retry_after_http_date_and_ms() -> None:
    date = email.utils.formatdate(NOW + 5, usegmt=True)
    assert parse_retry_after({"Retry-After": date}, NOW) == pytest.approx(5.0)
    assert parse_retry_after({"retry-after-ms": "1500"}, NOW) == 1.5
    # retry-after-ms is more precise and wins
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}, NOW) == 0.25
    past = email.utils.formatdate(NOW - 60, usegmt=True)
    assert parse_retry_after({"Retry-After": past}, NOW) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}, NOW) is None
    assert parse_retry_after({}, NOW) is None


def test_retry_after_over_cap_surfaces_instead_of_sleeping() -> None:
    d = decide(POLICY, attempt=0, method="GET", status=429, headers={"Retry-After": "3600"})
    assert not d.retry
    assert d.reason == "retry_after_over_cap:status_429" and d.retry_after == 3600.0


def test_unsafe_post_not_resent_after_ambiguous_failures() -> None:
    for kw in (
        {"status": 500},
        {"status": 503},
        {"status": 408},
        {"failure": Failure.DISCONNECT},
        {"failure": Failure.TIMEOUT},
    ):
        d = decide(POLICY, attempt=0, method="POST", idempotent=False, **kw)  # type: ignore[arg-type]
        assert not d.retry and d.reason.startswith("unsafe_post:"), kw


def test_unsafe_post_resent_when_it_never_left() -> None:
    for failure in (Failure.CONNECT, Failure.CONNECT_TIMEOUT):
        d = decide(POLICY, attempt=0, method="POST", idempotent=False, failure=failure)
        assert d.retry and d.reason == failure.value


def test_unsafe_post_429_is_resent_unless_disabled() -> None:
    assert decide(POLICY, attempt=0, method="POST", idempotent=False, status=429).retry
    strict = RetryPolicy(unsafe_retry_on_429=False)
    d = decide(strict, attempt=0, method="POST", idempotent=False, status=429)
    assert not d.retry and d.reason == "unsafe_post:status_429"


def test_keyed_post_is_retried_like_a_get() -> None:
    d = decide(POLICY, attempt=0, method="POST", idempotent=True, failure=Failure.DISCONNECT)
    assert d.retry and d.reason == "disconnect"
    assert decide(POLICY, attempt=0, method="POST", idempotent=True, status=503).retry


def test_idempotent_defaults_from_method() -> None:
    assert decide(POLICY, attempt=0, method="PUT", status=503).retry
    assert not decide(POLICY, attempt=0, method="POST", status=503).retry


def test_fatal_failures_are_final() -> None:
    d = decide(POLICY, attempt=0, method="GET", failure=Failure.FATAL)
    assert not d.retry and d.reason == "not_retryable:fatal"


@given(
    attempt=st.integers(0, 10),
    status=st.one_of(st.none(), st.integers(100, 599)),
    failure=st.one_of(st.none(), st.sampled_from(list(Failure))),
    idempotent=st.booleans(),
    retry_after=st.one_of(st.none(), st.floats(0, 120, allow_nan=False)),
    jitter=st.floats(0, 0.999999),
)
def test_properties(
    attempt: int,
    status: int | None,
    failure: Failure | None,
    idempotent: bool,
    retry_after: float | None,
    jitter: float,
) -> None:
    if status is None and failure is None:
        status = 200
    if failure is not None:
        status = None
    headers = {"Retry-After": repr(retry_after)} if retry_after is not None else {}
    d = decide(
        POLICY,
        attempt=attempt,
        method="POST",
        idempotent=idempotent,
        status=status,
        failure=failure,
        headers=headers if status is not None else None,
        jitter=jitter,
    )
    if d.retry:
        assert attempt < POLICY.max_retries
        # The money rule: a non-idempotent POST is resent only when it never
        # left, or when the server refused it outright with 429.
        if not idempotent:
            assert failure in (Failure.CONNECT, Failure.CONNECT_TIMEOUT) or status == 429
        if d.retry_after is not None:
            assert d.delay >= d.retry_after  # never sooner than asked
            assert d.retry_after <= POLICY.retry_after_cap
        else:
            assert 0.0 <= d.delay <= POLICY.backoff_max
    if status is not None and status < 400:
        assert not d.retry


async def test_classify_real_connect_failure() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError) as info:
            await session.get(f"http://127.0.0.1:{port}/")
    assert classify_exception(info.value) is Failure.CONNECT


def test_classify_other_exceptions() -> None:
    assert classify_exception(aiohttp.ConnectionTimeoutError()) is Failure.CONNECT_TIMEOUT
    assert classify_exception(aiohttp.SocketTimeoutError()) is Failure.TIMEOUT
    assert classify_exception(TimeoutError()) is Failure.TIMEOUT
    assert classify_exception(aiohttp.ServerDisconnectedError()) is Failure.DISCONNECT
    assert classify_exception(aiohttp.ClientPayloadError("short")) is Failure.DISCONNECT
    assert classify_exception(aiohttp.ClientConnectionResetError()) is Failure.DISCONNECT
    assert classify_exception(aiohttp.InvalidURL("x")) is Failure.FATAL


def test_counters_by_reason() -> None:
    c = RetryCounters()
    c.record(decide(POLICY, attempt=0, method="GET", status=503, jitter=0.1))
    c.record(decide(POLICY, attempt=1, method="GET", status=503, jitter=0.1))
    c.record(decide(POLICY, attempt=0, method="POST", status=500))
    c.record(decide(POLICY, attempt=0, method="GET", status=200))
    snap = c.snapshot()
    assert snap["retries_by_reason"] == {"status_503": 2}
    assert snap["giveups_by_reason"] == {"unsafe_post:status_500": 1}
    assert c.retries == 2 and c.retry_sleep_seconds > 0


@pytest.mark.parametrize(
    ("status", "failure"),
    [(500, None), (503, None), (None, Failure.TIMEOUT), (None, Failure.DISCONNECT)],
)
def test_resend_ambiguous_off_stops_even_a_keyed_post(
    status: int | None, failure: Failure | None
) -> None:
    def keyed(resend_ambiguous: bool) -> Decision:
        return decide(
            POLICY,
            attempt=0,
            method="POST",
            idempotent=True,
            status=status,
            failure=failure,
            resend_ambiguous=resend_ambiguous,
        )

    assert keyed(True).retry  # the key makes a resend safe…
    d = keyed(False)
    assert not d.retry and d.reason.startswith("ambiguous:")  # …unless the caller reconciles


@pytest.mark.parametrize(
    ("status", "failure"),
    [(429, None), (408, None), (None, Failure.CONNECT), (None, Failure.CONNECT_TIMEOUT)],
)
def test_resend_ambiguous_off_still_resends_what_took_no_effect(
    status: int | None, failure: Failure | None
) -> None:
    d = decide(
        POLICY,
        attempt=0,
        method="POST",
        idempotent=True,
        status=status,
        failure=failure,
        resend_ambiguous=False,
    )
    assert d.retry
