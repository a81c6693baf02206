"""Collaborative item vectors learned from interactions (item2vec as PPMI-SVD, implicit ALS), and their fusion
with text vectors: the "old hybrid" baseline of the evaluation (the served space is :mod:`.fused`, SASRec ⊕ text).

A fused vector is ``[sqrt(1 - w) * text, sqrt(w) * cf]`` with both parts unit-length, so inner products are
``(1 - w) * text_sim + w * cf_sim``. Items without interactions (cold start) keep a zero collaborative part.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from .fused import unit_rows

CFMethod = Literal["item2vec", "als"]


class CFConfig(BaseModel):
    """How the collaborative part is learned."""

    method: CFMethod = Field(default="item2vec", description="item2vec = PPMI-SVD of co-occurrence windows")
    factors: int = Field(default=64, ge=2, le=1024)
    window: int = Field(default=5, ge=1, description="item2vec: neighbours on each side in a user's sequence")
    iterations: int = Field(default=15, ge=1, description="als: alternating steps")
    regularization: float = Field(default=0.05, ge=0)
    seed: int = 0


def fit_item2vec(
    users: np.ndarray, items: np.ndarray, n_items: int, factors: int = 64, window: int = 5, seed: int = 0
) -> np.ndarray:
    """Item2vec as matrix factorisation: truncated SVD of the shifted positive PMI of items that occur
    within ``window`` steps of each other in a user's chronological sequence (Levy & Goldberg 2014 show
    skip-gram with negative sampling factorises this matrix). Rows are sorted by user, then time."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import svds

    rows, cols = [], []
    for d in range(1, window + 1):
        same = users[d:] == users[:-d]
        rows.append(items[:-d][same])
        cols.append(items[d:][same])
    r = np.concatenate(rows + cols)
    c = np.concatenate(cols + rows)
    counts = coo_matrix((np.ones(len(r), dtype=np.float64), (r, c)), shape=(n_items, n_items)).tocsr()
    counts.sum_duplicates()
    row_sum = np.asarray(counts.sum(axis=1)).ravel()
    # PMI = log P(i, c) / (P(i) P(c)) with the context distribution smoothed by ^0.75, as in word2vec.
    ctx = row_sum**0.75
    ctx = ctx / ctx.sum()
    coo = counts.tocoo()
    pmi = np.log(coo.data) - np.log(row_sum[coo.row]) - np.log(ctx[coo.col])
    keep = pmi > 0
    ppmi = coo_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=(n_items, n_items)).tocsr()
    k = max(1, min(factors, n_items - 2))
    rng = np.random.default_rng(seed)
    u, s, _ = svds(ppmi, k=k, v0=rng.standard_normal(n_items))
    vectors = u * np.sqrt(s)[None, :]
    vectors[row_sum == 0] = 0.0
    return vectors.astype(np.float32)


def fit_als(
    users: np.ndarray,
    items: np.ndarray,
    n_users: int,
    n_items: int,
    factors: int = 64,
    iterations: int = 15,
    regularization: float = 0.05,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Implicit-feedback ALS (Hu, Koren & Volinsky) from the ``implicit`` library: (user, item) factors."""
    from implicit.cpu.als import AlternatingLeastSquares
    from scipy.sparse import csr_matrix

    user_items = csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items))
    user_items.sum_duplicates()
    user_items.data[:] = 1.0
    model = AlternatingLeastSquares(
        factors=factors,
        regularization=regularization,
        iterations=iterations,
        random_state=seed,
        num_threads=0,
    )
    model.fit(user_items, show_progress=False)
    item_factors = np.asarray(model.item_factors, dtype=np.float32)
    seen = np.zeros(n_items, dtype=bool)
    seen[items] = True
    item_factors[~seen] = 0.0
    return np.asarray(model.user_factors, dtype=np.float32), item_factors


def fit_collaborative(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, config: CFConfig | None = None
) -> np.ndarray:
    """Item vectors from interactions (zero rows for items nobody interacted with)."""
    config = config or CFConfig()
    if config.method == "als":
        return fit_als(
            users,
            items,
            n_users,
            n_items,
            config.factors,
            config.iterations,
            config.regularization,
            config.seed,
        )[1]
    return fit_item2vec(users, items, n_items, config.factors, config.window, config.seed)


def fuse(text_vectors: np.ndarray, cf_vectors: np.ndarray, cf_weight: float) -> np.ndarray:
    """``[sqrt(1-w)·text, sqrt(w)·cf]`` per item; a zero cf row (cold item) leaves only the text part."""
    if not 0.0 <= cf_weight < 1.0:
        raise ValueError(f"cf_weight must be in [0, 1), got {cf_weight}")
    if len(text_vectors) != len(cf_vectors):
        raise ValueError(f"{len(text_vectors)} text vectors but {len(cf_vectors)} collaborative vectors")
    text = unit_rows(np.asarray(text_vectors, dtype=np.float32))
    cf = unit_rows(np.asarray(cf_vectors, dtype=np.float32))
    return np.hstack([np.sqrt(1.0 - cf_weight) * text, np.sqrt(cf_weight) * cf]).astype(np.float32)
