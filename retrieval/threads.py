"""One place that sets thread counts for torch, FAISS and tokenizers, so they do not fight over few cores."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_configured: int | None = None


def configure_threads(num_threads: int | None = None) -> int:
    """Set intra-op threads for torch and FAISS (default: the core count; the caller passes its setting)."""
    global _configured
    if num_threads is None:
        num_threads = os.cpu_count() or 1
    if _configured == num_threads:
        return num_threads
    import faiss
    import torch

    torch.set_num_threads(num_threads)
    faiss.omp_set_num_threads(num_threads)
    # FAISS's own BLAS threshold is kept: lowering it (to 20, as this once did) sends IVF-PQ's small internal
    # distance blocks through BLAS, and one 1M-item query went from 0.5 ms to 5 ms (bench_index_load).
    _configured = num_threads
    return num_threads


def cpu_has_native_bf16() -> bool:
    """True where the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="ignore")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def log_to_stderr(message: str) -> None:
    """Default progress log of long jobs: stderr, so a command's stdout stays its result (JSON, a table)."""
    print(message, file=sys.stderr, flush=True)
