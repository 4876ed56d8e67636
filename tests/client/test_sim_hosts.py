"""Each host its own URL: a client given the wrong one fails on its first call there.

The simulator serves the API host and the agent host on two ports (as GEN
serves api.gen.pro and agent.gen.pro), so a mix-up of ``api_url`` and
``agent_url`` fails in rehearsal exactly where it would fail in production.
"""

from __future__ import annotations

import pytest
from clienthelp import AGENT, FAST, KEY, Sim

from genbatch import errors as E
from genbatch.client import GenClient


async def test_both_hosts_right_both_kinds_of_call_work(sim: Sim) -> None:
    assert sim.api != sim.agent
    async with GenClient(KEY, api_url=sim.api, agent_url=sim.agent, retry_policy=FAST) as gen:
        me = await gen.agents.me()
        assert me.id is not None
        assert isinstance(await gen.ideas.list(AGENT), list)  # agent host
        assert isinstance(await gen.conversations.list(AGENT), list)


async def test_agent_url_set_to_the_api_host_fails_on_the_first_agent_call(sim: Sim) -> None:
    async with GenClient(KEY, api_url=sim.api, agent_url=sim.api, retry_policy=FAST) as gen:
        await gen.agents.me()  # the API host is right: API calls work
        with pytest.raises(E.NotFoundError) as info:
            await gen.ideas.list(AGENT)
    err = info.value
    assert err.status == 404 and err.error_code == "not_found"
    assert "served by the agent host" in str(err.server_message)
    assert "served by the agent host" in str(err)  # what a person reads names the fix
    assert gen.stats.retries == 0  # a wrong host is not a transient failure
    assert await sim.count("GET /v1/agent/ideas") == 0  # the route never ran


async def test_api_url_set_to_the_agent_host_fails_on_the_first_api_call(sim: Sim) -> None:
    async with GenClient(KEY, api_url=sim.agent, agent_url=sim.agent, retry_policy=FAST) as gen:
        assert isinstance(await gen.ideas.list(AGENT), list)  # the agent host is right
        with pytest.raises(E.NotFoundError) as info:
            await gen.agents.me()
    assert info.value.error_code == "not_found"
    assert "served by the API host" in str(info.value)
    assert await sim.count("GET /v1/me") == 0
