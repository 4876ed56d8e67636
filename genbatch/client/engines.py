"""Steps 3–4 — engines (vidsheets) and their rows, columns, cells, layers, variables.

Every engine-scoped call takes ``agent_id`` as the reference's ``?agent_id=``
(today's API takes it in the query or the body on write routes, the query on
reads: docs/dialect.md §2).  Paths go out under the session's engine prefix
(``/v1/vidsheet`` today; see ``dialect.py``).  Generating and rendering live in
``generations.py``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import aiohttp

from genbatch.client import routes as R
from genbatch.client._resource import Resource
from genbatch.client.base import mapping_body, validate_body
from genbatch.client.dialect import ByDialect
from genbatch.client.models import (
    GENERATION_CARD,
    Cell,
    Column,
    Engine,
    EngineCreate,
    GenerationCard,
    GlobalVariable,
    Layer,
    Positions,
    Row,
    cell_card_body,
    cell_value_body,
    cells_mass_update_body,
    engine_clone_body,
    positions_body,
    set_default_user_job_body,
)
from genbatch.client.redact import redact
from genbatch.client.routes import Route
from genbatch.errors import RequestValidationError

__all__ = ["Cells", "Columns", "Engines", "GlobalVariables", "Layers", "Rows"]

AgentId = str | int
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _q(agent_id: AgentId) -> dict[str, object]:
    return {"agent_id": agent_id}


async def _bulk(
    res: Resource,
    route: Route,
    path: Mapping[str, object],
    agent_id: AgentId,
    body: Mapping[str, Any] | ByDialect[dict[str, Any]],
    what: str,
) -> Any:
    """The bulk writes (mass_update, update_positions): answers the reference
    leaves untyped, so the raw JSON comes back."""
    json = body if isinstance(body, ByDialect) else mapping_body(body, what)
    resp = await res._client.request(route, path=path, params=_q(agent_id), json=json)
    return resp.data


class Engines(Resource):
    async def create(
        self, agent_id: AgentId, title: str, *, idempotency_key: str | None = None
    ) -> Engine:
        """A blank engine (the rare custom path: columns, layers, cells follow by hand)."""
        body = validate_body(EngineCreate, {"title": title}).to_body()
        return await self._client.request_model(
            Engine,
            R.ENGINES_CREATE,
            params=_q(agent_id),
            json=body,
            idempotency_key=idempotency_key,
        )

    async def get(self, engine_id: str | int, agent_id: AgentId) -> Engine:
        """The engine with all nested data (columns, rows, cells, layers)."""
        return await self._client.request_model(
            Engine, R.ENGINES_GET, path={"id": engine_id}, params=_q(agent_id)
        )

    async def clone(
        self,
        engine_id: str | int,
        agent_id: AgentId,
        *,
        target_agent_id: AgentId | None = None,
        idempotency_key: str | None = None,
    ) -> Engine:
        """Clone an engine (``agent_id``: its owner) into the same agent or ``target_agent_id``."""
        return await self._client.request_model(
            Engine,
            R.ENGINES_CLONE,
            path={"id": engine_id},
            params=_q(agent_id),
            json=engine_clone_body(target_agent_id),
            idempotency_key=idempotency_key,
        )


class Rows(Resource):
    async def list(self, engine_id: str | int, agent_id: AgentId) -> list[Row]:
        return await self._client.request_list(
            Row, R.ROWS_LIST, path={"id": engine_id}, params=_q(agent_id)
        )

    async def create(
        self, engine_id: str | int, agent_id: AgentId, body: Mapping[str, Any] | None = None
    ) -> Row:
        return await self._client.request_model(
            Row,
            R.ROWS_CREATE,
            path={"id": engine_id},
            params=_q(agent_id),
            json=mapping_body(body, "rows.create"),
        )

    async def get(self, engine_id: str | int, row_id: str | int, agent_id: AgentId) -> Row:
        return await self._client.request_model(
            Row, R.ROWS_GET, path={"id": engine_id, "row_id": row_id}, params=_q(agent_id)
        )

    async def duplicate(self, engine_id: str | int, row_id: str | int, agent_id: AgentId) -> Row:
        return await self._client.request_model(
            Row, R.ROWS_DUPLICATE, path={"id": engine_id, "row_id": row_id}, params=_q(agent_id)
        )

    async def update_positions(
        self, engine_id: str | int, agent_id: AgentId, order: Positions
    ) -> Any:
        """Reorder rows: ids in the order wanted, or ``{id: position}``."""
        return await _bulk(
            self,
            R.ROWS_UPDATE_POSITIONS,
            {"id": engine_id},
            agent_id,
            positions_body(order),
            "rows.update_positions",
        )

    async def mass_update(
        self, engine_id: str | int, agent_id: AgentId, body: Mapping[str, Any]
    ) -> Any:
        return await _bulk(
            self, R.ROWS_MASS_UPDATE, {"id": engine_id}, agent_id, body, "rows.mass_update"
        )


class Columns(Resource):
    """Ingredient columns only; system roles are read-only on the server."""

    async def list(self, engine_id: str | int, agent_id: AgentId) -> list[Column]:
        return await self._client.request_list(
            Column, R.COLUMNS_LIST, path={"id": engine_id}, params=_q(agent_id)
        )

    async def create(
        self, engine_id: str | int, agent_id: AgentId, body: Mapping[str, Any]
    ) -> Column:
        return await self._client.request_model(
            Column,
            R.COLUMNS_CREATE,
            path={"id": engine_id},
            params=_q(agent_id),
            json=mapping_body(body, "columns.create"),
        )

    async def duplicate(self, engine_id: str | int, col_id: str | int, agent_id: AgentId) -> Column:
        return await self._client.request_model(
            Column,
            R.COLUMNS_DUPLICATE,
            path={"id": engine_id, "col_id": col_id},
            params=_q(agent_id),
        )

    async def update_positions(
        self, engine_id: str | int, agent_id: AgentId, order: Positions
    ) -> Any:
        """Reorder columns: ids in the order wanted, or ``{id: position}``."""
        return await _bulk(
            self,
            R.COLUMNS_UPDATE_POSITIONS,
            {"id": engine_id},
            agent_id,
            positions_body(order),
            "columns.update_positions",
        )

    async def mass_update(
        self, engine_id: str | int, agent_id: AgentId, body: Mapping[str, Any]
    ) -> Any:
        return await _bulk(
            self, R.COLUMNS_MASS_UPDATE, {"id": engine_id}, agent_id, body, "columns.mass_update"
        )


class Cells(Resource):
    async def get(self, engine_id: str | int, cell_id: str | int, agent_id: AgentId) -> Cell:
        """The cell, with its generation history (``Cell.latest_generation``)."""
        return await self._client.request_model(
            Cell, R.CELLS_GET, path={"id": engine_id, "cell_id": cell_id}, params=_q(agent_id)
        )

    async def update(
        self, engine_id: str | int, cell_id: str | int, agent_id: AgentId, value: Any
    ) -> Cell:
        """Set the cell's value: ``{"spreadsheet_cell": {"value": …}}``."""
        return await self._client.request_model(
            Cell,
            R.CELLS_UPDATE,
            path={"id": engine_id, "cell_id": cell_id},
            params=_q(agent_id),
            json=cell_value_body(value),
        )

    async def set_card(
        self,
        engine_id: str | int,
        cell_id: str | int,
        agent_id: AgentId,
        card: GenerationCard | Mapping[str, Any],
    ) -> Cell:
        """Save the cell's creation card (validated locally; ASSUMPTION body shape).

        A later generate without a card runs it.  Today's cell read does not
        show the card back (``Cell.creation_card`` is then None).
        """
        try:
            typed = card if not isinstance(card, Mapping) else GENERATION_CARD.validate_python(card)
        except ValueError as exc:
            raise RequestValidationError(f"invalid creation card: {redact(str(exc))}") from None
        return await self._client.request_model(
            Cell,
            R.CELLS_UPDATE,
            path={"id": engine_id, "cell_id": cell_id},
            params=_q(agent_id),
            json=cell_card_body(typed.to_body()),
        )

    async def mass_update(
        self,
        engine_id: str | int,
        agent_id: AgentId,
        cells: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    ) -> list[Cell]:
        """Update many cells at once: ``[{id, value?, additional_attributes?}, …]``
        (sent as ``{"spreadsheet_cells": [...]}``), or that whole body."""
        if isinstance(cells, Mapping):
            body = mapping_body(cells, "cells.mass_update")
        else:
            body = cells_mass_update_body(cells)
        return await self._client.request_list(
            Cell,
            R.CELLS_MASS_UPDATE,
            path={"id": engine_id},
            params=_q(agent_id),
            json=body,
        )

    async def set_default_user_job(
        self,
        engine_id: str | int,
        cell_id: str | int,
        agent_id: AgentId,
        user_job_id: str | int,
        *,
        is_user_job: bool = True,
    ) -> Cell:
        """Make one of the cell's generations the one it displays (its ``default_user_job``)."""
        return await self._client.request_model(
            Cell,
            R.CELLS_SET_DEFAULT_USER_JOB,
            path={"id": engine_id, "cell_id": cell_id},
            params=_q(agent_id),
            json=set_default_user_job_body(user_job_id, is_user_job=is_user_job),
        )


