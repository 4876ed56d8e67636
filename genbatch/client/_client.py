"""``GenClient``: the base client plus one attribute per resource group."""

from __future__ import annotations

import os
from typing import Any

from genbatch.client.agents import Agents, Core, Voices
from genbatch.client.assets import Assets, ContentResources, Uploads
from genbatch.client.base import BaseClient
from genbatch.client.engines import Cells, Columns, Engines, GlobalVariables, Layers, Rows
from genbatch.client.generations import Generations
from genbatch.client.ideas import Conversations, Ideas, Research, Runs
from genbatch.client.jobs import Automation, UserJobs
from genbatch.client.organizations import Organizations, Tokens
from genbatch.client.templates import Templates
from genbatch.client.transfer import DownloadResult, download

__all__ = ["GenClient"]


class GenClient(BaseClient):
    """Typed async client of the GEN API (both hosts), one pooled aiohttp session.

    ::

        async with GenClient() as gen:                 # GEN_API_KEY from the env
            engine = await gen.templates.clone("tiktok-vo-broll", agent_id)
            started = await gen.generations.render(engine.id, cell.id, agent_id)
            done = await gen.generations.wait(started.generation_id)
            size, sha = await gen.download(done.video_url, "out.mp4")

    Arguments: ``api_key`` (else ``GEN_API_KEY``), ``api_url`` / ``agent_url``
    (else ``GEN_API_URL`` / ``GEN_AGENT_URL``, else the reference's hosts),
    ``auth`` ("x-api-key" | "bearer"), ``timeout``, ``max_retries``,
    ``retry_policy``, pool limits, ``session`` (an injected aiohttp session,
    never closed by the client), ``hooks`` (around every attempt).
    """

    def __init__(self, api_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(api_key, **kwargs)
        # Step 1 — agent setup
        self.agents = Agents(self)
        self.core = Core(self)
        self.voices = Voices(self)
        self.organizations = Organizations(self)
        self.tokens = Tokens(self)
        # Step 2 — ideas
        self.runs = Runs(self)
        self.conversations = Conversations(self)
        self.ideas = Ideas(self)
        self.research = Research(self)
        self.user_jobs = UserJobs(self)
        # Step 3 — vidsheets
        self.templates = Templates(self)
        self.engines = Engines(self)
        # Step 4 — edit and generate
        self.rows = Rows(self)
        self.columns = Columns(self)
        self.cells = Cells(self)
        self.layers = Layers(self)
        self.generations = Generations(self)
        self.global_variables = GlobalVariables(self)
        self.content_resources = ContentResources(self)
        self.assets = Assets(self)
        self.uploads = Uploads(self)
        self.automation = Automation(self)

    async def __aenter__(self) -> GenClient:
        await super().__aenter__()
        return self

    async def download(self, url: str, path: str | os.PathLike[str]) -> DownloadResult:
        """Stream a public CDN URL to ``path`` (via ``path.part``); ``(size, sha256)``."""
        return await download(
            self.storage_session,
            url,
            path,
            policy=self.policy,
            client_timeout=self.transfer_timeout,
            stats=self.stats,
        )
