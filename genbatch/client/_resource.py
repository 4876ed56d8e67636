"""Base of the thin resource groups: each holds the client and nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from genbatch.client.base import BaseClient


class Resource:
    """A group of endpoints; all HTTP behaviour lives in ``BaseClient.request``."""

    __slots__ = ("_client",)

    def __init__(self, client: BaseClient) -> None:
        self._client = client
