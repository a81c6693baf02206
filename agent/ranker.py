"""One-pass listwise ranking from label logits (the LlamaRec idea).

The model sees the profile and up to 26 candidates labelled A, B, C, ...; a single forward pass gives the
next-token log-probabilities of the labels, and their order is the ranking. Nothing is parsed from free text,
so the output is always a permutation of the candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

from recagent.retrieval import Item

from .llm import LLMBackend
from .profile import UserProfile
from .prompts import LABELS, ranking_conversation


class Ranker:
    def __init__(self, backend: LLMBackend) -> None:
        self.backend = backend

    def score(
        self, profile: UserProfile, candidates: Sequence[Item], request: str | None = None
    ) -> list[float]:
        """One log-probability per candidate, in the candidates' order."""
        return self.score_batch([(profile, candidates, request)])[0]

    def score_batch(
        self, cases: Sequence[tuple[UserProfile, Sequence[Item], str | None]]
    ) -> list[list[float]]:
        """Several users at once; cases with equal candidate counts share one padded forward pass."""
        results: list[list[float]] = [[] for _ in cases]
        by_size: dict[int, list[int]] = {}
        for pos, (_, candidates, _) in enumerate(cases):
            if candidates:
                by_size.setdefault(len(candidates), []).append(pos)
        for size, positions in by_size.items():
            conversations = [ranking_conversation(cases[p][0], cases[p][1], cases[p][2]) for p in positions]
            scores = self.backend.label_scores(conversations, LABELS[:size])
            for p, row in zip(positions, scores, strict=True):
                results[p] = row
        return results

    def rank(
        self, profile: UserProfile, candidates: Sequence[Item], request: str | None = None
    ) -> list[tuple[Item, float]]:
        scores = self.score(profile, candidates, request)
        order = sorted(range(len(candidates)), key=lambda i: (-scores[i], i))
        return [(candidates[i], scores[i]) for i in order]
