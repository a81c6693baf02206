"""Chat front-ends' housekeeping prompts (Open WebUI's title, tags, follow-ups, search queries, emoji).

Open WebUI sends these to the chat model as ordinary completions, each starting ``### Task:`` and quoting the
chat inside ``<chat_history>``. They are not requests for recommendations: answering them with picks would
title every chat "1. Toy Story (1995)…" and write the history into the user's profile. They get a short,
deterministic answer in the JSON shape the template asks for; no model runs and nothing is stored.
"""

from __future__ import annotations

import json
import re

_TASK = re.compile(r"^\s*#{2,3}\s*Task:", re.IGNORECASE)
_HISTORY = re.compile(r"<chat_history>(.*?)(?:</chat_history>|$)", re.DOTALL | re.IGNORECASE)
_FIRST_USER = re.compile(r"^\s*USER:\s*(.+)$", re.MULTILINE)
_WORD = re.compile(r"[\w'’-]+")

FOLLOW_UPS = [
    "Can you suggest something more recent?",
    "What would you pick for a lighter mood?",
    "Why did you pick the first one?",
]


def is_task_prompt(text: str) -> bool:
    """A front-end housekeeping prompt rather than a user's turn."""
    return bool(_TASK.match(text)) and "<chat_history>" in text.lower()


def _title(text: str) -> str:
    history = _HISTORY.search(text)
    first = _FIRST_USER.search(history.group(1) if history else "")
    words = _WORD.findall(first.group(1))[:5] if first else []
    return "🎬 " + (" ".join(words).capitalize() if words else "Recommendations")


def task_answer(text: str) -> str:
    """The answer, as the JSON object the template asks for (an emoji task gets a bare emoji)."""
    task = text.split("###", 2)[1].lower() if text.count("###") >= 2 else text.lower()
    if "title" in task:
        return json.dumps({"title": _title(text)}, ensure_ascii=False)
    if "tag" in task:
        return json.dumps({"tags": ["Recommendations", "Movies"]})
    if "follow-up" in task or "follow up" in task or "follow_up" in task:
        return json.dumps({"follow_ups": FOLLOW_UPS})
    if "quer" in task:
        return json.dumps({"queries": []})
    if "emoji" in task:
        return "🎬"
    if "autocomplet" in task:
        return json.dumps({"text": ""})
    return "{}"
