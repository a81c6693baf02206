from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from recagent.agent import Evidence, Interest, ProfileStore, UserProfile
from recagent.agent.profiles.pg_store import PostgresProfileStore
from recagent.retrieval import Interaction

MARKER = "zq-unique-user-7f3a"


def _open(location: str, **options) -> ProfileStore:
    if location.startswith("postgresql://"):
        return PostgresProfileStore(location, **options)
    return ProfileStore(location, **options)


@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path):
    """make_store(name) -> the location of a fresh store: a SQLite file, or a fresh database on the real
    PostgreSQL of the session; the same name gives the same store."""
    made: dict[str, str] = {}

    def location(name: str = "p") -> str:
        if name not in made:
            if request.param == "sqlite":
                made[name] = str(tmp_path / f"{name}.sqlite")
            else:
                server = request.getfixturevalue("pg_server")
                made[name] = server.create_database(f"store_{request.node.name[-30:]}_{name}".lower().replace("[", "_").replace("]", ""))
        return made[name]

    return location


def _profile(user: str, n: int = 0) -> UserProfile:
    vec = np.random.default_rng(n).normal(size=8)
    vec /= np.linalg.norm(vec)
    return UserProfile(
        user_id=user,
        event_count=n,
        interests=[
            Interest(tag="Comedy", weight=0.5, evidence=[Evidence(source="chat", quote=f"{user} laughs")])
        ],
        vector=vec.tolist(),
        summary=f"version {n} of {user}",
    )


def test_save_load_list_history_export(make_store) -> None:
    store = _open(make_store())
    assert store.save(_profile("ann", 1)) == 1
    assert store.save(_profile("ann", 2)) == 2
    store.save(_profile("bob", 1))
    store.add_events([Interaction(user_id="ann", item_id="42", rating=4, timestamp=5)])
    store.add_text("ann", "review", "Lovely fabric, mail me at ann@example.com", "r1")
    loaded = store.load("ann")
    assert loaded is not None and loaded.event_count == 2 and loaded.summary == "version 2 of ann"
    assert np.allclose(loaded.vector, _profile("ann", 2).vector, atol=1e-6)
    assert store.load("ann", version=1).event_count == 1  # type: ignore[union-attr]
    assert store.load("nobody") is None
    assert store.users() == ["ann", "bob"]
    assert [v.version for v in store.history("ann")] == [1, 2]
    exported = store.export("ann")
    assert exported["profile"]["user_id"] == "ann" and len(exported["versions"]) == 2
    assert exported["events"][0]["item_id"] == "42"
    assert exported["texts"][0]["text"] == "Lovely fabric, mail me at [EMAIL]"
    assert '"user_id": "ann"' in store.export_json("ann")
    events, texts, version = store.user_state("ann")
    assert events > 0 and texts > 0 and version == 2 and store.user_state("nobody") == (0, 0, 0)
    store.add_events([Interaction(user_id="ann", item_id="43", rating=3, timestamp=6)])
    assert store.user_state("ann")[0] > events
    store.close()


def test_keeps_a_bounded_history(make_store) -> None:
    store = _open(make_store(), keep_versions=3)
    for n in range(6):
        store.save(_profile("ann", n))
    assert [v.version for v in store.history("ann")] == [4, 5, 6]
    store.close()


def test_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    ProfileStore(path).save(_profile("ann"))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_erase_leaves_no_trace_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    store = ProfileStore(path)
    for n in range(3):
        store.save(_profile(MARKER, n))
    store.save(_profile("keeper", 1))
    store.add_events([Interaction(user_id=MARKER, item_id="7", rating=5, timestamp=t) for t in range(20)])
    store.add_text(MARKER, "chat", f"{MARKER} wants something funny", "s#1")
    report = store.erase(MARKER)
    assert (report.profiles, report.events, report.texts, report.vectors) == (3, 20, 1, 1)
    store.close()
    # Read the file directly, with a fresh connection and as raw bytes (deleted pages included).
    with sqlite3.connect(path) as conn:
        for table in ("profiles", "vectors", "events", "texts"):
            assert (
                conn.execute(f"SELECT COUNT(*) FROM {table} WHERE user_id = ?", (MARKER,)).fetchone()[0] == 0
            )
        assert conn.execute("SELECT COUNT(*) FROM profiles WHERE user_id = 'keeper'").fetchone()[0] == 1
    for file in tmp_path.iterdir():
        assert MARKER.encode() not in file.read_bytes(), file.name
    assert ProfileStore(path).load("keeper") is not None


