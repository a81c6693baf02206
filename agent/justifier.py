"""Justifications: one generated sentence per pick, validated, with an evidence-based template as fallback."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from recagent.retrieval import Catalog, Item, ItemIndex, natural_title

from .llm import LLMBackend, LLMError
from .profiles.profile import Evidence, UserProfile
from .prompts import clean, justification_conversation
from .schemas import MAX_JUSTIFICATION_CHARS as MAX_CHARS
from .schemas import Justification

MIN_CHARS = 12
# Only the first sentence is kept, so generation may stop at its end (backends that can, do).
SENTENCE_END = (". ", ".\n")


_URL = re.compile(r"https?://|www\.|<\|", re.IGNORECASE)
_QUOTED = re.compile(r"[\"“”']([^\"“”']{3,80})[\"“”']")
# Colons stay inside the span ("The Godfather: Part II (1974)"); the longest-suffix lookup drops any lead-in.
_TITLE_WITH_YEAR = re.compile(r"([A-Z][^.!?;\"]{1,80}?)\s*\((1[89]\d\d|20\d\d)\)")


def gather_evidence(
    item: Item, profile: UserProfile, index: ItemIndex, request: str | None, limit: int = 3
) -> list[Evidence]:
    """The liked items most similar to ``item`` and the profile interests it shares."""
    evidence: list[Evidence] = []
    liked = [r for r in profile.liked if r.item_id in index.catalog and r.item_id != item.id]
    if liked:
        sims = index.text_vectors_for([r.item_id for r in liked]) @ index.text_vector(item.id)
        for pos in np.argsort(-sims)[:2]:
            rated = liked[int(pos)]
            rating = f" {rated.rating:g}/5" if rated.rating is not None else ""
            evidence.append(
                Evidence(
                    source="rating",
                    item_id=rated.item_id,
                    text=f"you rated {natural_title(rated.title)}{rating}",
                    weight=round(float(sims[pos]), 4),
                )
            )
    shared = [i for i in profile.top_interests(8) if i.tag.lower() in {g.lower() for g in item.genres}]
    for interest in shared[:2]:
        evidence.append(Evidence(source="rating", text=f"you enjoy {interest.tag}", weight=interest.weight))
    if request:
        evidence.append(Evidence(source="request", text=f'you asked for "{clean(request, 80)}"', weight=1.0))
    return evidence[: limit + 2]


def template_sentence(item: Item, evidence: Sequence[Evidence]) -> str:
    reasons = [e.text for e in evidence]
    if not reasons:
        genres = ", ".join(item.genres[:2])
        return f"{item.natural_title} is a well-matched pick" + (
            f" among {genres} titles." if genres else "."
        )
    joined = reasons[0] if len(reasons) == 1 else ", ".join(reasons[:-1]) + " and " + reasons[-1]
    sentence = f"Recommended because {joined}."
    return sentence if len(sentence) <= MAX_CHARS else sentence[: MAX_CHARS - 1] + "…"


def validate_sentence(
    text: str, item: Item, allowed: Sequence[Item], catalog: Catalog
) -> tuple[str | None, str | None]:
    """Return (clean sentence, None) if the text is usable, else (None, reason)."""
    text = clean(text, 2000)
    # Keep the first sentence; small models ramble.
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    sentence = match.group(1).strip() if match else _end_cut_off(text.strip())
    if len(sentence) < MIN_CHARS:
        return None, "too short"
    if len(sentence) > MAX_CHARS:
        return None, "too long"
    if _URL.search(sentence):
        return None, "contains a link or markup"
    allowed_ids = {it.id for it in allowed}
    for span in [m.group(1) for m in _QUOTED.finditer(sentence)]:
        named = catalog.find_title(span)
        if named is not None and named.id not in allowed_ids:
            return None, f"names another item ({named.display_title})"
    for match in _TITLE_WITH_YEAR.finditer(sentence):
        named = _longest_title_suffix(match.group(1), match.group(2), catalog)
        if named is None:
            return None, f"names an item not in the catalogue ({match.group(0).strip()})"
        if named.id not in allowed_ids:
            return None, f"names another item ({named.display_title})"
    return sentence, None


def _end_cut_off(text: str) -> str:
    """A sentence the token limit cut off ("... and Batman (198"): end it at the last whole word outside any
    open bracket, with an ellipsis, so no half title is shown or checked."""
    for opener, closer in (("(", ")"), ("[", "]"), ('"', None)):
        if (text.count(opener) % 2 if closer is None else text.count(opener) - text.count(closer)) > 0:
            text = text[: text.rfind(opener)]
    if " " in text.strip():
        text = text.rstrip().rsplit(" ", 1)[0]
    # Three full stops, not "…": validation NFKC-normalises text, which turns "…" into "...", and a shown
    # sentence must validate to itself.
    return text.rstrip(" ,;:-–") + "..."


def _longest_title_suffix(words: str, year: str, catalog: Catalog) -> Item | None:
    """'Fans of GoldenEye' + 1995 → the item 'GoldenEye (1995)': the longest trailing run of words that is a title."""
    tokens = words.split()
    for start in range(len(tokens)):
        candidate = " ".join(tokens[start:])
        named = catalog.find_title(f"{candidate} ({year})") or catalog.find_title(candidate)
        if named is not None and (named.year is None or str(named.year) == year or year in named.title):
            return named
    return None


class Justifier:
    """Generates one sentence per recommended item in a single batched ``generate`` call."""

    def __init__(self, backend: LLMBackend | None, index: ItemIndex, max_new_tokens: int = 40) -> None:
        self.backend = backend
        self.index = index
        self.max_new_tokens = max_new_tokens

    def justify(
        self,
        items: Sequence[Item],
        profile: UserProfile,
        request: str | None,
        evidence: Sequence[Sequence[Evidence]],
    ) -> list[Justification]:
        allowed = [
            [
                item,
                *(self.index.catalog[e.item_id] for e in ev if e.item_id and e.item_id in self.index.catalog),
            ]
            for item, ev in zip(items, evidence, strict=True)
        ]
        outcome: list[tuple[str | None, str]] = [(None, "no language model configured")] * len(items)
        if self.backend is not None:
            # A rejected sentence gets one more try with a stricter prompt: small models sometimes garble a
            # title ("the movie The (1994)"); the retry only ever replaces a rejection, never a valid sentence.
            todo = list(range(len(items)))
            for strict in (False, True):
                if not todo:
                    break
                conversations = [
                    justification_conversation(
                        items[i], [e.text for e in evidence[i]], request, strict=strict
                    )
                    for i in todo
                ]
                try:
                    generated = self.backend.generate(conversations, self.max_new_tokens, SENTENCE_END)
                except LLMError as exc:
                    for i in todo:
                        outcome[i] = (None, f"model error: {exc}")
                    break  # the model is down: a stricter prompt will not bring it back
                for i, text in zip(todo, generated, strict=True):
                    sentence, reason = validate_sentence(text, items[i], allowed[i], self.index.catalog)
                    outcome[i] = (sentence, reason or "invalid")
                todo = [i for i in todo if outcome[i][0] is None]
        return [
            Justification(text=sentence, source="generated")
            if sentence is not None
            else Justification(text=template_sentence(item, ev), source="template", rejected_reason=reason)
            for item, ev, (sentence, reason) in zip(items, evidence, outcome, strict=True)
        ]
