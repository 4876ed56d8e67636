"""The agent host: runs, conversations, messages and the ideas runs produce (Step 2).

A run is classified from its message when it starts (ideas, refine,
preferences, research, an approvable action, or chat) and does its work
when it settles; the words come from :mod:`genbatch.sim.idea_text`, seeded
per run so a journey replays the same ideas.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import orjson

from genbatch.sim.agentstore import AgentStore
from genbatch.sim.assets import STOCK_CLIP_PREFIX, STOCK_STILL_PREFIX, Assets
from genbatch.sim.clock import iso
from genbatch.sim.entities import (
    Agent,
    Conversation,
    Json,
    Message,
    Run,
    Shared,
    User,
    as_int,
    invalid,
    not_found,
)
from genbatch.sim.generations import Generations
from genbatch.sim.idea_text import (
    chat_reply,
    classify,
    idea_count,
    make_idea,
    pending_action,
    refine,
    research,
    title_for,
)
from genbatch.sim.jobs import UserJobs

T = TypeVar("T")

#: Research runs take a fixed time per depth (seconds at scale 1.0): the vendor's
#: figures, about 30 s, 2 min and 5 min (docs/dialect.md §4).
SIM_RESEARCH_LATENCY: Final[dict[str, float]] = {"quick": 30.0, "default": 120.0, "deep": 300.0}
#: "idea 2" / "idea #2" in a message: the conversation's second idea.
IDEA_REF = re.compile(r"\bidea\s*#?(\d+)", re.IGNORECASE)


def _pref_key(text: str) -> str:
    """A preference as compared for repeats: case, spacing and end punctuation ignored."""
    return " ".join(text.lower().split()).rstrip(".!;, ")


class Chat:
    """Agent runs with their conversations, messages and ideas."""

    def __init__(
        self,
        sh: Shared,
        agent_store: AgentStore,
        *,
        assets: Assets,
        gens: Generations,
        jobs: UserJobs,
    ) -> None:
        self._sh = sh
        self._agent_store = agent_store
        self._assets = assets
        self._gens = gens
        self._jobs = jobs
        self.runs: dict[int, Run] = {}
        self.conversations: dict[int, Conversation] = {}
        self.messages: dict[int, Message] = {}
        self.ideas: dict[int, Json] = {}

    # ------------------------------------------------------------------ access
    def run(self, user: User, run_id: object) -> Run:
        return self._owned(user, "run", self.runs, run_id, lambda r: r.agent_id)

    def conversation(self, user: User, conversation_id: object) -> Conversation:
        return self._owned(
            user, "conversation", self.conversations, conversation_id, lambda c: c.agent_id
        )

    def idea(self, user: User, idea_id: object) -> Json:
        return self._owned(user, "idea", self.ideas, idea_id, lambda i: i["agent_id"])

    def _owned(
        self,
        user: User,
        what: str,
        table: Mapping[int, T],
        ident: object,
        agent_of: Callable[[T], Any],
    ) -> T:
        """``table[ident]`` when it exists and its agent is ``user``'s; else the one 404."""
        key = as_int(ident)
        found = table.get(key) if key is not None else None
        if found is None:
            raise not_found(what, ident)
        self._agent_store.own_agent(user, agent_of(found), what, ident)
        return found

    # ------------------------------------------------------------------ runs
    def start_run(
        self,
        agent: Agent,
        message: str,
        conversation: Conversation | None,
        now: float,
        params: Json,
    ) -> Run:
        sh = self._sh
        kind = params.get("kind") or classify(message, conversation is not None)
        if conversation is None:
            conversation = Conversation(
                sh.next_id("conversation"), agent.id, title_for(message), now, updated_at=now
            )
            self.conversations[conversation.id] = conversation
        if kind == "research":
            # The vendor's ~30 s / 2 min / 5 min by depth (docs/sim-assumptions.md, "research").
            latency = sh.clock.fixed(SIM_RESEARCH_LATENCY[str(params.get("depth", "default"))])
        else:
            latency = sh.clock.latency("agent_run")
        run = Run(
            sh.next_id("run"),
            agent.id,
            conversation.id,
            kind,
            message,
            now,
            now + latency,
            params,
            updated_at=now,
        )
        self.runs[run.id] = run
        conversation.run_ids.append(run.id)
        conversation.updated_at = now
        self._add_message(conversation, "user", message, run.id, now)
        sh.due.push(run.due_at, ("run", run.id))
        return run

    def _add_message(
        self,
        conv: Conversation,
        role: str,
        text: str,
        run_id: int | None,
        now: float,
        idea_ids: list[int] | None = None,
    ) -> Message:
        msg = Message(
            self._sh.next_id("message"), conv.id, role, text, run_id, now, list(idea_ids or [])
        )
        self.messages[msg.id] = msg
        conv.message_ids.append(msg.id)
        return msg

    def run_status(self, run: Run, now: float) -> str:
        if run.status == "running" and now >= run.due_at:
            self._finish_run(run)
        return run.status

    def settle(self, ident: int, due: float) -> None:
        """The due queue reached run ``ident`` (a stale entry is ignored)."""
        run = self.runs.get(ident)
        if run is not None and run.status == "running" and run.due_at <= due:
            self._finish_run(run)

    def approve_run(self, run: Run, approved: bool, now: float) -> None:
        # ASSUMPTION: the run resumes briefly (docs/sim-assumptions.md, "approve").
        if run.status != "awaiting_approval" or run.pending_action is None:
            raise invalid(
                f"run {run.id} is {run.status}; only awaiting_approval runs can be approved"
            )
        run.pending_action["approved"] = approved
        run.status = "running"
        run.updated_at = now
        run.due_at = now + self._sh.clock.latency("agent_run") / 4
        self._sh.due.push(run.due_at, ("run", run.id))

    def _finish_run(self, run: Run) -> None:
        t = run.due_at
        run.updated_at = t
        agent = self._agent_store.agents.get(run.agent_id)
        conv = self.conversations.get(run.conversation_id)
        if agent is None or conv is None:
            run.status, run.result = "failed", {"error": "agent or conversation was deleted"}
            return
        rng = random.Random(f"{self._sh.seed}-run-{run.id}")
        if run.kind == "action" and run.pending_action is None:
            run.status = "awaiting_approval"
            run.pending_action = pending_action(run.message)
            self._add_message(
                conv,
                "assistant",
                f"I need your approval to {run.pending_action['type']}: {run.message}",
                run.id,
                t,
            )
            return
        run.status = "completed"
        run.completed_at = t
        if run.kind == "ideas":
            n = idea_count(run.message)
            ideas = [self._new_idea(agent, conv, run, rng, i, t) for i in range(n)]
            text = f"Here are {n} content ideas grounded in this week's trends."
            msg = self._add_message(conv, "assistant", text, run.id, t, [i["id"] for i in ideas])
            run.result = {
                "type": "ideas",
                "message_id": msg.id,
                "idea_ids": msg.idea_ids,
                "ideas": ideas,
            }
        elif run.kind == "refine":
            changed = refine(self._conversation_ideas(conv), run.message, agent, rng, t)
            msg = self._add_message(
                conv,
                "assistant",
                f"Updated {len(changed)} idea(s).",
                run.id,
                t,
                [i["id"] for i in changed],
            )
            run.result = {
                "type": "refine",
                "message_id": msg.id,
                "idea_ids": msg.idea_ids,
                "ideas": changed,
            }
        elif run.kind == "preferences":
            pref = run.message.split(":", 1)[1].strip()
            if not pref:
                text = "There was nothing after remember: to keep."
            # ASSUMPTION: a repeat is stored once (docs/sim-assumptions.md, "ideas-text").
            elif any(_pref_key(p) == _pref_key(pref) for p in agent.preferences):
                text = f"I already remember that: {pref}"  # stored once, not again
            else:
                agent.preferences.append(pref)
                text = f"Got it — I'll remember: {pref}"
            msg = self._add_message(conv, "assistant", text, run.id, t)
            run.result = {
                "type": "preferences",
                "message_id": msg.id,
                "preferences": list(agent.preferences),
            }
        elif run.kind == "research":
            found = research(
                str(run.params.get("topic", run.message)),
                str(run.params.get("depth", "default")),
                agent,
                rng,
            )
            msg = self._add_message(conv, "assistant", found["summary"], run.id, t)
            run.result = {"type": "research", "message_id": msg.id, **found}
        elif run.kind == "action":
            assert run.pending_action is not None
            what = run.pending_action["type"]
            if run.pending_action.get("approved"):
                outcome = self._execute(run, agent, conv, t)
            else:
                outcome = {"executed": False, "reason": "not approved"}
            if outcome["executed"]:
                text = f"Done: {what}" + (
                    f" (user job {outcome['user_job_id']})" if "user_job_id" in outcome else ""
                )
            else:
                text = f"Did not {what}: {outcome['reason']}"
            msg = self._add_message(conv, "assistant", text, run.id, t)
            run.result = {
                "type": "action",
                "message_id": msg.id,
                "action": run.pending_action,
                **outcome,
            }
        else:
            reply = chat_reply(run.message, agent, rng)
            msg = self._add_message(conv, "assistant", reply, run.id, t)
            run.result = {"type": "chat", "message_id": msg.id, "reply": reply}

    def _execute(self, run: Run, agent: Agent, conv: Conversation, t: float) -> Json:
        """Carry out an approved action; ``executed`` is true only if it really happened.

        ``delete idea N`` deletes the conversation's N-th idea.  ``publish`` creates a
        publish_content user job for the agent's newest render (described by idea N's
        hook when one is named), which needs a linked TikTok account.
        """
        # ASSUMPTION: what an approved action does (docs/sim-assumptions.md, "approve").
        assert run.pending_action is not None
        idea: Json | None = None
        m = IDEA_REF.search(run.message)
        if m is not None:
            n, ideas = int(m.group(1)), self._conversation_ideas(conv)
            if not 1 <= n <= len(ideas):
                return {"executed": False, "reason": f"idea {n} is not in this conversation"}
            idea = ideas[n - 1]
        if run.pending_action["type"] == "delete":
            if idea is None:
                return {"executed": False, "reason": "name the idea to delete, e.g. delete idea 2"}
            del self.ideas[idea["id"]]
            return {"executed": True, "idea_id": idea["id"]}
        if not any(a.get("platform") == "tiktok" for a in agent.core.get("linked_accounts") or []):
            return {"executed": False, "reason": "the agent has no connected tiktok account"}
        url = self._gens.latest_render_url(agent.id)
        if url is None:
            return {"executed": False, "reason": "the agent has no rendered video to post yet"}
        data: Json = {
            "platform": "tiktok",
            "media_url": url,
            "description": str(idea["hook"]) if idea is not None else run.message,
            "schedule_type": "now",
            "media_type": "VIDEO",
        }
        job = self._jobs.add(agent, "publish_content", orjson.dumps(data).decode(), data, t, None)
        out: Json = {"executed": True, "user_job_id": job.id, "media_url": url}
        if idea is not None:
            out["idea_id"] = idea["id"]
        return out

    # ------------------------------------------------------------------ ideas
    def _new_idea(
        self, agent: Agent, conv: Conversation, run: Run, rng: random.Random, i: int, t: float
    ) -> Json:
        sh = self._sh
        clips = self._assets.stock_asset_urls(STOCK_CLIP_PREFIX)
        stills = self._assets.stock_asset_urls(STOCK_STILL_PREFIX)
        idea = make_idea(agent, run.message, rng, i, clips, stills)
        idea.update(
            id=sh.next_id("idea"),
            agent_id=agent.id,
            conversation_id=conv.id,
            run_id=run.id,
            status="generated",
            created_at=iso(t),
            updated_at=iso(t),
        )
        self.ideas[idea["id"]] = idea
        return idea

    def _conversation_ideas(self, conv: Conversation) -> list[Json]:
        seen: dict[int, Json] = {}
        for mid in conv.message_ids:
            for iid in self.messages[mid].idea_ids:
                if iid in self.ideas:
                    seen[iid] = self.ideas[iid]
        return list(seen.values())

    def ledger(self) -> list[Json]:
        """The ledger's ``runs``."""
        return [
            {
                "id": r.id,
                "agent_id": r.agent_id,
                "kind": r.kind,
                "status": r.status,
                "created_at": r.created_at,
            }
            for r in self.runs.values()
        ]
