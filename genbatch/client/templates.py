"""Step 3 — templates: list, preview, clone into an agent (the 80 % path)."""

from __future__ import annotations

from genbatch.client import routes as R
from genbatch.client._resource import Resource
from genbatch.client.base import validate_body
from genbatch.client.models import CloneRequest, Engine, Template

__all__ = ["Templates"]


class Templates(Resource):
    async def list(self, page: int | None = None) -> list[Template]:
        return await self._client.request_list(Template, R.TEMPLATES_LIST, params={"page": page})

    async def get(self, slug: str) -> Template:
        return await self._client.request_model(Template, R.TEMPLATES_GET, path={"slug": slug})

    async def clone(
        self, slug: str, agent_id: str | int, *, idempotency_key: str | None = None
    ) -> Engine:
        """Clone a template into the agent → a fully configured engine (free).

        A POST that creates an engine: resent after an ambiguous failure only
        with the caller's ``idempotency_key`` (see ``retry.py``).
        """
        body = validate_body(CloneRequest, {"agent_id": agent_id}).to_body()
        return await self._client.request_model(
            Engine,
            R.TEMPLATES_CLONE,
            path={"slug": slug},
            json=body,
            idempotency_key=idempotency_key,
        )
