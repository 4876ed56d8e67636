"""Generations and renders: the paid, asynchronous jobs of a cell or layer.

A generation is charged when accepted and refunded in full when it is
stopped or fails.  Its status is computed on read from its own clock; the
outputs, refund and cell value are written once, when it settles (on read
or from the World's due queue, whichever comes first).

With a job cap (``SimConfig.job_cap``) a workspace runs at most that many
generations at once: each workspace has a min-heap of its ``cap`` slots' free
times, a new generation takes the earliest (``start = max(now, earliest)``) and
gives it back at its due time, so the queue costs no task per job and is FIFO.
"""

from __future__ import annotations

import heapq
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from genbatch.sim import templates
from genbatch.sim.accounts import Accounts
from genbatch.sim.agentstore import AgentStore
from genbatch.sim.assets import Assets
from genbatch.sim.clock import pending_until, phase
from genbatch.sim.entities import (
    ApiError,
    CdnObject,
    Cell,
    Engine,
    Generation,
    Json,
    Layer,
    Resource,
    Row,
    Shared,
    User,
    Workspace,
    as_int,
    invalid,
    key_hash,
    not_found,
    plain,
)
from genbatch.sim.idea_text import fake_text
from genbatch.sim.prices import price
from genbatch.sim.sheets import Sheets

#: Extension and content type of generated media per object type (matches sim.media).
SIM_MEDIA_EXT: Final[dict[str, str]] = {"video": "mp4", "image": "jpg", "audio": "m4a"}
SIM_MEDIA_TYPES: Final[dict[str, str]] = {
    "video": "video/mp4",
    "image": "image/jpeg",
    "audio": "audio/mp4",
}

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")

# ASSUMPTION: what kind of content each card field takes (docs/sim-assumptions.md,
# "resource-kinds"); a resource of another kind is 422 validation_error.
#: (generation type, data key) -> the object types that key accepts.
RESOURCE_KINDS: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("video_from_image", "image_resource_id"): ("image",),
    ("video_from_image", "image_tail_resource_id"): ("image",),
    ("video_from_ingredients", "asset_resource_ids"): ("image", "video"),
    ("speech_from_text", "audio_resource_id"): ("audio",),
    ("lipsync", "video_resource_id"): ("video",),
    ("lipsync", "audio_resource_id"): ("audio",),
    ("captions", "source_resource_id"): ("video", "audio"),
}
#: Called with (generation, its status, now) each time a generation's status changes.
StatusHook = Callable[[Generation, str, float], None]


