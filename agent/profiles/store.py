"""ProfileStore: profiles, their version history, events, redacted texts and vectors in one SQLite file.

WAL mode lets readers run while one writer writes; writes are serialised by a process-wide lock and
SQLite's own file lock (``busy_timeout``), and each thread gets its own connection. ``secure_delete`` makes
SQLite overwrite deleted content with zeros, and erase checkpoints and truncates the WAL, so an erased user
leaves no bytes behind in the database or its journal.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from recagent.retrieval import Interaction

from ..privacy import DEFAULT_REDACTOR, Redactor, add_gaussian_noise
from .profile import UserProfile

STORE_FORMAT_VERSION = 1
VECTOR_FIELDS = ("vector", "negative_vector", "short_term_vector")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS profiles (
    user_id TEXT NOT NULL, version INTEGER NOT NULL, created_at REAL NOT NULL,
    schema_version INTEGER NOT NULL, profile TEXT NOT NULL, PRIMARY KEY (user_id, version));
CREATE TABLE IF NOT EXISTS vectors (
    user_id TEXT NOT NULL, kind TEXT NOT NULL, vec BLOB NOT NULL, noised INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, kind));
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, event TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_user ON events (user_id);
CREATE TABLE IF NOT EXISTS texts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, source TEXT NOT NULL,
    source_id TEXT, text TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS texts_user ON texts (user_id);
"""


class ProfileVersion(BaseModel):
    version: int
    created_at: float
    schema_version: int
    summary: str


class ErasureReport(BaseModel):
    user_id: str
    profiles: int
    vectors: int
    events: int
    texts: int

    @property
    def total(self) -> int:
        return self.profiles + self.vectors + self.events + self.texts


