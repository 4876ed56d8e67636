"""HubWatcher and the hub's scouting: exact durations and brackets from generations.

Offline: a fake client whose ``generations.get`` is a plain coroutine.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from genbatch.client import GenClient
from genbatch.client.models import Generation
from genbatch.engine.poller import Bracket, PollHub
from genbatch.engine.watch import HubWatcher, _epoch, _took


def iso(t: float) -> str:
    dt = datetime.fromtimestamp(t, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def gen(status: str, created: float | None = None, updated: float | None = None) -> Generation:
    return Generation.model_validate(
        {
            "id": "g1",
            "status": status,
            "created_at": None if created is None else iso(created),
            "updated_at": None if updated is None else iso(updated),
        }
    )


def client_returning(*answers: Generation) -> tuple[GenClient, list[str]]:
    calls: list[str] = []

    async def get(gid: str) -> Generation:
        calls.append(gid)
        return answers[min(len(calls), len(answers)) - 1]

    policy = SimpleNamespace(backoff_initial=0.001, backoff_max=0.002)
    return cast(
        GenClient, SimpleNamespace(generations=SimpleNamespace(get=get), policy=policy)
    ), calls


def test_timestamps_parse_or_say_nothing() -> None:
    assert (
        _epoch("2025-01-02T03:04:05.250Z")
        == datetime(2025, 1, 2, 3, 4, 5, 250000, tzinfo=UTC).timestamp()
    )
    assert _epoch("2025-01-02T03:04:05+01:00") is not None
    assert _epoch(None) is None and _epoch("") is None and _epoch("yesterday") is None
    assert _epoch("2025-01-02T03:04:05") is None  # no zone: not a clock we can compare
    assert _took(gen("completed", 100.0, 112.5)) == 12.5
    assert _took(gen("completed")) is None and _took(gen("completed", 100.0)) is None
    assert _took(gen("completed", 100.0, 99.0)) is None  # updated before created: nonsense


async def test_a_generation_with_timestamps_teaches_its_exact_duration() -> None:
    now = time.time()
    client, calls = client_returning(gen("completed", now - 42.0, now - 2.0))
    brackets: list[Bracket] = []
    async with PollHub(seed=1) as hub:
        done = await HubWatcher.for_rows(client, hub).generation(
            "g1", "video_from_text:veo_3", on_bracket=brackets.append
        )
        assert done.status == "completed" and calls == ["g1"]
        assert hub._models["video_from_text:veo_3"].sorted == [40.0]
        stats = hub.stats()["video_from_text:veo_3"]
        assert stats.samples == 1 and stats.estimate == 40.0
    (bracket,) = brackets
    assert bracket.done_at is not None and abs(bracket.done_at - (now - 2.0)) < 0.002
    assert bracket.done_after is None  # done at its first poll
    assert now <= bracket.done_by <= time.time() + 1


async def test_without_timestamps_the_bracket_has_no_exact_time() -> None:
    client, calls = client_returning(gen("processing"), gen("completed"))
    brackets: list[Bracket] = []
    async with PollHub(seed=1, scout_first=0.01) as hub:
        await HubWatcher.for_rows(client, hub).generation(
            "g1", "render", on_bracket=brackets.append
        )
        assert hub.stats()["render"].samples == 1  # drawn from the bracket
    (bracket,) = brackets
    assert len(calls) == 2 and bracket.done_at is None
    assert bracket.done_after is not None and bracket.done_after < bracket.done_by


async def test_a_fast_server_gets_its_first_poll_within_a_fraction_of_a_second() -> None:
    """No time scale, a 90 s prior: the first poll still comes at once (a scout)."""
    client, calls = client_returning(gen("completed"))
    async with PollHub(seed=1) as hub:
        watcher = HubWatcher.for_rows(client, hub)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.wait_for(watcher.generation("g1", "video_from_text"), 5.0)
        assert loop.time() - start < 1.0
    assert calls == ["g1"]


async def test_user_jobs_pass_their_bracket_through() -> None:
    async def get(_jid: str, _agent: str) -> Any:
        return SimpleNamespace(status="completed")

    client = cast(GenClient, SimpleNamespace(user_jobs=SimpleNamespace(get=get)))
    brackets: list[Bracket] = []
    async with PollHub(seed=1) as hub:
        await HubWatcher.for_runs(client, hub).user_job(
            "j1", "a1", "publish_content", on_bracket=brackets.append
        )
    assert len(brackets) == 1 and brackets[0].done_at is None