class Generations:
    """Every generation and render, with the rules that start, settle, stop and continue them."""

    def __init__(
        self,
        sh: Shared,
        accounts: Accounts,
        agent_store: AgentStore,
        sheets: Sheets,
        assets: Assets,
    ) -> None:
        self._sh = sh
        self._accounts = accounts
        self._agent_store = agent_store
        self._sheets = sheets
        self._assets = assets
        self.generations: dict[int, Generation] = {}
        #: Price overrides by model or type (``genbatch sim --price``).
        self.prices: dict[str, float] = {}
        #: Told of every status change (the webhooks); None: nobody listens.
        self.on_status: StatusHook | None = None
        #: Generations a workspace may run at once (None: no cap) and, per
        #: workspace, the min-heap of its slots' free times (epoch seconds).
        self.job_cap: int | None = None
        self._slots: dict[int, list[float]] = {}

    def __getstate__(self) -> dict[str, Any]:
        """What a saved world keeps: not the listener (the webhooks, remade on restore)."""
        state = self.__dict__.copy()
        state["on_status"] = None
        return state

    def set_job_cap(self, job_cap: int | None) -> None:
        """Cap running generations per workspace from now on (None: no cap).

        Raising the cap frees the new slots now; lowering it keeps the slots that
        free last (a new job waits until fewer than ``job_cap`` still run).  From
        no cap to a cap, jobs already running are not counted.
        """
        self.job_cap = job_cap
        if job_cap is None:
            self._slots.clear()
            return
        for wid, slots in self._slots.items():
            if job_cap >= len(slots):
                slots.extend([0.0] * (job_cap - len(slots)))
                heapq.heapify(slots)
            else:
                kept = heapq.nlargest(job_cap, slots)
                heapq.heapify(kept)
                self._slots[wid] = kept

    # ASSUMPTION: the cap counts a workspace's generations of cells and layers, not
    # renders nor user jobs; a job stopped while queued or running keeps its slot
    # until its due time (docs/sim-assumptions.md, "job-cap").
    def _begin(self, workspace_id: int, generation_type: str, now: float, latency: float) -> float:
        """When a generation accepted ``now`` leaves the queue (``now`` without a cap)."""
        if self.job_cap is None or generation_type == "render":
            return now
        slots = self._slots.get(workspace_id)
        if slots is None:
            slots = self._slots[workspace_id] = [0.0] * self.job_cap
        start = max(now, slots[0])
        heapq.heapreplace(slots, start + latency)
        return start

    def generation(self, user: User, generation_id: object) -> Generation:
        gid = as_int(generation_id)
        gen = self.generations.get(gid) if gid is not None else None
        if gen is None or gen.workspace_id not in user.workspace_ids:
            raise not_found("generation", generation_id)  # not yours looks like missing
        return gen

    def resolve_card(self, eng: Engine, row: Row, data: Json) -> Json:
        """Replace ``{{column}}`` (and ``{{variable}}``) placeholders from the row."""
        # ASSUMPTION: how placeholders resolve (docs/sim-assumptions.md, "placeholders").
        sheets = self._sheets
        by_name = {sheets.columns[c].name: c for c in eng.column_ids}
        raw_vars = data.get("variables")
        variables: Json = raw_vars if isinstance(raw_vars, dict) else {}

        def lookup(name: str, whole: bool) -> Any:
            if name in variables:
                return variables[name]
            cid = by_name.get(name)
            if cid is None:
                return None
            col, cell = sheets.columns[cid], sheets.cells[row.cell_ids[cid]]
            if col.column_type == "text":
                if cell.value in (None, ""):
                    raise invalid(
                        f'column "{name}" of row {row.id} is empty; fill or generate it first'
                    )
                return cell.value
            if not cell.output_ids:
                raise invalid(
                    f'column "{name}" of row {row.id} has no output yet; generate it first'
                )
            rid = cell.output_ids[0]
            return rid if whole else self._sh.url(self._assets.resources[rid].cdn_key)

        def sub(v: Any) -> Any:
            if not isinstance(v, str) or "{{" not in v:
                return v
            m = _PLACEHOLDER.fullmatch(v)
            if m:
                got = lookup(m.group(1), True)
                return v if got is None else got

            def repl(m: re.Match[str]) -> str:
                got = lookup(m.group(1), False)
                return m.group(0) if got is None else str(got)

            return _PLACEHOLDER.sub(repl, v)

        return {
            k: ([sub(x) for x in v] if isinstance(v, list) else sub(v)) for k, v in data.items()
        }

    def start(
        self,
        *,
        ws: Workspace,
        eng: Engine,
        cell: Cell,
        layer: Layer | None,
        generation_type: str,
        data: Json,
        idempotency_key: str | None,
        api_key: str,
        now: float,
        manifest: Json | None = None,
    ) -> Generation:
        """Accept a generation or render: check credits, charge, and start its clock."""
        if generation_type != "render":
            self._check_resources(ws, generation_type, data)
            my_voice = (
                generation_type == "speech_from_text" and data.get("voice_method") == "my_voices"
            )
            if my_voice and self._agent_store.voice_of(eng.agent_id, data.get("voice_id")) is None:
                raise invalid(
                    f"voice_id {plain(data.get('voice_id'))} is not in this agent's voice library"
                )
        sh = self._sh
        cost = price(generation_type, data, self.prices)
        self._accounts.check_credits(ws, cost)
        if generation_type == "render":
            self._check_renderable(eng, cell)
        kind = "render" if generation_type == "render" else generation_type
        model = data.get("model") if isinstance(data.get("model"), str) else None
        latency = sh.clock.latency(kind, model)
        begin = self._begin(ws.id, kind, now, latency)
        gid = sh.next_id("generation")
        out_name = f"{'render' if kind == 'render' else 'gen'}_{gid}_{sh.token_hex()}"
        gen = Generation(
            id=gid,
            workspace_id=ws.id,
            engine_id=eng.id,
            row_id=cell.row_id,
            cell_id=cell.id,
            layer_id=layer.id if layer else None,
            generation_type=generation_type,
            model=model,
            data=data,
            credits=cost,
            created_at=now,
            started_at=begin,
            pending_until=pending_until(begin, latency),
            due_at=begin + latency,
            fail=sh.faults.roll("gen_fail"),
            out_name=out_name,
            idempotency_key=idempotency_key,
            api_key_hash=key_hash(api_key),
            updated_at=now,
            manifest=manifest,
        )
        if manifest is not None:
            manifest["generation_id"] = gid
        self.generations[gid] = gen
        self._accounts.charge(ws, cost, gid, "generate" if kind != "render" else "render")
        (layer or cell).latest_generation_id = gid
        sh.due.push(gen.due_at, ("gen", gid))
        self._tell(gen, "pending", now)
        return gen

    def _check_resources(self, ws: Workspace, generation_type: str, data: Json) -> None:
        """422 unless every resource the card names is this workspace's (or stock) and of
        the kind its field takes (a lipsync video must be a video...)."""
        for key, _ in templates.RESOURCE_FIELDS.get(generation_type, ()):
            raw = data.get(key)
            for rid in raw if isinstance(raw, list) else [raw]:
                if not isinstance(rid, int):
                    continue
                res = self._assets.resources.get(rid)
                if res is None or (res.workspace_id is not None and res.workspace_id != ws.id):
                    raise invalid(f"content resource {rid} not found in this workspace")
                kinds = RESOURCE_KINDS.get((generation_type, key))
                if kinds is not None and res.object_type not in kinds:
                    wanted = " or ".join(kinds)
                    raise invalid(
                        f"{generation_type} needs {'an' if wanted[0] in 'aeiou' else 'a'} "
                        f"{wanted} for data.{key}, but content resource {rid} "
                        f"({res.filename}) is {res.object_type}"
                    )

    def _check_renderable(self, eng: Engine, cell: Cell) -> None:
        """422 unless every layer the render composites has content: its own output, or a
        source cell that was generated or filled (nothing is charged when refused)."""
        # ASSUMPTION: what counts as content (docs/sim-assumptions.md, "render-content").
        sheets = self._sheets
        if not cell.layer_ids:
            raise invalid(
                f"final_video cell {cell.id} has no layers to composite; add layers first"
            )
        row = sheets.rows[cell.row_id]
        by_name = {sheets.columns[c].name: c for c in eng.column_ids}
        empty: list[str] = []
        for lid in cell.layer_ids:
            lay = sheets.layers[lid]
            if lay.output_ids:
                continue
            col_id = by_name.get(lay.source_column) if lay.source_column else None
            if col_id is not None:
                src = sheets.cells[row.cell_ids[col_id]]
                if src.output_ids or src.value not in (None, ""):
                    continue
                empty.append(f'cell {src.id} (column "{lay.source_column}", layer "{lay.name}")')
            elif lay.layer_type == "text" and str(lay.settings.get("text") or "").strip():
                continue
            else:
                empty.append(f'layer {lay.id} ("{lay.name}", nothing generated)')
        if empty:
            raise invalid(
                "cannot render yet: these layers have nothing generated or filled: "
                + "; ".join(empty)
                + ". Fill or generate them, then render."
            )

    def _tell(self, gen: Generation, status: str, now: float) -> None:
        """Tell ``on_status`` a generation's status (it ignores repeats)."""
        if self.on_status is not None:
            self.on_status(gen, status, now)

    def observe(self, generation_id: int, now: float) -> None:
        """Read a generation's status now (settling it if due) and tell it."""
        gen = self.generations.get(generation_id)
        if gen is not None:
            self._tell(gen, self.status_of(gen, now), now)

    def latest_render_url(self, agent_id: int) -> str | None:
        """The CDN URL of the agent's newest completed render, if any."""
        for gen in reversed(self.generations.values()):
            if gen.generation_type != "render" or gen.final != "completed" or not gen.output_ids:
                continue
            eng = self._sheets.engines.get(gen.engine_id)
            res = self._assets.resources.get(gen.output_ids[0])
            if eng is not None and eng.agent_id == agent_id and res is not None:
                return self._sh.url(res.cdn_key)
        return None

    def status_of(self, gen: Generation, now: float) -> str:
        if gen.final is not None:
            return gen.final
        p = phase(gen.pending_until, gen.due_at, now)
        if p == "due":
            self._finish(gen)
            return gen.final or "completed"
        return p

    def settle(self, ident: int, due: float) -> None:
        """The due queue reached generation ``ident`` (a stale entry is ignored)."""
        gen = self.generations.get(ident)
        if gen is not None and gen.final is None and gen.due_at <= due:
            self._finish(gen)

    def fail_broken(self, ident: int) -> None:
        """Settling ``ident`` raised: fail and refund it rather than leave it paid and stuck."""
        gen = self.generations.get(ident)
        if gen is not None and gen.final is None:
            gen.fail = True
            self._finish(gen)

    def _finish(self, gen: Generation) -> None:
        t = gen.due_at
        gen.updated_at = gen.completed_at = t
        ws = self._accounts.workspaces.get(gen.workspace_id)
        if (
            gen.generation_type == "media"
            and int(gen.data["content_resource_id"]) not in self._assets.resources
        ):
            gen.fail = True  # the attached upload was deleted before the job finished
        if gen.fail:
            gen.final = "failed"
            gen.error = (
                "Render failed: compositing error"
                if gen.generation_type == "render"
                else "Generation failed: provider error"
            )
            self._accounts.refund(ws, gen.credits, gen.id, "failed")
            self._tell(gen, "failed", t)
            return
        gen.final = "completed"
        sheets = self._sheets
        eng = sheets.engines.get(gen.engine_id)
        cell = sheets.cells.get(gen.cell_id)
        aspect = str(gen.data.get("aspect_ratio") or (eng.aspect_ratio if eng else "9:16"))
        if gen.generation_type == "text":
            agent = self._agent_store.agents.get(eng.agent_id) if eng else None
            gen.result = fake_text(
                str(gen.data.get("prompt", "")), random.Random(gen.out_name), agent
            )
        else:
            gen.output_ids = [self._make_output(gen, aspect)]
        target = sheets.layers.get(gen.layer_id) if gen.layer_id is not None else cell
        if target is not None and target.latest_generation_id == gen.id:
            target.output_ids = list(gen.output_ids)
            if isinstance(target, Cell):
                # ASSUMPTION: value = text or output URL (docs/sim-assumptions.md, "cell-read").
                target.value = (
                    gen.result
                    if gen.result is not None
                    else self._sh.url(self._assets.resources[gen.output_ids[0]].cdn_key)
                )
        self._tell(gen, "completed", t)

    def _make_output(self, gen: Generation, aspect: str) -> int:
        """Register a completed generation's output as a content resource on the CDN."""
        sh, resources = self._sh, self._assets.resources
        eng = self._sheets.engines.get(gen.engine_id)
        if gen.generation_type == "media":
            # Pass-through: the cell gets its own resource pointing at the same bytes.
            src = resources[int(gen.data["content_resource_id"])]
            otype, ctype = src.object_type, src.content_type
            ext = Path(src.filename).suffix.lstrip(".") or "bin"
            obj = sh.cdn[src.cdn_key]
        else:
            # ASSUMPTION: audio is .m4a, images .jpg, video .mp4 (docs/sim-assumptions.md, "cdn").
            otype = templates.OUTPUT_OBJECT_TYPE[gen.generation_type] or "video"
            ctype, ext = SIM_MEDIA_TYPES[otype], SIM_MEDIA_EXT[otype]
            manifest = gen.manifest or {
                "generation_id": gen.id,
                "generation_type": gen.generation_type,
                "model": gen.model,
                "engine_id": gen.engine_id,
                "row_id": gen.row_id,
                "cell_id": gen.cell_id,
                "prompt": gen.data.get("prompt") or gen.data.get("script"),
            }
            kind = "render" if gen.generation_type == "render" else "sample"
            obj = CdnObject(kind, ctype, aspect, otype, manifest=manifest)
        cdn_key = f"outputs/{gen.out_name}.{ext}"
        sh.cdn[cdn_key] = obj
        thumb_key = None
        if otype in ("video", "image"):
            thumb_key = f"thumbnails/{gen.out_name}.jpg"
            sh.cdn[thumb_key] = CdnObject("thumbnail", "image/jpeg", aspect)
        rid = sh.next_id("resource")
        resources[rid] = Resource(
            rid,
            gen.workspace_id,
            eng.agent_id if eng else None,
            f"{gen.out_name}.{ext}",
            ctype,
            otype,
            None,
            cdn_key,
            thumb_key,
            gen.due_at,
            "generation",
        )
        return rid

    # ASSUMPTION: which states stop and continue (docs/sim-assumptions.md, "stop-continue").
    def stop(self, gen: Generation, now: float) -> None:
        """``POST /v1/generations/:id/stop``: only pending or processing; refunded.

        Stopping one that is already over (a second stop included) is 422
        ``job_cannot_be_stopped`` (the vendor's error guide)."""
        status = self.status_of(gen, now)
        if status not in ("pending", "processing"):
            raise ApiError(
                422,
                "job_cannot_be_stopped",
                f"generation {gen.id} is already {status}; only pending or processing "
                "generations can be stopped",
            )
        gen.final = "stopped"
        gen.updated_at = gen.completed_at = now
        ws = self._accounts.workspaces.get(gen.workspace_id)
        self._accounts.refund(ws, gen.credits, gen.id, "stopped")
        self._tell(gen, "stopped", now)

    def resume(self, gen: Generation, now: float) -> None:
        """``POST /v1/generations/:id/continue``: a stopped one, charged again."""
        status = self.status_of(gen, now)
        if status != "stopped":
            raise invalid(
                f"generation {gen.id} is {status}; only stopped generations can be continued"
            )
        ws = self._accounts.workspaces.get(gen.workspace_id)
        if ws is None:
            raise not_found("workspace", gen.workspace_id)
        sh = self._sh
        self._accounts.check_credits(ws, gen.credits)
        self._accounts.charge(ws, gen.credits, gen.id, "continue")
        latency = sh.clock.latency(gen.generation_type, gen.model)
        begin = self._begin(gen.workspace_id, gen.generation_type, now, latency)
        gen.final = None
        gen.error = None
        gen.completed_at = None
        gen.updated_at = now
        gen.started_at = begin
        gen.pending_until = pending_until(begin, latency)
        gen.due_at = begin + latency
        gen.fail = sh.faults.roll("gen_fail")
        gen.out_name = f"{gen.out_name.split('_')[0]}_{gen.id}_{sh.token_hex()}"
        target = (
            self._sheets.layers.get(gen.layer_id)
            if gen.layer_id is not None
            else self._sheets.cells.get(gen.cell_id)
        )
        if target is not None:
            target.latest_generation_id = gen.id
        sh.due.push(gen.due_at, ("gen", gen.id))
        self._tell(gen, "pending", now)

    def ledger(self, now: float) -> list[Json]:
        """The ledger's ``generations`` (reading a status may settle it)."""
        return [
            {
                "id": g.id,
                "engine_id": g.engine_id,
                "cell_id": g.cell_id,
                "row_id": g.row_id,
                "layer_id": g.layer_id,
                "type": g.generation_type,
                "model": g.model,
                "status": self.status_of(g, now),
                "credits": g.credits,
                "idempotency_key": g.idempotency_key,
                "created_at": g.created_at,
                "started_at": g.started_at,
                "completed_at": g.completed_at,
            }
            for g in self.generations.values()
        ]
