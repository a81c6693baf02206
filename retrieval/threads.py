"""One place that sets thread counts for torch, FAISS and tokenizers, so they do not fight over few cores."""

from __future__ import annotations

import os

_configured: int | None = None


def configure_threads(num_threads: int | None = None) -> int:
    """Set intra-op threads for torch and FAISS (default: ``RECAGENT_THREADS`` or the core count)."""
    global _configured
    if num_threads is None:
        num_threads = int(os.environ.get("RECAGENT_THREADS", "0")) or (os.cpu_count() or 1)
    if _configured == num_threads:
        return num_threads
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import faiss
    import torch

    torch.set_num_threads(num_threads)
    faiss.omp_set_num_threads(num_threads)
    # Batched exact search goes through BLAS only for large batches; small ones stay on the faster SIMD path.
    faiss.cvar.distance_compute_blas_threshold = 20
    _configured = num_threads
    return num_threads
