"""One-pass listwise ranking from label logits (the LlamaRec idea).

The model sees the profile and up to 26 candidates labelled A, B, C, ...; a single forward pass gives the
next-token log-probabilities of the labels, and their order is the ranking. Nothing is parsed from free text,
so the output is always a permutation of the candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

from recagent.retrieval import Item

from .batching import BatchScheduler, default_batch
from .llm import LLMBackend
from .profiles.profile import UserProfile
from .prompts import LABELS, ranking_conversation


def fused_scores(
    llm_scores: Sequence[float], retrieval_scores: Sequence[float] | None, fusion_weight: float | None
) -> list[float]:
    """The scores a ranked list is ordered by: the LLM's label log-probabilities alone (``fusion_weight`` None),
    or the retriever's score plus ``fusion_weight`` times them. The served retriever's score is SASRec's logit
    (plus λ·text similarity), itself a log-probability up to a constant, so the sum is a product of experts;
    ``fusion_weight`` 0 gives back the retriever's order exactly."""
    if fusion_weight is None or retrieval_scores is None:
        return list(llm_scores)
    return [r + fusion_weight * s for r, s in zip(retrieval_scores, llm_scores, strict=True)]


RankCase = tuple[UserProfile, Sequence[Item], str | None]


class Ranker:
    """Label-logit ranking; with ``batch`` > 1, calls from concurrent threads (API requests) are gathered into
    one ``score_batch`` by a :class:`BatchScheduler` (up to ``batch`` cases, waiting at most ``batch_wait_ms``);
    ``batch`` 0 chooses by the backend's device (:func:`default_batch`)."""

    def __init__(
        self,
        backend: LLMBackend,
        fusion_weight: float | None = None,
        batch: int = 1,
        batch_wait_ms: float = 2.0,
    ) -> None:
        self.backend = backend
        self.fusion_weight = fusion_weight
        batch = batch or default_batch(backend)
        self.scheduler: BatchScheduler[RankCase, list[float]] | None = (
            BatchScheduler(self.score_batch, batch, batch_wait_ms) if batch > 1 else None
        )

    def score(
        self, profile: UserProfile, candidates: Sequence[Item], request: str | None = None
    ) -> list[float]:
        """One log-probability per candidate, in the candidates' order."""
        case: RankCase = (profile, candidates, request)
        return self.scheduler.submit(case) if self.scheduler is not None else self.score_batch([case])[0]

    def score_batch(self, cases: Sequence[RankCase]) -> list[list[float]]:
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
        self,
        profile: UserProfile,
        candidates: Sequence[Item],
        request: str | None = None,
        retrieval_scores: Sequence[float] | None = None,
    ) -> list[tuple[Item, float]]:
        """Candidates in ranked order with the score that ordered them (see :func:`fused_scores`)."""
        if self.fusion_weight == 0 and retrieval_scores is not None:
            # Weight 0 (the served default) orders by the retriever alone: the LLM's scores cannot move
            # anything, so its forward pass (the costliest step of a request) is skipped.
            scores = list(retrieval_scores)
        else:
            scores = fused_scores(
                self.score(profile, candidates, request), retrieval_scores, self.fusion_weight
            )
        order = sorted(range(len(candidates)), key=lambda i: (-scores[i], i))
        return [(candidates[i], scores[i]) for i in order]