def test_postgres_erase_deletes_rows_and_vacuums_the_dead_versions(pg_url: str, pg_server) -> None:
    import psycopg

    store = PostgresProfileStore(pg_url)
    for n in range(3):
        store.save(_profile(MARKER, n))
    store.save(_profile("keeper", 1))
    store.add_events([Interaction(user_id=MARKER, item_id="7", rating=5, timestamp=t) for t in range(20)])
    store.add_text(MARKER, "chat", f"{MARKER} wants something funny", "s#1")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        reader = psycopg.connect(pg_url)  # an open snapshot elsewhere would keep dead rows: none is open
        reader.close()
        report = store.erase(MARKER)
        assert (report.profiles, report.events, report.texts, report.vectors) == (3, 20, 1, 1)
        for table in ("recagent_profiles", "recagent_vectors", "recagent_events", "recagent_texts"):
            assert conn.execute(f"SELECT count(*) FROM {table} WHERE user_id = %s", (MARKER,)).fetchone()[0] == 0
            pages = conn.execute(f"SELECT pg_relation_size('{table}') / current_setting('block_size')::int").fetchone()[0]
            # Every line pointer on every heap page: no tuple (live or dead) still holds the user's bytes.
            for page in range(pages):
                rows = conn.execute(
                    "SELECT t_data FROM heap_page_items(get_raw_page(%s, %s)) WHERE t_data IS NOT NULL",
                    (table, page),
                ).fetchall()
                assert not any(MARKER.encode() in bytes(r[0]) for r in rows), (table, page)
        assert conn.execute("SELECT count(*) FROM recagent_profiles WHERE user_id = 'keeper'").fetchone()[0] == 1
    assert store.load("keeper") is not None and store.load(MARKER) is None and store.events(MARKER) == []
    store.close()


def test_postgres_erase_with_vacuum_full_leaves_no_byte_in_the_data_files(pg_url: str, pg_server) -> None:
    import psycopg

    store = PostgresProfileStore(pg_url, vacuum_full=True)
    for n in range(3):
        store.save(_profile(MARKER, n))
    store.save(_profile("keeper", 1))
    store.add_text(MARKER, "chat", f"{MARKER} wants something funny", "s#1")
    store.erase(MARKER)
    store.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")  # every page written to its file
        database = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()[0]
    files = [f for f in (pg_server.root / "data" / "base" / str(database)).iterdir() if f.is_file()]
    assert files and not [f.name for f in files if MARKER.encode() in f.read_bytes()]
    # The write-ahead log still has them until it is recycled: that (and backups, replicas) is the operator's.
    wal = (pg_server.root / "data" / "pg_wal").glob("0*")
    assert any(MARKER.encode() in f.read_bytes() for f in wal)


def _writer_process(path: str, n: int) -> None:
    store = _open(path)
    for i in range(n):
        store.save(_profile("proc-writer", i))
    store.close()


def test_concurrent_readers_and_writers_do_not_corrupt(make_store) -> None:
    path = make_store()
    store = _open(path)
    store.save(_profile("ann", 0))
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            last = 0
            while not stop.is_set():
                profile = store.load("ann")
                assert profile is not None and profile.event_count >= last
                last = profile.event_count
                store.history("ann")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for t in readers:
        t.start()
    proc = mp.get_context("spawn").Process(target=_writer_process, args=(str(path), 40))
    proc.start()
    for i in range(1, 81):
        store.save(_profile("ann", i))
    proc.join(timeout=120)
    stop.set()
    for t in readers:
        t.join()
    assert not errors, errors[0]
    assert proc.exitcode == 0
    assert store.integrity_check() == "ok"
    assert [v.version for v in store.history("ann")][-1] == 81
    assert store.load("proc-writer").event_count == 39  # type: ignore[union-attr]
    store.close()


def test_noise_on_stored_vectors(make_store) -> None:
    clean = _open(make_store("clean"))
    noisy = _open(make_store("noisy"), noise_epsilon=0.5, seed=1)
    profile = _profile("ann", 3)
    clean.save(profile)
    noisy.save(profile)
    exact = np.asarray(clean.load("ann").vector)  # type: ignore[union-attr]
    blurred = np.asarray(noisy.load("ann").vector)  # type: ignore[union-attr]
    assert np.allclose(exact, profile.vector, atol=1e-6)
    assert abs(np.linalg.norm(blurred) - 1) < 1e-5 and not np.allclose(blurred, exact, atol=1e-2)
    bad = _open(make_store("bad"), noise_epsilon=0.0)
    with pytest.raises(ValueError):
        bad.save(profile)
    for store in (clean, noisy, bad):
        store.close()


def test_version_0_profiles_still_load() -> None:
    old = {
        "schema_version": 0,
        "user_id": "u",
        "interests": [
            {
                "tag": "Comedy",
                "weight": 0.5,
                "evidence": [{"source": "rating", "item_id": "1", "text": "rated 5/5"}],
            }
        ],
        "event_count": 3,
        "some_future_field": 1,
    }
    profile = UserProfile.model_validate(old)
    assert profile.schema_version == 0 and profile.interest_weight("comedy") == 0.5
    assert profile.interests[0].evidence[0].extractor == "behaviour" and profile.aspects == []
    assert profile.model_dump()["some_future_field"] == 1
