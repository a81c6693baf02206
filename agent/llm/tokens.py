"""Token counts for API ``usage``: the served model's own tokenizer, loaded once and shared."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .base import Conversation


class TokenCounter:
    """Counts tokens as the served model sees them.

    The local backend's tokenizer when there is one; otherwise (retrieval-only, or a remote vLLM serving the
    bundled SmolLM2) the bundled SmolLM2 tokenizer, loaded on first use from the cache dir.
    """

    def __init__(self, backend: Any | None, cache_dir: Path) -> None:
        self.backend = backend
        self.cache_dir = cache_dir
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    @property
    def tokenizer(self) -> Any:
        with self._lock:
            if self._tokenizer is None:
                own = getattr(self.backend, "tokenizer", None)
                if own is not None:
                    self._tokenizer = own
                else:
                    self._tokenizer = bundled_tokenizer(self.cache_dir)
            return self._tokenizer

    def load(self) -> TokenCounter:
        """Load the tokenizer now (a server does this before it listens, not on the first request)."""
        _ = self.tokenizer
        return self

    def prompt(self, conversation: Conversation) -> int:
        """Tokens of the conversation rendered with the model's chat template, generation prompt included."""
        rendered = self.tokenizer.apply_chat_template(
            list(conversation), tokenize=False, add_generation_prompt=True
        )
        return self.text(rendered)

    def text(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False)) if text else 0


def bundled_tokenizer(cache_dir: Path) -> Any:
    """SmolLM2's tokenizer: from the converted model folder if there is one, else read from the bundled GGUF
    once (seconds, no weights de-quantised) and kept in the cache dir."""
    from transformers import AutoTokenizer

    from .local_backend import bundled_gguf_path

    models = cache_dir / "models"
    for folder in (models / "SmolLM2-135M-Instruct", models / "SmolLM2-135M-Instruct-tokenizer"):
        if (folder / "tokenizer_config.json").exists():
            return AutoTokenizer.from_pretrained(str(folder))
    gguf = bundled_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.save_pretrained(str(models / "SmolLM2-135M-Instruct-tokenizer"))
    return tokenizer
