"""The old hybrid baseline's pieces: collaborative item vectors and their fusion with text vectors."""

from __future__ import annotations

import numpy as np
import pytest

from recagent.retrieval import Catalog, CFConfig, Dataset, fit_collaborative, fuse


def _codes(dataset: Dataset, catalog: Catalog) -> tuple[np.ndarray, np.ndarray]:
    users = {u: n for n, u in enumerate(dataset.by_user)}
    u = np.array([users[e.user_id] for e in dataset.events])
    i = np.array([catalog.position(e.item_id) for e in dataset.events])
    order = np.lexsort((np.arange(len(u)), u))
    return u[order], i[order]


@pytest.fixture(scope="module")
def cf(ml100k: Dataset) -> np.ndarray:
    users, items = _codes(ml100k, ml100k.catalog)
    return fit_collaborative(
        users, items, int(users.max()) + 1, len(ml100k.catalog), CFConfig(method="als", factors=16)
    )


def test_fusion_mixes_similarities_by_weight() -> None:
    rng = np.random.default_rng(0)
    text, cf = rng.normal(size=(5, 8)), rng.normal(size=(5, 4))
    fused = fuse(text, cf, 0.3)
    t = text / np.linalg.norm(text, axis=1, keepdims=True)
    c = cf / np.linalg.norm(cf, axis=1, keepdims=True)
    assert np.allclose(fused @ fused.T, 0.7 * t @ t.T + 0.3 * c @ c.T, atol=1e-5)
    assert np.allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError):
        fuse(text, cf, 1.0)


def test_collaborative_part_moves_co_rated_items_together(cf: np.ndarray, ml100k: Dataset) -> None:
    # Star Wars (50) and Return of the Jedi (181) are co-rated by many: closer in cf space than random pairs.
    unit = cf / np.linalg.norm(cf, axis=1, keepdims=True).clip(1e-9)
    pos = ml100k.catalog.position
    assert float(unit[pos("50")] @ unit[pos("181")]) > float(np.median(unit @ unit[pos("50")])) + 0.3
