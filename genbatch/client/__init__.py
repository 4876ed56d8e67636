"""Typed async client of the GEN Auto Content Engine API.

``GenClient`` is the entry point; models, routes and the retry policy are
importable for callers that need them.  The client knows HTTP, not batches:
it never imports the engine.
"""

from __future__ import annotations

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
