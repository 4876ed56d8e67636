"""What the sim's Ideas Engine, research and text models "say": canned, seeded text.

Deterministic per seeded RNG and shaped by the agent's core and preferences,
so a journey replays the same ideas and a preference ("statement hooks")
visibly changes them.  No state: the chat and generations stores call in.
"""

from __future__ import annotations

import random
import re
from typing import Final

from genbatch.sim import templates
from genbatch.sim.clock import iso
from genbatch.sim.entities import Agent, Json

#: Ideas per run when the message names no number, and the cap.
SIM_IDEAS_DEFAULT: Final = 5
SIM_IDEAS_MAX: Final = 20

APPROVAL_WORDS = re.compile(r"\b(delete|publish)\b", re.IGNORECASE)
_VIDEO_TYPES = tuple(k for k in templates.VIDEO_TYPE_IDS if k != "any")
_PLATFORMS = (
    "tiktok",
    "instagram",
    "youtube",
    "reddit",
    "x",
    "hacker_news",
    "perplexity",
    "gemini",
)
# ASSUMPTION: how canned hooks and text read (docs/sim-assumptions.md, "ideas-text").
#: Hook sentences.  ``{kw}`` is a noun phrase (a keyword, a brand, or the topic a prompt
#: names), singular or plural, or just "this", so no verb in a hook agrees with it.
_HOOKS = (
    "Nobody talks about {kw}, so I will.",
    "Everything I thought I knew about {kw} was wrong.",
    "I spent a week chasing {kw} so you don't have to.",
    "Here's the secret to {kw} that locals keep to themselves.",
    "Stop scrolling if you care about {kw}.",
    "Three things about {kw} I learned the hard way.",
)
_ANGLES = ("the hidden gem", "the 2am test", "locals only", "worth the line")
_QUESTION_HOOKS = (
    "Would you wait an hour for {kw}?",
    "What if everything you know about {kw} is wrong?",
)
#: A prompt's topic: what follows "for" or "about", up to punctuation.
_TOPIC = re.compile(r"\b(?:for|about)\s+(?:a |an |the )?([^.,!?:;\n]+)", re.IGNORECASE)
#: A prompt that dictates the opening line ("... that opens with: <hook>").
_OPENER = re.compile(r"\b(?:opens|starts|begins) with\s*:?\s*(.+)$", re.IGNORECASE | re.DOTALL)


def classify(message: str, in_conversation: bool) -> str:
    """What a run message asks for: preferences, an approvable action, refine, ideas or chat."""
    # ASSUMPTION: how a message picks its run kind (docs/sim-assumptions.md, "runs").
    text = message.strip().lower()
    if text.startswith("remember:"):
        return "preferences"
    if APPROVAL_WORDS.search(text):
        return "action"
    if in_conversation and re.search(r"\bidea\s*#?\d+", text):
        return "refine"
    if "idea" in text:
        return "ideas"
    return "chat"


