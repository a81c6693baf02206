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
    parser.add_argument(
        "--kinds", nargs="+", default=["ivfpq", "ivf"], help="ItemIndex kinds to build (default ivfpq ivf)"
    )
    args = parser.parse_args(argv)
    from recagent.retrieval import Catalog, Encoder, Item, ItemIndex, configure_threads, load_bundled
    from recagent.retrieval.index import INDEX_FORMAT_VERSION

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

    persist = report.table(
        f"ItemIndex at {n:,} items (dim {vectors.shape[1]}): build vs save + load",
        [
            "kind",
            "build s",
            "save s",
            "load s",
            "first search ms",
            "folder MB",
            "load speed-up vs build",
            "load + first search vs build",
        ],
    )
    search = report.table(
        f"ItemIndex.search at {n:,} items after load, 50 seen items excluded",
        ["index", "params", "p50 ms", "p95 ms", "recall@10 vs exact", "p50 vs exact"],
    )
    search.add("exact (flat, baseline)", "flat", exact_stats.p50, exact_stats.p95, 1.0, 1.0)
    for kind in args.kinds:
        built, build_ms = timed(lambda kind=kind: ItemIndex(catalog, vectors, "synthetic", kind=kind))
        meta = built.meta
        with tempfile.TemporaryDirectory(prefix="recagent-bench-") as tmp:
            folder = Path(tmp) / "index"
            _, save_ms = timed(lambda b=built, f=folder: b.save(f))
            size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
            del built
            gc.collect()
            loaded, load_ms = timed(lambda f=folder: ItemIndex.load(f))
            # The load maps files and defers row validation: the first searches pay for the pages they touch.
            _, first_ms = timed(lambda index=loaded: index.search(queries[0], K, exclude=seen[0]))
        persist.add(
            meta.kind,
            build_ms / 1000,
            save_ms / 1000,
            load_ms / 1000,
            first_ms,
            size_mb,
            ratio(build_ms, load_ms),
            ratio(build_ms, load_ms + first_ms),
        )
        pos = iter(range(10**9))

        def one(index: Any = loaded, pos: Any = pos) -> None:
            i = next(pos) % len(queries)
            index.search(queries[i], K, exclude=seen[i])

        stats = measure(one, repeat=200, warmup=5)
        found = [
            [it.id for it, _ in loaded.search(q, K, exclude=s)] for q, s in zip(queries, seen, strict=True)
        ]
        params = (
            f"nlist {meta.nlist}, nprobe {meta.nprobe}"
            + (f", refine x{meta.refine_factor}" if meta.kind == "ivfpq" else "")
            if meta.kind in ("ivf", "ivfpq")
            else f"M={meta.hnsw_m}, efSearch={meta.ef_search}"
        )
        search.add(
            meta.kind,
            params,
            stats.p50,
            stats.p95,
            recall_at_k(found, truth),
            ratio(stats.p50, exact_stats.p50),
        )
        del loaded
        gc.collect()
    report.notes.append(
        f"synthetic catalogue: {len(base)} MovieLens-100k MiniLM vectors mixed and noised up to {n:,}; "
        f"{threads} FAISS threads; 100 profile-like queries; the load opens the folder (format "
        f"{INDEX_FORMAT_VERSION}: vectors memory-mapped, item rows validated when first used), and 'first search' "
        "is the first query after it, with the page faults and row validation the load deferred; the files are in "
        "the page cache (just written); CPU shared with other jobs (timings noisy)"
    )
    report.write()
    return report


if __name__ == "__main__":
    main()
