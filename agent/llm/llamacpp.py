"""Greedy generation with llama.cpp (the ``xllamacpp`` wheel) on a GGUF file: the fast path for justifications.

On a CPU a 135M model's decoding is bound by reading its weights once per token: transformers reads them as
float32 or bfloat16 (~540 or ~270 MB a token), llama.cpp a quantised GGUF (the bundled 4-bit file's Q8_0 copy,
~140 MB; ``local_backend.materialise_q8_0_gguf``), and it measured 22-25 ms a token against ~70 ms here.
Prompt prefill stays faster in transformers where the CPU has bf16 matrix units, so ranking (one forward pass,
label scores, LoRA) keeps the transformers model and only free text comes from here.
``benchmarks/bench_turn.py`` measures both paths in the same run.

The engine is xllamacpp's in-process server. It also opens an HTTP listener, which nothing here uses: it is
bound to 127.0.0.1 and locked with a random API key, so no other local process can drive it.

Several conversations are decoded together: the server has ``parallel`` slots and batches their tokens
(continuous batching, across callers too), and its calls release the GIL. Decoding a small model is bound by
reading the weights, so one read serves every slot: five justifications took 2.05 s of CPU together against
3.0 s one after another here (``benchmarks/bench_turn.py`` measures it in the served pipeline).
"""

from __future__ import annotations

import importlib.util
import secrets
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .base import Conversation, LLMError

__all__ = ["LlamaCppGenerator", "llamacpp_available"]


def llamacpp_available() -> bool:
    return importlib.util.find_spec("xllamacpp") is not None


class LlamaCppGenerator:
    """Greedy chat completions from a GGUF model; up to ``parallel`` of them decoded in one batch.

    ``context`` is each slot's window in tokens (a justification prompt is ~150).
    """

    def __init__(self, gguf: str | Path, threads: int = 1, context: int = 2048, parallel: int = 4) -> None:
        self.gguf = Path(gguf)
        self.threads = max(1, threads)
        self.context = context
        self.parallel = max(1, parallel)
        self._server: Any = None
        self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="llamacpp")
        self._loading = threading.Lock()  # concurrent first requests must not start two engines

    def load(self) -> None:
        with self._loading:
            if self._server is None:
                self._start()

    def _start(self) -> None:
        if not llamacpp_available():
            raise LLMError("llama.cpp generation needs the 'xllamacpp' package: pip install xllamacpp")
        if not self.gguf.is_file():
            raise LLMError(f"{self.gguf}: no such GGUF file")
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(self.gguf)
        params.n_ctx = self.context * self.parallel  # llama.cpp splits n_ctx evenly over its slots
        params.n_parallel = self.parallel
        params.hostnames = ["127.0.0.1"]
        params.api_keys = [secrets.token_hex(16)]
        params.verbosity = -1  # its per-request timing lines would flood a server's log
        for cpu in (params.cpuparams, params.cpuparams_batch):
            cpu.n_threads = self.threads
            cpu.poll = 0  # sleep, never spin, between tokens: the cores are shared (Settings' thread rule)
        try:
            self._server = xllamacpp.Server(params)
        except Exception as exc:  # the binding raises plain RuntimeErrors
            raise LLMError(f"llama.cpp could not load {self.gguf}: {exc}") from None

    def generate(
        self, conversations: Sequence[Conversation], max_new_tokens: int = 48, stop: Sequence[str] = ()
    ) -> list[str]:
        self.load()
        if len(conversations) == 1:
            return [self._complete(conversations[0], max_new_tokens, stop)]
        return list(self._pool.map(lambda c: self._complete(c, max_new_tokens, stop), conversations))

    def _complete(self, conversation: Conversation, max_new_tokens: int, stop: Sequence[str]) -> str:
        request: dict[str, Any] = {
            "messages": list(conversation),
            "max_tokens": max_new_tokens,
            "temperature": 0.0,
        }
        if stop:
            request["stop"] = list(stop)
        response = self._server.handle_chat_completions(request)
        if "error" in response or not response.get("choices"):
            raise LLMError(f"llama.cpp: {response.get('error', response)}")
        choice = response["choices"][0]
        text = str(choice["message"].get("content") or "").strip()
        # OpenAI semantics drop the stop sequence; with one kind of stop (". " and ".\n") it is put back,
        # so a sentence keeps its full stop. An end-of-sequence stop has nothing to put back.
        ends = {s.strip() for s in stop}
        if choice.get("finish_reason") == "stop" and len(ends) == 1 and text:
            end = ends.pop()
            if not text.endswith(end) and text[-1] not in ".!?…":
                text += end
        return text
