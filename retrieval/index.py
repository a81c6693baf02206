"""FAISS index over item vectors, with id mapping, exclusions and metadata filters."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any, Literal, Protocol

import faiss
import numpy as np
from pydantic import BaseModel

from .errors import IndexFileError
from .items import Catalog, CatalogColumns, Item, ItemFilter

ConcreteKind = Literal["flat", "hnsw", "ivf", "ivfpq"]
IndexKind = Literal["flat", "hnsw", "ivf", "ivfpq", "auto"]
# 2: ids.json and columns.npz beside items.jsonl; no vectors.npy where the FAISS file holds the vectors.
INDEX_FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
FAISS_FILE = "faiss.index"

# The parameter rule (measured by benchmarks/bench_index.py on MiniLM vectors, see the README): exact search
# stays under ~1 ms per query up to this many items on one core, and is always right, so it wins below it.
EXACT_MAX_ITEMS = 20_000
# Past these sizes the graph stops paying (docs/benchmarks.md): at 1M an IVF-Flat with nprobe 32 reached recall@10
# 0.978 at ~1.3 ms while HNSW took far longer to build; past ~5M items memory binds and IVF-PQ (48 bytes per
# vector, exact re-rank of a shortlist from the full vectors) takes over.
IVF_MIN_ITEMS = 500_000
IVFPQ_MIN_ITEMS = 5_000_000
# IVF-PQ re-ranks REFINE_FACTOR·k shortlisted items exactly. At 1M MiniLM-like vectors (nprobe 32, 50 seen items
# excluded) 8 gave recall@10 0.949 and 16 gave 0.979, for 0.79 vs 0.85 ms a query (bench_index_load).
REFINE_FACTOR = 16


class IndexChoice(BaseModel):
    """Concrete FAISS parameters for a catalogue of a given size."""

    kind: ConcreteKind
    hnsw_m: int = 32
    ef_search: int = 64
    ef_construction: int = 80
    nlist: int = 0  # IVF cells (0: 4·√n when built)
    nprobe: int = 32
    refine_factor: int = REFINE_FACTOR  # IVF-PQ: exact re-rank of refine_factor·k shortlisted items


def ivf_cells(count: int) -> int:
    """nlist ≈ 4·√n, at least 1 and at most n/39 (FAISS wants ~39 training points per cell)."""
    return max(1, min(int(4 * math.sqrt(max(count, 1))), max(1, count // 39)))


def pq_subquantizers(dim: int) -> int:
    """Bytes per vector for IVF-PQ: 48 at MiniLM's 384 dimensions (8 dims each), a divisor of ``dim``."""
    target = max(1, dim // 8)
    return max(m for m in range(1, target + 1) if dim % m == 0)


def choose_index(count: int) -> IndexChoice:
    """Exact below ``EXACT_MAX_ITEMS`` items; HNSW32 above, with efSearch growing with the catalogue; IVF-Flat
    from ``IVF_MIN_ITEMS`` and IVF-PQ with an exact re-rank from ``IVFPQ_MIN_ITEMS`` (nlist 4·√n, nprobe 32).

    HNSW's recall at a fixed efSearch drops as the graph grows, so efSearch doubles per decade of items
    past 100k (256 up to 100k, 512 at 1M, 1024 from 10M) to hold recall@10 >= 0.95: on perturbed MovieLens
    MiniLM vectors at 100k, efSearch 64/128/256 gave recall 0.83/0.93/0.97 at 0.14/0.24/0.44 ms per query.
    Past a few million items memory, not latency, becomes the limit: see the README's scale plan (IVF-PQ).
    """
    if count < 0:
        raise ValueError(f"item count must be non-negative, got {count}")
    if count < EXACT_MAX_ITEMS:
        return IndexChoice(kind="flat")
    if count >= IVF_MIN_ITEMS:
        kind: ConcreteKind = "ivfpq" if count >= IVFPQ_MIN_ITEMS else "ivf"
        return IndexChoice(kind=kind, nlist=ivf_cells(count))
    decades = max(0, math.ceil(math.log10(max(count, 1) / 100_000 - 1e-9)))
    return IndexChoice(kind="hnsw", hnsw_m=32, ef_search=min(1024, 256 * 2**decades), ef_construction=80)


class SearchBackend(Protocol):
    """Where an :class:`ItemIndex` searches when it is not FAISS in this process (PostgreSQL + pgvector:
    :mod:`recagent.retrieval.pgvector`). Rows are catalogue positions; scores are inner products, best first."""

    def search_rows(
        self,
        queries: np.ndarray,
        k: int,
        excluded: Sequence[np.ndarray],
        item_filter: ItemFilter | None,
    ) -> list[list[tuple[int, float]]]: ...


class IndexMeta(BaseModel):
    """What an index folder was built from; checked on load."""

    format_version: int = INDEX_FORMAT_VERSION
    encoder: str
    dim: int
    kind: ConcreteKind
    count: int
    catalog: str
    hnsw_m: int = 32
    ef_search: int = 64
    nlist: int = 0
    nprobe: int = 32
    refine_factor: int = REFINE_FACTOR


class ItemIndex:
    """Inner-product search over unit item vectors (cosine similarity).

    ``flat`` is exact and the default; ``hnsw`` trades a little recall for speed on large catalogues; ``ivf``
    (IVF-Flat) and ``ivfpq`` (IVF-PQ whose shortlist is re-ranked exactly, ``IndexRefineFlat``) are for millions
    of items; ``auto`` picks one and its parameters from the catalogue size (:func:`choose_index`).
    """

    def __init__(
        self,
        catalog: Catalog,
        vectors: np.ndarray,
        encoder: str,
        kind: IndexKind = "flat",
        hnsw_m: int = 32,
        ef_search: int = 64,
        prebuilt: faiss.Index | None = None,
        nlist: int = 0,
        nprobe: int = 32,
        refine_factor: int = REFINE_FACTOR,
    ) -> None:
        if vectors.ndim != 2 or vectors.shape[0] != len(catalog):
            raise ValueError(f"expected {len(catalog)} vectors, got array of shape {vectors.shape}")
        self.catalog = catalog
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ef_construction = 80
        if kind == "auto":
            choice = choose_index(len(catalog))
            kind, hnsw_m, ef_search, ef_construction = (
                choice.kind,
                choice.hnsw_m,
                choice.ef_search,
                choice.ef_construction,
            )
            nlist, nprobe, refine_factor = choice.nlist, choice.nprobe, choice.refine_factor
        if kind in ("ivf", "ivfpq"):
            nlist = nlist or ivf_cells(len(catalog))
        self._ef_construction = ef_construction
        self.meta = IndexMeta(
            encoder=encoder,
            dim=int(vectors.shape[1]),
            kind=kind,
            count=len(catalog),
            catalog=catalog.name,
            hnsw_m=hnsw_m,
            ef_search=ef_search,
            nlist=nlist,
            nprobe=nprobe,
            refine_factor=refine_factor,
        )
        self._index: faiss.Index = (
            prebuilt
            if prebuilt is not None and prebuilt.ntotal == len(catalog) and prebuilt.d == self.meta.dim
            else self._build()
        )
        self._set_search_parameters(self._index)
        # Set by attach_pgvector (recagent.retrieval.pgvector): searches then run in PostgreSQL.
        self.search_backend: SearchBackend | None = None

    def _build(self) -> faiss.Index:
        dim = self.meta.dim
        index: faiss.Index
        if self.meta.kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, self.meta.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self._ef_construction
        elif self.meta.kind in ("ivf", "ivfpq"):
            index = self._build_ivf()
        else:
            index = faiss.IndexFlatIP(dim)
        index.add(self.vectors)
        return index

    def _build_ivf(self) -> faiss.Index:
        dim, nlist = self.meta.dim, self.meta.nlist
        quantizer = faiss.IndexFlatIP(dim)
        base: faiss.Index
        if self.meta.kind == "ivf":
            base = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            base = faiss.IndexIVFPQ(
                quantizer, dim, nlist, pq_subquantizers(dim), 8, faiss.METRIC_INNER_PRODUCT
            )
        # 64 points per cell train the coarse quantizer as well as all of them (FAISS's own rule of thumb),
        # and PQ needs >= 256 per codebook; a seeded sample keeps builds reproducible.
        sample = min(len(self.vectors), max(64 * nlist, 256 * 39))
        rows = np.random.default_rng(0).choice(len(self.vectors), sample, replace=False)
        base.train(self.vectors[np.sort(rows)])
        if self.meta.kind == "ivf":
            return base
        # The exact re-rank reads the full vectors it keeps: PQ distances only choose the shortlist.
        return faiss.IndexRefineFlat(base)  # the Python wrappers keep quantizer and base referenced

    def _set_search_parameters(self, index: faiss.Index) -> None:
        """Search-time parameters are not all kept by write_index: set them from meta on build and load."""
        if isinstance(index, faiss.IndexHNSW):
            index.hnsw.efSearch = self.meta.ef_search
        elif isinstance(index, faiss.IndexRefine):
            index.k_factor = float(self.meta.refine_factor)
            faiss.extract_index_ivf(index.base_index).nprobe = self.meta.nprobe
        elif isinstance(index, faiss.IndexIVF):
            index.nprobe = self.meta.nprobe

    def __len__(self) -> int:
        return len(self.catalog)

    # The image part (retrieval/fused.py): None here, a (n, 1280) array of unit rows (zero for items without
    # an image) where the index fuses images.
    image_vectors: np.ndarray | None = None
    image_weight: float = 0.0

    @property
    def image_dim(self) -> int:
        return 0 if self.image_vectors is None else int(self.image_vectors.shape[1])

    def image_vector(self, item_id: str) -> np.ndarray | None:
        """The item's image embedding, or None (no image part, or this item has no usable image)."""
        if self.image_vectors is None:
            return None
        vec = self.image_vectors[self.catalog.position(item_id)]
        return vec if bool(np.any(vec)) else None

    def image_taste(self, item_ids: Sequence[str]) -> np.ndarray | None:
        """The unit mean image vector of these items (a user's liked ones), None when none has an image."""
        if self.image_vectors is None:
            return None
        rows = [self.catalog.position(i) for i in item_ids if i in self.catalog]
        vecs = self.image_vectors[rows] if rows else np.zeros((0, self.image_dim), np.float32)
        vecs = vecs[np.any(vecs != 0, axis=1)]
        if not len(vecs):
            return None
        mean = vecs.mean(axis=0)
        norm = float(np.linalg.norm(mean))
        return (mean / norm).astype(np.float32) if norm > 0 else None

    def query(
        self,
        text: np.ndarray | None,
        state: np.ndarray | None = None,
        text_scale: float = 1.0,
        collab: np.ndarray | None = None,
        image: np.ndarray | None = None,
        image_scale: float = 1.0,
    ) -> np.ndarray:
        """The query vector for a text-space profile/request vector (and behaviour and image parts, where the
        index has them: a sequence state, a collaborative query, an image; a text-only index ignores them)."""
        if text is None:
            raise ValueError("a text-only index needs a text query")
        return np.asarray(text, dtype=np.float32)

    def vector(self, item_id: str) -> np.ndarray:
        return self.vectors[self.catalog.position(item_id)]

    def vectors_for(self, item_ids: list[str]) -> np.ndarray:
        return self.vectors[[self.catalog.position(i) for i in item_ids]]

    def text_vector(self, item_id: str) -> np.ndarray:
        """The item's text embedding (profiles and evidence live in text space, whatever the index fuses)."""
        return self.vector(item_id)

    def text_vectors_for(self, item_ids: list[str]) -> np.ndarray:
        return self.vectors_for(item_ids)

    def filter_mask(self, item_filter: ItemFilter | None) -> np.ndarray | None:
        """Boolean mask of items the filter accepts (None when it accepts all)."""
        if item_filter is None or item_filter.is_empty():
            return None
        columns = self.catalog.columns()
        pos = columns.genre_pos
        mask = np.ones(len(self.catalog), dtype=bool)
        if item_filter.include_genres:
            cols = [pos[g.lower()] for g in item_filter.include_genres if g.lower() in pos]
            mask &= columns.genres[:, cols].any(axis=1) if cols else False
        cols = [pos[g.lower()] for g in item_filter.exclude_genres if g.lower() in pos]
        if cols:
            mask &= ~columns.genres[:, cols].any(axis=1)
        with np.errstate(invalid="ignore"):
            if item_filter.year_min is not None:
                mask &= columns.years >= item_filter.year_min
            if item_filter.year_max is not None:
                mask &= columns.years <= item_filter.year_max
        return mask

    def search(
        self,
        query: np.ndarray,
        k: int = 20,
        exclude: AbstractSet[str] | None = None,
        item_filter: ItemFilter | None = None,
    ) -> list[tuple[Item, float]]:
        """Top-k items by inner product with ``query``, skipping ``exclude`` and items the filter rejects."""
        return self.search_batch(query.reshape(1, -1), k, [exclude or set()], item_filter)[0]

    def search_batch(
        self,
        queries: np.ndarray,
        k: int,
        excludes: Sequence[AbstractSet[str]] | None = None,
        item_filter: ItemFilter | None = None,
    ) -> list[list[tuple[Item, float]]]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.meta.dim:
            raise ValueError(f"query must have dimension {self.meta.dim}, got shape {queries.shape}")
        k = max(1, min(k, len(self.catalog)))
        excludes = list(excludes) if excludes is not None else [frozenset() for _ in range(len(queries))]
        if self.search_backend is not None:
            excluded_rows = [
                np.array([self.catalog.position(i) for i in ex if i in self.catalog], dtype=np.int64)
                for ex in excludes
            ]
            found = self.search_backend.search_rows(queries, k, excluded_rows, item_filter)
            return [[(self.catalog.item_at(r), s) for r, s in hits] for hits in found]
        mask = self.filter_mask(item_filter)
        if mask is None and not any(excludes):
            scores, rows = self._index.search(queries, k)
            return [self._hits(s, r) for s, r in zip(scores, rows, strict=True)]
        results: list[list[tuple[Item, float]]] = []
        faiss_any: Any = faiss  # the SWIG stubs lack the SearchParameters and selector classes
        for query, exclude in zip(queries, excludes, strict=True):
            excluded = np.array(
                [self.catalog.position(i) for i in exclude if i in self.catalog], dtype=np.int64
            )
            # Selectors cost O(excluded) or O(n/8) per query, not O(n) hashing of every allowed id.
            if mask is None:
                # The Not selector holds a raw pointer: keep the inner one referenced until the search ends.
                keep_alive: Any = faiss_any.IDSelectorBatch(excluded)
                selector = faiss_any.IDSelectorNot(keep_alive)
            else:
                allowed = mask.copy()
                allowed[excluded] = False
                if not allowed.any():
                    results.append([])
                    continue
                keep_alive = np.packbits(allowed, bitorder="little")
                selector = faiss_any.IDSelectorBitmap(len(allowed), faiss.swig_ptr(keep_alive))
            params = self._filtered_parameters(selector, k)
            scores, rows = self._index.search(query.reshape(1, -1), k, params=params)
            del keep_alive
            results.append(self._hits(scores[0], rows[0]))
        return results

    def _filtered_parameters(self, selector: Any, k: int) -> Any:
        faiss_any: Any = faiss
        kind = self.meta.kind
        if kind == "hnsw":
            return faiss_any.SearchParametersHNSW(sel=selector, efSearch=max(self.meta.ef_search, k))
        if kind == "ivf":
            return faiss_any.SearchParametersIVF(sel=selector, nprobe=self.meta.nprobe)
        if kind == "ivfpq":
            # The selector filters the IVF-PQ shortlist; the re-rank only reorders what passed it.
            base = faiss_any.SearchParametersIVF(sel=selector, nprobe=self.meta.nprobe)
            return faiss_any.IndexRefineSearchParameters(
                k_factor=float(self.meta.refine_factor), base_index_params=base
            )
        return faiss_any.SearchParameters(sel=selector)

    def _hits(self, scores: np.ndarray, rows: np.ndarray) -> list[tuple[Item, float]]:
        item_at = self.catalog.item_at
        return [(item_at(int(r)), float(s)) for s, r in zip(scores, rows, strict=True) if r >= 0]

    def save(self, folder: str | Path) -> Path:
        """Write the index folder. Each file is written beside its final name and renamed over it, so a process
        that has the old files open (read or memory-mapped by :meth:`load`) keeps reading the old ones."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "meta.json").unlink(missing_ok=True)  # absent until the folder is complete again
        graph = folder / FAISS_FILE
        if self.meta.kind != "flat":
            # Written as built, so loading it is a read, not a rebuild (minutes at 1M items).
            _write_atomic(graph, lambda path: faiss.write_index(self._index, str(path)))
        else:
            graph.unlink(missing_ok=True)
        if _vectors_in_index(self._index) is not None:
            # The FAISS file holds the exact vectors (HNSW storage, IVF-PQ's re-rank): one copy on disk, not two.
            (folder / VECTORS_FILE).unlink(missing_ok=True)
        else:
            save_array(folder / VECTORS_FILE, self.vectors)
        _write_atomic(folder / ITEMS_FILE, lambda path: _save_rows(path, self.catalog))
        _write_atomic(folder / IDS_FILE, lambda path: path.write_text(json.dumps(self.catalog.ids), "utf-8"))
        _write_atomic(folder / COLUMNS_FILE, lambda path: self.catalog.columns().save(path))
        # meta.json last: its presence marks a complete folder.
        _write_atomic(
            folder / "meta.json", lambda path: path.write_text(self.meta.model_dump_json(indent=2), "utf-8")
        )
        return folder

    @classmethod
    def load(cls, folder: str | Path, expected_encoder: str | None = None) -> ItemIndex:
        """Read an index folder: a read, never a rebuild (except a flat index, which is its vectors).

        The vectors are memory-mapped (FAISS's flat storage, or vectors.npy) and paged in as searches touch them,
        and the catalogue's rows are validated as they are first used (:meth:`Catalog.from_rows`)."""
        folder = Path(folder)
        meta_path = folder / "meta.json"
        if not meta_path.exists():
            raise IndexFileError(
                f"{folder}: not an index folder (no meta.json); build one with 'recagent index build'"
            )
        try:
            meta = IndexMeta.model_validate(json.loads(meta_path.read_text(encoding="utf-8")))
        except (ValueError, json.JSONDecodeError) as exc:
            raise IndexFileError(f"{folder}: meta.json is corrupt ({exc.__class__.__name__})") from None
        if meta.format_version not in READABLE_FORMATS:
            raise IndexFileError(
                f"{folder}: index format {meta.format_version}, this version reads "
                f"{', '.join(map(str, READABLE_FORMATS))}; rebuild the index"
            )
        if expected_encoder is not None and meta.encoder != expected_encoder:
            raise IndexFileError(
                f"{folder}: built with encoder '{meta.encoder}', but this run uses '{expected_encoder}'; rebuild the index"
            )
        prebuilt = None
        if meta.kind != "flat" and (folder / FAISS_FILE).exists():
            try:
                prebuilt = faiss.read_index(str(folder / FAISS_FILE), faiss.IO_FLAG_MMAP_IFC)
            except RuntimeError as exc:
                raise IndexFileError(
                    f"{folder}: {FAISS_FILE} is corrupt ({exc}); rebuild the index"
                ) from None
        try:
            vectors = _vectors_in_index(prebuilt) if prebuilt is not None else None
            if vectors is None:  # memory-mapped too: IVF-Flat reads rows of it only to build profiles
                vectors = np.load(folder / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
            catalog = _load_catalog(folder, meta)
        except (OSError, ValueError) as exc:
            raise IndexFileError(f"{folder}: index files are missing or corrupt ({exc})") from None
        if vectors.shape != (meta.count, meta.dim) or len(catalog) != meta.count:
            raise IndexFileError(
                f"{folder}: index files disagree with meta.json (expected {meta.count}x{meta.dim})"
            )
        return cls(
            catalog,
            vectors,
            meta.encoder,
            meta.kind,
            meta.hnsw_m,
            meta.ef_search,
            prebuilt=prebuilt,
            nlist=meta.nlist,
            nprobe=meta.nprobe,
            refine_factor=meta.refine_factor,
        )

    @property
    def faiss_index(self) -> faiss.Index:
        """The FAISS index searched (read from the folder when it was saved with one)."""
        return self._index

    @classmethod
    def build(
        cls,
        catalog: Catalog,
        encoder: Any,
        kind: IndexKind = "flat",
        show_progress: bool = False,
    ) -> ItemIndex:
        """Encode every item's text with ``encoder`` (an :class:`Encoder`) and index the vectors."""
        vectors = encoder.encode([item.embedding_text() for item in catalog], show_progress=show_progress)
        return cls(catalog, vectors, encoder.model_name, kind)


VECTORS_FILE = "vectors.npy"
ITEMS_FILE = "items.jsonl"
IDS_FILE = "ids.json"
COLUMNS_FILE = "columns.npz"


def _vectors_in_index(index: faiss.Index | None) -> np.ndarray | None:
    """A read-only (n, d) view of the exact vectors a FAISS index stores (HNSW-Flat's storage, IVF-PQ's re-rank
    index), or None when it holds none in that form (flat is rebuilt from vectors.npy, IVF-Flat scatters them)."""
    if isinstance(index, faiss.IndexHNSW):
        flat: faiss.Index | None = faiss.downcast_index(index.storage)
    elif isinstance(index, faiss.IndexRefine):
        flat = faiss.downcast_index(index.refine_index)
    else:
        return None
    if not isinstance(flat, faiss.IndexFlat) or flat.ntotal == 0:
        return None
    view = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)
    view.flags.writeable = False  # a memory-mapped file's pages: never written through
    return view


def _write_atomic(path: Path, write: Any) -> None:
    """``write(tmp)`` then rename ``tmp`` over ``path``: readers see the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def save_array(path: Path, array: np.ndarray) -> None:
    """``np.save`` through :func:`_write_atomic` (every array file of an index folder is written so)."""

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:  # a file object: np.save would append ".npy" to the temporary name
            np.save(fh, np.asarray(array))

    _write_atomic(path, write)


def _save_rows(path: Path, catalog: Catalog) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in catalog.json_rows():
            fh.write(row + "\n")


def _load_catalog(folder: Path, meta: IndexMeta) -> Catalog:
    """The catalogue an index folder holds. Format 2 keeps the ids and filter columns beside the rows, so the rows
    are validated when used; format 1 has the rows only, validated here."""
    rows = (folder / ITEMS_FILE).read_bytes().splitlines()
    if (folder / IDS_FILE).exists() and (folder / COLUMNS_FILE).exists():
        ids = json.loads((folder / IDS_FILE).read_text(encoding="utf-8"))
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError(f"{IDS_FILE} is not a list of ids")
        columns = CatalogColumns.load(folder / COLUMNS_FILE, len(ids))
        return Catalog.from_rows(ids, rows, name=meta.catalog, columns=columns)
    return Catalog((Item.model_validate_json(row) for row in rows), name=meta.catalog)