def title_for(message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else "New conversation"
    return first[:60]


def pending_action(message: str) -> Json:
    m = APPROVAL_WORDS.search(message)
    return {
        "type": (m.group(1).lower() if m else "action"),
        "description": message,
        "approved": None,
    }


def idea_count(message: str) -> int:
    m = re.search(r"\b(\d{1,3})\b", message)
    n = int(m.group(1)) if m else SIM_IDEAS_DEFAULT
    return max(1, min(SIM_IDEAS_MAX, n))


def _keywords(agent: Agent) -> list[str]:
    """What the agent's ideas are about: its keywords, else its brand name as written."""
    kws = [str(k).strip() for k in agent.core.get("keywords") or [] if str(k).strip()]
    return kws or [str(agent.core.get("brand_name") or agent.name).strip() or "this"]


def _statement_only(agent: Agent | None) -> bool:
    prefs = " ".join(agent.preferences).lower() if agent is not None else ""
    return "statement hook" in prefs or "never question" in prefs


def _hook(agent: Agent | None, rng: random.Random, kw: str, punchy: bool = False) -> str:
    pool = _HOOKS if _statement_only(agent) else _HOOKS + _QUESTION_HOOKS
    hook = rng.choice(pool).format(kw=kw)
    return hook.rstrip(".?") + "!" if punchy and not hook.endswith("?") else hook


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def make_idea(
    agent: Agent,
    message: str,
    rng: random.Random,
    index: int,
    clip_urls: list[str],
    still_urls: list[str],
) -> Json:
    """One idea with every documented field (Step 2); its clip assets are MP4s and its
    image assets JPEGs of the stock library."""
    kws = _keywords(agent)
    kw = kws[index % len(kws)]
    m = re.search(r"under\s+(\d+)\s*s", message.lower())
    cap = int(m.group(1)) if m else 45
    duration = max(5, min(cap, rng.randint(12, 45)))
    vtype = rng.choice(_VIDEO_TYPES)
    hook = _hook(agent, rng, kw)
    brand = agent.core.get("brand_name") or agent.name
    script = (
        f"{hook} Here is what {brand} found this week about {kw}. "
        f"First, the spot everyone is posting about. Then, the detail nobody films. "
        f"Follow for more {kw}."
    )
    assets = []
    for j in range(2):
        pool = clip_urls if j == 0 else still_urls
        url = pool[index % len(pool)] if pool else ""
        start = round(rng.uniform(0, 4), 1)
        assets.append(
            {
                "url": url,
                "type": "clip" if j == 0 else "image",
                "description": f"{kw} {'b-roll' if j == 0 else 'still'} from research",
                "usage": "opening b-roll under the hook"
                if j == 0
                else "cutaway while the script explains",
                "clip_range": {"start": start, "end": round(start + min(3.0, duration / 3), 1)}
                if j == 0
                else None,
            }
        )
    sources = [
        {
            "platform": (p := rng.choice(_PLATFORMS)),
            "url": f"https://www.{p}.com/trend/{kw.replace(' ', '-')}-{rng.randint(1000, 9999)}",
            "title": f"{kw} is trending on {p}",
            "views": rng.randint(20_000, 4_000_000),
        }
        for _ in range(2)
    ]
    prefs = (
        f" Applies your preferences: {'; '.join(agent.preferences)}." if agent.preferences else ""
    )
    return {
        "title": f"{_capitalised(kw)}: {_ANGLES[index % len(_ANGLES)]}",
        "hook": hook,
        "full_script": script,
        "video_type": vtype,
        "video_type_id": templates.VIDEO_TYPE_IDS[vtype],
        "estimated_duration": duration,
        "aspect_ratio": "9:16",
        "selected_assets": assets,
        "project_manifest": {
            "total_duration": duration,
            "timeline_layers": [
                {"type": "video", "source": assets[0]["url"], "start": 0.0, "end": float(duration)},
                {"type": "text", "content": hook, "start": 0.0, "end": 3.0},
                {"type": "audio", "source": "voiceover", "start": 0.0, "end": float(duration)},
            ],
        },
        "inspiration_sources": sources,
        "rationale": f"{kw} is rising on {sources[0]['platform']} this week and matches "
        f"{brand}'s keywords and monitored sources.{prefs}",
    }


def refine(
    ideas: list[Json], message: str, agent: Agent, rng: random.Random, t: float
) -> list[Json]:
    """Apply "make idea N …", "change idea N to <type>", "drop idea N" to a conversation's ideas."""
    changed: dict[int, Json] = {}
    for sentence in re.split(r"[.;\n]+", message):
        m = re.search(r"\bidea\s*#?(\d+)", sentence, re.IGNORECASE)
        if not m or not 1 <= int(m.group(1)) <= len(ideas):
            continue
        idea = ideas[int(m.group(1)) - 1]
        low = sentence.lower()
        if re.search(r"\b(drop|remove)\b", low):
            idea["status"] = "rejected"
        elif "hook" in low:
            old, new = str(idea["hook"]), _hook(agent, rng, _keywords(agent)[0], punchy=True)
            script = str(idea["full_script"])
            idea["full_script"] = new + script[len(old) :] if script.startswith(old) else script
            idea["hook"] = new
            for layer in idea.get("project_manifest", {}).get("timeline_layers", []):
                if layer.get("type") == "text" and layer.get("content") == old:
                    layer["content"] = new
        else:
            for vt in _VIDEO_TYPES:
                if vt.replace("_", " ") in low or vt in low:
                    idea["video_type"], idea["video_type_id"] = vt, templates.VIDEO_TYPE_IDS[vt]
                    break
            else:
                idea["title"] = idea["title"] + " (revised)"
        idea["updated_at"] = iso(t)
        changed[idea["id"]] = idea
    return list(changed.values())


def research(topic: str, depth: str, agent: Agent, rng: random.Random) -> Json:
    n = {"quick": 3, "default": 5, "deep": 8}.get(depth, 5)
    findings = [
        {
            "title": f"{topic}: finding {i + 1}",
            "summary": f"Signal {i + 1} on {topic}, seen across {rng.randint(3, 40)} recent posts.",
            "source_url": f"https://news.example.com/{rng.randint(10_000, 99_999)}",
            "platform": rng.choice(_PLATFORMS),
            "relevance": round(rng.uniform(0.5, 1.0), 2),
        }
        for i in range(n)
    ]
    brand = agent.core.get("brand_name") or agent.name
    summary = f'{len(findings)} findings on "{topic}" ({depth} research) relevant to {brand}.'
    return {"topic": topic, "depth": depth, "findings": findings, "summary": summary}


def chat_reply(message: str, agent: Agent, rng: random.Random) -> str:
    brand = agent.core.get("brand_name") or agent.name
    opener = rng.choice(["Good question.", "On it.", "Noted."])
    return f"{brand} here. {opener} You said: {message[:200]}"


def prompt_topic(prompt: str) -> str | None:
    """The topic a prompt names ("... hook for San Antonio tacos"), at most five words."""
    m = _TOPIC.search(prompt)
    if m is None:
        return None
    words = m.group(1).strip().strip("\"'").split()[:5]
    return " ".join(words) or None


def fake_text(prompt: str, rng: random.Random, agent: Agent | None = None) -> str:
    """What a text model returns: a hook for hook-ish prompts, a short script otherwise.

    The topic is the one the prompt names, else the agent's first keyword (or
    brand); a prompt that dictates its opening line ("opens with: ...") gets it."""
    opener_m = _OPENER.search(prompt)
    opener = opener_m.group(1).strip() if opener_m else ""
    head = prompt[: opener_m.start()] if opener_m else prompt
    topic = prompt_topic(head) or (_keywords(agent)[0] if agent is not None else "this")
    low = head.lower()
    if "hook" in low and "script" not in low:
        return opener or _hook(agent, rng, topic)
    first = opener or _hook(agent, rng, topic)
    return (
        f"{first} Here's the story in thirty seconds. "
        f"It starts with {topic} and ends with you hitting follow."
    )
