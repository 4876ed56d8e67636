"""Step 2 — agent runs (ideas, refine, preferences, chat), conversations, ideas, research.

All on the agent host.  A run is async: ``runs.start`` → ``runs.get`` until
``completed`` → read ideas from the conversation.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, Literal, get_args

from genbatch.client import assumptions as A
from genbatch.client import routes as R
from genbatch.client._resource import Resource
from genbatch.client.base import validate_body
from genbatch.client.models import (
    AgentRun,
    AgentRunRequest,
    Conversation,
    ConversationUpdate,
    Idea,
    IdeaStatus,
    Message,
    ResearchRequest,
)
from genbatch.client.wait import poll_until
from genbatch.errors import RequestValidationError

__all__ = ["Conversations", "Ideas", "Research", "Runs"]


class Runs(Resource):
    async def start(
        self,
        agent_id: str | int,
        message: str,
        *,
        conversation_id: str | int | None = None,
        idempotency_key: str | None = None,
    ) -> AgentRun:
        """Trigger a run; a message starting ``remember:`` sets a lasting preference."""
        body = validate_body(
            AgentRunRequest,
            {"agent_id": agent_id, "message": message, "conversation_id": conversation_id},
        ).to_body()
        return await self._client.request_model(
            AgentRun, R.RUN_START, json=body, idempotency_key=idempotency_key
        )

    async def get(self, run_id: str | int) -> AgentRun:
        return await self._client.request_model(AgentRun, R.RUN_GET, path={"run_id": run_id})

    async def approve(self, run_id: str | int, approved: bool = True) -> AgentRun:
        """Approve (or reject) the action a run is waiting on."""
        return await self._client.request_model(
            AgentRun, R.RUN_APPROVE, path={"run_id": run_id}, json={"approved": approved}
        )

    async def wait(
        self,
        run_id: str | int,
        *,
        max_wait: float | None = None,
        initial: float | None = None,
        max_interval: float | None = None,
    ) -> AgentRun:
        """Poll until ``completed`` (or ``awaiting_approval``); ``JobFailed`` on failure."""
        return await poll_until(
            lambda: self.get(run_id),
            kind="agent run",
            job_id=str(run_id),
            status_of=lambda r: r.status,
            error_of=lambda r: r.error,
            done=A.RUN_DONE,
            failed=A.RUN_FAILED,
            max_wait=max_wait,
            initial=initial,
            max_interval=max_interval,
        )


class Research(Resource):
    async def start(
        self,
        agent_id: str | int,
        topic: str,
        depth: Literal["quick", "default", "deep"] = "default",
        *,
        idempotency_key: str | None = None,
    ) -> AgentRun:
        """Standalone research; poll the returned run with ``client.runs``."""
        body = validate_body(
            ResearchRequest, {"agent_id": agent_id, "topic": topic, "depth": depth}
        ).to_body()
        return await self._client.request_model(
            AgentRun, R.RESEARCH_START, json=body, idempotency_key=idempotency_key
        )


class Conversations(Resource):
    async def list(self, agent_id: str | int) -> list[Conversation]:
        return await self._client.request_list(
            Conversation, R.CONVERSATIONS_LIST, params={"agent_id": agent_id}
        )

    async def get(self, conversation_id: str | int) -> Conversation:
        return await self._client.request_model(
            Conversation, R.CONVERSATIONS_GET, path={"id": conversation_id}
        )

    async def update(
        self, conversation_id: str | int, patch: ConversationUpdate | Mapping[str, Any]
    ) -> Conversation:
        """Rename and/or pin."""
        body = validate_body(ConversationUpdate, patch).to_body()
        return await self._client.request_model(
            Conversation, R.CONVERSATIONS_UPDATE, path={"id": conversation_id}, json=body
        )

    async def delete(self, conversation_id: str | int) -> None:
        await self._client.request(R.CONVERSATIONS_DELETE, path={"id": conversation_id})

    async def messages(self, conversation_id: str | int) -> builtins.list[Message]:
        return await self._client.request_list(
            Message, R.CONVERSATIONS_MESSAGES, path={"id": conversation_id}
        )

    async def runs(self, conversation_id: str | int) -> builtins.list[AgentRun]:
        return await self._client.request_list(
            AgentRun, R.CONVERSATIONS_RUNS, path={"id": conversation_id}
        )

    async def ideas(self, conversation_id: str | int) -> builtins.list[Idea]:
        """Every idea carried by the conversation's messages, in order."""
        return [idea for m in await self.messages(conversation_id) for idea in m.ideas]


class Ideas(Resource):
    async def list(self, agent_id: str | int, status: IdeaStatus | None = None) -> list[Idea]:
        return await self._client.request_list(
            Idea, R.IDEAS_LIST, params={"agent_id": agent_id, "status": status}
        )

    async def cycle_status(self, idea_id: str | int) -> Idea:
        """Move the idea to its next status in the flow."""
        return await self._client.request_model(Idea, R.IDEAS_CYCLE_STATUS, path={"id": idea_id})

    async def set_status(self, idea_id: str | int, status: IdeaStatus) -> Idea:
        if status not in get_args(IdeaStatus):
            raise RequestValidationError(f"unknown idea status {status!r}")
        return await self._client.request_model(
            Idea, R.IDEAS_SET_STATUS, path={"id": idea_id, "status": status}
        )
