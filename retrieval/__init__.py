"""Item catalogue, datasets and their split, the text encoder, collaborative and sequential item models, and the
item index (FAISS in-process, or pgvector in PostgreSQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_attributes

if TYPE_CHECKING:
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
    from .errors import DataFileError, IndexFileError, RecagentError, UnknownItemError, UnknownUserError
    from .events import (
        DEFAULT_TIES,
        Interaction,
        TieBreak,
        chronological,
        group_by_user,
        load_events,
        tie_key,
    )
    from .fused import SequentialIndex, fuse_sequential, load_index, recency_query, unit_rows, unit_vector
    from .hybrid import CFConfig, fit_als, fit_collaborative, fit_item2vec, fuse
    from .index import EXACT_MAX_ITEMS, IndexChoice, IndexMeta, ItemIndex, choose_index
    from .items import Catalog, Item, ItemFilter, load_catalog, natural_title, normalise_title
    from .pgvector import PgVectorBackend, PgVectorIndex, attach_pgvector
    from .reviews import Review, clothing_reviews_path, load_clothing_reviews
    from .sequential import (
        SequentialConfig,
        SequentialMeta,
        SequentialModel,
        data_fingerprint,
        fit_sequential,
    )
    from .split import LeaveOneOut, Phase
    from .threads import configure_threads

# Each public name loads its module on first use, so importing a light module of this package (a schema,
# the remote tools) does not pull FAISS, torch or the pipeline.
_LAZY = {
    "BUNDLED_DATASETS": "datasets",
    "CFConfig": "hybrid",
    "Catalog": "items",
    "DEFAULT_ENCODER": "encoder",
    "DEFAULT_TIES": "events",
    "DataFileError": "errors",
    "Dataset": "datasets",
    "EXACT_MAX_ITEMS": "index",
    "EmbeddingCache": "encoder",
    "Encoder": "encoder",
    "IndexChoice": "index",
    "IndexFileError": "errors",
    "IndexMeta": "index",
    "Interaction": "events",
    "InteractionArrays": "datasets",
    "Item": "items",
    "ItemFilter": "items",
    "ItemIndex": "index",
    "LeaveOneOut": "split",
    "Phase": "split",
    "PgVectorBackend": "pgvector",
    "PgVectorIndex": "pgvector",
    "RecagentError": "errors",
    "Review": "reviews",
    "SequentialConfig": "sequential",
    "SequentialIndex": "fused",
    "SequentialMeta": "sequential",
    "SequentialModel": "sequential",
    "TieBreak": "events",
    "UnknownItemError": "errors",
    "UnknownUserError": "errors",
    "attach_pgvector": "pgvector",
    "choose_index": "index",
    "chronological": "events",
    "clothing_reviews_path": "reviews",
    "configure_threads": "threads",
    "data_fingerprint": "sequential",
    "default_cache_dir": "encoder",
    "fit_als": "hybrid",
    "fit_collaborative": "hybrid",
    "fit_item2vec": "hybrid",
    "fit_sequential": "sequential",
    "fuse": "hybrid",
    "fuse_sequential": "fused",
    "group_by_user": "events",
    "load_bundled": "datasets",
    "load_bundled_arrays": "datasets",
    "load_bundled_catalog": "datasets",
    "load_catalog": "items",
    "load_clothing_reviews": "reviews",
    "load_dataset": "datasets",
    "load_events": "events",
    "load_index": "fused",
    "natural_title": "items",
    "normalise_title": "items",
    "recency_query": "fused",
    "tie_key": "events",
    "unit_rows": "fused",
    "unit_vector": "fused",
}

__all__ = [
    "BUNDLED_DATASETS",
    "CFConfig",
    "Catalog",
    "DEFAULT_ENCODER",
    "DEFAULT_TIES",
    "DataFileError",
    "Dataset",
    "EXACT_MAX_ITEMS",
    "EmbeddingCache",
    "Encoder",
    "IndexChoice",
    "IndexFileError",
    "IndexMeta",
    "Interaction",
    "InteractionArrays",
    "Item",
    "ItemFilter",
    "ItemIndex",
    "LeaveOneOut",
    "PgVectorBackend",
    "PgVectorIndex",
    "Phase",
    "RecagentError",
    "Review",
    "SequentialConfig",
    "SequentialIndex",
    "SequentialMeta",
    "SequentialModel",
    "TieBreak",
    "UnknownItemError",
    "UnknownUserError",
    "attach_pgvector",
    "choose_index",
    "chronological",
    "clothing_reviews_path",
    "configure_threads",
    "data_fingerprint",
    "default_cache_dir",
    "fit_als",
    "fit_collaborative",
    "fit_item2vec",
    "fit_sequential",
    "fuse",
    "fuse_sequential",
    "group_by_user",
    "load_bundled",
    "load_bundled_arrays",
    "load_bundled_catalog",
    "load_catalog",
    "load_clothing_reviews",
    "load_dataset",
    "load_events",
    "load_index",
    "natural_title",
    "normalise_title",
    "recency_query",
    "tie_key",
    "unit_rows",
    "unit_vector",
]

__getattr__ = lazy_attributes(__name__, _LAZY)
