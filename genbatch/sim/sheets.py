"""Engines (vidsheets) and their structure: columns, rows, cells, layers, template clones.

Every row has one cell per column, so adding a column adds a cell to every
row and adding a row adds a cell to every column; cloning deep-copies cards
and settings so two engines never share state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from genbatch.sim import templates
from genbatch.sim.entities import (
    Agent,
    CdnObject,
    Cell,
    Column,
    Engine,
    Json,
    Layer,
    Row,
    Shared,
    User,
    as_int,
    copy_json,
    not_found,
)


class Sheets:
    """Engines with their columns, rows, cells and layers, keyed by id."""

    def __init__(self, sh: Shared) -> None:
        self._sh = sh
        self.engines: dict[int, Engine] = {}
        self.columns: dict[int, Column] = {}
        self.rows: dict[int, Row] = {}
        self.cells: dict[int, Cell] = {}
        self.layers: dict[int, Layer] = {}
        for t in templates.TEMPLATES:
            sh.cdn[f"thumbnails/template_{t.slug}.jpg"] = CdnObject(
                "thumbnail", "image/jpeg", t.aspect_ratio
            )
            sh.cdn[f"outputs/template_{t.slug}_sample.mp4"] = CdnObject(
                "render",
                "video/mp4",
                t.aspect_ratio,
                manifest={"template_slug": t.slug, "sample": True},
            )

    # ------------------------------------------------------------------ access
    def engine(self, user: User, agent: Agent, engine_id: object) -> Engine:
        # ASSUMPTION: another agent's engine is 404 (docs/sim-assumptions.md, "forbidden").
        eid = as_int(engine_id)
        eng = self.engines.get(eid) if eid is not None else None
        if eng is None or eng.workspace_id not in user.workspace_ids:
            raise not_found("engine", engine_id)  # not yours looks like missing
        if eng.agent_id != agent.id:
            raise not_found("engine", f"{engine_id} of agent {agent.id}")
        return eng

    def cell(self, eng: Engine, cell_id: object) -> Cell:
        cid = as_int(cell_id)
        cell = self.cells.get(cid) if cid is not None else None
        if cell is None or cell.engine_id != eng.id:
            raise not_found("cell", cell_id)
        return cell

    def row(self, eng: Engine, row_id: object) -> Row:
        rid = as_int(row_id)
        row = self.rows.get(rid) if rid is not None else None
        if row is None or row.engine_id != eng.id:
            raise not_found("row", row_id)
        return row

    def column(self, eng: Engine, column_id: object) -> Column:
        cid = as_int(column_id)
        col = self.columns.get(cid) if cid is not None else None
        if col is None or col.engine_id != eng.id:
            raise not_found("column", column_id)
        return col

    def layer(self, cell: Cell, layer_id: object) -> Layer:
        lid = as_int(layer_id)
        layer = self.layers.get(lid) if lid is not None else None
        if layer is None or layer.cell_id != cell.id:
            raise not_found("layer", layer_id)
        return layer

    # ------------------------------------------------------------------ building
    def _new_engine(
        self, agent: Agent, title: str, slug: str | None, aspect: str, now: float
    ) -> Engine:
        eng = Engine(
            self._sh.next_id("engine"), agent.id, agent.workspace_id, title, slug, aspect, now, now
        )
        self.engines[eng.id] = eng
        return eng

    def add_column(
        self, eng: Engine, name: str, column_type: str, role: str, card: Json | None
    ) -> Column:
        t = self._sh.clock.now()
        col = Column(
            self._sh.next_id("column"),
            eng.id,
            name,
            column_type,
            role,
            len(eng.column_ids),
            copy_json(card),
            t,
            t,
        )
        self.columns[col.id] = col
        eng.column_ids.append(col.id)
        for rid in eng.row_ids:
            self._add_cell(eng, self.rows[rid], col, None)
        return col

    def _add_cell(self, eng: Engine, row: Row, col: Column, value: Any) -> Cell:
        cell = Cell(
            self._sh.next_id("cell"), eng.id, row.id, col.id, value, copy_json(col.default_card)
        )
        cell.created_at = cell.updated_at = self._sh.clock.now()
        self.cells[cell.id] = cell
        row.cell_ids[col.id] = cell.id
        return cell

    def add_row(self, eng: Engine, layer_specs: Iterable[templates.LayerSpec] = ()) -> Row:
        row = Row(self._sh.next_id("row"), eng.id, len(eng.row_ids))
        row.created_at = row.updated_at = self._sh.clock.now()
        self.rows[row.id] = row
        eng.row_ids.append(row.id)
        for cid in eng.column_ids:
            cell = self._add_cell(eng, row, self.columns[cid], None)
            if self.columns[cid].role == "final_video":
                for spec in layer_specs:
                    self.add_layer(
                        cell, spec.name, spec.layer_type, spec.source_column, spec.settings
                    )
        return row

    def add_layer(
        self,
        cell: Cell,
        name: str,
        layer_type: str,
        source_column: str | None,
        settings: Json,
        card: Json | None = None,
    ) -> Layer:
        layer = Layer(
            self._sh.next_id("layer"),
            cell.engine_id,
            cell.id,
            name,
            layer_type,
            source_column,
            len(cell.layer_ids),
            copy_json(settings) or {},
            copy_json(card),
        )
        layer.created_at = layer.updated_at = self._sh.clock.now()
        self.layers[layer.id] = layer
        cell.layer_ids.append(layer.id)
        return layer

    def clone_template(self, agent: Agent, slug: str, now: float) -> Engine:
        spec = templates.TEMPLATES_BY_SLUG.get(slug)
        if spec is None:
            raise not_found("template", slug)
        eng = self._new_engine(agent, spec.title, spec.slug, spec.aspect_ratio, now)
        stock: dict[int, int] = {}
        for c in spec.columns:
            col = self.add_column(eng, c.name, c.column_type, c.role, c.card)
            data = (c.card or {}).get("data") or {}
            if (c.card or {}).get("generation_type") == "media" and "content_resource_id" in data:
                stock[col.id] = int(data["content_resource_id"])
        row = self.add_row(eng, spec.layers)
        # ASSUMPTION: a template ships with its stock media attached (the montage's
        # music plays unless replaced), so that layer has content from the clone on
        # (docs/sim-assumptions.md, "render-content").
        for col_id, resource_id in stock.items():
            self.cells[row.cell_ids[col_id]].output_ids = [resource_id]
        return eng

    def blank_engine(self, agent: Agent, title: str, now: float) -> Engine:
        """A custom engine: only the system final_video column and one row."""
        # ASSUMPTION: so it can be rendered (docs/sim-assumptions.md, "blank-engine").
        eng = self._new_engine(agent, title, None, "9:16", now)
        self.add_column(eng, "final_video", "video", "final_video", None)
        self.add_row(eng)
        return eng

    def clone_engine(self, src: Engine, agent: Agent, now: float) -> Engine:
        eng = self._new_engine(
            agent, f"{src.title} (copy)", src.template_slug, src.aspect_ratio, now
        )
        col_map: dict[int, int] = {}
        for cid in src.column_ids:
            c = self.columns[cid]
            col_map[cid] = self.add_column(eng, c.name, c.column_type, c.role, c.default_card).id
        for rid in src.row_ids:
            self._copy_row_into(eng, self.rows[rid], col_map)
        return eng

    def duplicate_row(self, eng: Engine, row: Row) -> Row:
        return self._copy_row_into(eng, row, {cid: cid for cid in eng.column_ids})

    def _copy_row_into(self, eng: Engine, src: Row, col_map: dict[int, int]) -> Row:
        row = self.add_row(eng)
        row.attributes = copy_json(src.attributes)
        for src_col, src_cell_id in src.cell_ids.items():
            dst_col = col_map.get(src_col)
            if dst_col is None:
                continue
            s, d = self.cells[src_cell_id], self.cells[row.cell_ids[dst_col]]
            d.value, d.card = copy_json(s.value), copy_json(s.card)
            d.attributes = copy_json(s.attributes)
            for lid in s.layer_ids:
                lay = self.layers[lid]
                self.add_layer(
                    d, lay.name, lay.layer_type, lay.source_column, lay.settings, lay.card
                )
        return row

    def delete_layer(self, cell: Cell, layer: Layer) -> None:
        cell.layer_ids.remove(layer.id)
        del self.layers[layer.id]
        for pos, lid in enumerate(cell.layer_ids):
            self.layers[lid].position = pos

    def render_manifest(self, eng: Engine, cell: Cell) -> Json:
        """What a render of ``cell`` will carry in its MP4: the row's values and the layers."""
        # ASSUMPTION: the manifest's shape (docs/sim-assumptions.md, "render").
        row = self.rows[cell.row_id]
        values: Json = {}
        for cid in eng.column_ids:
            col = self.columns[cid]
            if col.role == "final_video":
                continue
            c = self.cells[row.cell_ids[cid]]
            values[col.name] = c.value
        layers = []
        for lid in cell.layer_ids:
            lay = self.layers[lid]
            layers.append(
                {
                    "id": lay.id,
                    "name": lay.name,
                    "layer_type": lay.layer_type,
                    "source_column": lay.source_column,
                    "position": lay.position,
                    "settings": copy_json(lay.settings),
                }
            )
        return {
            "engine_id": eng.id,
            "row_id": row.id,
            "cell_id": cell.id,
            "generation_id": None,
            "template_slug": eng.template_slug,
            "aspect_ratio": eng.aspect_ratio,
            "cells": values,
            "layers": layers,
        }
