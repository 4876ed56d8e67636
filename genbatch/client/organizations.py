"""Step 1 — workspaces (organizations, with the credit balance) and API keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genbatch.client import routes as R
from genbatch.client._resource import Resource
from genbatch.client.base import mapping_body
from genbatch.client.models import Organization, PersistedToken
from genbatch.client.redact import register_secret

__all__ = ["Organizations", "Tokens"]


class Organizations(Resource):
    async def list(self) -> list[Organization]:
        return await self._client.request_list(Organization, R.ORGS_LIST)

    async def create(self, body: Mapping[str, Any]) -> Organization:
        return await self._client.request_model(
            Organization, R.ORGS_CREATE, json=mapping_body(body, "organizations.create")
        )

    async def get(self, org_id: str | int) -> Organization:
        """The workspace; ``Organization.balance`` is what the engine reconciles against."""
        return await self._client.request_model(Organization, R.ORGS_GET, path={"id": org_id})

    async def update(self, org_id: str | int, body: Mapping[str, Any]) -> Organization:
        return await self._client.request_model(
            Organization,
            R.ORGS_UPDATE,
            path={"id": org_id},
            json=mapping_body(body, "organizations.update"),
        )

    async def delete(self, org_id: str | int) -> None:
        await self._client.request(R.ORGS_DELETE, path={"id": org_id})


class Tokens(Resource):
    """Persisted API tokens.  A created token is registered for redaction at once."""

    async def create(self, name: str, **extra: Any) -> PersistedToken:
        token = await self._client.request_model(
            PersistedToken, R.TOKENS_CREATE, json={"name": name, **extra}
        )
        if token.token is not None:
            register_secret(token.token.get_secret_value())
        return token

    async def list(self) -> list[PersistedToken]:
        return await self._client.request_list(PersistedToken, R.TOKENS_LIST)

    async def rename(self, token_id: str | int, name: str) -> PersistedToken:
        return await self._client.request_model(
            PersistedToken, R.TOKENS_RENAME, path={"id": token_id}, json={"name": name}
        )

    async def revoke(self, token_id: str | int) -> None:
        await self._client.request(R.TOKENS_REVOKE, path={"id": token_id})

    async def revoke_all(self) -> None:
        await self._client.request(R.TOKENS_REVOKE_ALL)
