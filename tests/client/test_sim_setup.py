"""Step 1 against the simulator: me, workspaces, agents, core, voices, orgs, tokens, automation."""

from __future__ import annotations

import pytest
from aiohttp import web
from clienthelp import AGENT, POLL, WORKSPACE, Sim

from genbatch.client import GenClient
from genbatch.client.models import AgentCoreUpdate
from genbatch.client.redact import redact
from genbatch.errors import AuthenticationError, NotFoundError, RequestValidationError


async def test_me_workspaces_agents(gen: GenClient) -> None:
    me = await gen.agents.me()
    assert me.id and me.email
    workspaces = await gen.agents.workspaces()
    assert str(WORKSPACE) in {w.id for w in workspaces}
    agents = await gen.agents.list(workspace_id=WORKSPACE)
    assert str(AGENT) in {a.id for a in agents}

    created = await gen.agents.create({"name": "Taco Scout", "workspace_id": WORKSPACE})
    assert created.name == "Taco Scout" and created.workspace_id == str(WORKSPACE)
    renamed = await gen.agents.update(created.id, {"name": "Taco Scout 2"})
    assert renamed.name == "Taco Scout 2"
    assert (await gen.agents.get(created.id)).name == "Taco Scout 2"
    await gen.agents.delete(created.id)
    with pytest.raises(NotFoundError):
        await gen.agents.get(created.id)


async def test_core_round_trip_and_partial(gen: GenClient) -> None:
    result = await gen.core.update(
        AGENT,
        AgentCoreUpdate(
            brand_name="Santiago",
            description="San Antonio street food scout who hunts the best tacos.",
            keywords=["streetfood", "tacotok"],
            shortform=True,
        ),
    )
    assert not result.partial and result.core.brand_name == "Santiago"
    core = await gen.core.get(AGENT)
    assert core.keywords == ["streetfood", "tacotok"]
    # keywords without monitored mirror into monitored (reference, Step 1)
    assert {"handle": "tacotok", "item_type": "keyword"} in (core.monitored or [])
    # one bad section, one good: 207 Multi-Status
    mixed = await gen.core.update(AGENT, {"goal": "awareness", "target_platforms": ["myspace"]})
    assert mixed.partial and mixed.core.goal == "awareness"
    # too-long description is caught locally: nothing is sent
    with pytest.raises(RequestValidationError):
        await gen.core.update(AGENT, {"description": "x" * 3000})


async def test_voices(gen: GenClient) -> None:
    library = await gen.voices.library(AGENT)
    assert library and all(v.voice_id for v in library)
    public = await gen.voices.library(AGENT, source="public")
    assert public and all(v.source == "public" for v in public)

    eleven = "sk_" + "a1b2c3d4e5" * 3
    assert (await gen.voices.test_elevenlabs(AGENT, eleven))["valid"] is True
    connected = await gen.voices.connect_elevenlabs(AGENT, eleven)
    assert connected["connected"] is True
    assert eleven not in redact(f"key={eleven}")  # a third-party key is masked too
    await gen.voices.disconnect_elevenlabs(AGENT)

    script = await gen.voices.design_script(AGENT, {"prompt": "gravelly taco critic"})
    desc = await gen.voices.design_description(AGENT, {"prompt": script["script"]})
    samples = await gen.voices.design_samples(AGENT, {"description": desc["description"]})
    assert len(samples["samples"]) == 3
    voice = await gen.voices.design_save(
        AGENT, {"generated_voice_id": samples["samples"][0]["generated_voice_id"], "name": "Critic"}
    )
    assert voice.name == "Critic" and voice.voice_id

    preview = await gen.voices.preview(AGENT, voice.voice_id or "", {"text": "hola"})
    done = await gen.voices.wait_preview(AGENT, preview.key, **POLL)
    assert done.status == "completed" and done.audio_url
    await gen.voices.delete(AGENT, voice.voice_id or "")
    assert voice.voice_id not in {v.voice_id for v in await gen.voices.library(AGENT)}


async def test_voice_clone_from_uploaded_audio(gen: GenClient, tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    sample = tmp_path / "me.m4a"
    sample.write_bytes(b"\x00" * 2048)
    res = await gen.uploads.upload(sample, AGENT, content_type="audio/mp4")
    assert res.object_type == "audio"
    voice = await gen.voices.clone(AGENT, {"name": "Me", "audio_resource_id": int(res.id)})
    assert voice.name == "Me"


async def test_organizations(gen: GenClient) -> None:
    org = await gen.organizations.get(WORKSPACE)
    # Today: credit and available_credit.generic (docs/dialect.md §4); balance reads them.
    assert org.balance == pytest.approx(100000.0)
    assert org.available_credit is not None
    assert org.available_credit.generic == pytest.approx(100000.0)
    new = await gen.organizations.create({"name": "Agency B"})
    assert new.name == "Agency B" and new.balance == 0.0
    assert new.id in {o.id for o in await gen.organizations.list()}
    assert (await gen.organizations.update(new.id, {"name": "Agency C"})).name == "Agency C"
    await gen.organizations.delete(new.id)
    with pytest.raises((NotFoundError, AuthenticationError)):
        await gen.organizations.get(new.id)


async def test_tokens(gen: GenClient, sim: Sim) -> None:
    tok = await gen.tokens.create("ci key")
    assert tok.token is not None
    secret = tok.token.get_secret_value()
    assert secret not in repr(tok)  # SecretStr
    assert secret not in redact(f"X {secret} Y")  # registered for redaction at once
    # the new key works for real
    async with GenClient(secret, api_url=sim.api, agent_url=sim.agent) as other:
        assert (await other.agents.me()).id
    assert tok.id in {t.id for t in await gen.tokens.list()}
    assert (await gen.tokens.rename(tok.id, "renamed")).name == "renamed"
    await gen.tokens.revoke(tok.id)
    async with GenClient(secret, api_url=sim.api, agent_url=sim.agent) as other:
        with pytest.raises(AuthenticationError):
            await other.agents.me()
    await gen.tokens.create("another")
    await gen.tokens.revoke_all()
    assert all(t.model_extra and t.model_extra.get("revoked") for t in await gen.tokens.list())


async def test_automation(gen: GenClient) -> None:
    # Today: automation_config = {webhook_url, callback_url, polling_enabled}; the
    # test_* routes answer {success, error?} (docs/dialect.md §4).  The simulator
    # really POSTs, to loopback only: a receiver on 127.0.0.1 takes the calls.
    got_posts: list[str] = []

    async def receive(request: web.Request) -> web.Response:
        got_posts.append(request.path)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        hook = f"http://127.0.0.1:{port}/gen"
        cfg = await gen.automation.update(AGENT, {"webhook_url": hook, "polling_enabled": True})
        assert cfg.model_extra and cfg.model_extra["webhook_url"] == hook
        got = await gen.automation.get(AGENT)
        assert got.model_extra and got.model_extra["polling_enabled"] is True
        assert (await gen.automation.test_webhook(AGENT))["success"] is True
        await gen.automation.update(AGENT, {"callback_url": f"http://127.0.0.1:{port}/cb"})
        assert (await gen.automation.test_callback(AGENT))["success"] is True
        assert got_posts == ["/gen", "/cb"]
    finally:
        await runner.cleanup()
