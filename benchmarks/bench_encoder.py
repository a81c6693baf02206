"""Encoder benchmark: all-MiniLM-L6-v2 items/s by batch size and thread count, and the embedding cache's
effect on rebuilding an index. The baseline is batch size 1 on one thread, measured in the same run."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from .common import Report, batch_thread_sweep, ratio, timed
from .fixtures import dataset


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128 texts, fewer settings")
    args = parser.parse_args(argv)
    import torch

    from recagent.retrieval import Catalog, Encoder, ItemIndex, configure_threads

    report = Report("encoder", "Encoder: all-MiniLM-L6-v2 throughput and the embedding cache", args.quick)
    catalog = dataset().catalog
    count = 128 if args.quick else 384
    texts = [item.embedding_text() for item in list(catalog)[:count]]
    encoder = Encoder(use_cache=False)
    encoder.encode(texts[:8])  # load the model outside the timings
    table = report.table(
        f"Encoding {count} MovieLens item texts (no cache)",
        [
            "batch size",
            "threads",
            "p50 s",
            "items/s",
            "CPU s per item x1000",
            "speed-up vs batch 1, 1 thread",
        ],
    )
    settings = (
        [(1, 1), (16, 1), (64, 1), (64, 2)] if args.quick else [(1, 1), (16, 1), (64, 1), (128, 1), (64, 2)]
    )
    batch_thread_sweep(
        table, settings, encoder, lambda: encoder.encode(texts), count, 1 if args.quick else 2, "items"
    )
    table.notes.append(
        f"torch {torch.__version__}; one run per setting in --quick, median of 2 otherwise; CPU shared"
    )

    configure_threads(None)
    cache_table = report.table(
        f"Index build for {len(catalog):,} items: cold vs cached embeddings",
        ["build", "seconds", "speed-up vs cold"],
    )
    with tempfile.TemporaryDirectory() as tmp:
        cached = Encoder(cache_dir=Path(tmp), batch_size=64)
        cached.encode(texts[:2])
        subset = catalog if not args.quick else Catalog(list(catalog)[:400], name="subset")
        _, cold_ms = timed(lambda: ItemIndex.build(subset, cached))
        _, warm_ms = timed(lambda: ItemIndex.build(subset, cached))
        cached.cache.close() if cached.cache else None
    cache_table.title = f"Index build for {len(subset):,} items: cold vs cached embeddings"
    cache_table.add("cold (encode every item)", cold_ms / 1000, 1.0)
    cache_table.add("rebuild (sqlite cache hit)", warm_ms / 1000, ratio(cold_ms, warm_ms))
    report.plot_bars(
        "throughput",
        [f"b{b} t{t}" for b, t in settings],
        {"items/s": table.column("items/s")},
        "items per second",
        table.title,
    )
    time.sleep(0)
    report.write()
    return report


if __name__ == "__main__":
    main()