class Layers(Resource):
    """The layer stack of a video-role cell (composited by render)."""

    async def create(
        self,
        engine_id: str | int,
        cell_id: str | int,
        agent_id: AgentId,
        body: Mapping[str, Any],
    ) -> Layer:
        return await self._client.request_model(
            Layer,
            R.LAYERS_CREATE,
            path={"id": engine_id, "cell_id": cell_id},
            params=_q(agent_id),
            json=mapping_body(body, "layers.create"),
        )

    async def get(
        self, engine_id: str | int, cell_id: str | int, layer_id: str | int, agent_id: AgentId
    ) -> Layer:
        return await self._client.request_model(
            Layer,
            R.LAYERS_GET,
            path={"id": engine_id, "cell_id": cell_id, "layer_id": layer_id},
            params=_q(agent_id),
        )

    async def update(
        self,
        engine_id: str | int,
        cell_id: str | int,
        layer_id: str | int,
        agent_id: AgentId,
        body: Mapping[str, Any],
    ) -> Layer:
        return await self._client.request_model(
            Layer,
            R.LAYERS_UPDATE,
            path={"id": engine_id, "cell_id": cell_id, "layer_id": layer_id},
            params=_q(agent_id),
            json=mapping_body(body, "layers.update"),
        )

    async def delete(
        self, engine_id: str | int, cell_id: str | int, layer_id: str | int, agent_id: AgentId
    ) -> None:
        await self._client.request(
            R.LAYERS_DELETE,
            path={"id": engine_id, "cell_id": cell_id, "layer_id": layer_id},
            params=_q(agent_id),
        )

    async def duplicate(
        self, engine_id: str | int, cell_id: str | int, layer_id: str | int, agent_id: AgentId
    ) -> Layer:
        return await self._client.request_model(
            Layer,
            R.LAYERS_DUPLICATE,
            path={"id": engine_id, "cell_id": cell_id, "layer_id": layer_id},
            params=_q(agent_id),
        )

    async def update_positions(
        self,
        engine_id: str | int,
        cell_id: str | int,
        agent_id: AgentId,
        order: Positions,
    ) -> Any:
        """Reorder a cell's layers: ids in the order wanted, or ``{id: position}``."""
        return await _bulk(
            self,
            R.LAYERS_UPDATE_POSITIONS,
            {"id": engine_id, "cell_id": cell_id},
            agent_id,
            positions_body(order),
            "layers.update_positions",
        )


