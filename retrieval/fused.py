"""The served item space: each item's text embedding, its sequential (SASRec) embedding and its collaborative
(item2vec) embedding, fused so that one FAISS inner product scores all three.

An item vector is ``[√λt · text_i, e_i, √λc · c_i]`` and a query ``[√λt · s · t, h, √λc · q]``, so

    score = λt · s · cos(t, text_i) + h · e_i + λc · cos(q, c_i)

SASRec's own logit plus λt times the text similarity (profile and conversation) plus λc times the item2vec
similarity to a recency-weighted mean of the user's last items (λt, λc chosen on validation items; ``s`` scales
the text part up when the user is asking for something in a conversation). A user without history has no state
``h`` and no ``q``: the query is text only. An item the models never saw (added after training) has ``e = c = 0``
and is found through its text alone. ``λt = λc = 0`` is SASRec exactly.

Images (issue 17) add one more block, ``√λi · v_i`` (EfficientNet-Lite0, unit; zero for an item without a usable
image), and the query ``√λi · u · v`` where ``v`` is a photo the user sent or their image taste (the unit mean
image vector of the items they liked): ``+ λi · u · cos(v, v_i)``. When the catalogue has no images the block
is not there at all, so the vectors and the ranking are those without images, bit for bit.
:class:`MultimodalIndex` is text ⊕ image for a catalogue without events. λi is a setting
(``RECAGENT_IMAGE_WEIGHT``), not tuned: no offline set here has both images and behaviour.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .index import REFINE_FACTOR, IndexFileError, IndexKind, ItemIndex, save_array
from .items import Catalog

# Half-life, in events, of the collaborative part's recency-weighted query (1: the last item counts as much as
# all older ones together); chosen on validation items for the old hybrid and kept.
COLLAB_HALF_LIFE = 1.0


def unit_vector(vec: np.ndarray) -> np.ndarray | None:
    """``vec`` scaled to length 1, or None when it has no direction (zero or non-finite norm)."""
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 and math.isfinite(norm) else None


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1; all-zero rows (items without a vector) stay zero."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0).astype(np.float32)


def recency_query(
    vectors: np.ndarray, items: Sequence[int] | np.ndarray, half_life: float = 2.0
) -> np.ndarray:
    """Unit mean of the items' vectors, the most recent weighted most: weights halve every ``half_life`` events."""
    items = np.asarray(items, dtype=np.int64)
    if not len(items):
        return np.zeros(vectors.shape[1], np.float32)
    w = 0.5 ** (np.arange(len(items))[::-1] / half_life)
    q = (vectors[items] * w[:, None]).sum(axis=0)
    n = float(np.linalg.norm(q))
    return (q / n if n > 0 else q).astype(np.float32)


def fuse_sequential(
    text_vectors: np.ndarray,
    item_vectors: np.ndarray,
    text_weight: float,
    collab_vectors: np.ndarray | None = None,
    collab_weight: float = 0.0,
    image_vectors: np.ndarray | None = None,
    image_weight: float = 0.0,
) -> np.ndarray:
    if text_weight < 0 or collab_weight < 0 or image_weight < 0:
        raise ValueError(
            f"weights must be >= 0, got text {text_weight}, collaborative {collab_weight}, image {image_weight}"
        )
    if len(text_vectors) != len(item_vectors):
        raise ValueError(f"{len(text_vectors)} text vectors but {len(item_vectors)} sequential vectors")
    parts = [
        np.float32(np.sqrt(text_weight)) * np.asarray(text_vectors, np.float32),
        np.asarray(item_vectors, np.float32),
    ]
    if collab_vectors is not None:
        parts.append(np.float32(np.sqrt(collab_weight)) * unit_rows(collab_vectors))
    if image_vectors is not None:
        parts.append(_image_block(image_vectors, image_weight, len(text_vectors)))
    return np.hstack(parts)


def unit_image_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1, zero rows kept; rows already of unit length (within 1e-5) are kept as they are,
    so a saved and loaded index has the very same vectors."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    rescale = (norms > 0) & (np.abs(norms - 1.0) > 1e-5)
    return np.where(rescale, matrix / np.where(norms > 0, norms, 1.0), matrix).astype(np.float32)


def _image_block(image_vectors: np.ndarray, image_weight: float, count: int) -> np.ndarray:
    if len(image_vectors) != count:
        raise ValueError(f"{count} items but {len(image_vectors)} image vectors")
    return np.float32(np.sqrt(image_weight)) * image_vectors


def _image_query_part(index: ItemIndex, image: np.ndarray | None, image_scale: float) -> np.ndarray:
    if image is None:
        return np.zeros(index.image_dim, np.float32)
    return (np.sqrt(index.image_weight) * image_scale * np.asarray(image, np.float32)).astype(np.float32)


