"""Diversity: maximal marginal relevance (Carbonell & Goldstein 1998) over the ranked candidates.

Each next pick maximises ``(1 - d) * relevance - d * max similarity to the picks above it``, relevance being
the ranked score rescaled to [0, 1] over the candidates and similarity the cosine of the items' text embeddings
(what an item is about: genre, plot, tone). ``d = 0`` returns the ranked order untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mmr_order(scores: Sequence[float], vectors: np.ndarray, k: int, diversity: float) -> list[int]:
    """Positions of the ``k`` picks, in order, from candidates ranked by ``scores`` (unit-norm ``vectors``)."""
    n = len(scores)
    k = min(k, n)
    if diversity <= 0.0 or n <= 1:
        return list(range(k))
    values = np.asarray(scores, dtype=np.float64)
    spread = float(values.max() - values.min())
    relevance = (values - values.min()) / spread if spread > 0 else np.ones(n)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    chosen = [int(np.argmax(relevance))]
    closest = similarity[chosen[0]].copy()  # max similarity of each candidate to anything chosen so far
    while len(chosen) < k:
        gain = (1.0 - diversity) * relevance - diversity * closest
        gain[chosen] = -np.inf
        pick = int(np.argmax(gain))
        chosen.append(pick)
        closest = np.maximum(closest, similarity[pick])
    return chosen


def intra_list_distance(vectors: np.ndarray) -> float:
    """Mean pairwise cosine distance ``1 - cos`` of a list's unit-norm item vectors (0 = all alike)."""
    n = len(vectors)
    if n < 2:
        return 0.0
    sims = vectors @ vectors.T
    return float((n * n - sims.sum()) / (n * (n - 1)))
