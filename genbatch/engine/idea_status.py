"""An idea's status moves with its row: the one agent-host call the row pipeline makes.

Rows made by ``genbatch ideas`` carry ``idea_id``; as a row is cloned,
rendered and published, its idea goes ``approve_to_create →
ready_for_review → approved_to_post → posted``.  It lives in the engine so the
row pipeline depends on no feature module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from genbatch.client import GenClient
from genbatch.client.models import IdeaStatus

__all__ = ["IDEA_STATUS_ON", "advance_idea"]

#: Row event → the idea status it means (reference: generated → approve_to_create
#: → ready_for_review → approved_to_post → posted).
IDEA_STATUS_ON: Final[Mapping[str, IdeaStatus]] = {
    "started": "approve_to_create",  # production of the row began (clone)
    "rendered": "ready_for_review",  # the final video rendered (and downloaded)
    "publishing": "approved_to_post",  # just before the publish user job is created
    "posted": "posted",  # the publish job completed with a post_id
}
_FLOW: Final = ("generated", "approve_to_create", "ready_for_review", "approved_to_post", "posted")


async def advance_idea(
    client: GenClient,
    idea_id: str,
    status: IdeaStatus,
    *,
    current: str | None = None,
) -> str:
    """Set an idea's status (``PUT /v1/agent/ideas/:id/status/:status``); the status after.

    Idempotent (an explicit set, not a cycle), so a resumed row may call it
    again.  ``current``: the status the caller last saw; a move backwards in
    the flow (e.g. a resume re-announcing ``started`` after ``rendered``) is
    skipped and ``current`` returned.  Errors raise: a runner should record
    them on the row as a note, not fail a row whose video is fine.
    """
    if current in _FLOW and status in _FLOW and _FLOW.index(status) <= _FLOW.index(current):
        return current
    idea = await client.ideas.set_status(idea_id, status)
    return idea.status or status
