"""Agents and what defines them: the agent core, linked accounts, voices and previews.

Agent access lives here too (``agent_param``/``agent_path``/``own_agent``)
because almost every route resolves an agent first, and the two ways an
unknown agent fails (422 agent_not_found vs 404) must not drift apart.
"""

from __future__ import annotations

from typing import Any, Final

from genbatch._constants import SIM_DEMO_AGENT_ID, SIM_DEMO_WORKSPACE_ID
from genbatch.sim import templates
from genbatch.sim.accounts import SIM_OTHER_AGENT_ID, SIM_OTHER_WORKSPACE_ID
from genbatch.sim.entities import (
    Agent,
    ApiError,
    Json,
    Preview,
    User,
    Voice,
    as_int,
    invalid,
    not_found,
    plain,
    reject_unknown,
)

#: The demo agent's own TikTok account (publish needs one).
SIM_DEMO_TIKTOK_URL: Final = "https://tiktok.com/@genbatch_demo"
#: Agent core limits from the reference (Step 1).
SIM_DESCRIPTION_MAX_CHARS: Final = 500
SIM_PERSONALITY_MAX_CHARS: Final = 20_000

#: The seeded agents: (agent id, workspace id, name).
SEED_AGENTS: tuple[tuple[int, int, str], ...] = (
    (SIM_DEMO_AGENT_ID, SIM_DEMO_WORKSPACE_ID, "Santiago"),
    (SIM_OTHER_AGENT_ID, SIM_OTHER_WORKSPACE_ID, "Other Agent"),
)
#: Public voices of the library (the first is the reference's example voice).
PUBLIC_VOICES: tuple[tuple[str, str, str, str], ...] = (
    (templates.DEFAULT_VOICE_ID, "Rachel", "female", "american"),
    ("AZnzlk1XvdvUeBnXmlld", "Domi", "female", "american"),
    ("EXAVITQu4vr4xnSDxMaL", "Bella", "female", "american"),
    ("ErXwobaYiN019PkySvjV", "Antoni", "male", "american"),
    ("TxGEqnHWrfWFTfGW9XjX", "Josh", "male", "american"),
    ("pNInz6obpgDQGcFmaJgB", "Adam", "male", "american"),
)
CORE_FIELDS = (
    "brand_name",
    "description",
    "identity_type",
    "goal",
    "target_platforms",
    "shortform",
    "keywords",
    "monitored",
    "research_topics",
    "linked_accounts",
    "personality",
    "default_user_voice",
)
# ASSUMPTION: the accepted core values (docs/sim-assumptions.md, "core-values").
LINKABLE_PLATFORMS = ("tiktok", "instagram", "youtube")
TARGET_PLATFORMS = ("tiktok", "instagram", "youtube", "facebook", "x", "linkedin", "threads")
MONITORED_TYPES = ("account", "hashtag", "keyword")


def blank_core(name: str) -> Json:
    """A fresh agent's core: every documented field, empty."""
    return {
        "brand_name": name,
        "description": "",
        "identity_type": "brand",
        "goal": "growth",
        "target_platforms": [],
        "shortform": True,
        "keywords": [],
        "monitored": [],
        "research_topics": [],
        "linked_accounts": [],
        "personality": "",
        "default_user_voice": {"voice_id": templates.DEFAULT_VOICE_ID, "source": "public"},
    }


