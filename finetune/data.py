"""Training data for the ranker (LlamaRec-style): the served profile prompt plus the served retriever's top 20
labelled A, B, C, ...; the target is the label of the item the user actually rated next.

Examples come only from users outside the evaluation sample, and only from their TRAIN rows and validation item:
several history prefixes per user (the validation item, then the items before it), so no test item and no
evaluated user's held-out item ever enters training. Candidates are shuffled by default, so a label's position
carries no hint of the answer (a model trained on retrieval order learns only where answers tend to sit).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from recagent.agent.prompts import LABELS, ranking_conversation
from recagent.retrieval import LeaveOneOut

from .protocol import ServedScorer


class RankingExample(BaseModel):
    user_id: str
    conversation: list[dict[str, str]] = Field(description="The served ranking prompt (role, content).")
    candidates: list[str] = Field(description="Item ids in the order the prompt labels them.")
    target_item: str
    target_label: str = Field(min_length=1, max_length=1)
    prefix: int = Field(
        default=0, description="0 = the validation item; k = the k-th TRAIN item from the end"
    )


def build_examples(
    split: LeaveOneOut,
    served: ServedScorer,
    users: Sequence[int],
    candidates: int = 20,
    prefixes: int = 1,
    shuffle: bool = True,
    seed: int = 0,
    limit: int | None = None,
) -> Iterator[RankingExample]:
    """One example per (user, prefix) whose next item the served retriever put in its top ``candidates``
    (LlamaRec keeps only those: a ranker cannot learn from lists without the answer)."""
    rng = np.random.default_rng(seed)
    catalogue = list(split.data.catalog)
    made = 0
    for user in users:
        events = split.history_events(int(user), "valid")
        uid = split.data.user_ids[int(user)]
        for prefix in range(prefixes):
            history = events[: len(events) - prefix]
            if len(history) < 3:
                break
            target = (
                split.target(int(user), "valid")
                if prefix == 0
                else split.data.catalog.position(events[len(events) - prefix].item_id)
            )
            profile = served.profile_of(uid, history)
            scores = served.scores_of(profile).astype(np.float64)
            scores[[split.data.catalog.position(i) for i in profile.seen]] = -np.inf
            top = np.argpartition(-scores, candidates)[:candidates]
            top = top[np.argsort(-scores[top], kind="stable")]
            if shuffle:
                top = rng.permutation(top)
            hits = np.flatnonzero(top == target)
            if not len(hits):
                continue
            items = [catalogue[i] for i in top]
            yield RankingExample(
                user_id=uid,
                conversation=[dict(m) for m in ranking_conversation(profile, items, None)],
                candidates=[item.id for item in items],
                target_item=catalogue[target].id,
                target_label=LABELS[int(hits[0])],
                prefix=prefix,
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
