from __future__ import annotations

import numpy as np
import pytest

from recagent.retrieval import (
    Catalog,
    CFConfig,
    Dataset,
    Encoder,
    HybridIndex,
    Item,
    ItemIndex,
    fit_collaborative,
    fuse,
)


def _codes(dataset: Dataset, catalog: Catalog) -> tuple[np.ndarray, np.ndarray]:
    users = {u: n for n, u in enumerate(dataset.by_user)}
    u = np.array([users[e.user_id] for e in dataset.events])
    i = np.array([catalog.position(e.item_id) for e in dataset.events])
    order = np.lexsort((np.arange(len(u)), u))
    return u[order], i[order]


@pytest.fixture(scope="module")
def hybrid(ml100k: Dataset, ml100k_index: ItemIndex) -> HybridIndex:
    """ml-100k plus one brand-new item nobody has rated: it gets no collaborative vector."""
    new = Item(
        id="new-1",
        title="Quantum Penguins of the Antarctic Deep",
        genres=("Documentary",),
        year=2031,
        text="A documentary about penguins that study quantum physics under the Antarctic ice.",
    )
    catalog = Catalog([*ml100k.catalog, new], name="ml-100k+new")
    users, items = _codes(ml100k, catalog)
    cf = fit_collaborative(
        users, items, int(users.max()) + 1, len(catalog), CFConfig(method="als", factors=16)
    )
    encoder_vectors = np.vstack([ml100k_index.vectors, np.zeros((1, ml100k_index.meta.dim), np.float32)])
    return HybridIndex(catalog, encoder_vectors, cf, ml100k_index.meta.encoder, cf_weight=0.7)


@pytest.fixture(scope="module")
def hybrid_with_text(hybrid: HybridIndex, encoder: Encoder) -> HybridIndex:
    text = hybrid.text_vectors.copy()
    text[-1] = encoder.encode([hybrid.catalog["new-1"].embedding_text()])[0]
    return HybridIndex(hybrid.catalog, text, hybrid.cf_vectors, hybrid.meta.encoder, hybrid.cf_weight)


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


def test_brand_new_item_is_cold_and_still_retrieved_by_text(
    hybrid_with_text: HybridIndex, encoder: Encoder
) -> None:
    index = hybrid_with_text
    assert index.cold[index.catalog.position("new-1")]
    assert index.cold.sum() < 10  # ml-100k items all have ratings
    query = index.text_query(encoder.encode_one("penguins doing quantum physics in Antarctica"))
    hits = index.search(query, k=5)
    assert hits[0][0].id == "new-1"


def test_brand_new_item_reachable_through_the_recommender_text_query(
    hybrid_with_text: HybridIndex, encoder: Encoder, ml100k: Dataset
) -> None:
    from recagent.agent import RecommendationRequest, Recommender

    rec = Recommender(hybrid_with_text, encoder, backend=None, histories={"1": ml100k.history("1")})
    # A request alone goes through the text part of the fused space (the cold-start path).
    result = rec.recommend(
        RecommendationRequest(query="a documentary about quantum penguins under Antarctic ice", k=5)
    )
    assert result.recommendations[0].item.id == "new-1"
    # A known user's request mixes the fused profile vector with the lifted text query: dimensions agree.
    mixed = rec.recommend(RecommendationRequest(user_id="1", query="penguins", k=5, justify=False))
    assert len(mixed.recommendations) == 5
    profile_only = rec.recommend(RecommendationRequest(user_id="1", k=10, justify=False))
    assert profile_only.recommendations and all(r.item.id != "new-1" for r in profile_only.recommendations)


def test_collaborative_part_moves_co_rated_items_together(hybrid: HybridIndex) -> None:
    # Star Wars (50) and Return of the Jedi (181) are co-rated by many: closer in cf space than random pairs.
    cf = hybrid.cf_vectors / np.linalg.norm(hybrid.cf_vectors, axis=1, keepdims=True).clip(1e-9)
    pos = hybrid.catalog.position
    assert float(cf[pos("50")] @ cf[pos("181")]) > float(np.median(cf[: len(cf) - 1] @ cf[pos("50")])) + 0.3


def test_hybrid_index_saves_and_loads(hybrid: HybridIndex, tmp_path) -> None:
    hybrid.save(tmp_path / "h")
    loaded = HybridIndex.load(tmp_path / "h")
    assert loaded.cf_weight == hybrid.cf_weight and np.allclose(loaded.vectors, hybrid.vectors)
    assert loaded.text_query(np.ones(hybrid.text_dim, np.float32)).shape == (hybrid.meta.dim,)
