"""The served item space: text ⊕ SASRec vectors in FAISS score exactly λ·text similarity + SASRec's logit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recagent.retrieval import Catalog, Encoder, Item, SequentialIndex, load_index


def test_inner_product_is_lambda_text_plus_sequential_logit() -> None:
    rng = np.random.default_rng(0)
    catalog = Catalog([Item(id=str(i), title=f"item {i}") for i in range(30)])
    text = rng.normal(size=(30, 12)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    items = rng.normal(size=(30, 6)).astype(np.float32)
    t, h = text[3], rng.normal(size=6).astype(np.float32)
    for weight in (0.0, 0.5, 4.0):
        index = SequentialIndex(catalog, text, items, "enc", weight)
        for scale in (1.0, 8.0):
            expected = weight * scale * (text @ t) + items @ h
            assert np.allclose(index.vectors @ index.query(t, h, scale), expected, atol=1e-4)
            hits = index.search(index.query(t, h, scale), k=30)
            assert [item.id for item, _ in hits] == [str(i) for i in np.argsort(-expected, kind="stable")]
    # No state (a user without history): text only. λ = 0: SASRec's order exactly.
    index = SequentialIndex(catalog, text, items, "enc", 2.0)
    assert np.allclose(index.vectors @ index.query(t, None), 2.0 * (text @ t), atol=1e-4)
    assert np.allclose(index.text_vector("3"), text[3])


def test_fused_folder_saves_and_loads(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    catalog = Catalog([Item(id=str(i), title=f"item {i}") for i in range(10)])
    index = SequentialIndex(catalog, rng.normal(size=(10, 4)), rng.normal(size=(10, 3)), "enc", 1.5)
    index.save(tmp_path / "f")
    loaded = load_index(tmp_path / "f")
    assert isinstance(loaded, SequentialIndex) and loaded.text_weight == 1.5
    assert np.allclose(loaded.vectors, index.vectors) and loaded.state_dim == 3


def test_a_brand_new_item_is_found_through_its_text(ml100k_served, encoder: Encoder, ml100k) -> None:
    """An item added after training has no sequential vector (0): a request still finds it by its text."""
    from recagent.agent import RecommendationRequest, Recommender

    _, served, model = ml100k_served
    new = Item(
        id="new-1",
        title="Quantum Penguins of the Antarctic Deep",
        genres=("Documentary",),
        year=2031,
        text="A documentary about penguins that study quantum physics under the Antarctic ice.",
    )
    catalog = Catalog([*served.catalog, new], name="ml-100k+new")
    text = np.vstack([served.text_vectors, encoder.encode([new.embedding_text()])])
    items = np.vstack([served.item_vectors, np.zeros((1, served.state_dim), np.float32)])
    index = SequentialIndex(catalog, text, items, served.meta.encoder, served.text_weight)
    rec = Recommender(index, encoder, None, histories={"1": ml100k.history("1")}, sequence=model)
    asked = rec.recommend(RecommendationRequest(query="a documentary about quantum penguins under ice", k=5))
    assert asked.recommendations[0].item.id == "new-1"
    own = rec.recommend(RecommendationRequest(user_id="1", k=5, justify=False))
    assert len(own.recommendations) == 5 and all(r.item.id != "new-1" for r in own.recommendations)


def test_collaborative_block_adds_its_weight_times_cosine() -> None:
    from recagent.retrieval import recency_query, unit_rows

    rng = np.random.default_rng(2)
    catalog = Catalog([Item(id=str(i), title=f"item {i}") for i in range(20)])
    text = unit_rows(rng.normal(size=(20, 8)))
    items = rng.normal(size=(20, 4)).astype(np.float32)
    cf = rng.normal(size=(20, 6)).astype(np.float32)
    cf[7] = 0  # an item without a collaborative vector
    index = SequentialIndex(catalog, text, items, "enc", 0.5, collab_vectors=cf, collab_weight=2.0)
    t, h = text[1], rng.normal(size=4).astype(np.float32)
    collab = index.collab_query([3, 4, 5])
    assert collab is not None and np.allclose(collab, recency_query(unit_rows(cf), [3, 4, 5], 1.0))
    expected = 0.5 * (text @ t) + items @ h + 2.0 * (unit_rows(cf) @ collab)
    assert np.allclose(index.vectors @ index.query(t, h, 1.0, collab), expected, atol=1e-4)
    assert np.allclose(index.vectors[7, -6:], 0)