class AgentStore:
    """Agents, their cores and voice libraries, voice design drafts and preview jobs."""

    def __init__(self, *, now: float) -> None:
        self.agents: dict[int, Agent] = {}
        self.voices: dict[str, Voice] = {}
        self.previews: dict[int, Preview] = {}
        self.voice_drafts: dict[str, Json] = {}
        for aid, wid, name in SEED_AGENTS:
            self.agents[aid] = Agent(aid, wid, name, now, core=blank_core(name))
        demo = self.agents[SIM_DEMO_AGENT_ID]
        demo.core["linked_accounts"] = [{"url": SIM_DEMO_TIKTOK_URL, "platform": "tiktok"}]
        demo.core["target_platforms"] = ["tiktok"]
        for vid, vname, gender, accent in PUBLIC_VOICES:
            self.voices[vid] = Voice(
                vid, vname, "public", None, gender, accent, f"{vname}, {accent}"
            )

    # ------------------------------------------------------------------ access
    # ASSUMPTION: a missing or unknown agent_id is 422 agent_not_found, an unknown
    # /agents/:id is 404, and another workspace's agent is 404 not_found like a missing
    # one (docs/sim-assumptions.md, "agent_id", "forbidden").
    def agent_param(self, user: User, agent_id: object) -> Agent:
        """Resolve an ``agent_id`` parameter: 422 agent_not_found, 404 when not yours."""
        if agent_id is None or (isinstance(agent_id, str) and not agent_id.strip()):
            raise ApiError(422, "agent_not_found", "agent_id is required")
        aid = as_int(agent_id)
        agent = self.agents.get(aid) if aid is not None else None
        if agent is None:
            raise ApiError(
                422, "agent_not_found", f"agent_id {plain(agent_id)} is not a valid agent"
            )
        if agent.workspace_id not in user.workspace_ids:
            raise not_found("agent", agent_id)
        return agent

    def agent_path(self, user: User, agent_id: object) -> Agent:
        """Resolve ``/v1/agents/:id``: unknown or not yours is 404 not_found."""
        aid = as_int(agent_id)
        agent = self.agents.get(aid) if aid is not None else None
        if agent is None or agent.workspace_id not in user.workspace_ids:
            raise not_found("agent", agent_id)
        return agent

    def own_agent(self, user: User, agent_id: int, what: str, ident: object) -> None:
        """404 unless ``user`` may see the agent that ``what`` ``ident`` (a run...) belongs to."""
        agent = self.agents.get(agent_id)
        if agent is None or agent.workspace_id not in user.workspace_ids:
            raise not_found(what, ident)

    # ------------------------------------------------------------------ agent core
    def patch_core(self, agent: Agent, body: Json) -> dict[str, str]:
        """Apply a PATCH of agent core; return {section: error} for sections that failed.

        Whole-request 422s (unknown field, over-long description/personality)
        change nothing; otherwise each section stands alone (→ 207 when some fail).
        """
        # ASSUMPTION: see docs/sim-assumptions.md, "core-422" and "core-207".
        reject_unknown(body, CORE_FIELDS)
        desc = body.get("description")
        if isinstance(desc, str) and len(desc) > SIM_DESCRIPTION_MAX_CHARS:
            raise invalid(
                f"description is {len(desc)} chars; max {SIM_DESCRIPTION_MAX_CHARS} "
                "(put the full persona in personality)"
            )
        pers = body.get("personality")
        if isinstance(pers, str) and len(pers) > SIM_PERSONALITY_MAX_CHARS:
            raise invalid(f"personality is {len(pers)} chars; max {SIM_PERSONALITY_MAX_CHARS}")
        staged: Json = {}
        errors: dict[str, str] = {}
        for name, value in body.items():
            try:
                staged[name] = self._core_section(agent, name, value)
            except ValueError as exc:
                errors[name] = str(exc)
        if errors and not staged:
            raise invalid("; ".join(f"{k}: {v}" for k, v in errors.items()))
        agent.core.update(staged)
        if "keywords" in staged and "monitored" not in body:
            kept = [m for m in agent.core.get("monitored") or [] if m.get("item_type") != "keyword"]
            agent.core["monitored"] = kept + [
                {"handle": kw, "item_type": "keyword"} for kw in staged["keywords"]
            ]
        if "brand_name" in staged:
            agent.name = staged["brand_name"]
        return errors

    def _core_section(self, agent: Agent, name: str, value: Any) -> Any:
        def str_list(v: Any) -> list[str]:
            if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
                raise ValueError("must be a list of non-empty strings")
            return list(v)

        def objects(v: Any, required: tuple[str, ...]) -> list[Json]:
            if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
                raise ValueError("must be a list of objects")
            for i, x in enumerate(v):
                for r in required:
                    if not isinstance(x.get(r), str) or not x[r].strip():
                        raise ValueError(f"entry {i} needs {r} (a non-empty string)")
            return [dict(x) for x in v]

        if name in ("brand_name", "identity_type", "goal"):
            if not isinstance(value, str) or not value.strip():
                raise ValueError("must be a non-empty string")
            return value
        if name in ("description", "personality"):
            if not isinstance(value, str):
                raise ValueError("must be a string")
            return value
        if name == "shortform":
            if not isinstance(value, bool):
                raise ValueError("must be true or false")
            return value
        if name == "target_platforms":
            plats = str_list(value)
            bad = [p for p in plats if p not in TARGET_PLATFORMS]
            if bad:
                raise ValueError(
                    f"unsupported platform(s) {plain(bad)}; supported: {plain(TARGET_PLATFORMS)}"
                )
            return plats
        if name == "keywords":
            return [k.lstrip("#") for k in str_list(value)]
        if name == "monitored":
            items = objects(value, ("handle", "item_type"))
            for i, m in enumerate(items):
                if m["item_type"] not in MONITORED_TYPES:
                    raise ValueError(
                        f"entry {i}: item_type must be one of {plain(MONITORED_TYPES)}"
                    )
            return items
        if name == "research_topics":
            if isinstance(value, list):
                value = [{"topic": x} if isinstance(x, str) else x for x in value]
            return objects(value, ("topic",))
        if name == "linked_accounts":
            accts = objects(value, ("url", "platform"))
            for i, a in enumerate(accts):
                if a["platform"] not in LINKABLE_PLATFORMS:
                    raise ValueError(
                        f"entry {i}: platform {plain(a['platform'])} is not supported "
                        f"(supported: {', '.join(LINKABLE_PLATFORMS)})"
                    )
            return accts
        if name == "default_user_voice":
            if not isinstance(value, dict) or not isinstance(value.get("voice_id"), str):
                raise ValueError("must be an object with voice_id")
            voice = self.voice_of(agent.id, value["voice_id"])
            if voice is None:
                raise ValueError(f"voice {value['voice_id']} is not in this agent's library")
            return {"voice_id": voice.voice_id, "source": value.get("source", voice.source)}
        raise ValueError("unknown field")  # pragma: no cover - filtered above

    def voice_of(self, agent_id: int, voice_id: object) -> Voice | None:
        """A voice of ``agent_id``'s library (public or its own), else None."""
        voice = self.voices.get(str(voice_id))
        if voice is None or (voice.agent_id is not None and voice.agent_id != agent_id):
            return None
        return voice
