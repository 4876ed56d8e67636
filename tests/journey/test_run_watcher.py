"""The one poll-hub watcher, as the agents use it (bounded) and as the run does (outage).

Offline: a fake client whose reads are plain coroutines, a fast hub.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest

from genbatch.client import GenClient
from genbatch.engine.failures import RunAborted
from genbatch.engine.limits import Priority
from genbatch.engine.poller import PollHub
from genbatch.engine.services import PRIORITY
from genbatch.engine.watch import ENGINE_RUN_WATCH_ATTEMPTS, HubWatcher, StillRunning
from genbatch.errors import APIConnectionError, AuthenticationError

Get = Callable[..., Awaitable[Any]]


def fake_client(
    *, runs: Get | None = None, jobs: Get | None = None, gens: Get | None = None
) -> GenClient:
    async def unused(*_: Any) -> Any:
        raise AssertionError("not polled in this test")

    return cast(
        GenClient,
        SimpleNamespace(
            runs=SimpleNamespace(get=runs or unused),
            user_jobs=SimpleNamespace(get=jobs or unused),
            generations=SimpleNamespace(get=gens or unused),
            policy=SimpleNamespace(backoff_initial=0.001, backoff_max=0.002),
        ),
    )


def flaky(exc: Exception, failures: int, status: str = "completed") -> tuple[Get, list[int]]:
    """A read that raises ``exc`` ``failures`` times, then returns ``status``; logs priorities."""
    seen: list[int] = []

    async def get(*_: Any) -> Any:
        seen.append(PRIORITY.get())
        if len(seen) <= failures:
            raise exc
        return SimpleNamespace(status=status)

    return get, seen


def lost(route: str = "GET /v1/agent/runs/{id}") -> APIConnectionError:
    return APIConnectionError("connection reset", method="GET", route=route, maybe_sent=True)


def refused() -> AuthenticationError:
    return AuthenticationError("bad key", method="GET", route="GET /x", status=401)


async def test_a_run_past_max_wait_is_reported_still_running_and_no_longer_polled() -> None:
    calls = 0

    async def get(_: str) -> Any:
        nonlocal calls
        calls += 1
        return SimpleNamespace(status="running")

    async with PollHub() as hub:
        watcher = HubWatcher.for_runs(fake_client(runs=get), hub, max_wait=1.0)
        with pytest.raises(StillRunning, match=r"agent_run r1 still running after 1s"):
            await watcher.run("r1")
        assert calls > 0
        seen = calls
        await asyncio.sleep(1.0)  # several poll intervals
        assert calls == seen and hub.pending == 0


async def test_the_agents_watch_a_run_again_after_a_failed_poll_a_few_times() -> None:
    get, seen = flaky(lost(), ENGINE_RUN_WATCH_ATTEMPTS - 1)
    async with PollHub() as hub:
        run = await HubWatcher.for_runs(fake_client(runs=get), hub).run("r1")
    assert run.status == "completed" and len(seen) == ENGINE_RUN_WATCH_ATTEMPTS
    # polls keep the caller's priority (the agents set none)
    assert set(seen) == {Priority.CONTINUE}

    get, seen = flaky(lost(), ENGINE_RUN_WATCH_ATTEMPTS)
    async with PollHub() as hub:
        with pytest.raises(APIConnectionError):
            await HubWatcher.for_runs(fake_client(runs=get), hub).run("r1")
    assert len(seen) == ENGINE_RUN_WATCH_ATTEMPTS

    get, seen = flaky(refused(), 1)
    async with PollHub() as hub:
        with pytest.raises(AuthenticationError):
            await HubWatcher.for_runs(fake_client(runs=get), hub).run("r1")
    assert len(seen) == 1


async def test_a_cancelled_user_job_ends_the_agents_wait() -> None:
    get, _ = flaky(lost(), 0, status="cancelled")
    async with PollHub() as hub:
        job = await HubWatcher.for_runs(fake_client(jobs=get), hub).user_job("j1", "a1", "train")
    assert job.status == "cancelled"


async def test_the_run_rides_out_an_outage_polling_first() -> None:
    get, seen = flaky(lost("GET /v1/generations/{id}"), 4)
    async with PollHub() as hub:
        watcher = HubWatcher.for_rows(fake_client(gens=get), hub)
        done = await watcher.generation("g1", "video_from_text")
    assert done.status == "completed" and len(seen) == 5
    assert set(seen) == {Priority.POLL}

    get, seen = flaky(refused(), 1)
    async with PollHub() as hub:
        with pytest.raises(RunAborted):
            await HubWatcher.for_rows(fake_client(jobs=get), hub).user_job("j1", "a1", "publish")
    assert len(seen) == 1
