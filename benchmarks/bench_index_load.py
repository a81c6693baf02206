"""Index persistence at scale: ItemIndex build vs save + load (``faiss.write_index``/``read_index``), and what the
kind ``auto`` picks at that size (IVF-PQ with an exact re-rank from 500k items) against exact search.

The recommender's real path: ``ItemIndex.search`` with 50 seen items excluded; recall@10 against exact inner
product over the same vectors (FAISS flat), in the same run.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .bench_index import K, profile_queries, realish_vectors, recall_at_k
from .common import Report, measure, ratio, timed


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k items instead of 1M")
    parser.add_argument("--items", type=int, help="catalogue size (default 1,000,000; --quick 100,000)")
    args = parser.parse_args(argv)
    from recagent.retrieval import Catalog, Encoder, Item, ItemIndex, configure_threads, load_bundled

    n = args.items or (100_000 if args.quick else 1_000_000)
    threads = configure_threads()
    report = Report("index_load", f"Index persistence at {n:,} items: build vs load", quick=args.quick)
    data = load_bundled("ml-100k")
    base = Encoder().encode([item.embedding_text() for item in data.catalog])
    vectors = realish_vectors(base, n)
    catalog = Catalog((Item(id=str(i), title=f"item {i}") for i in range(n)), name=f"synthetic-{n}")
    queries = profile_queries(base, 100)
    rng = np.random.default_rng(4)
    seen = [{str(j) for j in rng.integers(0, n, size=50)} for _ in range(len(queries))]

    exact = ItemIndex(catalog, vectors, "synthetic", kind="flat")
    truth = [[it.id for it, _ in exact.search(q, K, exclude=s)] for q, s in zip(queries, seen, strict=True)]
    exact_stats = measure(lambda e=exact: e.search(queries[0], K, exclude=seen[0]), repeat=10, warmup=1)
    del exact
    gc.collect()

    built, build_ms = timed(lambda: ItemIndex(catalog, vectors, "synthetic", kind="auto"))
    meta = built.meta
    with tempfile.TemporaryDirectory(prefix="recagent-bench-") as tmp:
        folder = Path(tmp) / "index"
        _, save_ms = timed(lambda b=built: b.save(folder))
        size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
        del built
        gc.collect()
        loaded, load_ms = timed(lambda: ItemIndex.load(folder))
    pos = iter(range(10**9))

    def one(index: Any = loaded) -> None:
        i = next(pos) % len(queries)
        index.search(queries[i], K, exclude=seen[i])

    stats = measure(one, repeat=200, warmup=5)
    found = [[it.id for it, _ in loaded.search(q, K, exclude=s)] for q, s in zip(queries, seen, strict=True)]
    params = (
        f"{meta.kind}, nlist {meta.nlist}, nprobe {meta.nprobe}, refine x{meta.refine_factor}"
        if meta.kind in ("ivf", "ivfpq")
        else f"{meta.kind}, M={meta.hnsw_m}, efSearch={meta.ef_search}"
    )

    table = report.table(
        f"ItemIndex at {n:,} items (dim {vectors.shape[1]}), kind auto = {meta.kind}",
        ["step", "seconds", "speed-up vs build"],
    )
    table.add("build (train + add)", build_ms / 1000, 1.0)
    table.add(f"save ({size_mb:,.0f} MB folder)", save_ms / 1000, ratio(build_ms, save_ms))
    table.add("load (read_index, no rebuild)", load_ms / 1000, ratio(build_ms, load_ms))
    search = report.table(
        f"ItemIndex.search at {n:,} items, 50 seen items excluded",
        ["index", "params", "p50 ms", "p95 ms", "recall@10 vs exact", "p50 vs exact"],
    )
    search.add("exact (flat, baseline)", "flat", exact_stats.p50, exact_stats.p95, 1.0, 1.0)
    search.add(
        "auto (loaded)",
        params,
        stats.p50,
        stats.p95,
        recall_at_k(found, truth),
        ratio(stats.p50, exact_stats.p50),
    )
    report.notes.append(
        f"synthetic catalogue: {len(base)} MovieLens-100k MiniLM vectors mixed and noised up to {n:,}; "
        f"{threads} FAISS threads; 100 profile-like queries; the load includes items.jsonl and vectors.npy; "
        "CPU shared with other jobs (timings noisy)"
    )
    report.write()
    return report


if __name__ == "__main__":
    main()
