"""Ranking metrics for leave-one-out evaluation: one relevant item per user, ranks are 0-based."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

METRIC_NAMES = ("Recall@10", "Recall@20", "NDCG@10", "NDCG@20", "MRR")


class RankingMetrics(BaseModel):
    """Means over users. With one held-out item, Recall@K equals HitRate@K."""

    users: int
    recall_at_10: float
    recall_at_20: float
    ndcg_at_10: float
    ndcg_at_20: float
    mrr: float

    def as_row(self) -> dict[str, float]:
        return dict(
            zip(
                METRIC_NAMES,
                (self.recall_at_10, self.recall_at_20, self.ndcg_at_10, self.ndcg_at_20, self.mrr),
                strict=True,
            )
        )


def recall_at(ranks: Sequence[int] | np.ndarray, k: int) -> float:
    ranks = np.asarray(ranks)
    return float(np.mean(ranks < k)) if len(ranks) else 0.0


def ndcg_gains(ranks: Sequence[int] | np.ndarray, k: int) -> np.ndarray:
    """Per-user NDCG@k. One relevant item: IDCG = 1, DCG = 1/log2(rank + 2) when it is in the top k."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def ndcg_at(ranks: Sequence[int] | np.ndarray, k: int) -> float:
    return float(np.mean(ndcg_gains(ranks, k))) if len(ranks) else 0.0


def mrr(ranks: Sequence[int] | np.ndarray) -> float:
    """Reciprocal rank over the full ranking (not truncated)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(1.0 / (ranks + 1.0))) if len(ranks) else 0.0


def ranking_metrics(ranks: Sequence[int] | np.ndarray) -> RankingMetrics:
    ranks = np.asarray(ranks)
    return RankingMetrics(
        users=len(ranks),
        recall_at_10=recall_at(ranks, 10),
        recall_at_20=recall_at(ranks, 20),
        ndcg_at_10=ndcg_at(ranks, 10),
        ndcg_at_20=ndcg_at(ranks, 20),
        mrr=mrr(ranks),
    )


def rank_of(scores: np.ndarray, target: int, excluded: np.ndarray | None = None) -> int:
    """0-based rank of ``target`` among all non-excluded items by descending score.

    Ties count against the target (pessimistic), so a constant scorer is never rewarded.
    """
    scores = np.asarray(scores, dtype=np.float64)
    allowed = np.ones(len(scores), dtype=bool) if excluded is None else ~excluded
    allowed[target] = True
    target_score = scores[target]
    if not math.isfinite(target_score):
        return int(allowed.sum()) - 1
    others = allowed.copy()
    others[target] = False
    return int(np.count_nonzero(scores[others] >= target_score))


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


def paired_bootstrap_ndcg(
    ranks: Sequence[int] | np.ndarray,
    reference: Sequence[int] | np.ndarray,
    k: int = 10,
    samples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """NDCG@k of ``ranks`` minus that of ``reference`` on the same users, with a 95% paired-bootstrap interval.

    Returns (difference, low, high); an interval that contains 0 means the difference is not significant.
    """
    if np.shape(ranks) != np.shape(reference) or not len(ranks):
        raise ValueError("paired comparison needs two non-empty rank arrays for the same users")
    diff = ndcg_gains(ranks, k) - ndcg_gains(reference, k)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(samples, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(low), float(high)
