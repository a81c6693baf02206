"""The served item space: each item's text embedding fused with its sequential (SASRec) embedding.

An item vector is ``[√λ · text_i, e_i]`` and a query ``[√λ · s · t, h]``, so FAISS's inner product is

    score = λ · s · cos(t, text_i) + h · e_i

the sequential model's own logit plus λ times the text similarity (λ chosen on validation items; ``s`` scales
the text part up when the user is asking for something in a conversation). A user without history has no
state ``h``: the query is text only. An item the sequential model never saw (added after training) has
``e = 0`` and is found through its text alone. ``λ = 0`` is SASRec exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .index import IndexError_, IndexKind, ItemIndex
from .items import Catalog


def fuse_sequential(text_vectors: np.ndarray, item_vectors: np.ndarray, text_weight: float) -> np.ndarray:
    if text_weight < 0:
        raise ValueError(f"text_weight must be >= 0, got {text_weight}")
    if len(text_vectors) != len(item_vectors):
        raise ValueError(f"{len(text_vectors)} text vectors but {len(item_vectors)} sequential vectors")
    scale = np.float32(np.sqrt(text_weight))
    return np.hstack([scale * np.asarray(text_vectors, np.float32), np.asarray(item_vectors, np.float32)])


class SequentialIndex(ItemIndex):
    """An :class:`ItemIndex` over fused text ⊕ sequential vectors (see the module docstring)."""

    def __init__(
        self,
        catalog: Catalog,
        text_vectors: np.ndarray,
        item_vectors: np.ndarray,
        encoder: str,
        text_weight: float,
        kind: IndexKind = "flat",
        hnsw_m: int = 32,
        ef_search: int = 64,
    ) -> None:
        self.text_weight = float(text_weight)
        self.text_vectors = np.ascontiguousarray(text_vectors, dtype=np.float32)
        self.item_vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        fused = fuse_sequential(self.text_vectors, self.item_vectors, self.text_weight)
        super().__init__(catalog, fused, encoder, kind, hnsw_m, ef_search)

    @property
    def text_dim(self) -> int:
        return int(self.text_vectors.shape[1])

    @property
    def state_dim(self) -> int:
        return int(self.item_vectors.shape[1])

    def text_vector(self, item_id: str) -> np.ndarray:
        return self.text_vectors[self.catalog.position(item_id)]

    def text_vectors_for(self, item_ids: list[str]) -> np.ndarray:
        return self.text_vectors[[self.catalog.position(i) for i in item_ids]]

    def query(
        self, text: np.ndarray | None, state: np.ndarray | None = None, text_scale: float = 1.0
    ) -> np.ndarray:
        scale = np.sqrt(self.text_weight) * text_scale
        text_part = (
            np.zeros(self.text_dim, np.float32) if text is None else scale * np.asarray(text, np.float32)
        )
        state_part = np.zeros(self.state_dim, np.float32) if state is None else np.asarray(state, np.float32)
        return np.concatenate([text_part, state_part]).astype(np.float32)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "text_vectors.npy", self.text_vectors)
        np.save(folder / "item_vectors.npy", self.item_vectors)
        (folder / "fused.json").write_text(json.dumps({"text_weight": self.text_weight}), encoding="utf-8")
        return super().save(folder)

    @classmethod
    def load(cls, folder: str | Path, expected_encoder: str | None = None) -> SequentialIndex:
        folder = Path(folder)
        base = ItemIndex.load(folder, expected_encoder)
        try:
            config: dict[str, Any] = json.loads((folder / "fused.json").read_text(encoding="utf-8"))
            text = np.load(folder / "text_vectors.npy", allow_pickle=False)
            items = np.load(folder / "item_vectors.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise IndexError_(f"{folder}: not a fused index folder ({exc})") from None
        return cls(
            base.catalog,
            text,
            items,
            base.meta.encoder,
            float(config["text_weight"]),
            base.meta.kind,
            base.meta.hnsw_m,
            base.meta.ef_search,
        )


def load_index(folder: str | Path, expected_encoder: str | None = None) -> ItemIndex:
    """An index folder of either kind: text only, or text ⊕ sequential (it holds ``fused.json``)."""
    if (Path(folder) / "fused.json").exists():
        return SequentialIndex.load(folder, expected_encoder)
    return ItemIndex.load(folder, expected_encoder)
