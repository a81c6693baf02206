"""Cross-request batching: concurrent ranking calls share one padded forward pass.

The API answers each request on its own worker thread, and the embedded model runs one forward pass at a time
(its lock). Unbatched, eight waiting requests are eight passes in a row. The scheduler queues each call's case,
and a single worker thread takes everything queued (up to ``max_batch``) into one ``score_batch``: while one
pass runs, the next batch fills by itself, so the wait adds at most ``max_wait_ms`` to a lone request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

from recagent.retrieval.threads import cpu_has_native_bf16

# Measured on the shared 2-core machines (8 ml-100k ranking prompts of 570-620 tokens, SmolLM2, two repeats):
# - float32 on a CPU without bf16: one padded pass of all eight took 63.7 and 45.6 s, eight passes that each
#   reuse the cached system-prompt prefix 43.4 and 46.5 s. That prefill is compute-bound: batching buys nothing.
# - bfloat16 on an AMX CPU: one pass of eight 1.97 and 1.49 s wall (3.47 and 2.63 s CPU), eight prefix-cached
#   passes 2.87 and 2.78 s (3.77 and 3.67 s CPU). Its matrix units run fuller on taller matrices.
# On a GPU a pass of eight costs about one of one.
GPU_BATCH = 8


def default_batch(backend: object) -> int:
    """Cross-request batch size when not configured: ``GPU_BATCH`` for an embedded model on a GPU or in bfloat16
    on a CPU that multiplies it natively, else 1 (see above; an OpenAI-compatible server such as vLLM batches
    concurrent requests itself)."""
    if str(getattr(backend, "device", "cpu")).startswith("cuda"):
        return GPU_BATCH
    native_bf16 = getattr(backend, "dtype", None) == "bfloat16" and cpu_has_native_bf16()
    return GPU_BATCH if native_bf16 else 1


Case = TypeVar("Case")
Row = TypeVar("Row")


class BatchScheduler(Generic[Case, Row]):
    """Collects cases from many threads; answers each with its row of one ``run_batch`` call."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[Case]], list[Row]],
        max_batch: int = 8,
        max_wait_ms: float = 2.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max(0.0, max_wait_ms) / 1000
        self._pending: list[tuple[Case, Future[Row]]] = []
        self._ready = threading.Condition()
        self._worker: threading.Thread | None = None
        self.batch_sizes: list[int] = []  # what ran, for benchmarks and tests (bounded below)

    def submit(self, case: Case) -> Row:
        """The row for ``case``; blocks until the batch it joined has run (its exception re-raised here)."""
        future: Future[Row] = Future()
        with self._ready:
            self._pending.append((case, future))
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._loop, name="recagent-rank-batch", daemon=True)
                self._worker.start()
            self._ready.notify()
        return future.result()

    def _take(self) -> list[tuple[Case, Future[Row]]]:
        with self._ready:
            while not self._pending:
                self._ready.wait()
            # A short grace for requests arriving together; a full batch goes at once.
            deadline = time.monotonic() + self.max_wait_s
            while len(self._pending) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                self._ready.wait(left)
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            self.batch_sizes = [*self.batch_sizes[-999:], len(batch)]
            try:
                rows = self.run_batch([case for case, _ in batch])
                if len(rows) != len(batch):
                    raise RuntimeError(f"run_batch returned {len(rows)} rows for {len(batch)} cases")
            except BaseException as exc:  # every waiting caller gets the error, none waits forever
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), row in zip(batch, rows, strict=True):  # lengths checked above
                future.set_result(row)
