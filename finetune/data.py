"""Training data for the ranker (LlamaRec-style): a short history plus 20 hybrid-retrieval candidates labelled
A, B, C, ...; the target is the label of the item the user actually rated next.

Examples come from the VALIDATION item of users outside the evaluation sample, with the history cut before
it, so no test item and no evaluated user's held-out items ever enter training.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from recagent.agent.justifier import gather_evidence, template_sentence
from recagent.agent.llm import Conversation
from recagent.agent.profile import RatedItem, UserProfile
from recagent.agent.prompts import LABELS, ranking_conversation
from recagent.retrieval import Catalog, Item, ItemIndex

from .protocol import LIKE_THRESHOLD, LeaveOneOut, Phase, Scorer


class RankingExample(BaseModel):
    user_id: str
    history: list[RatedItem] = Field(description="Most recent first, as in UserProfile.liked.")
    candidates: list[str] = Field(description="Item ids in retrieval order.")
    target_item: str
    target_label: str = Field(min_length=1, max_length=1)
    justification: str | None = Field(default=None, description="Built only from evidence in the history.")

    def conversation(self, catalog: Catalog, genres: bool = False) -> Conversation:
        profile = UserProfile(user_id=self.user_id, liked=self.history)
        return ranking_conversation(profile, compact([catalog[i] for i in self.candidates], genres), None)


def compact(items: Sequence[Item], genres: bool = False) -> list[Item]:
    """Candidates as the ranker sees them in training and evaluation: without genres the prompt is about half
    as long, which is what makes CPU fine-tuning and evaluation fit (the template is the production one)."""
    return list(items) if genres else [item.model_copy(update={"genres": ()}) for item in items]


def short_profile(
    user_id: str, catalog: Catalog, items: np.ndarray, ratings: np.ndarray, max_titles: int = 5
) -> UserProfile:
    """The last few liked titles (most recent first): a prompt short enough for CPU ranking."""
    liked = [(i, r) for i, r in zip(items.tolist(), ratings.tolist(), strict=True) if r >= LIKE_THRESHOLD]
    chosen = (liked or list(zip(items.tolist(), ratings.tolist(), strict=True)))[-max_titles:]
    catalogue = list(catalog)
    rated = [
        RatedItem(item_id=catalogue[i].id, title=catalogue[i].display_title, rating=float(r))
        for i, r in reversed(chosen)
    ]
    return UserProfile(user_id=user_id, liked=rated, event_count=len(items))


def build_examples(
    split: LeaveOneOut,
    scorer: Scorer,
    users: Sequence[int],
    phase: Phase = "valid",
    candidates: int = 20,
    max_titles: int = 5,
    index: ItemIndex | None = None,
    limit: int | None = None,
) -> Iterator[RankingExample]:
    """One example per user whose held-out item retrieval put in the top ``candidates`` (LlamaRec keeps only
    those: the ranker cannot learn from lists without the answer). With ``index``, adds a justification."""
    if phase == "test":
        raise ValueError("training examples must never be built from test items")
    catalogue = list(split.data.catalog)
    made = 0
    for user in users:
        items, ratings = split.history(int(user), phase)
        scores = np.asarray(scorer.scores(items, ratings), dtype=np.float64).copy()
        scores[items] = -np.inf
        top = np.argpartition(-scores, candidates)[:candidates]
        top = top[np.argsort(-scores[top], kind="stable")]
        target = split.target(int(user), phase)
        hits = np.flatnonzero(top == target)
        if not len(hits):
            continue
        user_id = split.data.user_ids[int(user)]
        profile = short_profile(user_id, split.data.catalog, items, ratings, max_titles)
        justification = None
        if index is not None:
            evidence = gather_evidence(catalogue[target], profile, index, None)
            justification = template_sentence(catalogue[target], evidence)
        yield RankingExample(
            user_id=user_id,
            history=profile.liked,
            candidates=[catalogue[i].id for i in top],
            target_item=catalogue[target].id,
            target_label=LABELS[int(hits[0])],
            justification=justification,
        )
        made += 1
        if limit is not None and made >= limit:
            return


def save_examples(examples: Sequence[RankingExample], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(ex.model_dump_json() + "\n")
    return path


def load_examples(path: Path) -> list[RankingExample]:
    with path.open(encoding="utf-8") as fh:
        return [RankingExample.model_validate(json.loads(line)) for line in fh if line.strip()]
