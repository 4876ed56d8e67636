"""User jobs: ``publish_content`` (Step 5) and ``train_social`` (Step 2).

Like generations, a job's status is computed from its own clock and its
result is written once, when it settles; publishing needs the agent's
linked TikTok account, so this store reads the agents.  A scheduled post waits
for its real (wall-clock) ``scheduled_time``; a monitoring ``train_social`` job
settles into ``processing`` (it keeps watching) instead of ``completed``.
"""

from __future__ import annotations

from genbatch.sim.agentstore import AgentStore
from genbatch.sim.clock import iso, pending_until, phase
from genbatch.sim.entities import (
    Agent,
    Json,
    Shared,
    User,
    UserJob,
    as_int,
    not_found,
)

#: The status an active monitoring job settles into: it is never over by itself.
MONITORING = "processing"


class UserJobs:
    """Every user job, with the rules that start and finish them."""

    def __init__(self, sh: Shared, agent_store: AgentStore) -> None:
        self._sh = sh
        self._agent_store = agent_store
        self.user_jobs: dict[int, UserJob] = {}

    def user_job(self, user: User, agent: Agent, job_id: object) -> UserJob:
        jid = as_int(job_id)
        job = self.user_jobs.get(jid) if jid is not None else None
        if job is None or job.workspace_id not in user.workspace_ids:
            raise not_found("user job", job_id)  # not yours looks like missing
        if job.agent_id != agent.id:
            raise not_found("user job", f"{job_id} of agent {agent.id}")
        return job

    def add(
        self,
        agent: Agent,
        job_type: str,
        data: str,
        parsed: Json,
        now: float,
        scheduled_at: float | None,
    ) -> UserJob:
        sh = self._sh
        latency = sh.clock.latency(job_type)
        # ASSUMPTION: a scheduled post waits for the real scheduled_time, not a scaled
        # one; only the posting after it is scaled (docs/sim-assumptions.md, "schedule").
        start = now if scheduled_at is None else max(now, scheduled_at)
        job = UserJob(
            id=sh.next_id("user_job"),
            agent_id=agent.id,
            workspace_id=agent.workspace_id,
            user_job_type=job_type,
            data=data,
            parsed=parsed,
            created_at=now,
            pending_until=start if scheduled_at is not None else pending_until(now, latency),
            due_at=start + latency,
            scheduled_at=scheduled_at,
            post_id="7" + "".join(str(sh.rng.randrange(10)) for _ in range(18))
            if job_type == "publish_content"
            else None,
            updated_at=now,
        )
        self.user_jobs[job.id] = job
        sh.due.push(job.due_at, ("job", job.id))
        return job

    def status(self, job: UserJob, now: float) -> str:
        if job.final is not None:
            return job.final
        p = phase(job.pending_until, job.due_at, now)
        if p == "due":
            self._finish(job)
            return job.final or "completed"
        return p

    def settle(self, ident: int, due: float) -> None:
        """The due queue reached job ``ident``."""
        job = self.user_jobs.get(ident)
        if job is not None and job.final is None:
            self._finish(job)

    def _finish(self, job: UserJob) -> None:
        job.updated_at = job.due_at
        if job.user_job_type == "train_social" and job.parsed.get("monitoring") is True:
            # ASSUMPTION: a monitoring job stays active (docs/sim-assumptions.md, "train-social").
            job.final = MONITORING
        else:
            job.final = "completed"
            job.completed_at = job.due_at
        if job.user_job_type == "publish_content":
            # ASSUMPTION: the result's shape (docs/sim-assumptions.md, "publish").
            agent = self._agent_store.agents.get(job.agent_id)
            handle = "unknown"
            if agent is not None:
                for acct in agent.core.get("linked_accounts") or []:
                    if acct.get("platform") == "tiktok":
                        handle = str(acct.get("url", "")).rstrip("/").rsplit("/", 1)[-1].lstrip("@")
            job.result = {
                "post_id": job.post_id,
                "platform": "tiktok",
                "post_url": f"https://www.tiktok.com/@{handle}/video/{job.post_id}",
            }
        else:
            # ASSUMPTION: the result's shape (docs/sim-assumptions.md, "train-social").
            p = job.parsed
            job.result = {
                "platform": p.get("platform"),
                "type": p.get("type"),
                "value": p.get("value"),
                "items_indexed": int(p.get("max_results", 50)),
                "monitoring": bool(p.get("monitoring", False)),
            }

    def set_monitoring(self, job: UserJob, monitoring: bool, now: float) -> None:
        """A train_social update: a settled job starts or stops monitoring."""
        if job.final is None:
            return  # the first scrape is still running; it settles by the new data
        if job.result is not None:
            job.result["monitoring"] = monitoring
        if monitoring and job.final == "completed":
            job.final, job.completed_at = MONITORING, None
        elif not monitoring and job.final == MONITORING:
            job.final, job.completed_at = "completed", now

    def ledger(self, now: float) -> list[Json]:
        """The ledger's ``user_jobs`` (reading a status may settle it)."""
        return [
            {
                "id": j.id,
                "agent_id": j.agent_id,
                "type": j.user_job_type,
                "status": self.status(j, now),
                "scheduled_time": iso(j.scheduled_at) if j.scheduled_at is not None else None,
                "post_id": j.result.get("post_id") if j.result else None,
                "created_at": j.created_at,
                "completed_at": j.completed_at,
            }
            for j in self.user_jobs.values()
        ]
