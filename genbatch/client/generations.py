"""Steps 4–5 — trigger cell / layer generations and renders, read, stop, continue, wait.

Generate, render and continue cost credits.  They are never resent blindly:
without the caller's ``idempotency_key`` (or with ``resend_ambiguous=False``)
an ambiguous failure is raised (``APIConnectionError.maybe_sent`` /
``ServerError``) so the caller can read the cell's latest generation and
decide (docs/design.md §5).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genbatch.client import assumptions as A
from genbatch.client import routes as R
from genbatch.client._resource import Resource
from genbatch.client.models import GENERATION_CARD, Generation, GenerationCard, GenerationStarted
from genbatch.client.redact import redact
from genbatch.client.wait import poll_until
from genbatch.errors import RequestValidationError, UnprocessableError

__all__ = ["Generations", "card_body"]


def card_body(card: GenerationCard | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The JSON of a creation card, validated locally (wrong model → no round trip)."""
    if card is None:
        return None
    if isinstance(card, Mapping):
        try:
            card = GENERATION_CARD.validate_python(card)
        except ValueError as exc:
            raise RequestValidationError(f"invalid creation card: {redact(str(exc))}") from None
    return card.to_body()


class Generations(Resource):
    async def get(self, generation_id: str | int) -> Generation:
        """One status read (the engine's poll hub calls this)."""
        return await self._client.request_model(
            Generation, R.GENERATIONS_GET, path={"id": generation_id}
        )

    async def generate(
        self,
        engine_id: str | int,
        cell_id: str | int,
        agent_id: str | int,
        card: GenerationCard | Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        resend_ambiguous: bool = True,
    ) -> GenerationStarted:
        """Trigger the cell's generation with ``card`` (or its saved card when None).

        The card goes out with its canonical ``generation_type`` (``text``,
        ``video_from_text``, …; ASSUMPTION, see assumptions.py).
        """
        return await self._client.request_model(
            GenerationStarted,
            R.CELL_GENERATE,
            path={"id": engine_id, "cell_id": cell_id},
            params={"agent_id": agent_id},
            json=card_body(card),
            idempotency_key=idempotency_key,
            resend_ambiguous=resend_ambiguous,
        )

    async def generate_layer(
        self,
        engine_id: str | int,
        cell_id: str | int,
        layer_id: str | int,
        agent_id: str | int,
        card: GenerationCard | Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> GenerationStarted:
        """Trigger one layer's generation."""
        return await self._client.request_model(
            GenerationStarted,
            R.LAYER_GENERATE,
            path={"id": engine_id, "cell_id": cell_id, "layer_id": layer_id},
            params={"agent_id": agent_id},
            json=card_body(card),
            idempotency_key=idempotency_key,
        )

    async def render(
        self,
        engine_id: str | int,
        cell_id: str | int,
        agent_id: str | int,
        *,
        idempotency_key: str | None = None,
        resend_ambiguous: bool = True,
    ) -> GenerationStarted:
        """Composite the final_video cell's layers into one MP4 (no body)."""
        return await self._client.request_model(
            GenerationStarted,
            R.CELL_RENDER,
            path={"id": engine_id, "cell_id": cell_id},
            params={"agent_id": agent_id},
            idempotency_key=idempotency_key,
            resend_ambiguous=resend_ambiguous,
        )

    async def stop(self, generation_id: str | int) -> Generation | None:
        """Stop a generation (refunds).  Safe to resend.

        Stopping one that is already over answers 422 ``job_cannot_be_stopped``
        (or ``validation_error``): when a read then shows it ended, that
        generation is returned instead of an error (docs/dialect.md §4).  The
        answer is the generation (D) or ``{generation_id, status}`` (OA).
        """
        try:
            resp = await self._client.request(R.GENERATIONS_STOP, path={"id": generation_id})
        except UnprocessableError as exc:
            if exc.error_code not in A.STOP_ALREADY_OVER_CODES:
                raise
            current = await self.get(generation_id)
            if not current.done:
                raise
            return current
        data = resp.data
        if isinstance(data, dict) and "id" not in data and "generation_id" in data:
            data = {**data, "id": data["generation_id"]}
        if isinstance(data, dict) and "id" in data and "status" in data:
            return self._client.cast(Generation, R.GENERATIONS_STOP, resp.status, data)
        return None

    async def continue_(
        self, generation_id: str | int, *, idempotency_key: str | None = None
    ) -> GenerationStarted | Generation | None:
        """Continue a stopped generation (re-charges its price)."""
        resp = await self._client.request(
            R.GENERATIONS_CONTINUE, path={"id": generation_id}, idempotency_key=idempotency_key
        )
        data = resp.data
        if isinstance(data, dict) and "generation_id" in data:
            return self._client.cast(GenerationStarted, R.GENERATIONS_CONTINUE, resp.status, data)
        if isinstance(data, dict) and "id" in data:
            return self._client.cast(Generation, R.GENERATIONS_CONTINUE, resp.status, data)
        return None

    async def wait(
        self,
        generation_id: str | int,
        *,
        max_wait: float | None = None,
        initial: float | None = None,
        max_interval: float | None = None,
    ) -> Generation:
        """Poll until completed; ``JobFailed`` if failed/stopped, ``WaitTimeout`` past max_wait."""
        return await poll_until(
            lambda: self.get(generation_id),
            kind="generation",
            job_id=str(generation_id),
            status_of=lambda g: g.status,
            error_of=lambda g: g.failure,
            done=A.GENERATION_DONE,
            failed=A.GENERATION_FAILED,
            max_wait=max_wait,
            initial=initial,
            max_interval=max_interval,
        )
