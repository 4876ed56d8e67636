"""Typed async client of the GEN Auto Content Engine API.

``GenClient`` is the entry point; models, routes and the retry policy are
importable for callers that need them.  The client knows HTTP, not batches:
it never imports the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from genbatch._lazy import exports

if TYPE_CHECKING:
    from genbatch.client import models
    from genbatch.client._client import GenClient
    from genbatch.client.base import AttemptInfo, Hooks, Response
    from genbatch.client.models import (
        GENERATION_CARD,
        Agent,
        AgentCore,
        AgentCoreResult,
        AgentCoreUpdate,
        AgentRun,
        Cell,
        Column,
        ContentResource,
        Conversation,
        DirectUpload,
        DirectUploadBlob,
        DirectUploadTarget,
        Engine,
        Generation,
        GenerationCard,
        GenerationStarted,
        Idea,
        Layer,
        Message,
        Organization,
        OutputResource,
        PublishData,
        Row,
        Template,
        TrainSocialData,
        UserJob,
        UserJobCreated,
    )
    from genbatch.client.retry import Decision, Failure, RetryCounters, RetryPolicy, decide
    from genbatch.client.routes import Route
    from genbatch.client.transfer import DownloadResult

_WHERE: Final[dict[str, str]] = {
    "models": "genbatch.client.models",
    "GenClient": "genbatch.client._client",
    "AttemptInfo": "genbatch.client.base",
    "Hooks": "genbatch.client.base",
    "Response": "genbatch.client.base",
    "GENERATION_CARD": "genbatch.client.models",
    "Agent": "genbatch.client.models",
    "AgentCore": "genbatch.client.models",
    "AgentCoreResult": "genbatch.client.models",
    "AgentCoreUpdate": "genbatch.client.models",
    "AgentRun": "genbatch.client.models",
    "Cell": "genbatch.client.models",
    "Column": "genbatch.client.models",
    "ContentResource": "genbatch.client.models",
    "Conversation": "genbatch.client.models",
    "DirectUpload": "genbatch.client.models",
    "DirectUploadBlob": "genbatch.client.models",
    "DirectUploadTarget": "genbatch.client.models",
    "Engine": "genbatch.client.models",
    "Generation": "genbatch.client.models",
    "GenerationCard": "genbatch.client.models",
    "GenerationStarted": "genbatch.client.models",
    "Idea": "genbatch.client.models",
    "Layer": "genbatch.client.models",
    "Message": "genbatch.client.models",
    "Organization": "genbatch.client.models",
    "OutputResource": "genbatch.client.models",
    "PublishData": "genbatch.client.models",
    "Row": "genbatch.client.models",
    "Template": "genbatch.client.models",
    "TrainSocialData": "genbatch.client.models",
    "UserJob": "genbatch.client.models",
    "UserJobCreated": "genbatch.client.models",
    "Decision": "genbatch.client.retry",
    "Failure": "genbatch.client.retry",
    "RetryCounters": "genbatch.client.retry",
    "RetryPolicy": "genbatch.client.retry",
    "decide": "genbatch.client.retry",
    "Route": "genbatch.client.routes",
    "DownloadResult": "genbatch.client.transfer",
}

__all__ = [
    "GENERATION_CARD",
    "Agent",
    "AgentCore",
    "AgentCoreResult",
    "AgentCoreUpdate",
    "AgentRun",
    "AttemptInfo",
    "Cell",
    "Column",
    "ContentResource",
    "Conversation",
    "Decision",
    "DirectUpload",
    "DirectUploadBlob",
    "DirectUploadTarget",
    "DownloadResult",
    "Engine",
    "Failure",
    "GenClient",
    "Generation",
    "GenerationCard",
    "GenerationStarted",
    "Hooks",
    "Idea",
    "Layer",
    "Message",
    "Organization",
    "OutputResource",
    "PublishData",
    "Response",
    "RetryCounters",
    "RetryPolicy",
    "Route",
    "Row",
    "Template",
    "TrainSocialData",
    "UserJob",
    "UserJobCreated",
    "decide",
    "models",
]

__getattr__, __dir__ = exports(__name__, _WHERE, globals())
