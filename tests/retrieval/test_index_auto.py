"""kind='auto' picks FAISS parameters from the catalogue size; exclusion selectors stay exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recagent.retrieval import (
    EXACT_MAX_ITEMS,
    Catalog,
    DataFileError,
    Item,
    ItemFilter,
    ItemIndex,
    choose_index,
)
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


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_a_loaded_index_maps_its_vectors_from_the_faiss_file_and_reads_rows_when_used(
    tmp_path: Path, kind: str
) -> None:
    catalog, vectors = _synthetic(4000, dim=32, seed=5)
    index = ItemIndex(catalog, vectors, "test", kind=kind)  # type: ignore[arg-type]
    folder = index.save(tmp_path / kind)
    # One copy of the vectors on disk: the FAISS file's (HNSW storage, IVF-PQ's exact re-rank).
    assert not (folder / "vectors.npy").exists()
    rows = (folder / "items.jsonl").read_text().splitlines()
    rows[-1] = '{"id": "i3999", "title": ""}'  # a corrupt row the searches below never touch
    (folder / "items.jsonl").write_text("\n".join(rows) + "\n")

    loaded = ItemIndex.load(folder)
    assert np.array_equal(loaded.vectors, vectors) and not loaded.vectors.flags.writeable
    queries = vectors[:40] + 0.05
    only = ItemFilter(exclude_genres=("Horror",), year_max=1990)
    for item_filter in (None, only):
        assert [[i.id for i, _ in h] for h in loaded.search_batch(queries, 10, item_filter=item_filter)] == [
            [i.id for i, _ in h] for h in index.search_batch(queries, 10, item_filter=item_filter)
        ]
    assert loaded.catalog["i7"] == catalog["i7"] and loaded.catalog.genres() == catalog.genres()
    with pytest.raises(DataFileError, match="item row 4000 is corrupt"):
        loaded.catalog["i3999"]
    # Saving it again passes unread rows on as stored: no row is validated (or lost) on the way.
    again = ItemIndex.load(loaded.save(tmp_path / "again"))
    assert (tmp_path / "again" / "items.jsonl").read_text() == "\n".join(rows) + "\n"
    assert again.catalog["i7"] == catalog["i7"]


def test_saving_over_a_loaded_folder_leaves_the_loaded_index_answering_from_the_old_files(
    tmp_path: Path,
) -> None:
    catalog, vectors = _synthetic(3000, dim=32, seed=6)
    old = ItemIndex(catalog, vectors, "test", kind="ivfpq")
    loaded = ItemIndex.load(old.save(tmp_path / "idx"))  # its vectors are memory-mapped from faiss.index
    queries = vectors[:20] + 0.05
    before = [[i.id for i, _ in h] for h in loaded.search_batch(queries, 10)]

    _, other_vectors = _synthetic(3000, dim=32, seed=7)
    new = ItemIndex(catalog, other_vectors, "test", kind="ivfpq")
    new.save(tmp_path / "idx")
    assert [[i.id for i, _ in h] for h in loaded.search_batch(queries, 10)] == before
    assert np.array_equal(loaded.vectors, vectors)
    reread = ItemIndex.load(tmp_path / "idx")
    assert [[i.id for i, _ in h] for h in reread.search_batch(queries, 10)] == [
        [i.id for i, _ in h] for h in new.search_batch(queries, 10)
    ]
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == [
        "columns.npz",
        "faiss.index",
        "ids.json",
        "items.jsonl",
        "meta.json",
    ]


def test_a_format_1_folder_still_loads(tmp_path: Path) -> None:
    import faiss

    catalog, vectors = _synthetic(3000, dim=32, seed=8)
    index = ItemIndex(catalog, vectors, "test", kind="ivfpq")
    folder = tmp_path / "v1"
    folder.mkdir()
    # The layout format 1 wrote: vectors.npy beside the FAISS file, rows only, no ids or filter columns.
    np.save(folder / "vectors.npy", vectors)
    (folder / "items.jsonl").write_text("".join(item.model_dump_json() + "\n" for item in catalog))
    faiss.write_index(index.faiss_index, str(folder / "faiss.index"))
    (folder / "meta.json").write_text(index.meta.model_copy(update={"format_version": 1}).model_dump_json())
    loaded = ItemIndex.load(folder)
    only = ItemFilter(include_genres=("Drama",))
    assert [i.id for i, _ in loaded.search(vectors[3], 10, item_filter=only)] == [
        i.id for i, _ in index.search(vectors[3], 10, item_filter=only)
    ]
