"""One row, start to finish: clone → fill → upload → generate → render → download
(→ store) → publish.

Every step is journaled, so a rerun of the same command picks each row up
where it stopped.  The paid steps (generate, render) follow the money rule
(docs/design.md §5) through :class:`genbatch.engine.paid.PaidPosts`; the free
steps (clone, upload, publish) have no read that could find what an in-doubt
POST created, so they are resent with the *same* key (ASSUMPTION: the server
dedups; at worst a duplicate free engine / resource, or — for publish only —
a duplicate post, which is why publish keys are never rotated).

``_Row`` stays one class, as the row's state machine: every step reads and
writes the same journal record, runs under the same limits and busy counts,
retries through ``_retrying`` and ends the row through the same
``RowEnd``/``_finish`` path.  Split by step, each piece would need the whole
row passed in; only the paid-POST guard, which needs just the row's id,
agent, engine and credit hold, lives apart (``paid``).  The failure
vocabulary is ``failures``; what a row needs from the run is ``services``;
where ``--videos-to`` puts videos is ``objectstore``.

The download keeps the render's thumbnail beside the MP4 (``<stem>.jpg``):
a nice-to-have, so its failure is logged and never fails the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from genbatch.client import DownloadResult
from genbatch.client.models import Engine, Generation, GenerationStarted
from genbatch.engine.credits import RowReservation
from genbatch.engine.failures import (
    REASON_NO_CREDITS,
    RowEnd,
    RowSuspended,
    RunAborted,
    Terminal,
    credits_exhausted,
    error_code,
    fail_step,
    is_transient,
    retry_wait,
)
from genbatch.engine.idea_status import IDEA_STATUS_ON, advance_idea
from genbatch.engine.journal import Journal, StepRecord
from genbatch.engine.limits import Priority
from genbatch.engine.naming import (
    UnsafePathError,
    keep_earlier,
    resolve_inside,
    safe_join,
    thumbnail_name,
)
from genbatch.engine.objectstore import (
    STEP_STORE,
    LocalCopyMissing,
    Placed,
    StoreUnusable,
    VideoStore,
)
from genbatch.engine.paid import PaidPosts
from genbatch.engine.rowplan import (
    STEP_CLONE,
    STEP_DOWNLOAD,
    STEP_FILL,
    STEP_PUBLISH,
    STEP_RENDER,
    AssetPlan,
    GenerationPlan,
    RowPlan,
)
from genbatch.engine.services import PRIORITY, RowServices
from genbatch.engine.table import InputRow
from genbatch.errors import (
    AuthenticationError,
    GenError,
    RateLimitError,
    RequestValidationError,
)

#: Output directory layout.
ENGINE_VIDEOS_DIR: Final = "videos"

__all__ = ["ENGINE_VIDEOS_DIR", "run_row"]


@dataclass(slots=True)
class _EngineRef:
    """The row's cloned engine as the clone step journals it: cell ids and cards by column."""

    engine_id: str
    cells: dict[str, str]
    cards: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"engine_id": self.engine_id, "cells": self.cells, "cards": self.cards}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _EngineRef:
        return cls(str(data["engine_id"]), dict(data["cells"]), dict(data.get("cards", {})))

    @classmethod
    def from_engine(cls, engine: Engine) -> _EngineRef:
        cells: dict[str, str] = {}
        cards: dict[str, dict[str, Any]] = {}
        first_row = engine.spreadsheet_rows[0].id if engine.spreadsheet_rows else None
        for col in engine.spreadsheet_columns:
            if not col.name:
                continue
            cell = engine.cell(col.name, first_row)
            if cell is None:
                continue
            cells[col.name] = cell.id
            card = cell.creation_card
            if card is not None and card.generation_type:
                cards[col.name] = {"generation_type": card.generation_type, "data": card.data}
        return cls(engine.id, cells, cards)


