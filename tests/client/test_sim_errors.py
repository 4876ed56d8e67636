"""One test per error class, each provoked for real through the simulator."""

from __future__ import annotations

import socket
import time

import pytest
from clienthelp import AGENT, FAST, KEY, Sim

from genbatch import errors as E
from genbatch.client import GenClient, Generation
from genbatch.client import routes as R
from genbatch.client.retry import RetryPolicy
from genbatch.sim.accounts import SIM_OTHER_AGENT_ID


async def _video_cell(gen: GenClient) -> tuple[str, str]:
    eng = await gen.templates.clone("tiktok-vo-broll", AGENT)
    cell = eng.cell("broll")
    assert cell is not None
    return eng.id, cell.id


VIDEO = {"generation_type": "video_from_text", "data": {"prompt": "tacos", "model": "veo_3"}}


async def test_authentication_error(sim: Sim) -> None:
    async with GenClient("gen_wrong_key_000000", api_url=sim.api, agent_url=sim.agent) as bad:
        with pytest.raises(E.AuthenticationError) as info:
            await bad.agents.me()
    err = info.value
    assert err.status == 401 and err.error_code == "unauthorized"
    assert str(err) == "GET /v1/me -> 401 unauthorized: missing or invalid API key"
    assert err.method == "GET" and err.route == "GET /v1/me"
    assert "gen_wrong_key_000000" not in str(err) + repr(err)


async def test_bearer_auth_works(sim: Sim) -> None:
    async with GenClient(KEY, api_url=sim.api, agent_url=sim.agent, auth="bearer") as g:
        assert (await g.agents.me()).id


async def test_no_access_is_a_not_found_error(gen: GenClient) -> None:
    # docs/dialect.md §4: today's API answers "not yours" with 404 (it was 403 forbidden
    # in the teaching document); the client maps it to NotFoundError, 403 still to
    # PermissionDeniedError (test_errors_settings).
    with pytest.raises(E.NotFoundError) as info:
        await gen.agents.get(SIM_OTHER_AGENT_ID)
    assert info.value.status == 404 and info.value.error_code == "not_found"


async def test_not_found_error(gen: GenClient) -> None:
    with pytest.raises(E.NotFoundError) as info:
        await gen.generations.get(987654321)
    assert info.value.route == "GET /v1/generations/{id}" and info.value.status == 404


async def test_agent_not_found_error(gen: GenClient) -> None:
    with pytest.raises(E.AgentNotFoundError) as info:
        await gen.templates.clone("tiktok-vo-broll", 987654)
    assert info.value.status == 422 and isinstance(info.value, E.UnprocessableError)


async def test_validation_error_from_server(gen: GenClient) -> None:
    eng = await gen.templates.clone("tiktok-vo-broll", AGENT)
    final = eng.final_video_cell()
    assert final is not None
    with pytest.raises(E.ValidationError) as info:
        await gen.cells.update(eng.id, final.id, AGENT, "not editable")
    assert info.value.error_code == "validation_error" and "read-only" in str(info.value)


async def test_insufficient_credits_error(gen: GenClient, sim: Sim) -> None:
    eng_id, cell_id = await _video_cell(gen)
    await sim.config(balance=5.0)
    with pytest.raises(E.InsufficientCreditsError) as info:
        await gen.generations.generate(eng_id, cell_id, AGENT, VIDEO)
    assert info.value.error_code == "insufficient_credits_for_job"
    assert (await sim.ledger())["credits"]["charged"] == 0


async def test_no_active_credits_error(gen: GenClient, sim: Sim) -> None:
    eng_id, cell_id = await _video_cell(gen)
    await sim.config(balance=0.0)
    with pytest.raises(E.NoActiveCreditsError) as info:
        await gen.generations.generate(eng_id, cell_id, AGENT, VIDEO)
    assert info.value.error_code == "usable_gen_credit_required"


async def test_rate_limit_error_after_retries(sim: Sim) -> None:
    await sim.config(rate=0.5, burst=1)
    async with GenClient(
        KEY, api_url=sim.api, agent_url=sim.agent, retry_policy=RetryPolicy(max_retries=0)
    ) as g:
        await g.agents.me()
        with pytest.raises(E.RateLimitError) as info:
            await g.agents.me()
    err = info.value
    assert err.status == 429 and err.error_code == "rate_limited"
    assert err.retry_after is not None and err.retry_after >= 1
    assert err.headers["X-RateLimit-Limit"] == "1" and err.headers["X-RateLimit-Remaining"] == "0"
    assert g.stats.rate_limited == 1


async def test_retry_after_over_cap_raises_at_once(sim: Sim) -> None:
    await sim.config(faults="429:1@120")
    async with GenClient(KEY, api_url=sim.api, agent_url=sim.agent, retry_policy=FAST) as g:
        started = time.monotonic()
        with pytest.raises(E.RateLimitError) as info:
            await g.generations.get(1)
        waited = time.monotonic() - started
    assert 119 <= (info.value.retry_after or 0) <= 121 and "over the cap" in str(info.value)
    assert waited < 60  # it did not sleep the 120 s: the caller can defer instead
    assert await sim.count("GET /v1/generations/{id}") == 1


async def test_server_error_after_retries(sim: Sim) -> None:
    await sim.config(faults="500:1")
    async with GenClient(KEY, api_url=sim.api, agent_url=sim.agent, retry_policy=FAST) as g:
        with pytest.raises(E.ServerError) as info:
            await g.generations.get(1)
    assert info.value.status == 500 and info.value.error_code == "internal_error"
    assert g.stats.retries_by_reason == {"status_500": FAST.max_retries}
    assert await sim.count("GET /v1/generations/{id}") == 1 + FAST.max_retries


async def test_api_connection_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    url = f"http://127.0.0.1:{port}/v1"
    async with GenClient(KEY, api_url=url, agent_url=url, retry_policy=FAST) as g:
        with pytest.raises(E.APIConnectionError) as info:
            await g.agents.me()
    assert not isinstance(info.value, E.APITimeoutError)
    assert info.value.maybe_sent is False  # it never left: safe to send again
    assert g.stats.retries_by_reason["connect"] == FAST.max_retries
    assert info.value.__cause__ is None and info.value.__context__ is None


async def test_api_timeout_error(sim: Sim) -> None:
    await sim.config(faults="slow:1@2")
    async with GenClient(
        KEY,
        api_url=sim.api,
        agent_url=sim.agent,
        timeout=0.2,
        retry_policy=RetryPolicy(max_retries=1, backoff_initial=0.01),
    ) as g:
        with pytest.raises(E.APITimeoutError) as info:
            await g.generations.get(1)
    assert info.value.maybe_sent is True
    assert g.stats.retries_by_reason["timeout"] == 1


async def test_api_response_validation_error(gen: GenClient) -> None:
    # an XLSX where a JSON generation was expected
    with pytest.raises(E.APIResponseValidationError) as info:
        await gen.request_model(Generation, R.GLOBAL_VARIABLES_TEMPLATE)
    assert info.value.status == 200 and "not JSON" in str(info.value)


async def test_request_validation_error_sends_nothing(gen: GenClient, sim: Sim) -> None:
    eng_id, cell_id = await _video_cell(gen)
    before = await sim.api_requests()
    bad = {"generation_type": "video_from_text", "data": {"prompt": "x", "model": "veo_9"}}
    with pytest.raises(E.RequestValidationError) as info:
        await gen.generations.generate(eng_id, cell_id, AGENT, bad)
    assert "veo_9" in str(info.value)
    assert await sim.api_requests() == before
