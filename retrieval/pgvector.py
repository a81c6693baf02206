"""The item index in PostgreSQL with pgvector: one table of item vectors under an HNSW index (inner product),
searched with the same semantics as the FAISS :class:`ItemIndex` so that many API workers share one index.

Filters and exclusions are SQL ``WHERE`` clauses evaluated inside the index scan. A plain HNSW scan stops after
``hnsw.ef_search`` candidates, so a selective filter used to return fewer than k rows; here every search runs
with ``hnsw.iterative_scan = strict_order`` (the scan continues, in distance order, until k rows pass the filter
or ``hnsw.max_scan_tuples`` were visited), and when that still yields fewer than k it falls back to one exact
scan of the rows the filter admits, so exactly ``min(k, admitted)`` items come back, as from FAISS.

The table persists: :meth:`PgVectorIndex.open` reads the catalogue and vectors back from it (no rebuild), and
:meth:`PgVectorIndex.add_items` upserts new items into the live index.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
from pgvector import HalfVector
from psycopg import Connection, sql
from psycopg_pool import ConnectionPool

from .errors import IndexFileError
from .index import IndexMeta, ItemIndex
from .items import Catalog, Item, ItemFilter

META_TABLE = "recagent_item_indexes"
DEFAULT_TABLE = "recagent_items"
# pgvector's own graph defaults (m 16, ef_construction 64) with ef_search 200: on 100k realish MiniLM vectors
# (benchmarks/bench_pgvector.py) recall@10 0.97 at 2.8 ms p50, as FAISS's HNSW32/efSearch 256 (0.964); ef_search
# 100 gave 0.88-0.91, and m 32 took about twice as long to build (56 s vs 30 s) for 0.988 at ef_search 200 (4.7 ms).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
EF_SEARCH = 200
MAX_SCAN_TUPLES = 20_000  # pgvector's default bound on one iterative scan

Plan = Literal["auto", "index"]
# float32: pgvector's `vector` (4 bytes per dimension); float16: `halfvec` (2 bytes: half the table and the graph,
# for catalogues of millions; inner products in half precision).
Precision = Literal["float32", "float16"]


def table_name(text: str) -> str:
    """A safe table name derived from ``text`` (an index folder's name, say): lower-case, at most 60 chars."""
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or DEFAULT_TABLE
    if len(name) > 50:
        name = name[:40] + "_" + hashlib.sha1(name.encode()).hexdigest()[:9]
    return name if name[0].isalpha() else "t_" + name


def fingerprint(catalog: Catalog, vectors: np.ndarray) -> str:
    """What the table holds: the item ids and their vectors (a changed vector or item gives a new one)."""
    digest = hashlib.sha256()
    digest.update("\n".join(catalog.ids).encode())
    digest.update(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    return digest.hexdigest()


def _configure(conn: Connection[Any]) -> None:
    from pgvector.psycopg import register_vector

    register_vector(conn)


class PgVectorBackend:
    """Searches and writes one item table; thread-safe (a connection pool, one connection per call)."""

    def __init__(
        self,
        url: str,
        table: str = DEFAULT_TABLE,
        ef_search: int = EF_SEARCH,
        max_scan_tuples: int = MAX_SCAN_TUPLES,
        iterative_scan: bool = True,
        plan: Plan = "auto",
        pool_size: int = 8,
        hnsw_m: int = HNSW_M,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        precision: Precision = "float32",
    ) -> None:
        if table != table_name(table):
            raise ValueError(f"table name {table!r} is not a plain lower-case identifier")
        self.url = url
        self.table = table
        self.ef_search = ef_search
        self.hnsw_m = hnsw_m  # graph parameters: used when the table's index is (re)built
        self.ef_construction = ef_construction
        self.precision = precision
        self._type = "halfvec" if precision == "float16" else "vector"
        self.max_scan_tuples = max_scan_tuples
        # Off only to show what a plain HNSW scan does with a filter (the tests); leave it on.
        self.iterative_scan = iterative_scan
        # "index": never let the planner replace the HNSW scan by a sequential one (tests, benchmarks);
        # "auto": the planner chooses (a small or heavily filtered table is often faster scanned exactly).
        self.plan = plan
        self.exact_fallbacks = 0  # searches the iterative scan left short, answered by an exact scan
        with Connection.connect(url, autocommit=True) as conn, conn.transaction():
            # Workers starting together: CREATE ... IF NOT EXISTS is not safe against a concurrent one.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('recagent_pgvector_schema'))")
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
                    "meta JSONB NOT NULL, count INTEGER NOT NULL)"
                ).format(sql.Identifier(META_TABLE))
            )
        self.pool = ConnectionPool(
            url, min_size=1, max_size=pool_size, configure=_configure, open=True, kwargs={"autocommit": True}
        )

    # writing ---------------------------------------------------------------------------------------------

    def _create(self, conn: Connection[Any], dim: int) -> None:
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (pos INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
                "item JSONB NOT NULL, genres TEXT[] NOT NULL, year INTEGER, embedding {}({}) NOT NULL)"
            ).format(sql.Identifier(self.table), sql.SQL(self._type), sql.Literal(dim))
        )

    def _create_hnsw(self, conn: Connection[Any]) -> None:
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")  # the graph is built in memory
        conn.execute(
            sql.SQL(
                "CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (embedding {}) "
                "WITH (m = {}, ef_construction = {})"
            ).format(
                sql.Identifier(f"{self.table}_hnsw"),
                sql.Identifier(self.table),
                sql.SQL(f"{self._type}_ip_ops"),
                sql.Literal(self.hnsw_m),
                sql.Literal(self.ef_construction),
            )
        )

    def fingerprint(self, catalog: Catalog, vectors: np.ndarray) -> str:
        """What this backend would hold for ``catalog``/``vectors`` (the precision is part of it)."""
        return f"{fingerprint(catalog, vectors)}:{self.precision}"

    def stored_precision(self) -> Precision:
        """float16 when the table's embedding column is a halfvec, else float32."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                "AND attname = 'embedding'",
                (self.table,),
            ).fetchone()
        return "float16" if row is not None and str(row[0]).startswith("halfvec") else "float32"

    def stored_fingerprint(self) -> str | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                sql.SQL("SELECT fingerprint FROM {} WHERE name = %s").format(sql.Identifier(META_TABLE)),
                (self.table,),
            ).fetchone()
        return None if row is None else str(row[0])

    def write(self, meta: IndexMeta, catalog: Catalog, vectors: np.ndarray, replace: bool = True) -> None:
        """Write the whole catalogue (``replace``: drop what the table held first; the HNSW graph is then built
        once over all rows, which is much faster than inserting into it row by row)."""
        with self.pool.connection() as conn, conn.transaction():
            # Workers starting together: one writes, the others wait here and then find it written.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.table,))
            if replace:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(self.table)))
            self._create(conn, int(vectors.shape[1]))
            self._upsert(conn, list(enumerate(catalog)), vectors)
            self._create_hnsw(conn)
            self._set_meta(conn, meta, self.fingerprint(catalog, vectors), len(catalog))

    def _upsert(self, conn: Connection[Any], rows: list[tuple[int, Item]], vectors: np.ndarray) -> None:
        staging = sql.Identifier(f"{self.table}_staging")
        conn.execute(
            sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DROP").format(
                staging, sql.Identifier(self.table)
            )
        )
        with conn.cursor() as cur:
            with cur.copy(
                sql.SQL(
                    "COPY {} (pos, id, item, genres, year, embedding) FROM STDIN WITH (FORMAT BINARY)"
                ).format(staging)
            ) as copy:
                # Binary: a 384-d vector is 1.5 kB on the wire instead of ~4 kB of decimal text.
                copy.set_types(["int4", "text", "jsonb", "text[]", "int4", self._type])
                half = self.precision == "float16"
                for (pos, item), vec in zip(rows, vectors, strict=True):
                    copy.write_row(
                        (
                            pos,
                            item.id,
                            item.model_dump(mode="json"),
                            [g.lower() for g in item.genres],
                            item.year,
                            HalfVector(np.asarray(vec, dtype=np.float32))
                            if half
                            else np.asarray(vec, np.float32),
                        )
                    )
            cur.execute(
                sql.SQL(
                    "INSERT INTO {t} SELECT * FROM {s} ON CONFLICT (pos) DO UPDATE SET id = EXCLUDED.id, "
                    "item = EXCLUDED.item, genres = EXCLUDED.genres, year = EXCLUDED.year, "
                    "embedding = EXCLUDED.embedding"
                ).format(t=sql.Identifier(self.table), s=staging)
            )
            cur.execute(sql.SQL("TRUNCATE {}").format(staging))

    def _set_meta(self, conn: Connection[Any], meta: IndexMeta, print_: str, count: int) -> None:
        conn.execute(
            sql.SQL(
                "INSERT INTO {} VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
                "fingerprint = EXCLUDED.fingerprint, meta = EXCLUDED.meta, count = EXCLUDED.count"
            ).format(sql.Identifier(META_TABLE)),
            (self.table, print_, meta.model_dump_json(), count),
        )

    def upsert(
        self,
        meta: IndexMeta,
        start: int,
        items: Sequence[Item],
        vectors: np.ndarray,
        catalog: Catalog,
        all_vectors: np.ndarray,
    ) -> None:
        """Add (or replace) items at positions ``start..`` in the live table; the HNSW graph takes them in
        (``catalog``/``all_vectors``: the whole index afterwards, for the stored fingerprint)."""
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.table,))
            self._upsert(conn, list(enumerate(items, start)), vectors)
            self._set_meta(conn, meta, self.fingerprint(catalog, all_vectors), len(catalog))

    def read(self) -> tuple[IndexMeta, Catalog, np.ndarray]:
        """The meta, catalogue and vectors the table holds (what :meth:`PgVectorIndex.open` starts from)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                sql.SQL("SELECT meta FROM {} WHERE name = %s").format(sql.Identifier(META_TABLE)),
                (self.table,),
            ).fetchone()
            if row is None:
                raise IndexFileError(f"{self.table}: no item index of that name in the database")
            meta = IndexMeta.model_validate(row[0])
            items: list[Item] = []
            vectors: list[np.ndarray] = []
            with conn.cursor() as cur:
                for item, vec in cur.execute(
                    sql.SQL("SELECT item, embedding FROM {} ORDER BY pos").format(sql.Identifier(self.table))
                ):
                    items.append(Item.model_validate(item))
                    vectors.append(np.asarray(vec.to_numpy(), dtype=np.float32))
        matrix = np.array(vectors, dtype=np.float32).reshape(len(items), meta.dim)
        return meta, Catalog(items, name=meta.catalog), matrix

    # searching -------------------------------------------------------------------------------------------

    def _where(self, exclude: np.ndarray, item_filter: ItemFilter | None) -> tuple[sql.Composable, list[Any]]:
        clauses: list[sql.Composable] = []
        args: list[Any] = []
        if len(exclude):
            clauses.append(sql.SQL("NOT (pos = ANY(%s))"))
            args.append([int(r) for r in exclude])
        if item_filter is not None and not item_filter.is_empty():
            if item_filter.include_genres:
                clauses.append(sql.SQL("genres && %s::text[]"))
                args.append([g.lower() for g in item_filter.include_genres])
            if item_filter.exclude_genres:
                clauses.append(sql.SQL("NOT (genres && %s::text[])"))
                args.append([g.lower() for g in item_filter.exclude_genres])
            if item_filter.year_min is not None:
                clauses.append(sql.SQL("year >= %s"))
                args.append(item_filter.year_min)
            if item_filter.year_max is not None:
                clauses.append(sql.SQL("year <= %s"))
                args.append(item_filter.year_max)
        if not clauses:
            return sql.SQL(""), args
        return sql.SQL("WHERE ") + sql.SQL(" AND ").join(clauses), args

    def _settings(self, conn: Connection[Any], k: int, exact: bool) -> None:
        conn.execute(
            "SELECT set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', %s, true), "
            "set_config('hnsw.max_scan_tuples', %s, true), set_config('enable_seqscan', %s, true), "
            "set_config('enable_indexscan', %s, true)",
            (
                str(min(1000, max(self.ef_search, k) if not exact else self.ef_search)),  # pgvector's maximum
                "strict_order" if self.iterative_scan else "off",
                str(self.max_scan_tuples),
                "on" if exact or self.plan == "auto" else "off",
                "off" if exact else "on",
            ),
        )

    def search_rows(
        self,
        queries: np.ndarray,
        k: int,
        excluded: Sequence[np.ndarray],
        item_filter: ItemFilter | None,
    ) -> list[list[tuple[int, float]]]:
        results: list[list[tuple[int, float]]] = []
        with self.pool.connection() as conn, conn.transaction():
            self._settings(conn, k, exact=False)
            for query, exclude in zip(queries, excluded, strict=True):
                hits = self._search_one(conn, query, k, exclude, item_filter)
                if len(hits) < k and self.iterative_scan:
                    # The iterative scan met its max_scan_tuples bound before k rows passed the filter: one
                    # exact scan of the admitted rows (a filter this selective admits few, so it is cheap).
                    self.exact_fallbacks += 1
                    self._settings(conn, k, exact=True)
                    hits = self._search_one(conn, query, k, exclude, item_filter)
                    self._settings(conn, k, exact=False)
                results.append(hits)
        return results

    def _search_one(
        self,
        conn: Connection[Any],
        query: np.ndarray,
        k: int,
        exclude: np.ndarray,
        item_filter: ItemFilter | None,
    ) -> list[tuple[int, float]]:
        where, args = self._where(exclude, item_filter)
        vec = np.asarray(query, dtype=np.float32)
        statement = sql.SQL(
            "SELECT pos, (embedding <#> %s::{t}) AS d FROM {} {} ORDER BY embedding <#> %s::{t} LIMIT %s"
        ).format(sql.Identifier(self.table), where, t=sql.SQL(self._type))
        rows = conn.execute(statement, [vec, *args, vec, k]).fetchall()
        return [(int(pos), -float(d)) for pos, d in rows]

    def explain(self, query: np.ndarray, k: int, item_filter: ItemFilter | None = None) -> str:
        """The plan PostgreSQL runs for one search (to check that the HNSW index is used)."""
        where, args = self._where(np.zeros(0, np.int64), item_filter)
        vec = np.asarray(query, dtype=np.float32)
        with self.pool.connection() as conn, conn.transaction():
            self._settings(conn, k, exact=False)
            statement = sql.SQL(
                "EXPLAIN SELECT pos FROM {} {} ORDER BY embedding <#> %s::{t} LIMIT %s"
            ).format(sql.Identifier(self.table), where, t=sql.SQL(self._type))
            return "\n".join(r[0] for r in conn.execute(statement, [*args, vec, k]).fetchall())

    def close(self) -> None:
        self.pool.close()


