"""Preflight: one read each for the key, every agent, template and workspace a table names.

A wrong agent id or template slug would otherwise fail each of its rows in
turn, one paid-path request at a time; an empty workspace would skip them
all.  ``genbatch run`` checks before its first row (a failure is
:class:`~genbatch.engine.plan.StartError`, exit 2, with the fix) and
``genbatch plan --check`` runs the same reads without spending anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from genbatch._constants import CLIENT_ENV_API_KEY
from genbatch.client import GenClient
from genbatch.engine.plan import StartError
from genbatch.engine.table import Table
from genbatch.errors import (
    AgentNotFoundError,
    APIError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
)

#: Distinct agents and templates checked before the first row, at most.
ENGINE_PREFLIGHT_MAX: Final = 50

__all__ = ["ENGINE_PREFLIGHT_MAX", "Preflight", "preflight"]


@dataclass(slots=True)
class Preflight:
    """What the reads found: agents checked, templates checked, balance per workspace.

    ``balances`` holds None for a workspace whose balance the API did not
    give; ``errors`` the reads that failed for a reason other than a wrong
    id (a 5xx, a timeout): they do not stop a run, whose retries cope.
    """

    agents: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    balances: dict[str, float | None] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def balance(self) -> float | None:
        """The smallest known workspace balance (what a one-workspace run may spend)."""
        known = [b for b in self.balances.values() if b is not None]
        return min(known) if known else None


async def preflight(
    client: GenClient, table: Table, *, on_error: Callable[[str], None] | None = None
) -> Preflight:
    """Read the key, each distinct agent and template and each agent's workspace.

    Raises :class:`StartError` for a refused key, an agent or template this
    key cannot use, and a workspace with nothing left to spend.
    ``on_error`` hears every failed read (the run logs them).
    """
    found = Preflight()
    note = on_error or (lambda _message: None)
    agents = table.distinct("agent_id", ENGINE_PREFLIGHT_MAX)
    templates = table.distinct("template", ENGINE_PREFLIGHT_MAX)
    try:
        if not agents:
            await client.agents.me()
        for agent in agents:
            try:
                got = await client.agents.get(agent)
            except (NotFoundError, PermissionDeniedError, AgentNotFoundError) as exc:
                note(str(exc))
                raise StartError(
                    f"agent {agent} is not one this key can use ({exc.status}): check "
                    "--agent or the agent_id column (the id GEN shows, or "
                    "agents_results.csv from genbatch agents apply)"
                ) from None
            found.agents.append(agent)
            workspace = got.workspace_id
            if workspace is not None and workspace not in found.balances:
                org = await client.organizations.get(workspace)
                found.balances[workspace] = org.balance
                if org.balance is not None and org.balance <= 0:
                    raise StartError(
                        f"workspace {workspace} (agent {agent}) has no credits left "
                        f"(balance {org.balance:g}): top it up in GEN's dashboard, then rerun"
                    )
        for slug in templates:
            try:
                await client.templates.get(slug)
            except (NotFoundError, PermissionDeniedError) as exc:
                note(str(exc))
                raise StartError(
                    f"template {slug!r} is not on this GEN ({exc.status}): check "
                    "--template or the template column (genbatch templates lists them)"
                ) from None
            found.templates.append(slug)
    except AuthenticationError as exc:
        raise StartError(
            f"the API key was refused (401): {exc}; check {CLIENT_ENV_API_KEY}"
        ) from None
    except APIError as exc:
        note(str(exc))
        found.errors.append(str(exc))
    return found