class _Row:
    """The state of one row while its pipeline runs."""

    def __init__(
        self,
        svc: RowServices,
        row: InputRow,
        plan: RowPlan,
        output_name: str,
        credits: RowReservation | None = None,
        store: VideoStore | None = None,
    ) -> None:
        self.svc = svc
        self.row = row
        self.plan = plan
        self.output_name = output_name
        #: The row's admission hold; paid POSTs draw from it (None: the ledger).
        self.credits = credits
        self.rid = row.row_id
        self.agent = row.agent_id
        self.engine: _EngineRef | None = None
        #: "output:<cell>" / "upload:<cell>" -> resource id, for card refs.
        self.resources: dict[str, object] = {}
        self.render_url: str | None = None
        #: The render URL was read from the journal: an earlier process's.
        self._render_url_journaled = False
        #: Where ``--videos-to`` puts the video (None: it stays in videos/).
        self.store = store

    # -- small helpers -----------------------------------------------------
    @property
    def journal(self) -> Journal:
        return self.svc.journal

    @contextlib.asynccontextmanager
    async def _busy(self, group: str) -> AsyncIterator[None]:
        busy = self.svc.busy
        busy[group] = busy.get(group, 0) + 1
        try:
            yield
        finally:
            busy[group] -= 1

    def _begin(self, step: str) -> StepRecord | None:
        """The step's record; a step not yet completed is (re)started."""
        rec = self.journal.step(self.rid, step)
        if rec is None or rec.status != "completed":
            self.journal.set_step(self.rid, step)
            self.journal.begin_step(self.rid, step)
        return rec

    async def _retrying(self, step: str, call: Callable[[], Awaitable[Any]], priority: int) -> Any:
        """Run an idempotent call, trying again on transient failures."""
        attempt = 0
        while True:
            token = PRIORITY.set(priority)
            try:
                return await call()
            except AuthenticationError as exc:
                raise RunAborted(str(exc)) from None
            except Exception as exc:
                if credits_exhausted(exc):
                    raise
                attempt += 1
                if not is_transient(exc) or attempt >= self.svc.max_step_attempts:
                    raise
                delay = self.svc.step_retry_delay * (2 ** (attempt - 1))
                if isinstance(exc, RateLimitError):
                    delay = max(delay, retry_wait(exc))
                self.svc.log.event("retry", row_id=self.rid, step=step, error=str(exc))
                await asyncio.sleep(delay)
            finally:
                PRIORITY.reset(token)

    def _fail_step(self, step: str, exc: BaseException) -> RowEnd:
        return fail_step(self.journal, self.svc.ledger, self.rid, step, exc)

    # -- the pipeline --------------------------------------------------------
    async def run(self) -> Terminal | Literal["pending"]:
        svc = self.svc
        self.journal.start_row(self.rid, STEP_CLONE)
        self.journal.update_row(self.rid, {"pending_reason": None})
        try:
            await self._clone()
            await self._idea("started")
            await self._fill()
            for asset in self.plan.assets:
                await self._upload(asset)
            for wave in self.plan.waves():
                await self._wave(wave)
            if self.plan.render is not None:
                await self._render()
                await self._download()
                await self._idea("rendered")
                if self.plan.publish is not None:
                    await self._publish()
        except RowEnd as end:
            self._finish(end.status, end.reason, end.error_code)
            return end.status
        except RunAborted:
            raise
        except RowSuspended as exc:
            self.journal.update_row(self.rid, {"pending_reason": str(exc)})
            svc.log.event("suspended", row_id=self.rid, reason=str(exc))
            return "pending"
        except UnsafePathError as exc:
            self._finish("failed", str(exc), "unsafe_path")
            return "failed"
        except Exception as exc:
            if credits_exhausted(exc):
                svc.ledger.exhaust(REASON_NO_CREDITS)
                self._finish("skipped", REASON_NO_CREDITS, error_code(exc))
                return "skipped"
            self._finish("failed", str(exc) or type(exc).__name__, error_code(exc))
            return "failed"
        self._finish("completed", "")
        return "completed"

    def _finish(self, status: Terminal, reason: str, error_code: str | None = None) -> None:
        steps = self.journal.steps(self.rid)
        credits = sum(s.credits for s in steps.values())
        self.journal.update_row(self.rid, {"credits": credits})
        self.journal.finish_row(self.rid, status, reason, error_code)
        self.svc.log.event(
            "row",
            row_id=self.rid,
            status=status,
            reason=reason or None,
            error_code=error_code,
            credits=credits,
        )

    # -- clone ---------------------------------------------------------------
    async def _clone(self) -> None:
        rec = self._begin(STEP_CLONE)
        if rec is not None and rec.status == "completed" and rec.result:
            self.engine = _EngineRef.from_json(rec.result)
            return
        async with self._busy("clone"):
            engine: Engine
            if rec is not None and rec.remote_id is not None:
                # Created before a crash; read it back instead of cloning again.
                engine = await self._retrying(
                    STEP_CLONE,
                    lambda: self.svc.client.engines.get(rec.remote_id or "", self.agent),
                    Priority.START,
                )
            else:
                intent = await self.journal.intent(
                    self.rid, STEP_CLONE, retry=rec is not None and rec.done
                )
                await self.svc.reached(self.rid, "clone_intent")
                source = self.row.engine_id
                if source is not None:
                    call: Callable[[], Awaitable[Engine]] = lambda: self.svc.client.engines.clone(  # noqa: E731
                        source, self.agent, idempotency_key=intent.idempotency_key
                    )
                else:
                    call = lambda: self.svc.client.templates.clone(  # noqa: E731
                        self.plan.template, self.agent, idempotency_key=intent.idempotency_key
                    )
                try:
                    engine = await self._retrying(STEP_CLONE, call, Priority.START)
                except Exception as exc:
                    if isinstance(exc, RunAborted):
                        raise
                    raise self._fail_step(STEP_CLONE, exc) from None
                self.journal.record_remote_id(self.rid, STEP_CLONE, engine.id)
            ref = _EngineRef.from_engine(engine)
            missing = [c for c in self._needed_cells() if c not in ref.cells]
            if missing:
                err = RequestValidationError(
                    f"the engine has no cell(s) {', '.join(missing)} the recipe uses"
                )
                raise self._fail_step(STEP_CLONE, err)
            self.engine = ref
            self.journal.update_row(self.rid, {"engine_id": ref.engine_id})
            self.journal.finish_step(self.rid, STEP_CLONE, "completed", result=ref.to_json())

    def _needed_cells(self) -> list[str]:
        names = list(self.plan.cell_values)
        names += [a.cell for a in self.plan.assets]
        names += [g.cell for g in self.plan.generations]
        if self.plan.render is not None:
            names.append(self.plan.render.cell)
        return list(dict.fromkeys(names))

    @property
    def _eng(self) -> _EngineRef:
        assert self.engine is not None
        return self.engine

    # -- fill ----------------------------------------------------------------
    async def _fill(self) -> None:
        values = self.plan.cell_values
        if not values:
            return
        rec = self._begin(STEP_FILL)
        if rec is not None and rec.status == "completed":
            return
        eng = self._eng
        client = self.svc.client
        items = [{"id": eng.cells[name], "value": value} for name, value in values.items()]

        async def call() -> Any:
            if len(items) == 1:  # one PATCH is as cheap as a mass update
                return await client.cells.update(
                    eng.engine_id, items[0]["id"], self.agent, items[0]["value"]
                )
            return await client.cells.mass_update(eng.engine_id, self.agent, items)

        async with self._busy("fill"):
            try:
                await self._retrying(STEP_FILL, call, Priority.CONTINUE)
            except RunAborted:
                raise
            except Exception as exc:
                raise self._fail_step(STEP_FILL, exc) from None
        self.journal.finish_step(self.rid, STEP_FILL, "completed")

    # -- upload --------------------------------------------------------------
    async def _upload(self, asset: AssetPlan) -> None:
        step = asset.step
        rec = self._begin(step)
        if rec is not None and rec.status == "completed" and rec.result:
            self.resources[f"upload:{asset.cell}"] = rec.result["resource_id"]
            return
        try:
            path = resolve_inside(self.svc.assets_root, asset.path)
        except UnsafePathError as exc:
            raise self._fail_step(step, exc) from None
        if not path.is_file():
            err = RequestValidationError(f"asset {asset.path!r} for {asset.cell} is not a file")
            raise self._fail_step(step, err)
        intent = await self.journal.intent(self.rid, step, retry=rec is not None and rec.done)
        client = self.svc.client
        async with self._busy("upload"), self.svc.limits.uploads.slot(Priority.CONTINUE):
            try:
                resource = await self._retrying(
                    step,
                    lambda: client.uploads.upload(
                        path, self.agent, idempotency_key=intent.idempotency_key
                    ),
                    Priority.CONTINUE,
                )
            except RunAborted:
                raise
            except Exception as exc:
                raise self._fail_step(step, exc) from None
        self.journal.record_remote_id(self.rid, step, resource.id)
        self.resources[f"upload:{asset.cell}"] = resource.id
        self.journal.finish_step(self.rid, step, "completed", result={"resource_id": resource.id})

    # -- generate --------------------------------------------------------------
    async def _wave(self, wave: list[GenerationPlan]) -> None:
        """Independent generations run together; a failure waits for the rest.

        Siblings are never cancelled: a generation already paid for must be
        watched to its end, or its credits would go unreported (I3).
        """
        results = await asyncio.gather(*(self._generate(g) for g in wave), return_exceptions=True)
        for res in results:
            if isinstance(res, RunAborted):
                raise res
        for res in results:
            if isinstance(res, BaseException):
                raise res

    def _card(self, gen: GenerationPlan) -> dict[str, Any]:
        """The recipe's card over the template cell's own card of the same type.

        The template's card carries what the recipe need not repeat (the
        agent's voice, enhance flags); the recipe's fields win.
        """
        data = gen.resolve(self.resources)
        saved = self._eng.cards.get(gen.cell)
        if saved is not None and saved.get("generation_type") == gen.generation_type:
            data = {**saved.get("data", {}), **data}
        return {"generation_type": gen.generation_type, "data": data}

    async def _with_voice(self, card: dict[str, Any]) -> dict[str, Any]:
        """A `my_voices` speech card without voice_id speaks with the agent's default voice."""
        data = card["data"]
        speech = card["generation_type"] == "speech_from_text"
        if not speech or data.get("voice_method", "my_voices") != "my_voices":
            return card
        if data.get("voice_id"):
            return card
        voice = await self.svc.default_voice(self.agent)
        if voice is None:
            raise RowEnd(
                "failed",
                f"agent {self.agent} has no default voice: set voice_id in the recipe's "
                "speech card, or default_user_voice in the agent's core",
                "no_voice",
            )
        return {**card, "data": {**data, "voice_id": voice}}

    def _paid(self) -> PaidPosts:
        """The row's paid POSTs, to the engine it cloned."""
        return PaidPosts(self.svc, self.rid, self.agent, self._eng.engine_id, self.credits)

    async def _generate(self, gen: GenerationPlan) -> None:
        step = gen.step
        rec = self._begin(step)
        if rec is not None and rec.status == "completed" and rec.result:
            self.resources[f"output:{gen.cell}"] = rec.result.get("resource_id")
            return
        cell_id = self._eng.cells[gen.cell]
        card = await self._with_voice(self._card(gen))
        client = self.svc.client
        eng_id = self._eng.engine_id

        def post(key: str) -> Awaitable[GenerationStarted]:
            return client.generations.generate(
                eng_id, cell_id, self.agent, card, idempotency_key=key, resend_ambiguous=False
            )

        async with self._busy("generate"), self.svc.limits.generations.slot(Priority.CONTINUE):
            done = await self._paid().drive(
                rec, step, cell_id, gen.generation_type, gen.data, post, Priority.CONTINUE
            )
        resource = done.output_resources[0].id if done.output_resources else None
        self.resources[f"output:{gen.cell}"] = resource

    async def _render(self) -> None:
        assert self.plan.render is not None
        rec = self._begin(STEP_RENDER)
        if rec is not None and rec.status == "completed" and rec.result:
            self.render_url = rec.result.get("url")
            self._render_url_journaled = True
            return
        cell_id = self._eng.cells[self.plan.render.cell]
        client = self.svc.client
        eng_id = self._eng.engine_id

        def post(key: str) -> Awaitable[GenerationStarted]:
            return client.generations.render(
                eng_id, cell_id, self.agent, idempotency_key=key, resend_ambiguous=False
            )

        async with self._busy("render"), self.svc.limits.renders.slot(Priority.FINISH):
            done = await self._paid().drive(
                rec, STEP_RENDER, cell_id, "render", {}, post, Priority.FINISH
            )
        if not done.video_url:
            raise RowEnd("failed", "render completed without an output URL", "no_output")
        self._note_render(done)

    def _note_render(self, done: Generation) -> None:
        """Take the render's URL, and note it on the row with its thumbnail."""
        self.render_url = done.video_url
        self.journal.update_row(
            self.rid,
            {
                "render_url": done.video_url,
                # Which render the thumbnail is of: a redone row's earlier one is stale.
                "thumbnail_src": _thumbnail_url(done),
                "thumbnail_of": str(done.id),
            },
        )

    def _render_id(self) -> str | None:
        """The generation id the journal holds for this row's render (None: none)."""
        render = self.journal.step(self.rid, STEP_RENDER)
        return render.remote_id if render is not None else None

    # -- download ----------------------------------------------------------------
    async def _download(self) -> None:
        rec = self._begin(STEP_DOWNLOAD)
        if rec is None or rec.status != "completed":
            await self._fetch(rec)
        if self.store is not None:
            await self._store(self.store)

    async def _refresh_render_url(self, step: str) -> None:
        """Read the render again for its URL (one free read): a URL an earlier
        process noted may no longer serve (a CDN link that expired, a restarted
        ``--sim`` on another port).  On failure the noted one is tried."""
        gen_id = self._render_id()
        if gen_id is None:
            return
        try:
            done: Generation = await self._retrying(
                step, lambda: self.svc.client.generations.get(gen_id), Priority.FINISH
            )
        except RunAborted:
            raise
        except Exception as exc:
            error = str(exc) or repr(exc)
            self.svc.log.event("render_url", row_id=self.rid, step=step, error=error)
            return
        if done.video_url:
            self._note_render(done)

    async def _current_render_url(self, step: str) -> str | None:
        """The render's URL to fetch or publish: re-read once if an earlier run noted it."""
        if self._render_url_journaled:
            self._render_url_journaled = False
            await self._refresh_render_url(step)
        return self.render_url

    async def _fetch(self, rec: StepRecord | None) -> None:
        """The MP4 (and its thumbnail) into videos/, journaled."""
        url = await self._current_render_url(STEP_DOWNLOAD)
        if url is None:
            raise RowEnd("failed", "no render URL to download", "no_output")
        target = safe_join(self.svc.out_dir, ENGINE_VIDEOS_DIR, self.output_name)
        thumb = self._thumbnail_path()
        if rec is None:
            # The step never began in this journal, so a file there is an
            # earlier run's (--fresh) or someone's: keep it under NAME.vN.
            try:
                kept = keep_earlier(target)
            except OSError as exc:
                raise self._fail_step(STEP_DOWNLOAD, exc) from None
            if kept is not None:
                self.svc.log.event("video_kept", row_id=self.rid, previous=kept.name)
        if thumb is not None and (rec is None or rec.error_code == "input_changed"):
            # Same for the thumbnail; a redone row's earlier one goes with its video.
            try:
                keep_earlier(thumb)
            except OSError as exc:
                self.svc.log.event("thumbnail", row_id=self.rid, error=str(exc))
                thumb = None
        # Committed before the file can appear: a crash after its rename then
        # finds this step begun, and the file is known to be this row's own.
        self.journal.flush()
        async with self._busy("download"), self.svc.limits.downloads.slot(Priority.FINISH):
            await self.svc.reached(self.rid, "download:start")
            result = await self._get_video(url, target)
            extra = await self._get_thumbnail(thumb) if thumb is not None else {}
        rel = f"{ENGINE_VIDEOS_DIR}/{self.output_name}"
        self.journal.update_row(
            self.rid, {"mp4_path": rel, "bytes": result.size, "sha256": result.sha256}
        )
        self.journal.finish_step(
            self.rid, STEP_DOWNLOAD, "completed", result={"bytes": result.size, **extra}
        )

    async def _get_video(self, url: str, target: Path) -> DownloadResult:
        client = self.svc.client
        try:
            result: DownloadResult = await self._retrying(
                STEP_DOWNLOAD, lambda: client.download(url, target), Priority.FINISH
            )
        except RunAborted:
            raise
        except Exception as exc:
            # No .part to clean up: the client removes it on every failure.
            raise self._fail_step(STEP_DOWNLOAD, exc) from None
        return result

    def _thumbnail_path(self) -> Path | None:
        """Where the thumbnail goes (None: it cannot go there safely; logged)."""
        try:
            return safe_join(self.svc.out_dir, ENGINE_VIDEOS_DIR, thumbnail_name(self.output_name))
        except UnsafePathError as exc:
            self.svc.log.event("thumbnail", row_id=self.rid, error=str(exc))
            return None

    async def _thumbnail_src(self) -> str | None:
        """The render's thumbnail URL: noted at render time, else read from GEN."""
        row = self.journal.row(self.rid)
        gen_id = self._render_id()
        extra = row.extra if row is not None else {}
        if gen_id is not None and extra.get("thumbnail_of") == gen_id:
            src = extra.get("thumbnail_src")
            return src if isinstance(src, str) else None
        if gen_id is None:
            return None
        # Rendered before a crash that came before the note: one free read.
        done: Generation = await self._retrying(
            STEP_DOWNLOAD, lambda: self.svc.client.generations.get(gen_id), Priority.FINISH
        )
        src = _thumbnail_url(done)
        self.journal.update_row(self.rid, {"thumbnail_src": src, "thumbnail_of": gen_id})
        return src

    async def _get_thumbnail(self, thumb: Path) -> dict[str, Any]:
        """Download the thumbnail; what the download step records of it ({} if none).

        Never fails the row: a thumbnail that cannot be had is a log line.
        """
        try:
            src = await self._thumbnail_src()
            if src is None:
                return {}
            got = await self.svc.client.download(src, thumb)
        except RunAborted:
            raise
        except Exception as exc:
            self.svc.log.event("thumbnail", row_id=self.rid, error=str(exc) or repr(exc))
            return {}
        return {
            "thumbnail": f"{ENGINE_VIDEOS_DIR}/{thumb.name}",
            "thumbnail_bytes": got.size,
            "thumbnail_sha256": got.sha256,
        }

    # -- store (--videos-to) -------------------------------------------------------
    async def _store(self, store: VideoStore) -> None:
        """The video (and thumbnail) into the object store; the local copy removed.

        Journaled as its own step, and each object is looked up before it is
        sent: a kill between an upload and its record costs a HEAD, not an
        upload.  The local copy goes only after every object is verified,
        before the step is recorded — a rerun then finds the objects by their
        checksums.
        """
        rec = self._begin(STEP_STORE)
        if rec is not None and rec.status == "completed":
            return
        row = self.journal.row(self.rid)
        download = self.journal.step(self.rid, STEP_DOWNLOAD)
        fields = row.fields if row is not None else {}
        got = download.result if download is not None and download.result else {}
        video = safe_join(self.svc.out_dir, ENGINE_VIDEOS_DIR, self.output_name)
        thumb_rel = got.get("thumbnail")
        thumb = self._thumbnail_path() if thumb_rel else None
        placed: dict[str, str | None] = {"video_url": None, "thumbnail_url": None}
        sent: list[str] = []
        async with self._busy("store"), self.svc.limits.uploads.slot(Priority.FINISH):
            await self.svc.reached(self.rid, "store:start")
            url = await self._put(store, video, self.output_name, fields)
            placed["video_url"], sent = url.url, ([url.url] if url.uploaded else [])
            if thumb is not None:
                try:
                    t = await self._retrying(
                        STEP_STORE,
                        lambda: store.aplace(
                            thumb,
                            thumb.name,
                            int(got["thumbnail_bytes"]),
                            str(got["thumbnail_sha256"]),
                        ),
                        Priority.FINISH,
                    )
                except RunAborted:
                    raise
                except Exception as exc:  # a thumbnail never fails the row
                    self.svc.log.event("thumbnail", row_id=self.rid, error=str(exc))
                else:
                    placed["thumbnail_url"] = t.url
                    if t.uploaded:
                        sent.append(t.url)
                    if t.kept:
                        self.svc.log.event("object_kept", row_id=self.rid, previous=t.kept)
        await self.svc.reached(self.rid, "store:verified")
        if not store.keep_local:
            # A thumbnail that did not reach the store stays (the results say where).
            uploaded = [video] + ([thumb] if thumb and placed["thumbnail_url"] else [])
            for path in uploaded:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            self.journal.update_row(self.rid, {"mp4_path": None})
        self.journal.finish_step(
            self.rid, STEP_STORE, "completed", result={**placed, "kept_local": store.keep_local}
        )
        self.svc.log.event(
            "stored", row_id=self.rid, video_url=placed["video_url"], uploaded=len(sent)
        )

    async def _put(
        self, store: VideoStore, video: Path, name: str, fields: Mapping[str, Any]
    ) -> Placed:
        """The video into the store; a local copy gone (removed after an earlier
        upload that was not recorded, and the object since lost) is downloaded again."""
        size, sha = fields.get("bytes"), fields.get("sha256")
        for again in (False, True):
            try:
                if size is None or sha is None:
                    raise LocalCopyMissing("no size or sha256 recorded for the video")
                placed: Placed = await self._retrying(
                    STEP_STORE,
                    functools.partial(store.aplace, video, name, int(size), str(sha)),
                    Priority.FINISH,
                )
            except RunAborted:
                raise
            except LocalCopyMissing:
                url = None if again else await self._current_render_url(STEP_STORE)
                if url is None:
                    raise self._fail_step(
                        STEP_STORE, RequestValidationError("the local video is gone")
                    ) from None
                async with self.svc.limits.downloads.slot(Priority.FINISH):
                    result = await self._get_video(url, video)
                size, sha = result.size, result.sha256
                self.journal.update_row(self.rid, {"bytes": size, "sha256": sha})
                continue
            except StoreUnusable as exc:
                self.journal.finish_step(self.rid, STEP_STORE, "failed", error_code="store_refused")
                raise RowEnd("failed", f"store: {exc}", "store_refused") from None
            except Exception as exc:
                raise self._fail_step(STEP_STORE, exc) from None
            if placed.kept:
                self.svc.log.event("object_kept", row_id=self.rid, previous=placed.kept)
            return placed
        raise AssertionError("unreachable")

    # -- publish -----------------------------------------------------------------
    async def _publish(self) -> None:
        plan = self.plan.publish
        assert plan is not None and self.render_url is not None
        rec = self._begin(STEP_PUBLISH)
        if rec is not None and rec.status == "completed":
            return
        client = self.svc.client
        job_id = rec.remote_id if rec is not None and not rec.done else None
        elapsed = (
            max(0.0, time.time() - (rec.remote_at or 0.0))
            if rec is not None and job_id is not None
            else 0.0
        )
        async with self._busy("publish"):
            if job_id is None:
                await self._idea("publishing")
                intent = await self.journal.intent(
                    self.rid, STEP_PUBLISH, retry=rec is not None and rec.done
                )
                url = await self._current_render_url(STEP_PUBLISH)
                assert url is not None  # the noted URL stays when a re-read fails
                data = plan.data(url)
                try:
                    created = await self._retrying(
                        STEP_PUBLISH,
                        lambda: client.user_jobs.publish(
                            self.agent, data, idempotency_key=intent.idempotency_key
                        ),
                        Priority.FINISH,
                    )
                except RunAborted:
                    raise
                except Exception as exc:
                    raise self._fail_step(STEP_PUBLISH, exc) from None
                job_id = created.user_job_id
                self.journal.record_remote_id(self.rid, STEP_PUBLISH, job_id)
            if self._post_is_far(plan.scheduled_time):
                # Accepted for later: the post exists only at scheduled_time
                # (days away, perhaps).  The row is done; the job id is kept.
                self.journal.finish_step(
                    self.rid,
                    STEP_PUBLISH,
                    "completed",
                    result={"user_job_id": job_id, "scheduled_time": plan.scheduled_time},
                )
                return
            job = await self.svc.watcher.user_job(job_id, self.agent, "publish_content", elapsed)
        if job.status != "completed":
            error = str(job.failure) if job.failure else job.status
            self.journal.finish_step(self.rid, STEP_PUBLISH, "failed", error_code="publish_failed")
            raise RowEnd("failed", f"publish: job {job_id} {job.status}: {error}", "publish_failed")
        post_id = (job.result or {}).get("post_id")
        self.journal.update_row(self.rid, {"post_id": post_id})
        self.journal.finish_step(self.rid, STEP_PUBLISH, "completed", result={"post_id": post_id})
        if post_id:
            await self._idea("posted")

    def _post_is_far(self, scheduled_time: str | None) -> bool:
        """Whether a scheduled post goes out later than we are willing to wait."""
        if scheduled_time is None:
            return False
        try:
            at = datetime.fromisoformat(scheduled_time.replace("Z", "+00:00"))
        except ValueError:
            return True
        wait = (at - datetime.now(UTC)).total_seconds()  # a post goes out on the wall clock
        return wait > self.svc.publish_wait_max

    # -- the idea behind the row -------------------------------------------------
    async def _idea(self, event: str) -> None:
        """Move the row's idea along its status flow; a failure is a note, not a failure."""
        idea_id = self.row.idea_id
        if idea_id is None:
            return
        rec = self.journal.row(self.rid)
        current = rec.extra.get("idea_status") if rec is not None else None
        token = PRIORITY.set(Priority.FINISH)
        try:
            status = await advance_idea(
                self.svc.client,
                idea_id,
                IDEA_STATUS_ON[event],
                current=current if isinstance(current, str) else None,
            )
        except AuthenticationError as exc:
            raise RunAborted(str(exc)) from None
        except (GenError, OSError) as exc:
            self.svc.log.event("idea_status", row_id=self.rid, idea_id=idea_id, error=str(exc))
            return
        finally:
            PRIORITY.reset(token)
        self.journal.update_row(self.rid, {"idea_status": status})


def _thumbnail_url(done: Generation) -> str | None:
    """The thumbnail GEN gave with a render's output (None: none)."""
    out = done.output_resources[0] if done.output_resources else None
    return out.thumbnail_url if out is not None else None


async def run_row(
    svc: RowServices,
    row: InputRow,
    plan: RowPlan,
    output_name: str,
    credits: RowReservation | None = None,
    store: VideoStore | None = None,
) -> str:
    """Run one row's pipeline to its terminal status (journaled).

    ``credits``: the row's admission hold (:meth:`CreditLedger.admit` of
    :func:`~genbatch.engine.paid.remaining_credits`); its paid POSTs draw
    from it.  The caller closes it when the row ends.  Without one, each
    POST reserves from the ledger on its own.

    ``store``: ``--videos-to``'s object store (None: videos stay in videos/).

    Returns the status (``"pending"`` for a row suspended by an outage).
    Raises :class:`~genbatch.engine.failures.RunAborted` (401): the row is
    left ``running`` in the journal, so the next run resumes it.
    """
    return await _Row(svc, row, plan, output_name, credits, store).run()