class GlobalVariables(Resource):
    async def list(self, engine_id: str | int, agent_id: AgentId) -> list[GlobalVariable]:
        return await self._client.request_list(
            GlobalVariable, R.GLOBAL_VARIABLES_LIST, path={"id": engine_id}, params=_q(agent_id)
        )

    async def import_xlsx(
        self, engine_id: str | int, agent_id: AgentId, path: str | os.PathLike[str]
    ) -> Any:
        """Upload an XLSX of variables (multipart ``file``; ASSUMPTION field name)."""
        p = Path(path)
        if not await asyncio.to_thread(p.is_file):
            raise RequestValidationError(f"no such file: {p.name}")

        def form() -> tuple[aiohttp.FormData, list[IO[bytes]]]:
            f = open(p, "rb")  # noqa: SIM115 — closed by the request loop
            fd = aiohttp.FormData()
            fd.add_field("file", f, filename=p.name, content_type=_XLSX)
            return fd, [f]

        resp = await self._client.request(
            R.GLOBAL_VARIABLES_IMPORT, path={"id": engine_id}, params=_q(agent_id), form=form
        )
        return resp.data

    async def template(self) -> bytes:
        """The XLSX template for variable imports (raw bytes)."""
        resp = await self._client.request(R.GLOBAL_VARIABLES_TEMPLATE, raw=True)
        data: bytes = resp.data
        return data
