"""``train_social`` in bulk: one scraping job per row of a sources table, into a table.

Every row is checked against the reference (the client's
:class:`~genbatch.client.models.TrainSocialData`) before anything is sent,
so a typo costs no job; the invalid rows are reported with the valid ones.
Each job is a user job, waited for on the engine's poll hub unless
``wait=False`` (then the table says ``submitted``).
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pydantic

from genbatch.agents.defaults import ENGINE_IDEAS_CONCURRENCY
from genbatch.agents.tables import TableData, cell_text, validation_problems
from genbatch.client import assumptions as A
from genbatch.client.models import TrainSocialData, UserJob
from genbatch.engine.limits import ConcurrencyCap
from genbatch.engine.table import TableError, read_frame
from genbatch.engine.watch import HubWatcher
from genbatch.errors import APIStatusError, AuthenticationError, GenError

__all__ = [
    "TRAIN_COLUMNS",
    "TrainOutcome",
    "TrainSpec",
    "read_train_table",
    "train",
    "train_table",
]

#: The train_social fields (the client model's), in its order: the table's columns.
TRAIN_COLUMNS: Final = tuple(TrainSocialData.model_fields)
_TRAIN_INTS: Final = frozenset({"days", "max_results"})
_BOOL_TEXT: Final = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


@dataclass(frozen=True, slots=True)
class TrainSpec:
    """One row of the sources table; ``problems`` non-empty means it is not sent."""

    row: int
    agent_id: str | None
    data: Mapping[str, Any]
    problems: tuple[str, ...] = ()


def read_train_table(path: Path | str, default_agent: str | None = None) -> list[TrainSpec]:
    """Sources to scrape: ``agent_id`` + the train_social fields, one job per row.

    Every row is checked with the reference's platform/type list before
    anything is sent; an unknown column fails the table (a typo like
    ``max_result`` would otherwise be silently dropped).
    """
    path = Path(path)
    frame = read_frame(path)
    frame.columns = [c.strip() for c in frame.columns]
    allowed = {"agent_id", *TRAIN_COLUMNS}
    unknown = [c for c in frame.columns if c not in allowed]
    if unknown:
        raise TableError(
            f"{path}: unknown column(s) {', '.join(map(repr, unknown))}; "
            f"expected agent_id, {', '.join(TRAIN_COLUMNS)}"
        )
    if "agent_id" not in frame.columns and default_agent is None:
        raise TableError(f"{path}: no 'agent_id' column; add one or pass --agent ID")
    specs: list[TrainSpec] = []
    seen: dict[str, int] = {}
    for number, rec in enumerate(frame.iter_rows(named=True), start=1):
        agent = cell_text(rec.get("agent_id")) or default_agent
        problems: list[str] = []
        data: dict[str, Any] = {}
        for name in TRAIN_COLUMNS:
            value = rec.get(name)
            if isinstance(value, str):
                value = value.strip() or None
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if name in _TRAIN_INTS and isinstance(value, str):
                value = int(value) if value.isdigit() else value
            if name == "monitoring" and isinstance(value, str):
                value = _BOOL_TEXT.get(value.lower(), value)
            data[name] = value
        body: dict[str, Any] = {}
        try:
            body = TrainSocialData.model_validate(data).to_body()
        except pydantic.ValidationError as exc:
            problems.extend(validation_problems(exc))
        if agent is None:
            problems.append("agent_id: is empty and no --agent default was given")
        key = json.dumps([agent, body], sort_keys=True)
        if not problems and key in seen:
            problems.append(f"duplicate of row {seen[key]} (same agent and source)")
        seen.setdefault(key, number)
        # An invalid row keeps what it said, so the report can show it.
        specs.append(TrainSpec(number, agent, body if not problems else data, tuple(problems)))
    if not specs:
        raise TableError(f"{path}: the table has no rows")
    return specs


@dataclass(slots=True)
class TrainOutcome:
    """What one row's job did; one line of the train results table."""

    spec: TrainSpec
    user_job_id: str | None = None
    #: completed | monitoring (a monitoring job stays active; its first scrape is in)
    #: | failed | submitted (``wait=False``)
    status: str = "failed"
    reason: str | None = None
    error_code: str | None = None
    result: Any = None

    def record(self) -> dict[str, Any]:
        d = self.spec.data
        return {
            "row": self.spec.row,
            "agent_id": self.spec.agent_id,
            **{name: d.get(name) for name in TRAIN_COLUMNS},
            "user_job_id": self.user_job_id,
            "status": self.status,
            "reason": self.reason,
            "error_code": self.error_code,
            "result": json.dumps(self.result, ensure_ascii=False, default=str)
            if self.result is not None
            else None,
        }


async def train(
    watcher: HubWatcher,
    specs: Sequence[TrainSpec],
    *,
    wait: bool = True,
    concurrency: int = ENGINE_IDEAS_CONCURRENCY,
) -> list[TrainOutcome]:
    """One ``train_social`` user job per valid row; wait for each unless ``wait=False``."""
    cap = ConcurrencyCap(max(1, concurrency), "train")

    async def one(spec: TrainSpec) -> TrainOutcome:
        out = TrainOutcome(spec)
        if spec.problems or spec.agent_id is None:
            out.reason, out.error_code = "; ".join(spec.problems), "validation_error"
            return out
        async with cap.slot():
            try:
                created = await watcher.client.user_jobs.train_social(
                    spec.agent_id, spec.data, idempotency_key=uuid.uuid4().hex
                )
                out.user_job_id = created.user_job_id
                if not wait:
                    out.status = "submitted"
                    return out
                job = await watcher.user_job(
                    created.user_job_id,
                    spec.agent_id,
                    "train_social",
                    settled=_first_scrape_in if spec.data.get("monitoring") else None,
                )
                out.result = job.result
                if job.status in A.USER_JOB_DONE:
                    out.status = "completed"
                elif spec.data.get("monitoring") and _first_scrape_in(job):
                    out.status = "monitoring"
                else:
                    out.reason = f"train_social job {job.id} ended {job.status}" + (
                        f": {job.failure}" if job.failure else ""
                    )
            except AuthenticationError:
                raise
            except APIStatusError as exc:
                out.error_code = exc.error_code or str(exc.status)
                out.reason = exc.server_message or str(exc)
            except GenError as exc:
                out.reason = str(exc)
        return out

    return list(await asyncio.gather(*(one(s) for s in specs)))


def train_table(outcomes: Sequence[TrainOutcome]) -> TableData:
    """The train results table: each source row, its job and how it ended."""
    cols = (
        "row",
        "agent_id",
        *TRAIN_COLUMNS,
        "user_job_id",
        "status",
        "reason",
        "error_code",
        "result",
    )
    return TableData.from_records([o.record() for o in outcomes], cols)


def _first_scrape_in(job: UserJob) -> bool:
    """A monitoring job keeps running; it has done its first scrape once a result shows."""
    return job.status in A.USER_JOB_ACTIVE and job.result is not None