def attach_pgvector(index: ItemIndex, url: str, table: str | None = None, **options: Any) -> PgVectorBackend:
    """Make ``index`` (any :class:`ItemIndex`, the fused one included) search in PostgreSQL: its items and vectors
    are written to ``table`` unless the table already holds exactly them (another worker wrote it)."""
    backend = PgVectorBackend(
        url, table or table_name(f"items_{index.meta.catalog}_{index.meta.dim}"), **options
    )
    if backend.stored_fingerprint() != backend.fingerprint(index.catalog, index.vectors):
        backend.write(index.meta, index.catalog, index.vectors)
    index.search_backend = backend
    return backend


class PgVectorIndex(ItemIndex):
    """An :class:`ItemIndex` whose vectors live in a PostgreSQL table under an HNSW index (no FAISS index is
    built in this process). ``save`` also writes the usual folder; ``open`` connects to a table written before."""

    backend: PgVectorBackend

    def __init__(
        self,
        catalog: Catalog,
        vectors: np.ndarray,
        encoder: str,
        url: str,
        table: str = DEFAULT_TABLE,
        write: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(catalog, vectors, encoder, kind="flat")
        self.backend = PgVectorBackend(url, table, **options)
        if write and self.backend.stored_fingerprint() != self.backend.fingerprint(catalog, self.vectors):
            self.backend.write(self.meta, catalog, self.vectors)
        self.search_backend = self.backend

    def _build(self) -> faiss.Index:
        return faiss.IndexFlatIP(self.meta.dim)  # empty: searches go to PostgreSQL

    @classmethod
    def open(cls, url: str, table: str = DEFAULT_TABLE, **options: Any) -> PgVectorIndex:
        """Connect to a table written before: the catalogue and vectors are read back, nothing is rebuilt (the
        precision is the table's own)."""
        reader = PgVectorBackend(url, table)
        try:
            meta, catalog, vectors = reader.read()
            options.setdefault("precision", reader.stored_precision())
        finally:
            reader.close()
        return cls(catalog, vectors, meta.encoder, url, table, write=False, **options)

    def add_items(self, items: Iterable[Item], vectors: np.ndarray) -> None:
        """Append new items (ids not in the catalogue) and upsert them into the live table and its HNSW graph."""
        items = list(items)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(items), self.meta.dim)
        clash = [item.id for item in items if item.id in self.catalog]
        if clash:
            raise ValueError(f"items already in the catalogue: {clash[:5]}")
        start = len(self.catalog)
        catalog = Catalog([*self.catalog, *items], name=self.catalog.name)
        meta = self.meta.model_copy(update={"count": len(catalog)})
        all_vectors = np.vstack([self.vectors, vectors])
        self.backend.upsert(meta, start, items, vectors, catalog, all_vectors)
        # Rebuild the in-process views (filters, ids) over the longer catalogue; the table is already current.
        ItemIndex.__init__(self, catalog, all_vectors, self.meta.encoder, kind="flat")
        self.search_backend = self.backend

    def save(self, folder: str | Path) -> Path:
        """The table persists by itself; this also writes the portable folder (``ItemIndex.load`` reads it)."""
        out = super().save(folder)
        (out / "pgvector.json").write_text(json.dumps({"table": self.backend.table}), encoding="utf-8")
        return out

    def close(self) -> None:
        self.backend.close()
