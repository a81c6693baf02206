"""PostgresProfileStore: the :class:`ProfileStore` interface on PostgreSQL, for many API workers on many machines.

Every worker connects to the same database through a small psycopg 3 connection pool; a user's profile versions are
numbered under a per-user advisory lock, so two workers saving the same user never collide. Events and texts are
appended with a database-wide sequence; :meth:`user_state` (the last event/text sequence and profile version of
a user) is what a worker compares with what it cached to notice that another worker changed the user.

Erasure deletes every row about the user in one transaction (gone for every reader at commit) and then runs
``VACUUM`` on the four tables, which removes the dead row versions from the table and index pages. What that
does not reach (the write-ahead log, replicas, base backups, freed space not yet overwritten) is the operator's:
docs/profiles.md says exactly what is and is not guaranteed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from psycopg import Connection
from psycopg_pool import ConnectionPool

from recagent.retrieval import Interaction

from ..privacy import Redactor, add_gaussian_noise
from .profile import UserProfile
from .store import STORE_FORMAT_VERSION, VECTOR_FIELDS, ErasureReport, ProfileStore, ProfileVersion

TABLES = ("recagent_profiles", "recagent_vectors", "recagent_events", "recagent_texts")

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS recagent_store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS recagent_profiles (user_id TEXT NOT NULL, version INTEGER NOT NULL, "
    "created_at DOUBLE PRECISION NOT NULL, schema_version INTEGER NOT NULL, profile TEXT NOT NULL, "
    "PRIMARY KEY (user_id, version))",
    "CREATE TABLE IF NOT EXISTS recagent_vectors (user_id TEXT NOT NULL, kind TEXT NOT NULL, vec BYTEA NOT NULL, "
    "noised BOOLEAN NOT NULL DEFAULT false, PRIMARY KEY (user_id, kind))",
    "CREATE TABLE IF NOT EXISTS recagent_events (seq BIGSERIAL PRIMARY KEY, user_id TEXT NOT NULL, "
    "event TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS recagent_events_user ON recagent_events (user_id, seq)",
    "CREATE TABLE IF NOT EXISTS recagent_texts (seq BIGSERIAL PRIMARY KEY, user_id TEXT NOT NULL, "
    "source TEXT NOT NULL, source_id TEXT, text TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS recagent_texts_user ON recagent_texts (user_id, seq)",
]


class PostgresProfileStore(ProfileStore):
    """The profile store in PostgreSQL (``RECAGENT_STORE_URL=postgresql://...``); same methods as the SQLite one."""

    shared = True  # other processes write here too: callers re-check user_state before trusting a cache

    def __init__(
        self,
        url: str,
        keep_versions: int = 50,
        noise_epsilon: float | None = None,
        noise_delta: float = 1e-5,
        seed: int | None = None,
        redactor: Redactor | None = None,
        pool_size: int = 8,
        vacuum_full: bool = False,
    ) -> None:
        from ..privacy import DEFAULT_REDACTOR

        self.url = url
        # VACUUM FULL rewrites the tables and their indexes into new files (an exclusive lock while it runs), so
        # no data file keeps the erased bytes; plain VACUUM removes the rows but leaves their bytes in free page
        # space until it is reused.
        self.vacuum_full = vacuum_full
        self.redactor = redactor or DEFAULT_REDACTOR
        self.keep_versions = keep_versions
        self.noise_epsilon = noise_epsilon
        self.noise_delta = noise_delta
        self._rng = np.random.default_rng(seed)
        self._rng_lock = threading.Lock()
        self.pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=True, kwargs={"autocommit": True})
        with self._pg_transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('recagent_store_schema'))")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO recagent_store_meta VALUES ('format_version', %s) ON CONFLICT DO NOTHING",
                (str(STORE_FORMAT_VERSION),),
            )

    @contextmanager
    def _pg_transaction(self) -> Iterator[Connection[Any]]:
        with self.pool.connection() as conn, conn.transaction():
            yield conn

    # profiles ---------------------------------------------------------------------------------------------

    def save(self, profile: UserProfile) -> int:
        body = profile.model_dump(mode="json", exclude=set(VECTOR_FIELDS))
        vectors: list[tuple[str, bytes | None]] = []
        for kind in VECTOR_FIELDS:
            vec = getattr(profile, kind)
            if vec is not None and self.noise_epsilon is not None:
                with self._rng_lock:
                    vec = add_gaussian_noise(vec, self.noise_epsilon, self.noise_delta, self._rng)
            vectors.append((kind, None if vec is None else np.asarray(vec, dtype=np.float32).tobytes()))
        with self._pg_transaction() as conn:
            # Versions are numbered per user: one writer per user at a time, across every worker.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"profile:{profile.user_id}",))
            row = conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM recagent_profiles WHERE user_id = %s", (profile.user_id,)
            ).fetchone()
            version = int(row[0] if row else 0) + 1
            conn.execute(
                "INSERT INTO recagent_profiles VALUES (%s, %s, %s, %s, %s)",
                (profile.user_id, version, time.time(), profile.schema_version, json.dumps(body)),
            )
            for kind, blob in vectors:
                if blob is None:
                    conn.execute(
                        "DELETE FROM recagent_vectors WHERE user_id = %s AND kind = %s", (profile.user_id, kind)
                    )
                else:
                    conn.execute(
                        "INSERT INTO recagent_vectors VALUES (%s, %s, %s, %s) ON CONFLICT (user_id, kind) "
                        "DO UPDATE SET vec = EXCLUDED.vec, noised = EXCLUDED.noised",
                        (profile.user_id, kind, blob, self.noise_epsilon is not None),
                    )
            if self.keep_versions:
                conn.execute(
                    "DELETE FROM recagent_profiles WHERE user_id = %s AND version <= %s",
                    (profile.user_id, version - self.keep_versions),
                )
        return version

    def load(self, user_id: str, version: int | None = None) -> UserProfile | None:
        with self.pool.connection() as conn:
            if version is None:
                row = conn.execute(
                    "SELECT profile FROM recagent_profiles WHERE user_id = %s ORDER BY version DESC LIMIT 1",
                    (user_id,),
                ).fetchone()
            else:
                row = conn.execute(
                    "SELECT profile FROM recagent_profiles WHERE user_id = %s AND version = %s",
                    (user_id, version),
                ).fetchone()
            if row is None:
                return None
            data = json.loads(row[0])
            for kind, blob in conn.execute(
                "SELECT kind, vec FROM recagent_vectors WHERE user_id = %s", (user_id,)
            ).fetchall():
                if kind in VECTOR_FIELDS:
                    data[kind] = np.frombuffer(bytes(blob), dtype=np.float32).tolist()
        return UserProfile.model_validate(data)

    def users(self) -> list[str]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT user_id FROM (SELECT user_id, 0 AS src, MIN(created_at) AS t FROM recagent_profiles "
                "GROUP BY user_id UNION ALL SELECT user_id, 1, MIN(seq) FROM recagent_events GROUP BY user_id "
                "UNION ALL SELECT user_id, 2, MIN(seq) FROM recagent_texts GROUP BY user_id) u ORDER BY src, t"
            ).fetchall()
        return list(dict.fromkeys(r[0] for r in rows))

    def history(self, user_id: str) -> list[ProfileVersion]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT version, created_at, schema_version, profile FROM recagent_profiles WHERE user_id = %s "
                "ORDER BY version",
                (user_id,),
            ).fetchall()
        return [
            ProfileVersion(version=v, created_at=t, schema_version=s, summary=json.loads(p).get("summary", ""))
            for v, t, s, p in rows
        ]

    def user_state(self, user_id: str) -> tuple[int, int, int]:
        """(last event seq, last text seq, last profile version) of the user: changes whenever anyone writes."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT (SELECT COALESCE(MAX(seq), 0) FROM recagent_events WHERE user_id = %s), "
                "(SELECT COALESCE(MAX(seq), 0) FROM recagent_texts WHERE user_id = %s), "
                "(SELECT COALESCE(MAX(version), 0) FROM recagent_profiles WHERE user_id = %s)",
                (user_id, user_id, user_id),
            ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])

    def export(self, user_id: str) -> dict[str, Any]:
        profile = self.load(user_id)
        with self.pool.connection() as conn:
            events = conn.execute(
                "SELECT event FROM recagent_events WHERE user_id = %s ORDER BY seq", (user_id,)
            ).fetchall()
            texts = conn.execute(
                "SELECT source, source_id, text, created_at FROM recagent_texts WHERE user_id = %s ORDER BY seq",
                (user_id,),
            ).fetchall()
        return {
            "user_id": user_id,
            "store_format_version": STORE_FORMAT_VERSION,
            "profile": None if profile is None else profile.model_dump(mode="json"),
            "versions": [v.model_dump() for v in self.history(user_id)],
            "events": [json.loads(e) for (e,) in events],
            "texts": [{"source": s, "source_id": i, "text": t, "created_at": c} for s, i, t, c in texts],
        }

    # events and texts --------------------------------------------------------------------------------------

    def add_events(self, events: list[Interaction]) -> None:
        rows = []
        for event in events:
            if event.review:
                event = event.model_copy(update={"review": self.redactor(event.review)})
            rows.append((event.user_id, event.model_dump_json()))
        if not rows:
            return
        # Committed before this returns: an acknowledged event survives the worker being killed.
        with self._pg_transaction() as conn, conn.cursor() as cur:
            cur.executemany("INSERT INTO recagent_events (user_id, event) VALUES (%s, %s)", rows)

    def events(self, user_id: str) -> list[Interaction]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT event FROM recagent_events WHERE user_id = %s ORDER BY seq", (user_id,)
            ).fetchall()
        return [Interaction.model_validate_json(e) for (e,) in rows]

    def add_text(self, user_id: str, source: str, text: str, source_id: str | None = None) -> str:
        clean_text = self.redactor(text)
        with self._pg_transaction() as conn:
            conn.execute(
                "INSERT INTO recagent_texts (user_id, source, source_id, text, created_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (user_id, source, source_id, clean_text, time.time()),
            )
        return clean_text

    def texts(self, user_id: str) -> list[str]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT text FROM recagent_texts WHERE user_id = %s ORDER BY seq", (user_id,)
            ).fetchall()
        return [t for (t,) in rows]

    # erasure -----------------------------------------------------------------------------------------------

    def erase(self, user_id: str) -> ErasureReport:
        """Delete every row about the user (one transaction), then VACUUM the tables so the dead row versions
        are removed from the table and index pages too (what VACUUM does not reach: docs/profiles.md)."""
        counts: dict[str, int] = {}
        with self._pg_transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"profile:{user_id}",))
            for table in TABLES:
                cur = conn.execute(f"DELETE FROM {table} WHERE user_id = %s", (user_id,))
                counts[table.removeprefix("recagent_")] = cur.rowcount
        with self.pool.connection() as conn:  # autocommit: VACUUM cannot run inside a transaction
            for table in TABLES:
                conn.execute(f"VACUUM (FULL) {table}" if self.vacuum_full else f"VACUUM (INDEX_CLEANUP ON) {table}")
        return ErasureReport(user_id=user_id, **counts)

    def integrity_check(self) -> str:
        """'ok' when every table answers and no user has two profiles of one version (PostgreSQL checks its own
        pages; this checks what the store relies on)."""
        with self.pool.connection() as conn:
            for table in TABLES:
                conn.execute(f"SELECT count(*) FROM {table}")
            row = conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM recagent_profiles GROUP BY user_id, version "
                "HAVING count(*) > 1) d"
            ).fetchone()
        return "ok" if row is not None and row[0] == 0 else f"{row[0] if row else '?'} duplicated versions"

    def close(self) -> None:
        self.pool.close()