class _TextPart(ItemIndex):
    """An index whose vectors fuse more than text: profiles and evidence still read the text part alone."""

    text_vectors: np.ndarray

    @property
    def text_dim(self) -> int:
        return int(self.text_vectors.shape[1])

    def text_vector(self, item_id: str) -> np.ndarray:
        return self.text_vectors[self.catalog.position(item_id)]

    def text_vectors_for(self, item_ids: list[str]) -> np.ndarray:
        return self.text_vectors[[self.catalog.position(i) for i in item_ids]]


class SequentialIndex(_TextPart):
    """An :class:`ItemIndex` over fused text ⊕ sequential (⊕ collaborative) vectors (module docstring)."""

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
        collab_vectors: np.ndarray | None = None,
        collab_weight: float = 0.0,
        prebuilt: Any = None,
        nlist: int = 0,
        nprobe: int = 32,
        refine_factor: int = REFINE_FACTOR,
        image_vectors: np.ndarray | None = None,
        image_weight: float = 0.0,
    ) -> None:
        self.text_weight = float(text_weight)
        self.collab_weight = float(collab_weight)
        self.image_weight = float(image_weight)
        self.text_vectors = np.ascontiguousarray(text_vectors, dtype=np.float32)
        self.item_vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        self.collab_vectors = None if collab_vectors is None else unit_rows(collab_vectors)
        self.image_vectors = None if image_vectors is None else unit_image_rows(image_vectors)
        fused = fuse_sequential(
            self.text_vectors,
            self.item_vectors,
            self.text_weight,
            self.collab_vectors,
            self.collab_weight,
            self.image_vectors,
            self.image_weight,
        )
        super().__init__(
            catalog,
            fused,
            encoder,
            kind,
            hnsw_m,
            ef_search,
            prebuilt=prebuilt,
            nlist=nlist,
            nprobe=nprobe,
            refine_factor=refine_factor,
        )

    @property
    def state_dim(self) -> int:
        return int(self.item_vectors.shape[1])

    @property
    def collab_dim(self) -> int:
        return 0 if self.collab_vectors is None else int(self.collab_vectors.shape[1])

    def collab_query(self, positions: Sequence[int]) -> np.ndarray | None:
        """The collaborative part of a query: the recency-weighted mean of the user's items' item2vec vectors."""
        if self.collab_vectors is None or not len(positions):
            return None
        return recency_query(self.collab_vectors, positions, COLLAB_HALF_LIFE)

    def query(
        self,
        text: np.ndarray | None,
        state: np.ndarray | None = None,
        text_scale: float = 1.0,
        collab: np.ndarray | None = None,
        image: np.ndarray | None = None,
        image_scale: float = 1.0,
    ) -> np.ndarray:
        parts = [
            np.zeros(self.text_dim, np.float32)
            if text is None
            else np.sqrt(self.text_weight) * text_scale * np.asarray(text, np.float32),
            np.zeros(self.state_dim, np.float32) if state is None else np.asarray(state, np.float32),
        ]
        if self.collab_vectors is not None:
            parts.append(
                np.zeros(self.collab_dim, np.float32)
                if collab is None
                else np.sqrt(self.collab_weight) * np.asarray(collab, np.float32)
            )
        if self.image_vectors is not None:
            parts.append(_image_query_part(self, image, image_scale))
        return np.concatenate(parts).astype(np.float32)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_array(folder / "text_vectors.npy", self.text_vectors)
        save_array(folder / "item_vectors.npy", self.item_vectors)
        if self.collab_vectors is not None:
            save_array(folder / "collab_vectors.npy", self.collab_vectors)
        if self.image_vectors is not None:
            save_array(folder / "image_vectors.npy", self.image_vectors)
        else:
            (folder / "image_vectors.npy").unlink(missing_ok=True)
        weights: dict[str, float] = {"text_weight": self.text_weight, "collab_weight": self.collab_weight}
        if self.image_vectors is not None:
            weights["image_weight"] = self.image_weight
        (folder / "fused.json").write_text(json.dumps(weights), encoding="utf-8")
        return super().save(folder)

    @classmethod
    def load(cls, folder: str | Path, expected_encoder: str | None = None) -> SequentialIndex:
        folder = Path(folder)
        base = ItemIndex.load(folder, expected_encoder)
        try:
            config: dict[str, Any] = json.loads((folder / "fused.json").read_text(encoding="utf-8"))
            text = np.load(folder / "text_vectors.npy", allow_pickle=False)
            items = np.load(folder / "item_vectors.npy", allow_pickle=False)
            collab_path = folder / "collab_vectors.npy"
            collab = np.load(collab_path, allow_pickle=False) if collab_path.exists() else None
            image_path = folder / "image_vectors.npy"
            image = np.load(image_path, allow_pickle=False) if image_path.exists() else None
        except (OSError, ValueError) as exc:
            raise IndexFileError(f"{folder}: not a fused index folder ({exc})") from None
        return cls(
            base.catalog,
            text,
            items,
            base.meta.encoder,
            float(config["text_weight"]),
            base.meta.kind,
            base.meta.hnsw_m,
            base.meta.ef_search,
            collab_vectors=collab,
            collab_weight=float(config.get("collab_weight", 0.0)),
            prebuilt=base.faiss_index,  # read from disk (or built) once by ItemIndex.load
            nlist=base.meta.nlist,
            nprobe=base.meta.nprobe,
            refine_factor=base.meta.refine_factor,
            image_vectors=image,
            image_weight=float(config.get("image_weight", 0.0)),
        )


