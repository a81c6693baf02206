"""The pgvector item index against a real PostgreSQL (tests/pg_server.py): filtered HNSW scans give exactly k,
upserts reach the live index, a table written once is found again by every worker."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from recagent.retrieval import Catalog, Item, ItemFilter, ItemIndex
from recagent.retrieval.pgvector import PgVectorIndex, attach_pgvector

N, DIM = 5000, 32


def _synthetic(n: int = N, seed: int = 0) -> tuple[Catalog, np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # 1% of the items are "Rare", a filter that an HNSW scan of ef_search candidates mostly misses.
    catalog = Catalog(
        [
            Item(
                id=f"i{i}",
                title=f"t{i}",
                genres=("Rare",) if i % 100 == 7 else ("Common",),
                year=1950 + i % 70,
            )
            for i in range(n)
        ],
        name="synthetic",
    )
    return catalog, vectors


@pytest.fixture(scope="module")
def synthetic(pg_server):
    catalog, vectors = _synthetic()
    url = pg_server.create_database("pgvector_synthetic")
    index = PgVectorIndex(catalog, vectors, "synthetic", url, plan="index")
    yield index, ItemIndex(catalog, vectors, "synthetic")
    index.close()


def _recall(got: list[tuple[Item, float]], exact: list[tuple[Item, float]]) -> float:
    return len({i.id for i, _ in got} & {i.id for i, _ in exact}) / max(1, len(exact))


def test_filtered_search_returns_exactly_k_where_a_plain_hnsw_scan_does_not(synthetic) -> None:
    index, exact = synthetic
    rare = ItemFilter(include_genres=("Rare",))
    queries = exact.vectors[:20]
    assert "Index Scan using" in index.backend.explain(queries[0], 10, rare)  # the HNSW graph is what runs
    # A plain HNSW scan: ef_search candidates, then the filter; with 1% admitted it keeps well under k.
    index.backend.iterative_scan, index.backend.ef_search = False, 10
    try:
        naive = index.search_batch(queries, 10, item_filter=rare)
    finally:
        index.backend.iterative_scan, index.backend.ef_search = True, 100
    ours = index.search_batch(queries, 10, item_filter=rare)
    truth = exact.search_batch(queries, 10, item_filter=rare)
    assert max(len(hits) for hits in naive) < 10, [len(h) for h in naive]
    assert [len(hits) for hits in ours] == [10] * len(queries)
    for hits in ours:
        assert all("Rare" in item.genres for item, _ in hits)
        scores = [s for _, s in hits]
        assert scores == sorted(scores, reverse=True)
    assert np.mean([_recall(o, t) for o, t in zip(ours, truth, strict=True)]) >= 0.9


def test_exhausted_iterative_scan_falls_back_to_an_exact_scan(synthetic) -> None:
    index, exact = synthetic
    # Rare and from 1957 or before: a handful of 5000 items, fewer than k; the iterative scan gives up at its
    # max_scan_tuples bound without having seen them all, and the exact scan of the admitted rows finds them.
    narrow = ItemFilter(include_genres=("Rare",), year_max=1957)
    admitted = int(exact.filter_mask(narrow).sum())  # type: ignore[union-attr]
    assert 0 < admitted < 10
    index.backend.max_scan_tuples = 50
    fallbacks = index.backend.exact_fallbacks
    try:
        got = index.search_batch(exact.vectors[:5], 10, item_filter=narrow)
    finally:
        index.backend.max_scan_tuples = 20_000
    want = exact.search_batch(exact.vectors[:5], 10, item_filter=narrow)
    assert [[i.id for i, _ in hits] for hits in got] == [[i.id for i, _ in hits] for hits in want]
    assert [len(hits) for hits in got] == [admitted] * 5  # all that exist, as FAISS gives
    assert index.backend.exact_fallbacks == fallbacks + 5


def test_k_past_the_ef_search_maximum(synthetic) -> None:
    index, exact = synthetic
    hits = index.search(exact.vectors[0], 1500)  # pgvector caps hnsw.ef_search at 1000; the scan goes on
    assert len(hits) == 1500 and len({i.id for i, _ in hits}) == 1500 and hits[0][0].id == "i0"


def test_exclusions_still_give_k(synthetic) -> None:
    index, exact = synthetic
    query = exact.vectors[11]
    top = {i.id for i, _ in exact.search(query, 300)}
    hits = index.search(query, 10, exclude=top)
    assert len(hits) == 10 and not {i.id for i, _ in hits} & top
    assert _recall(hits, exact.search(query, 10, exclude=top)) >= 0.9


def test_upserted_items_are_found_and_persist(pg_url: str) -> None:
    catalog, vectors = _synthetic(600, seed=1)
    index = PgVectorIndex(catalog, vectors, "synthetic", pg_url, plan="index")
    try:
        probe = -vectors[0]  # a direction no item has yet
        new = Item(id="new-1", title="brand new", genres=("Rare",), year=2030)
        index.add_items([new], probe.reshape(1, -1))
        assert len(index) == 601 and index.catalog.position("new-1") == 600
        hits = index.search(probe, 3, item_filter=ItemFilter(year_min=2030))
        assert [i.id for i, _ in hits] == ["new-1"] and abs(hits[0][1] - 1.0) < 1e-5
        assert index.search(probe, 1)[0][0].id == "new-1"
        with pytest.raises(ValueError, match="already in the catalogue"):
            index.add_items([new], probe.reshape(1, -1))
        reopened = PgVectorIndex.open(pg_url, plan="index")
        try:
            assert reopened.catalog.ids == index.catalog.ids and reopened.search(probe, 1)[0][0].id == "new-1"
        finally:
            reopened.close()
    finally:
        index.close()


def test_attach_writes_once_and_a_second_worker_reuses_the_table(pg_url: str) -> None:
    catalog, vectors = _synthetic(800, seed=2)
    first, second = ItemIndex(catalog, vectors, "synthetic"), ItemIndex(catalog, vectors, "synthetic")
    backend = attach_pgvector(first, pg_url, "shared_items")
    with psycopg.connect(pg_url) as conn:
        written = conn.execute("SELECT xmin::text FROM shared_items WHERE pos = 0").fetchone()
    other = attach_pgvector(second, pg_url, "shared_items")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT xmin::text FROM shared_items WHERE pos = 0").fetchone() == written
        assert conn.execute("SELECT count(*) FROM shared_items").fetchone()[0] == 800
    try:
        query = vectors[5]
        assert [i.id for i, _ in second.search(query, 5)] == [i.id for i, _ in first.search(query, 5)]
        assert second.search(query, 1)[0][0].id == "i5"
        # Changed vectors (a retrained model) are a new fingerprint: the table is rewritten.
        third = ItemIndex(catalog, -vectors, "synthetic")
        rewritten = attach_pgvector(third, pg_url, "shared_items")
        assert third.search(-query, 1)[0][0].id == "i5"
        rewritten.close()
    finally:
        backend.close()
        other.close()


def test_halfvec_index_keeps_the_answers_at_half_the_size(pg_url: str) -> None:
    catalog, vectors = _synthetic(3000, seed=3)
    exact = ItemIndex(catalog, vectors, "synthetic")
    half = PgVectorIndex(
        catalog, vectors, "synthetic", pg_url, table="half_items", plan="index", precision="float16"
    )
    full = PgVectorIndex(catalog, vectors, "synthetic", pg_url, table="full_items", plan="index")
    try:
        with psycopg.connect(pg_url) as conn:
            kind = conn.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'half_items'::regclass AND attname = 'embedding'"
            ).fetchone()[0]
            sizes = [
                conn.execute(f"SELECT pg_table_size('{t}')").fetchone()[0]
                for t in ("half_items", "full_items")
            ]
        assert kind == f"halfvec({DIM})" and sizes[0] < sizes[1]
        queries = vectors[:30]
        got = half.search_batch(queries, 10, item_filter=ItemFilter(year_min=1990))
        want = exact.search_batch(queries, 10, item_filter=ItemFilter(year_min=1990))
        assert [len(g) for g in got] == [10] * 30
        assert np.mean([_recall(g, w) for g, w in zip(got, want, strict=True)]) >= 0.9
        assert abs(got[0][0][1] - want[0][0][1]) < 2e-3  # inner products in half precision
        reopened = PgVectorIndex.open(pg_url, "half_items", plan="index")  # the table says halfvec
        assert reopened.backend.precision == "float16" and reopened.search(vectors[4], 1)[0][0].id == "i4"
        assert np.allclose(reopened.vectors, vectors, atol=2e-3) and len(reopened) == 3000
        reopened.close()
    finally:
        half.close()
        full.close()
