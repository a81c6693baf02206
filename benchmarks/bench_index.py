"""Index benchmark: NumPy brute force vs FAISS exact vs HNSW vs IVF vs IVF-PQ at 100k and 1M items.

Vectors are real-ish: MovieLens item embeddings (all-MiniLM-L6-v2), each copy mixed with a random other item
and perturbed by Gaussian noise, then unit-normalised. Uniform random vectors have no neighbourhood structure
and make every ANN index look broken; these keep MiniLM's anisotropy and clusters. Queries look like profile
vectors (the mean of a few item vectors), as the recommender issues them.
"""

from __future__ import annotations

import argparse
import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .common import Report, Stats, measure, ratio, timed

K = 10


def realish_vectors(
    base: np.ndarray, count: int, seed: int = 0, noise: float = 0.35, mix: float = 0.5, chunk: int = 100_000
) -> np.ndarray:
    """``count`` unit vectors: base rows (cycled, so every base row is included) mixed with a random other
    base row (weight up to ``mix``) plus isotropic noise of expected norm ``noise``."""
    rng = np.random.default_rng(seed)
    n_base, dim = base.shape
    out = np.empty((count, dim), dtype=np.float32)
    for start in range(0, count, chunk):
        stop = min(count, start + chunk)
        rows = np.arange(start, stop) % n_base
        others = rng.integers(0, n_base, size=stop - start)
        weights = rng.uniform(0, mix, size=(stop - start, 1)).astype(np.float32)
        block = base[rows] + weights * base[others]
        if start >= n_base:  # the first copy of each base row stays exact
            block += rng.normal(0, noise / math.sqrt(dim), size=block.shape).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out


def profile_queries(base: np.ndarray, count: int, seed: int = 1, per_query: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(base), size=(count, per_query))
    queries = base[picks].mean(axis=1)
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