class MultimodalIndex(_TextPart):
    """Text ⊕ image for a catalogue without behaviour: ``[text_i, √λi · v_i]``, queried by words, a photo, or
    both (module docstring)."""

    def __init__(
        self,
        catalog: Catalog,
        text_vectors: np.ndarray,
        image_vectors: np.ndarray,
        encoder: str,
        image_weight: float = 1.0,
        kind: IndexKind = "flat",
        hnsw_m: int = 32,
        ef_search: int = 64,
        prebuilt: Any = None,
        nlist: int = 0,
        nprobe: int = 32,
        refine_factor: int = REFINE_FACTOR,
    ) -> None:
        if image_weight < 0:
            raise ValueError(f"image weight must be >= 0, got {image_weight}")
        self.image_weight = float(image_weight)
        self.text_vectors = np.ascontiguousarray(text_vectors, dtype=np.float32)
        self.image_vectors = unit_image_rows(image_vectors)
        fused = np.hstack(
            [self.text_vectors, _image_block(self.image_vectors, self.image_weight, len(self.text_vectors))]
        )
        super().__init__(
            catalog,
            fused,
            encoder,
            kind,
            hnsw_m,
            ef_search,
            prebuilt=prebuilt,
            nlist=nlist,
            nprobe=nprobe,
            refine_factor=refine_factor,
        )

    def query(
        self,
        text: np.ndarray | None,
        state: np.ndarray | None = None,
        text_scale: float = 1.0,
        collab: np.ndarray | None = None,
        image: np.ndarray | None = None,
        image_scale: float = 1.0,
    ) -> np.ndarray:
        if text is None and image is None:
            raise ValueError("a text and image index needs a text query, a photo, or both")
        text_part = (
            np.zeros(self.text_dim, np.float32) if text is None else text_scale * np.asarray(text, np.float32)
        )
        return np.concatenate([text_part, _image_query_part(self, image, image_scale)]).astype(np.float32)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_array(folder / "text_vectors.npy", self.text_vectors)
        save_array(folder / "image_vectors.npy", np.asarray(self.image_vectors, np.float32))
        (folder / MULTIMODAL_FILE).write_text(
            json.dumps({"image_weight": self.image_weight}), encoding="utf-8"
        )
        return super().save(folder)

    @classmethod
    def load(cls, folder: str | Path, expected_encoder: str | None = None) -> MultimodalIndex:
        folder = Path(folder)
        base = ItemIndex.load(folder, expected_encoder)
        try:
            config: dict[str, Any] = json.loads((folder / MULTIMODAL_FILE).read_text(encoding="utf-8"))
            text = np.load(folder / "text_vectors.npy", allow_pickle=False)
            image = np.load(folder / "image_vectors.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise IndexFileError(f"{folder}: not a text and image index folder ({exc})") from None
        return cls(
            base.catalog,
            text,
            image,
            base.meta.encoder,
            float(config["image_weight"]),
            base.meta.kind,
            base.meta.hnsw_m,
            base.meta.ef_search,
            prebuilt=base.faiss_index,
            nlist=base.meta.nlist,
            nprobe=base.meta.nprobe,
            refine_factor=base.meta.refine_factor,
        )


MULTIMODAL_FILE = "multimodal.json"


def load_index(folder: str | Path, expected_encoder: str | None = None) -> ItemIndex:
    """An index folder of any kind: text only, text ⊕ sequential (it holds ``fused.json``; maybe ⊕ image), or
    text ⊕ image (``multimodal.json``)."""
    if (Path(folder) / "fused.json").exists():
        return SequentialIndex.load(folder, expected_encoder)
    if (Path(folder) / MULTIMODAL_FILE).exists():
        return MultimodalIndex.load(folder, expected_encoder)
    return ItemIndex.load(folder, expected_encoder)
