"""Item catalogue, datasets, the text encoder and the FAISS item index."""

from __future__ import annotations

from .datasets import (
    BUNDLED_DATASETS,
    Dataset,
    InteractionArrays,
    load_bundled,
    load_bundled_arrays,
    load_bundled_catalog,
    load_dataset,
)
from .encoder import DEFAULT_ENCODER, EmbeddingCache, Encoder, default_cache_dir
from .events import Interaction, LeaveOneOutSplit, chronological, group_by_user, load_events
from .hybrid import CFConfig, HybridIndex, fit_als, fit_collaborative, fit_item2vec, fuse
from .index import EXACT_MAX_ITEMS, IndexChoice, IndexError_, IndexMeta, ItemIndex, choose_index
from .items import Catalog, DataFileError, Item, ItemFilter, load_catalog, normalise_title
from .reviews import Review, clothing_reviews_path, load_clothing_reviews
from .threads import configure_threads

__all__ = [
    "BUNDLED_DATASETS",
    "DEFAULT_ENCODER",
    "EXACT_MAX_ITEMS",
    "CFConfig",
    "Catalog",
    "DataFileError",
    "Dataset",
    "EmbeddingCache",
    "Encoder",
    "IndexChoice",
    "HybridIndex",
    "IndexError_",
    "IndexMeta",
    "Interaction",
    "InteractionArrays",
    "Item",
    "ItemFilter",
    "ItemIndex",
    "LeaveOneOutSplit",
    "Review",
    "choose_index",
    "chronological",
    "clothing_reviews_path",
    "configure_threads",
    "default_cache_dir",
    "fit_als",
    "fit_collaborative",
    "fit_item2vec",
    "fuse",
    "group_by_user",
    "load_bundled",
    "load_bundled_arrays",
    "load_bundled_catalog",
    "load_catalog",
    "load_clothing_reviews",
    "load_dataset",
    "load_events",
    "normalise_title",
]
