"""The systems scored under the leave-one-out protocol (:class:`recagent.retrieval.LeaveOneOut`), full ranking over
every item the user has not rated. Baselines are fitted on the TRAIN rows only; validation picks
hyper-parameters; test is touched once, by the final report.

:class:`ServedScorer` is the one that matters: it scores with the served pipeline's own pieces (the
:class:`ProfileBuilder` profile, the :class:`QueryBuilder` query, the served index's vectors), so its ranking is
the ranking ``Recommender.retrieve`` returns through FAISS; ``tests/finetune/test_served_equals_evaluated.py``
checks that on a sample of users.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recagent.agent import Recommender, UserProfile
from recagent.retrieval import (
    CFConfig,
    Encoder,
    Interaction,
    LeaveOneOut,
    Phase,
    SequentialModel,
    configure_threads,
    fit_als,
    fit_collaborative,
    fuse,
    recency_query,
)


def text_vectors(split: LeaveOneOut, progress: bool = True) -> np.ndarray:
    """MiniLM vectors of the catalogue's items (from the on-disk cache after the first run)."""
    return Encoder().encode([item.embedding_text() for item in split.data.catalog], show_progress=progress)


def prepare_threads(threads: int) -> None:
    configure_threads(threads or None)


class Scorer:
    """Scores every item for a user's history before the held-out item of ``phase``; higher is better."""

    name = "scorer"

    def scores(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def user_scores(self, split: LeaveOneOut, user: int, phase: Phase) -> np.ndarray:
        return self.scores(*split.history(user, phase))


class PopularityScorer(Scorer):
    name = "Popularity"

    def __init__(self, split: LeaveOneOut) -> None:
        _, items, _ = split.train_rows()
        self.counts = np.bincount(items, minlength=split.n_items).astype(np.float64)

    def scores(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        return self.counts


class ALSScorer(Scorer):
    """``implicit`` ALS item factors; the user's factor is re-solved from their input history (fold-in)."""

    name = "ALS (implicit)"

    def __init__(self, split: LeaveOneOut, factors: int = 64, regularization: float = 0.05, seed: int = 0):
        users, items, _ = split.train_rows()
        _, self.item_factors = fit_als(
            users, items, split.n_users, split.n_items, factors, 15, regularization, seed
        )
        self.regularization = regularization
        self.gram = self.item_factors.T @ self.item_factors

    def scores(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        # Hu et al. with confidence 1 on observed items: (YᵀY + λI) x = Yᵀ 1.
        y = self.item_factors[np.unique(items)]
        a = self.gram + self.regularization * np.eye(self.gram.shape[0], dtype=np.float32)
        user = np.linalg.solve(a, y.sum(axis=0))
        return self.item_factors @ user


class VectorScorer(Scorer):
    """A recency-weighted mean of the history's item vectors against every item vector."""

    def __init__(self, name: str, vectors: np.ndarray, half_life: float = 2.0) -> None:
        self.name = name
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.half_life = half_life

    def scores(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        return self.vectors @ recency_query(self.vectors, items, self.half_life)


class SequentialScorer(Scorer):
    """SASRec alone: the state after the history against every item embedding."""

    name = "SASRec (full-softmax CE)"

    def __init__(self, model: SequentialModel) -> None:
        self.model = model

    def scores(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        return self.model.item_vectors() @ self.model.state(items)


class ServedScorer(Scorer):
    """The served retriever: the :class:`Recommender`'s profile and query against its index's vectors."""

    name = "Served retriever (SASRec ⊕ text ⊕ item2vec)"

    def __init__(self, recommender: Recommender) -> None:
        self.recommender = recommender

    def profile_of(self, user_id: str, events: Sequence[Interaction]) -> UserProfile:
        return self.recommender.builder.build(user_id, events)

    def profile(self, split: LeaveOneOut, user: int, phase: Phase) -> UserProfile:
        return self.profile_of(split.data.user_ids[user], split.history_events(user, phase))

    def scores_of(self, profile: UserProfile) -> np.ndarray:
        return self.recommender.index.vectors @ self.recommender.query_vector(profile, None)

    def user_scores(self, split: LeaveOneOut, user: int, phase: Phase) -> np.ndarray:
        return self.scores_of(self.profile(split, user, phase))


def collaborative_vectors(split: LeaveOneOut, config: CFConfig) -> np.ndarray:
    users, items, _ = split.train_rows()
    return fit_collaborative(users, items, split.n_users, split.n_items, config)


def hybrid_scorer(
    text: np.ndarray, cf_vectors: np.ndarray, cf_weight: float, half_life: float = 2.0
) -> VectorScorer:
    return VectorScorer("Old hybrid (MiniLM ⊕ item2vec/ALS)", fuse(text, cf_vectors, cf_weight), half_life)


def full_ranks(
    split: LeaveOneOut, scorer: Scorer, users: Sequence[int] | np.ndarray, phase: Phase, top: int = 20
) -> tuple[np.ndarray, list[np.ndarray]]:
    """0-based rank of each user's held-out item among all items they have not rated, and the top ``top``.

    Ties count against the target (pessimistic), so a constant scorer is never rewarded."""
    ranks = np.empty(len(users), dtype=np.int64)
    tops: list[np.ndarray] = []
    for pos, user in enumerate(users):
        items, _ = split.history(int(user), phase)
        scores = np.asarray(scorer.user_scores(split, int(user), phase), dtype=np.float64).copy()
        scores[items] = -np.inf
        target = split.target(int(user), phase)
        others = scores >= scores[target]
        others[target] = False
        others[items] = False
        ranks[pos] = int(np.count_nonzero(others))
        best = np.argpartition(-scores, top)[:top]
        tops.append(best[np.argsort(-scores[best], kind="stable")])
    return ranks, tops
