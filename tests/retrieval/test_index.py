from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recagent.retrieval import Catalog, IndexFileError, Item, ItemFilter, ItemIndex

BACKENDS = ["faiss", "pgvector"]


@pytest.fixture(scope="module")
def pg_ml100k(ml100k_index: ItemIndex, pg_server):
    """ml-100k's text index written to a real PostgreSQL table under an HNSW index (pgvector)."""
    from recagent.retrieval.pgvector import PgVectorIndex

    url = pg_server.create_database("index_suite")
    index = PgVectorIndex(
        ml100k_index.catalog, ml100k_index.vectors, ml100k_index.meta.encoder, url, plan="index"
    )
    yield index
    index.close()


@pytest.fixture(params=BACKENDS)
def any_index(request: pytest.FixtureRequest, ml100k_index: ItemIndex) -> ItemIndex:
    """The same catalogue and vectors searched by FAISS in this process or by pgvector in PostgreSQL."""
    return ml100k_index if request.param == "faiss" else request.getfixturevalue("pg_ml100k")


def test_flat_search_equals_brute_force(ml100k_index: ItemIndex, encoder) -> None:
    query = encoder.encode_one("a funny animated film for children")
    hits = ml100k_index.search(query, 10)
    expected = np.argsort(-(ml100k_index.vectors @ query))[:10]
    assert [item.id for item, _ in hits] == [ml100k_index.catalog.ids[i] for i in expected]
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)


def test_exclusions_and_filters(any_index: ItemIndex, encoder) -> None:
    query = encoder.encode_one("scary horror movie")
    top = [item.id for item, _ in any_index.search(query, 5)]
    hits = any_index.search(
        query, 20, exclude=set(top), item_filter=ItemFilter(exclude_genres=("Horror",), year_min=1990)
    )
    assert len(hits) == 20
    for item, _ in hits:
        assert item.id not in top
        assert "Horror" not in item.genres
        assert item.year is not None and item.year >= 1990


def test_impossible_filter_returns_nothing(any_index: ItemIndex) -> None:
    hits = any_index.search(any_index.vectors[0], 5, item_filter=ItemFilter(year_min=2999))
    assert hits == []
    assert any_index.search_batch(any_index.vectors[:2], 5, item_filter=ItemFilter(year_min=2999)) == [[], []]


@pytest.mark.parametrize("backend", BACKENDS)
def test_hnsw_agrees_with_exact(
    backend: str, ml100k_index: ItemIndex, request: pytest.FixtureRequest
) -> None:
    hnsw = (
        ItemIndex(ml100k_index.catalog, ml100k_index.vectors, ml100k_index.meta.encoder, kind="hnsw")
        if backend == "faiss"
        else request.getfixturevalue("pg_ml100k")
    )
    queries = ml100k_index.vectors[:50]
    exact = ml100k_index.search_batch(queries, 10)
    approx = hnsw.search_batch(queries, 10)
    recall = np.mean(
        [len({i.id for i, _ in a} & {i.id for i, _ in e}) / 10 for a, e in zip(approx, exact, strict=True)]
    )
    assert recall >= 0.9


def test_save_load_roundtrip(tmp_path: Path, ml100k_index: ItemIndex) -> None:
    ml100k_index.save(tmp_path / "idx")
    loaded = ItemIndex.load(tmp_path / "idx", expected_encoder=ml100k_index.meta.encoder)
    assert loaded.catalog.ids == ml100k_index.catalog.ids
    assert loaded.catalog["1"] == ml100k_index.catalog["1"]
    query = ml100k_index.vectors[7]
    assert [i.id for i, _ in loaded.search(query, 5)] == [i.id for i, _ in ml100k_index.search(query, 5)]


def test_pgvector_table_persists_and_open_reads_it_back(pg_ml100k, ml100k_index: ItemIndex) -> None:
    from recagent.retrieval.pgvector import PgVectorIndex

    reopened = PgVectorIndex.open(pg_ml100k.backend.url, pg_ml100k.backend.table, plan="index")
    try:
        assert reopened.catalog.ids == ml100k_index.catalog.ids
        assert reopened.catalog["1"] == ml100k_index.catalog["1"]
        assert np.array_equal(reopened.vectors, ml100k_index.vectors)
        assert reopened.meta.encoder == ml100k_index.meta.encoder
        query = ml100k_index.vectors[7]
        got = reopened.search(query, 5)
        assert [i.id for i, _ in got] == [i.id for i, _ in ml100k_index.search(query, 5)]
        assert np.allclose([s for _, s in got], [s for _, s in ml100k_index.search(query, 5)], atol=1e-5)
    finally:
        reopened.close()


def test_index_from_another_encoder_is_refused(tmp_path: Path) -> None:
    catalog = Catalog([Item(id=str(i), title=f"t{i}") for i in range(3)])
    ItemIndex(catalog, np.eye(3, 4, dtype=np.float32), encoder="other-encoder").save(tmp_path)
    with pytest.raises(IndexFileError, match="built with encoder 'other-encoder'"):
        ItemIndex.load(tmp_path, expected_encoder="all-MiniLM-L6-v2")


def test_corrupt_or_foreign_folder_gives_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IndexFileError, match="not an index folder"):
        ItemIndex.load(tmp_path)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(IndexFileError, match="corrupt"):
        ItemIndex.load(tmp_path)
    catalog = Catalog([Item(id=str(i), title=f"t{i}") for i in range(3)])
    ItemIndex(catalog, np.eye(3, 4, dtype=np.float32), encoder="e").save(tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["count"] = 5
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(IndexFileError, match="disagree"):
        ItemIndex.load(tmp_path)


def test_hnsw_is_saved_as_built_and_loaded_without_a_rebuild(tmp_path: Path, ml100k_index: ItemIndex) -> None:
    import faiss

    hnsw = ItemIndex(
        ml100k_index.catalog, ml100k_index.vectors, ml100k_index.meta.encoder, kind="hnsw", ef_search=16
    )
    hnsw.save(tmp_path / "idx")
    assert (tmp_path / "idx" / "faiss.index").stat().st_size > ml100k_index.vectors.nbytes  # vectors + graph
    loaded = ItemIndex.load(tmp_path / "idx")
    # The graph read back is the one built: same neighbours for every query, even at a small efSearch where a
    # graph rebuilt with other insertion randomness would differ; and the read graph keeps the saved efSearch.
    queries = ml100k_index.vectors[:50]
    assert [[i.id for i, _ in hits] for hits in loaded.search_batch(queries, 10)] == [
        [i.id for i, _ in hits] for hits in hnsw.search_batch(queries, 10)
    ]
    assert isinstance(loaded.faiss_index, faiss.IndexHNSW) and loaded.faiss_index.hnsw.efSearch == 16
    written = faiss.serialize_index(hnsw.faiss_index)
    assert np.array_equal(faiss.serialize_index(loaded.faiss_index), written)
    flat_folder = ml100k_index.save(tmp_path / "flat")
    assert not (flat_folder / "faiss.index").exists()  # a flat index is its vectors: nothing extra to store
    (tmp_path / "idx" / "faiss.index").write_bytes(b"not an index")
    with pytest.raises(IndexFileError, match="faiss.index is corrupt"):
        ItemIndex.load(tmp_path / "idx")
