"""Chronological leave-one-out on columnar data, and the retrieval-stage systems scored under it.

The split is the one :class:`recagent.retrieval.LeaveOneOutSplit` defines (last event = test, the one before =
validation, users with fewer than 3 events only train), computed on numpy arrays so ml-1m splits in a second.
Every collaborative model is fitted on the TRAIN rows only; validation picks hyper-parameters; test is
touched once, by the final report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from recagent.retrieval import (
    CFConfig,
    Encoder,
    InteractionArrays,
    configure_threads,
    fit_als,
    fit_collaborative,
    fuse,
    load_bundled_arrays,
)

Phase = Literal["valid", "test"]
LIKE_THRESHOLD = 4.0
DISLIKE_THRESHOLD = 2.0


@dataclass
class LeaveOneOut:
    data: InteractionArrays
    min_events: int = 3
    bounds: np.ndarray = field(init=False)
    train_mask: np.ndarray = field(init=False)
    evaluable: np.ndarray = field(init=False)
    valid_item: np.ndarray = field(init=False)
    test_item: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.bounds = self.data.user_slices()
        n_users = len(self.data.user_ids)
        lengths = np.diff(self.bounds)
        self.evaluable = lengths >= self.min_events
        self.train_mask = np.ones(len(self.data.items), dtype=bool)
        self.valid_item = np.full(n_users, -1, dtype=np.int64)
        self.test_item = np.full(n_users, -1, dtype=np.int64)
        ends = self.bounds[1:]
        users = np.flatnonzero(self.evaluable)
        self.train_mask[ends[users] - 1] = False
        self.train_mask[ends[users] - 2] = False
        self.test_item[users] = self.data.items[ends[users] - 1]
        self.valid_item[users] = self.data.items[ends[users] - 2]

    @property
    def n_items(self) -> int:
        return len(self.data.catalog)

    @property
    def n_users(self) -> int:
        return len(self.data.user_ids)

    def train_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = self.train_mask
        return self.data.users[m], self.data.items[m], self.data.ratings[m]

    def history(self, user: int, phase: Phase) -> tuple[np.ndarray, np.ndarray]:
        """(items, ratings) the user had before the held-out item of ``phase``, oldest first."""
        start, end = self.bounds[user], self.bounds[user + 1]
        end -= 2 if phase == "valid" else 1
        return self.data.items[start:end], self.data.ratings[start:end]

    def target(self, user: int, phase: Phase) -> int:
        return int(self.valid_item[user] if phase == "valid" else self.test_item[user])

    def sample_users(self, n: int | None, seed: int = 0) -> np.ndarray:
        """A fixed, seeded random sample of evaluable users (all of them when ``n`` is None or too big)."""
        users = np.flatnonzero(self.evaluable)
        if n is None or n >= len(users):
            return users
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(users, size=n, replace=False))


def prepare(dataset: str, threads: int, progress: bool = True) -> tuple[LeaveOneOut, np.ndarray]:
    """The leave-one-out split of a bundled dataset and the MiniLM vectors of its items (cached on disk)."""
    configure_threads(threads or None)
    split = LeaveOneOut(load_bundled_arrays(dataset))
    catalog = split.data.catalog
    text = Encoder().encode([item.embedding_text() for item in catalog], show_progress=progress)
    return split, text


def event_weights(ratings: np.ndarray, half_life: float = 30.0) -> np.ndarray:
    """The weights :class:`recagent.agent.ProfileBuilder` gives rated events: distance from the user's own
    mean rating, at least ±0.25 beyond the like/dislike thresholds, halved every ``half_life`` events back."""
    ratings = np.asarray(ratings, dtype=np.float64)
    signal = (ratings - ratings.mean()) / 2.0
    signal = np.where(ratings >= LIKE_THRESHOLD, np.maximum(signal, 0.25), signal)
    signal = np.where(ratings <= DISLIKE_THRESHOLD, np.minimum(signal, -0.25), signal)
    age = np.arange(len(ratings))[::-1]
    return signal * 0.5 ** (age / half_life)


def profile_query(
    vectors: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    half_life: float = 30.0,
    negative_weight: float = 0.3,
) -> np.ndarray:
    """The Recommender's query without a request: unit(positive mean) − 0.3·unit(negative mean), renormalised."""

    def unit(v: np.ndarray) -> np.ndarray:
        n = float(np.linalg.norm(v))
        return v / n if n > 0 else v

    w = event_weights(ratings, half_life)
    vecs = vectors[items]
    pos = unit((vecs * np.clip(w, 0, None)[:, None]).sum(axis=0))
    neg = unit((vecs * np.clip(-w, 0, None)[:, None]).sum(axis=0))
    return unit(pos - negative_weight * neg).astype(np.float32)


class Scorer:
    """Scores every item for a user's history; higher is better."""

    name = "scorer"

    def scores(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        raise NotImplementedError


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


def recency_query(vectors: np.ndarray, items: np.ndarray, half_life: float = 2.0) -> np.ndarray:
    """Every interaction counts as interest (the protocol's next item may be rated anything), the most
    recent ones most: weights halve every ``half_life`` events back."""
    w = 0.5 ** (np.arange(len(items))[::-1] / half_life)
    q = (vectors[items] * w[:, None]).sum(axis=0)
    n = float(np.linalg.norm(q))
    return (q / n if n > 0 else q).astype(np.float32)


class VectorScorer(Scorer):
    """Profile vector against item vectors (what FAISS IndexFlatIP computes, over every item).

    ``weighting='recency'`` is :func:`recency_query`; ``'profile'`` is the v0 ProfileBuilder's rating-centred
    weights with a 30-event half-life (:func:`profile_query`)."""

    def __init__(
        self,
        name: str,
        vectors: np.ndarray,
        half_life: float = 2.0,
        weighting: Literal["recency", "profile"] = "recency",
    ) -> None:
        self.name = name
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.half_life = half_life
        self.weighting = weighting

    def query(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        if self.weighting == "recency":
            return recency_query(self.vectors, items, self.half_life)
        return profile_query(self.vectors, items, ratings, self.half_life)

    def scores(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        return self.vectors @ self.query(items, ratings)


def collaborative_vectors(split: LeaveOneOut, config: CFConfig) -> np.ndarray:
    users, items, _ = split.train_rows()
    return fit_collaborative(users, items, split.n_users, split.n_items, config)


def hybrid_scorer(
    text_vectors: np.ndarray, cf_vectors: np.ndarray, cf_weight: float, half_life: float = 2.0
) -> VectorScorer:
    return VectorScorer("Hybrid retrieval", fuse(text_vectors, cf_vectors, cf_weight), half_life)


def full_ranks(
    split: LeaveOneOut, scorer: Scorer, users: np.ndarray, phase: Phase
) -> tuple[np.ndarray, list[np.ndarray]]:
    """0-based rank of each user's held-out item among all items they have not rated, and the top 20."""
    ranks = np.empty(len(users), dtype=np.int64)
    tops: list[np.ndarray] = []
    for pos, user in enumerate(users):
        items, ratings = split.history(int(user), phase)
        scores = np.asarray(scorer.scores(items, ratings), dtype=np.float64).copy()
        scores[items] = -np.inf
        target = split.target(int(user), phase)
        target_score = scores[target]
        others = scores >= target_score
        others[target] = False
        others[items] = False
        ranks[pos] = int(np.count_nonzero(others))
        top = np.argpartition(-scores, 20)[:20]
        tops.append(top[np.argsort(-scores[top], kind="stable")])
    return ranks, tops
