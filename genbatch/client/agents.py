"""Step 1 — set up the agent: user, workspaces, agents, Agent Core, voices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genbatch.client import assumptions as A
from genbatch.client import routes as R
from genbatch.client._resource import Resource
from genbatch.client.base import mapping_body, validate_body
from genbatch.client.models import (
    Agent,
    AgentCore,
    AgentCoreResult,
    AgentCoreUpdate,
    User,
    Voice,
    VoicePreview,
    Workspace,
)
from genbatch.client.redact import register_secret
from genbatch.client.wait import poll_until

__all__ = ["Agents", "Core", "Voices"]


class Agents(Resource):
    """``/me``, ``/workspaces`` and agent CRUD."""

    async def me(self) -> User:
        return await self._client.request_model(User, R.ME)

    async def workspaces(self) -> list[Workspace]:
        return await self._client.request_list(Workspace, R.WORKSPACES)

    async def list(self, workspace_id: str | int | None = None) -> list[Agent]:
        return await self._client.request_list(
            Agent, R.AGENTS_LIST, params={"workspace_id": workspace_id}
        )

    async def create(self, body: Mapping[str, Any]) -> Agent:
        """Create an agent (body not documented: passed through)."""
        return await self._client.request_model(
            Agent, R.AGENTS_CREATE, json=mapping_body(body, "agents.create")
        )

    async def get(self, agent_id: str | int) -> Agent:
        return await self._client.request_model(Agent, R.AGENTS_GET, path={"id": agent_id})

    async def update(self, agent_id: str | int, body: Mapping[str, Any]) -> Agent:
        return await self._client.request_model(
            Agent, R.AGENTS_UPDATE, path={"id": agent_id}, json=mapping_body(body, "agents.update")
        )

    async def delete(self, agent_id: str | int) -> None:
        await self._client.request(R.AGENTS_DELETE, path={"id": agent_id})


class Core(Resource):
    """Agent Core: the one flat setup endpoint."""

    async def get(self, agent_id: str | int) -> AgentCore:
        return await self._client.request_model(AgentCore, R.CORE_GET, path={"agent_id": agent_id})

    async def update(
        self, agent_id: str | int, patch: AgentCoreUpdate | Mapping[str, Any]
    ) -> AgentCoreResult:
        """Write any subset of the core; ``partial`` is True on 207 Multi-Status.

        Unknown fields and a too-long description/personality fail locally
        (the server would answer 422).
        """
        body = validate_body(AgentCoreUpdate, patch).to_body()
        resp = await self._client.request(R.CORE_UPDATE, path={"agent_id": agent_id}, json=body)
        core = self._client.cast(AgentCore, R.CORE_UPDATE, resp.status, resp.data or {})
        return AgentCoreResult(partial=resp.status == 207, core=core)


class Voices(Resource):
    """The voice library, ElevenLabs integration, voice design / clone / preview."""

    async def library(self, agent_id: str | int, source: str | None = None) -> list[Voice]:
        return await self._client.request_list(
            Voice, R.VOICE_LIBRARY, path={"agent_id": agent_id}, params={"source": source}
        )

    async def connect_elevenlabs(self, agent_id: str | int, api_key: str) -> dict[str, Any]:
        register_secret(api_key)  # a third-party key gets the same protection as ours
        resp = await self._client.request(
            R.VOICE_ELEVENLABS_CONNECT, path={"agent_id": agent_id}, json={"api_key": api_key}
        )
        return dict(resp.data or {})

    async def test_elevenlabs(self, agent_id: str | int, api_key: str) -> dict[str, Any]:
        register_secret(api_key)
        resp = await self._client.request(
            R.VOICE_ELEVENLABS_TEST, path={"agent_id": agent_id}, json={"api_key": api_key}
        )
        return dict(resp.data or {})

    async def disconnect_elevenlabs(self, agent_id: str | int) -> None:
        await self._client.request(R.VOICE_ELEVENLABS_DISCONNECT, path={"agent_id": agent_id})

    async def _post(self, route: R.Route, agent_id: str | int, body: Mapping[str, Any]) -> Any:
        resp = await self._client.request(
            route, path={"agent_id": agent_id}, json=mapping_body(body, route.name)
        )
        return resp.data

    async def design_script(self, agent_id: str | int, body: Mapping[str, Any]) -> Any:
        """Voice design step 1: prompt → script."""
        return await self._post(R.VOICE_DESIGN_SCRIPT, agent_id, body)

    async def design_description(self, agent_id: str | int, body: Mapping[str, Any]) -> Any:
        """Voice design step 2: → style description."""
        return await self._post(R.VOICE_DESIGN_DESCRIPTION, agent_id, body)

    async def design_samples(self, agent_id: str | int, body: Mapping[str, Any]) -> Any:
        """Voice design step 3: three candidates."""
        return await self._post(R.VOICE_DESIGN_SAMPLES, agent_id, body)

    async def design_save(self, agent_id: str | int, body: Mapping[str, Any]) -> Voice:
        """Voice design step 4: finalize and save."""
        data = await self._post(R.VOICE_DESIGN_SAVE, agent_id, body)
        return self._client.cast(Voice, R.VOICE_DESIGN_SAVE, 200, data)

    async def clone(self, agent_id: str | int, body: Mapping[str, Any]) -> Voice:
        """Clone a voice from an audio sample."""
        data = await self._post(R.VOICE_CLONE, agent_id, body)
        return self._client.cast(Voice, R.VOICE_CLONE, 200, data)

    async def delete(self, agent_id: str | int, voice_id: str) -> None:
        await self._client.request(
            R.VOICE_DELETE, path={"agent_id": agent_id, "voice_id": voice_id}
        )

    async def preview(
        self, agent_id: str | int, voice_id: str, body: Mapping[str, Any] | None = None
    ) -> VoicePreview:
        """Start an async TTS preview; poll with ``get_preview`` / ``wait_preview``."""
        return await self._client.request_model(
            VoicePreview,
            R.VOICE_PREVIEW,
            path={"agent_id": agent_id, "voice_id": voice_id},
            json=mapping_body(body, "voices.preview"),
        )

    async def get_preview(self, agent_id: str | int, job_id: str | int) -> VoicePreview:
        return await self._client.request_model(
            VoicePreview, R.VOICE_PREVIEW_GET, path={"agent_id": agent_id, "job_id": job_id}
        )

    async def wait_preview(
        self,
        agent_id: str | int,
        job_id: str | int,
        *,
        max_wait: float | None = None,
        initial: float | None = None,
        max_interval: float | None = None,
    ) -> VoicePreview:
        """Poll a preview until it is ready; ``JobFailed`` if it failed."""
        return await poll_until(
            lambda: self.get_preview(agent_id, job_id),
            kind="voice preview",
            job_id=str(job_id),
            status_of=lambda p: p.status,
            error_of=lambda p: p.error,
            done=A.PREVIEW_DONE,
            failed=A.PREVIEW_FAILED,
            max_wait=max_wait,
            initial=initial,
            max_interval=max_interval,
        )
