"""Cross-request batching: concurrent callers share passes and get exactly what they would alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from recagent.agent import LocalBackend, ProfileBuilder, Ranker
from recagent.agent.batching import BatchScheduler
from recagent.retrieval import Dataset, ItemIndex


def _slow_squares(cases: Sequence[int]) -> list[int]:
    time.sleep(0.05)  # a forward pass takes time: callers arriving meanwhile join the next batch
    return [c * c for c in cases]


def test_concurrent_callers_share_batches_and_get_their_own_rows() -> None:
    scheduler: BatchScheduler[int, int] = BatchScheduler(_slow_squares, max_batch=4, max_wait_ms=20)
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(scheduler.submit, range(12)))
    assert results == [n * n for n in range(12)]
    assert sum(scheduler.batch_sizes) == 12
    assert max(scheduler.batch_sizes) == 4  # never above the bound
    assert len(scheduler.batch_sizes) <= 6  # shared: 12 calls in far fewer passes


def test_a_failing_batch_fails_every_caller_in_it_and_the_scheduler_goes_on() -> None:
    def flaky(cases: Sequence[int]) -> list[int]:
        if 13 in cases:
            raise RuntimeError("model fell over")
        return list(cases)

    scheduler: BatchScheduler[int, int] = BatchScheduler(flaky, max_batch=8, max_wait_ms=1)
    with pytest.raises(RuntimeError, match="fell over"):
        scheduler.submit(13)
    assert scheduler.submit(2) == 2


def test_a_wrong_row_count_is_an_error_not_a_hang() -> None:
    scheduler: BatchScheduler[int, int] = BatchScheduler(lambda cases: [], max_batch=2, max_wait_ms=1)
    with pytest.raises(RuntimeError, match="0 rows for 1"):
        scheduler.submit(1)


def test_batched_ranking_equals_unbatched(
    tiny_backend: LocalBackend, ml100k: Dataset, ml100k_index: ItemIndex
) -> None:
    builder = ProfileBuilder(ml100k_index)
    cases = []
    for user in ["1", "2", "3", "4", "5", "6"]:
        profile = builder.build(user, ml100k.history(user))
        query = np.asarray(profile.vector, dtype=np.float32)
        candidates = [i for i, _ in ml100k_index.search(query, 10, exclude=set(profile.seen))]
        cases.append((profile, candidates, "something light" if user in "135" else None))
    alone = Ranker(tiny_backend)
    expected = [alone.rank(*case) for case in cases]

    batched = Ranker(tiny_backend, batch=8, batch_wait_ms=50)
    start = threading.Barrier(len(cases))

    def rank(case: tuple) -> list:
        start.wait()  # all six requests arrive together, as concurrent API calls do
        return batched.rank(*case)

    with ThreadPoolExecutor(len(cases)) as pool:
        got = list(pool.map(rank, cases))
    assert batched.scheduler is not None and max(batched.scheduler.batch_sizes) > 1
    for want, have in zip(expected, got, strict=True):
        # Each item's score as alone (padding moves float rounding only), so the order is the same up to ties.
        alone_score = {item.id: score for item, score in want}
        assert sorted(alone_score) == sorted(item.id for item, _ in have)
        assert max(abs(alone_score[item.id] - score) for item, score in have) < 1e-3
        assert [s for _, s in have] == sorted((s for _, s in have), reverse=True)


def test_the_default_batch_follows_where_a_padded_pass_pays() -> None:
    from types import SimpleNamespace

    from recagent.agent.batching import GPU_BATCH, default_batch
    from recagent.retrieval.threads import cpu_has_native_bf16

    assert default_batch(SimpleNamespace(device="cuda:0", dtype="float32")) == GPU_BATCH
    assert default_batch(SimpleNamespace(device="cpu", dtype="float32")) == 1
    # bfloat16 batches only where the CPU multiplies it natively (an emulated bf16 pass is compute-bound).
    expected = GPU_BATCH if cpu_has_native_bf16() else 1
    assert default_batch(SimpleNamespace(device="cpu", dtype="bfloat16")) == expected
    assert default_batch(object()) == 1  # an OpenAI-compatible server batches by itself
