"""User jobs (publish_content, train_social) and the agent's automation config.

Publishing posts to a real social account: ``publish`` is a side-effecting
POST, resent after an ambiguous failure only with the caller's key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

import aiohttp
import orjson

from genbatch.client import assumptions as A
from genbatch.client import routes as R
from genbatch.client._resource import Resource
from genbatch.client.base import mapping_body, validate_body
from genbatch.client.models import (
    TRAIN_SOCIAL_FORM_DATA,
    TRAIN_SOCIAL_FORM_TYPE,
    TRAIN_SOCIAL_JOB_TYPE,
    AutomationConfig,
    PublishData,
    TrainSocialData,
    UserJob,
    UserJobCreated,
    publish_body,
)
from genbatch.client.wait import poll_until

__all__ = ["Automation", "UserJobs"]


class UserJobs(Resource):
    async def publish(
        self,
        agent_id: str | int,
        data: PublishData | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> UserJobCreated:
        """Publish (now or scheduled).  ``data`` goes on the wire as a JSON *string*."""
        body = publish_body(validate_body(PublishData, data))
        return await self._client.request_model(
            UserJobCreated,
            R.USER_JOBS_CREATE,
            params={"agent_id": agent_id},
            json=body,
            idempotency_key=idempotency_key,
        )

    async def train_social(
        self,
        agent_id: str | int,
        data: TrainSocialData | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> UserJobCreated:
        """Scrape a platform into the agent's knowledge base (multipart form, as the reference)."""
        payload = orjson.dumps(validate_body(TrainSocialData, data).to_body()).decode()

        def form() -> tuple[aiohttp.FormData, list[IO[bytes]]]:
            fd = aiohttp.FormData()
            fd.add_field(TRAIN_SOCIAL_FORM_TYPE, TRAIN_SOCIAL_JOB_TYPE)
            fd.add_field(TRAIN_SOCIAL_FORM_DATA, payload)
            return fd, []

        return await self._client.request_model(
            UserJobCreated,
            R.USER_JOBS_CREATE,
            params={"agent_id": agent_id},
            form=form,
            idempotency_key=idempotency_key,
        )

    async def get(self, job_id: str | int, agent_id: str | int) -> UserJob:
        return await self._client.request_model(
            UserJob, R.USER_JOBS_GET, path={"id": job_id}, params={"agent_id": agent_id}
        )

    async def update(
        self, job_id: str | int, agent_id: str | int, body: Mapping[str, Any]
    ) -> UserJob:
        """Update a monitoring job."""
        return await self._client.request_model(
            UserJob,
            R.USER_JOBS_UPDATE,
            path={"id": job_id},
            params={"agent_id": agent_id},
            json=mapping_body(body, "user_jobs.update"),
        )

    async def wait(
        self,
        job_id: str | int,
        agent_id: str | int,
        *,
        max_wait: float | None = None,
        initial: float | None = None,
        max_interval: float | None = None,
    ) -> UserJob:
        """Poll until completed (``result.post_id`` for a publish); ``JobFailed`` on failure."""
        return await poll_until(
            lambda: self.get(job_id, agent_id),
            kind="user job",
            job_id=str(job_id),
            status_of=lambda j: j.status,
            error_of=lambda j: j.failure,
            done=A.USER_JOB_DONE,
            failed=A.USER_JOB_FAILED,
            max_wait=max_wait,
            initial=initial,
            max_interval=max_interval,
        )


class Automation(Resource):
    """Webhook / callback configuration of an agent."""

    async def get(self, agent_id: str | int) -> AutomationConfig:
        return await self._client.request_model(
            AutomationConfig, R.AUTOMATION_GET, path={"agent_id": agent_id}
        )

    async def update(self, agent_id: str | int, body: Mapping[str, Any]) -> AutomationConfig:
        return await self._client.request_model(
            AutomationConfig,
            R.AUTOMATION_UPDATE,
            path={"agent_id": agent_id},
            json=mapping_body(body, "automation.update"),
        )

    async def test_webhook(self, agent_id: str | int, body: Mapping[str, Any] | None = None) -> Any:
        resp = await self._client.request(
            R.AUTOMATION_TEST_WEBHOOK,
            path={"agent_id": agent_id},
            json=mapping_body(body, "automation.test_webhook"),
        )
        return resp.data

    async def test_callback(
        self, agent_id: str | int, body: Mapping[str, Any] | None = None
    ) -> Any:
        resp = await self._client.request(
            R.AUTOMATION_TEST_CALLBACK,
            path={"agent_id": agent_id},
            json=mapping_body(body, "automation.test_callback"),
        )
        return resp.data