def recall_at_k(
    found: Sequence[Sequence[Any]] | np.ndarray, truth: Sequence[Sequence[Any]] | np.ndarray
) -> float:
    """Mean share of each true top-k row that the matching row of ``found`` contains (-1 padding never matches)."""
    if len(found) != len(truth):
        raise ValueError("found and truth must have the same number of rows")
    total = sum(len(t) for t in truth)
    if total == 0:
        return math.nan
    hits = sum(len({x for x in f if x != -1} & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / total


def numpy_topk(vectors: np.ndarray, queries: np.ndarray, k: int, chunk: int = 16) -> np.ndarray:
    """Exact top-k rows by inner product; queries go in chunks so 1M-item score matrices stay small."""
    out = []
    for start in range(0, len(queries), chunk):
        scores = queries[start : start + chunk] @ vectors.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(scores, part, axis=1).argsort(axis=1)[:, ::-1]
        out.append(np.take_along_axis(part, order, axis=1))
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


@dataclass
class Config:
    name: str
    build: Callable[[np.ndarray], Any]
    set_search: Callable[[Any], None] | None = None


def _faiss_configs(n: int, dim: int, quick: bool) -> list[Config]:
    import faiss

    from recagent.retrieval import choose_index

    nlist = 1024 if n <= 200_000 else 4096
    # k-means cost grows with samples x nlist x iterations; 16 samples per list and 10 iterations keep 1M builds in minutes.
    train_n = min(n, 40 * nlist if n <= 200_000 else 16 * nlist)
    niter = 25 if n <= 200_000 else 10
    ef_construction = 80 if n <= 200_000 else 40
    configs: list[Config] = [Config("faiss flat (exact)", lambda x: _add(faiss.IndexFlatIP(dim), x))]

    def hnsw(x: np.ndarray) -> Any:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        return _add(index, x)

    shared: dict[str, Any] = {}

    def hnsw_shared(x: np.ndarray) -> Any:  # build once, sweep efSearch
        if "hnsw" not in shared:
            shared["hnsw"] = hnsw(x)
        return shared["hnsw"]

    efs = [64, 128] if quick else [32, 64, 128, 256]
    auto_ef = choose_index(n).ef_search
    efs = sorted(set(efs) | {auto_ef})
    for ef in efs:
        tag = " (auto)" if ef == auto_ef else ""
        configs.append(
            Config(f"hnsw32 ef{ef}{tag}", hnsw_shared, lambda idx, ef=ef: setattr(idx.hnsw, "efSearch", ef))
        )

    def ivf(x: np.ndarray) -> Any:
        if "ivf" not in shared:
            shared.pop("hnsw", None)  # one big index in memory at a time
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.niter = niter
            index.train(x[np.random.default_rng(2).choice(len(x), train_n, replace=False)])
            shared["ivf"] = _add(index, x)
            shared["ivf_q"] = quantizer
        return shared["ivf"]

    for nprobe in [16, 64] if quick else [8, 16, 32, 64]:
        configs.append(
            Config(f"ivf{nlist} nprobe{nprobe}", ivf, lambda idx, p=nprobe: setattr(idx, "nprobe", p))
        )

    def ivfpq(x: np.ndarray) -> Any:
        if "ivfpq" not in shared:
            shared.pop("ivf", None)
            # Reuse the IVF's trained coarse quantizer: only the product quantizer is trained here.
            quantizer = shared.get("ivf_q") or faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFPQ(quantizer, dim, nlist, 48, 8, faiss.METRIC_INNER_PRODUCT)
            index.cp.niter = niter
            index.train(x[np.random.default_rng(3).choice(len(x), train_n, replace=False)])
            shared["ivfpq"] = _add(index, x)
            shared["ivfpq_q"] = quantizer
        return shared["ivfpq"]

    for nprobe in [32] if quick else [16, 64]:
        configs.append(
            Config(f"ivfpq{nlist} m48 nprobe{nprobe}", ivfpq, lambda idx, p=nprobe: setattr(idx, "nprobe", p))
        )
    return configs


def _add(index: Any, x: np.ndarray) -> Any:
    index.add(x)
    return index


def _index_bytes(index: Any) -> int:
    import faiss

    return int(faiss.serialize_index(index).size)


def _latency(search: Callable[[np.ndarray], Any], queries: np.ndarray, repeat: int) -> tuple[Stats, Stats]:
    """Per-query latency at batch 1 (cycled over queries) and per-call latency at batch 64."""
    pos = iter(range(10**9))

    def one() -> None:
        i = next(pos) % len(queries)
        search(queries[i : i + 1])

    single = measure(one, repeat=repeat, warmup=5)
    batch = queries[:64] if len(queries) >= 64 else np.resize(queries, (64, queries.shape[1]))
    batched = measure(lambda: search(batch), repeat=max(3, repeat // 20), warmup=1)
    return single, batched


def run_size(report: Report, base: np.ndarray, n: int, quick: bool) -> None:
    dim = base.shape[1]
    vectors, gen_ms = timed(lambda: realish_vectors(base, n))
    queries = profile_queries(base, 200 if not quick else 100)
    repeat = 60 if quick else (200 if n < 500_000 else 50)
    table = report.table(
        f"Index at {n:,} items (dim {dim}, k={K})",
        [
            "index",
            "build s",
            "memory MB",
            "batch-1 p50 ms",
            "batch-1 p95 ms",
            "batch-64 p50 ms",
            "recall@10",
            "p50 vs numpy",
        ],
    )
    truth = numpy_topk(vectors, queries, K)
    single, batched = _latency(lambda q: numpy_topk(vectors, q, K), queries, max(20, repeat // 4))
    base_p50 = single.p50
    table.add(
        "numpy brute force (baseline)",
        0.0,
        vectors.nbytes / 2**20,
        single.p50,
        single.p95,
        batched.p50,
        1.0,
        1.0,
    )
    built: dict[int, tuple[float, int]] = {}
    for config in _faiss_configs(n, dim, quick):
        start = time.perf_counter()
        index = config.build(vectors)
        build_s = time.perf_counter() - start
        key = id(config.build)  # configs sharing a build function share one index
        if key not in built:
            built[key] = (build_s, _index_bytes(index))
        build_s, size = built[key]
        if config.set_search is not None:
            config.set_search(index)
        _, found = index.search(queries, K)
        single, batched = _latency(lambda q, index=index: index.search(q, K), queries, repeat)
        table.add(
            config.name,
            build_s,
            size / 2**20,
            single.p50,
            single.p95,
            batched.p50,
            recall_at_k(found, truth),
            ratio(single.p50, base_p50),
        )
        print(f"  {n:,} {config.name}: p50 {single.p50:.3f} ms, recall {recall_at_k(found, truth):.3f}")
    table.notes.append(
        f"vectors generated in {gen_ms / 1000:.1f} s; latency over {repeat} single queries after 5 warm-up "
        "queries; 'p50 vs numpy' < 1 means faster than the NumPy baseline measured in this run; memory is "
        "the serialised FAISS index (vectors included); HNSW/IVF rows sharing a build report one build time"
    )
    gc.collect()


def run_itemindex(report: Report, base: np.ndarray, n: int, quick: bool) -> None:
    """The recommender's real path: ItemIndex.search with the user's seen items excluded, auto vs flat."""
    from recagent.retrieval import Catalog, Item, ItemIndex

    vectors = realish_vectors(base, n)
    catalog = Catalog((Item(id=str(i), title=f"item {i}") for i in range(n)), name=f"synthetic-{n}")
    queries = profile_queries(base, 100)
    rng = np.random.default_rng(4)
    seen = [{str(j) for j in rng.integers(0, n, size=50)} for _ in range(len(queries))]
    table = report.table(
        f"ItemIndex.search at {n:,} items, 50 seen items excluded (the recommender's path)",
        ["kind", "params", "build s", "p50 ms", "p95 ms", "recall@10", "p50 vs flat"],
    )
    results: dict[str, list[list[str]]] = {}
    flat_p50 = math.nan
    for kind in ("flat", "auto"):
        index, build_ms = timed(lambda kind=kind: ItemIndex(catalog, vectors, "synthetic", kind=kind))
        pos = iter(range(10**9))

        def one(index: ItemIndex = index, pos: Any = pos) -> None:
            i = next(pos) % len(queries)
            index.search(queries[i], K, exclude=seen[i])

        stats = measure(one, repeat=60 if quick else 200, warmup=5)
        results[kind] = [
            [it.id for it, _ in index.search(q, K, exclude=s)] for q, s in zip(queries, seen, strict=True)
        ]
        if kind == "flat":
            flat_p50 = stats.p50
        recall = recall_at_k(results[kind], results["flat"])
        params = (
            f"{index.meta.kind}, M={index.meta.hnsw_m}, efSearch={index.meta.ef_search}"
            if index.meta.kind == "hnsw"
            else index.meta.kind
        )
        table.add(kind, params, build_ms / 1000, stats.p50, stats.p95, recall, ratio(stats.p50, flat_p50))
        del index
        gc.collect()


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k items only, fewer settings (~1 min)")
    parser.add_argument("--sizes", type=int, nargs="*", help="catalogue sizes (default 100k and 1M)")
    args = parser.parse_args(argv)
    from recagent.retrieval import Encoder, configure_threads, load_bundled

    threads = configure_threads()
    report = Report(
        "index", "Index: FAISS exact / HNSW / IVF / IVF-PQ vs NumPy brute force", quick=args.quick
    )
    data = load_bundled("ml-100k")
    base = Encoder().encode([item.embedding_text() for item in data.catalog])
    sizes = args.sizes or ([100_000] if args.quick else [100_000, 1_000_000])
    report.notes.append(
        f"base vectors: {len(base)} MovieLens-100k items (MiniLM, dim {base.shape[1]}), copies mixed with a "
        f"random other item and noised; {threads} FAISS threads; CPU shared with other jobs (timings noisy)"
    )
    for n in sizes:
        run_size(report, base, n, args.quick)
    run_itemindex(report, base, 100_000, args.quick)
    first = report.tables[0]
    report.plot_bars(
        "latency",
        [str(x) for x in first.column("index")],
        {"batch-1 p50 ms": first.column("batch-1 p50 ms")},
        "ms per query (log)",
        first.title,
        log=True,
    )
    report.plot_bars(
        "recall",
        [str(x) for x in first.column("index")],
        {"recall@10": first.column("recall@10")},
        "recall@10",
        first.title,
    )
    report.write()
    return report


if __name__ == "__main__":
    main()
