"""kind='auto' picks FAISS parameters from the catalogue size; exclusion selectors stay exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recagent.retrieval import EXACT_MAX_ITEMS, Catalog, Item, ItemFilter, ItemIndex, choose_index
from recagent.retrieval.index import IVF_MIN_ITEMS, IVFPQ_MIN_ITEMS, ivf_cells, pq_subquantizers


def test_rule_is_exact_for_small_catalogues_and_hnsw_with_growing_ef_for_large() -> None:
    assert choose_index(0).kind == "flat"
    assert choose_index(EXACT_MAX_ITEMS - 1).kind == "flat"
    at_threshold = choose_index(EXACT_MAX_ITEMS)
    assert at_threshold.kind == "hnsw" and at_threshold.hnsw_m == 32
    efs = [choose_index(n).ef_search for n in (EXACT_MAX_ITEMS, 100_000, 100_001, IVF_MIN_ITEMS - 1)]
    assert efs == [256, 256, 512, 512]
    with pytest.raises(ValueError):
        choose_index(-1)


def test_rule_moves_to_ivf_then_ivfpq_for_millions() -> None:
    assert choose_index(IVF_MIN_ITEMS - 1).kind == "hnsw"
    ivf = choose_index(1_000_000)
    assert (ivf.kind, ivf.nlist, ivf.nprobe) == ("ivf", 4000, 32)  # nlist 4·√n
    pq = choose_index(IVFPQ_MIN_ITEMS)
    assert pq.kind == "ivfpq" and pq.nlist == ivf_cells(IVFPQ_MIN_ITEMS) and pq.refine_factor >= 4
    assert choose_index(10**12).kind == "ivfpq"
    assert ivf_cells(100) == 2 and ivf_cells(0) == 1  # never more cells than FAISS can train
    assert pq_subquantizers(384) == 48 and 96 % pq_subquantizers(96) == 0


def _synthetic(n: int, dim: int = 32, seed: int = 0) -> tuple[Catalog, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dim))
    vectors = centres[rng.integers(0, 40, size=n)] + 0.3 * rng.normal(size=(n, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    genres = ["Drama", "Comedy", "Horror"]
    items = [
        Item(id=f"i{i}", title=f"Item {i}", genres=[genres[i % 3]], year=1950 + i % 60) for i in range(n)
    ]
    return Catalog(items, name=f"synthetic-{n}"), vectors.astype(np.float32)


def _recall_at_10(index: ItemIndex, exact: ItemIndex, queries: np.ndarray) -> float:
    found, truth = index.search_batch(queries, 10), exact.search_batch(queries, 10)
    return float(
        np.mean(
            [len({i.id for i, _ in f} & {i.id for i, _ in t}) / 10 for f, t in zip(found, truth, strict=True)]
        )
    )


def test_auto_resolves_to_concrete_kind_and_saves_it(tmp_path: Path) -> None:
    small_catalog, small_vectors = _synthetic(500)
    small = ItemIndex(small_catalog, small_vectors, "test", kind="auto")
    assert small.meta.kind == "flat"

    catalog, vectors = _synthetic(EXACT_MAX_ITEMS + 500, seed=1)
    index = ItemIndex(catalog, vectors, "test", kind="auto")
    assert (index.meta.kind, index.meta.hnsw_m, index.meta.ef_search) == ("hnsw", 32, 256)
    loaded = ItemIndex.load(index.save(tmp_path / "idx"))
    assert loaded.meta.kind == "hnsw" and loaded.meta.ef_search == 256

    assert _recall_at_10(index, ItemIndex(catalog, vectors, "test", kind="flat"), vectors[:50] + 0.05) >= 0.95


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivfpq"])
def test_exclusion_and_filter_selectors_match_brute_force(kind: str) -> None:
    catalog, vectors = _synthetic(3000, seed=2)
    index = ItemIndex(catalog, vectors, "test", kind=kind)  # type: ignore[arg-type]
    query = vectors[7]
    order = np.argsort(-(vectors @ query))
    exclude = {catalog.ids[i] for i in order[:25]} | {"not-an-item"}
    hits = index.search(query, 10, exclude=exclude)
    expected = [catalog.ids[i] for i in order if catalog.ids[i] not in exclude][:10]
    assert len({i.id for i, _ in hits} & set(expected)) >= (10 if kind == "flat" else 9)
    assert not exclude & {i.id for i, _ in hits}

    only = ItemFilter(include_genres=("Comedy",), year_min=1980)
    filtered = index.search(query, 10, exclude=exclude, item_filter=only)
    allowed = [
        catalog.ids[i]
        for i in order
        if catalog.ids[i] not in exclude and i % 3 == 1 and 1950 + i % 60 >= 1980
    ][:10]
    assert len(filtered) == 10
    assert all(i.id not in exclude and i.genres == ("Comedy",) and (i.year or 0) >= 1980 for i, _ in filtered)
    assert len({i.id for i, _ in filtered} & set(allowed)) >= (10 if kind == "flat" else 8)


@pytest.mark.parametrize("kind", ["ivf", "ivfpq"])
def test_ivf_kinds_are_saved_as_built_and_agree_with_exact(tmp_path: Path, kind: str) -> None:
    import faiss

    catalog, vectors = _synthetic(6000, dim=64, seed=3)
    index = ItemIndex(catalog, vectors, "test", kind=kind, nprobe=8)  # type: ignore[arg-type]
    assert index.meta.nlist == ivf_cells(6000)
    queries = vectors[:100] + 0.05
    recall = _recall_at_10(index, ItemIndex(catalog, vectors, "test", kind="flat"), queries)
    assert recall >= 0.9, recall
    found = index.search_batch(queries, 10)
    if kind == "ivfpq":
        # The re-rank scores with the full vectors: the scores returned are the exact inner products.
        item, score = found[0][0]
        assert abs(score - float(vectors[catalog.position(item.id)] @ queries[0])) < 1e-4
    loaded = ItemIndex.load(index.save(tmp_path / kind))
    assert (tmp_path / kind / "faiss.index").exists() and loaded.meta == index.meta
    assert (
        faiss.serialize_index(loaded.faiss_index).tobytes()
        == faiss.serialize_index(index.faiss_index).tobytes()
    )
    assert [[i.id for i, _ in h] for h in loaded.search_batch(queries, 10)] == [
        [i.id for i, _ in h] for h in found
    ]