class ProfileStore:
    """An embedded SQLite store (the default); safe for many reader threads and one writer at a time."""

    # False: this process is the only writer a cache must expect (PostgresProfileStore: many workers write).
    shared = False

    def __init__(
        self,
        path: str | Path,
        keep_versions: int = 50,
        noise_epsilon: float | None = None,
        noise_delta: float = 1e-5,
        seed: int | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.path = Path(path)
        # Texts arriving here were redacted by the Recommender already; redacting again with the same
        # redactor (same protected titles) catches direct callers and changes nothing else.
        self.redactor = redactor or DEFAULT_REDACTOR
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.keep_versions = keep_versions
        self.noise_epsilon = noise_epsilon
        self.noise_delta = noise_delta
        self._rng = np.random.default_rng(seed)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        conn = self._conn()
        with self._write_lock, conn:
            conn.executescript(_SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO meta VALUES ('format_version', ?)", (str(STORE_FORMAT_VERSION),)
            )

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            self._connections.append(conn)
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One writer at a time: a thread lock in this process, BEGIN IMMEDIATE's file lock across processes."""
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _write(self, sql_and_args: list[tuple[str, tuple[Any, ...]]]) -> None:
        with self._transaction() as conn:
            for sql, args in sql_and_args:
                conn.execute(sql, args)

    # profiles ---------------------------------------------------------------------------------------------

    def save(self, profile: UserProfile) -> int:
        """Store a new version of the profile (vectors go to their own table, noised if configured)."""
        body = profile.model_dump(mode="json", exclude=set(VECTOR_FIELDS))
        vectors: list[tuple[str, bytes | None, int]] = []
        for kind in VECTOR_FIELDS:
            vec = getattr(profile, kind)
            if vec is None:
                vectors.append((kind, None, 0))
                continue
            if self.noise_epsilon is not None:
                vec = add_gaussian_noise(vec, self.noise_epsilon, self.noise_delta, self._rng)
            vectors.append(
                (kind, np.asarray(vec, dtype=np.float32).tobytes(), int(self.noise_epsilon is not None))
            )
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM profiles WHERE user_id = ?", (profile.user_id,)
            ).fetchone()
            version = int(row[0]) + 1
            conn.execute(
                "INSERT INTO profiles VALUES (?, ?, ?, ?, ?)",
                (profile.user_id, version, time.time(), profile.schema_version, json.dumps(body)),
            )
            for kind, blob, noised in vectors:
                if blob is None:
                    conn.execute(
                        "DELETE FROM vectors WHERE user_id = ? AND kind = ?", (profile.user_id, kind)
                    )
                else:
                    conn.execute(
                        "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)",
                        (profile.user_id, kind, blob, noised),
                    )
            if self.keep_versions:
                conn.execute(
                    "DELETE FROM profiles WHERE user_id = ? AND version <= ?",
                    (profile.user_id, version - self.keep_versions),
                )
        return version

    def load(self, user_id: str, version: int | None = None) -> UserProfile | None:
        conn = self._conn()
        if version is None:
            row = conn.execute(
                "SELECT profile FROM profiles WHERE user_id = ? ORDER BY version DESC LIMIT 1", (user_id,)
            ).fetchone()
        else:
            row = conn.execute(
                "SELECT profile FROM profiles WHERE user_id = ? AND version = ?", (user_id, version)
            ).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        for kind, blob in conn.execute("SELECT kind, vec FROM vectors WHERE user_id = ?", (user_id,)):
            if kind in VECTOR_FIELDS:
                data[kind] = np.frombuffer(blob, dtype=np.float32).tolist()
        return UserProfile.model_validate(data)

    def users(self) -> list[str]:
        """Every user with anything stored, in order of first appearance."""
        rows = (
            self._conn()
            .execute(
                "SELECT user_id FROM (SELECT user_id, MIN(created_at) AS t FROM profiles GROUP BY user_id "
                "UNION ALL SELECT user_id, MIN(seq) FROM events GROUP BY user_id "
                "UNION ALL SELECT user_id, MIN(seq) FROM texts GROUP BY user_id)"
            )
            .fetchall()
        )
        return list(dict.fromkeys(r[0] for r in rows))

    def history(self, user_id: str) -> list[ProfileVersion]:
        rows = (
            self._conn()
            .execute(
                "SELECT version, created_at, schema_version, profile FROM profiles WHERE user_id = ? ORDER BY version",
                (user_id,),
            )
            .fetchall()
        )
        return [
            ProfileVersion(
                version=v, created_at=t, schema_version=s, summary=json.loads(p).get("summary", "")
            )
            for v, t, s, p in rows
        ]

    def user_state(self, user_id: str) -> tuple[int, int, int]:
        """(last event seq, last text seq, last profile version) of the user: changes whenever anyone writes."""
        row = (
            self._conn()
            .execute(
                "SELECT (SELECT COALESCE(MAX(seq), 0) FROM events WHERE user_id = ?), "
                "(SELECT COALESCE(MAX(seq), 0) FROM texts WHERE user_id = ?), "
                "(SELECT COALESCE(MAX(version), 0) FROM profiles WHERE user_id = ?)",
                (user_id, user_id, user_id),
            )
            .fetchone()
        )
        return int(row[0]), int(row[1]), int(row[2])

    def export(self, user_id: str) -> dict[str, Any]:
        """Everything stored about a user, as JSON-ready data (the right of access)."""
        profile = self.load(user_id)
        conn = self._conn()
        return {
            "user_id": user_id,
            "store_format_version": STORE_FORMAT_VERSION,
            "profile": None if profile is None else profile.model_dump(mode="json"),
            "versions": [v.model_dump() for v in self.history(user_id)],
            "events": [
                json.loads(e)
                for (e,) in conn.execute(
                    "SELECT event FROM events WHERE user_id = ? ORDER BY seq", (user_id,)
                )
            ],
            "texts": [
                {"source": s, "source_id": i, "text": t, "created_at": c}
                for s, i, t, c in conn.execute(
                    "SELECT source, source_id, text, created_at FROM texts WHERE user_id = ? ORDER BY seq",
                    (user_id,),
                )
            ],
        }

    def export_json(self, user_id: str, indent: int | None = 2) -> str:
        return json.dumps(self.export(user_id), indent=indent, ensure_ascii=False)

    # events and texts --------------------------------------------------------------------------------------

    def add_events(self, events: list[Interaction]) -> None:
        """Append events; review text is redacted before it is written."""
        ops: list[tuple[str, tuple[Any, ...]]] = []
        for event in events:
            if event.review:
                event = event.model_copy(update={"review": self.redactor(event.review)})
            ops.append(
                (
                    "INSERT INTO events (user_id, event) VALUES (?, ?)",
                    (event.user_id, event.model_dump_json()),
                )
            )
        if ops:
            self._write(ops)

    def events(self, user_id: str) -> list[Interaction]:
        rows = self._conn().execute("SELECT event FROM events WHERE user_id = ? ORDER BY seq", (user_id,))
        return [Interaction.model_validate_json(e) for (e,) in rows]

    def add_text(self, user_id: str, source: str, text: str, source_id: str | None = None) -> str:
        """Store a review or chat turn, redacted; returns the stored (redacted) text."""
        clean_text = self.redactor(text)
        self._write(
            [
                (
                    "INSERT INTO texts (user_id, source, source_id, text, created_at) VALUES (?, ?, ?, ?, ?)",
                    (user_id, source, source_id, clean_text, time.time()),
                )
            ]
        )
        return clean_text

    def texts(self, user_id: str) -> list[str]:
        rows = self._conn().execute("SELECT text FROM texts WHERE user_id = ? ORDER BY seq", (user_id,))
        return [t for (t,) in rows]

    # erasure -----------------------------------------------------------------------------------------------

    def erase(self, user_id: str) -> ErasureReport:
        """Delete every row about the user, then checkpoint and truncate the WAL so no copy survives there."""
        counts: dict[str, int] = {}
        with self._transaction() as conn:
            for table in ("profiles", "vectors", "events", "texts"):
                counts[table] = conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,)).rowcount
        with self._write_lock:
            self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return ErasureReport(user_id=user_id, **counts)

    def integrity_check(self) -> str:
        return str(self._conn().execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        for conn in self._connections:
            with suppress(sqlite3.ProgrammingError):
                conn.close()
        self._connections.clear()
        self._local = threading.local()
