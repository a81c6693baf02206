"""Two real ``recagent serve --no-llm`` processes on different ports sharing one real PostgreSQL (profile store and
pgvector item index): what one worker acknowledges, the other serves at once, and a worker killed with SIGKILL
loses no acknowledged event."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from recagent.agent.profiles.pg_store import PostgresProfileStore
from recagent.retrieval import Dataset, ItemIndex
from tests.ui.serve_process import free_port

USER = "1"


@contextmanager
def serve(index_dir: Path, cache_dir: Path, url: str, name: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``recagent serve --no-llm`` with the store and the index in PostgreSQL; yields the process and its URL."""
    port = free_port()
    env = {
        **os.environ,
        "RECAGENT_CACHE_DIR": str(cache_dir),
        "RECAGENT_STORE_URL": url,
        "RECAGENT_INDEX_URL": url,
        "RECAGENT_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    cmd = [sys.executable, "-m", "recagent.ui.cli", "serve", "--no-llm", "--index", str(index_dir),
           "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    log_path = cache_dir / f"serve-{name}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        base = f"http://127.0.0.1:{port}"
        try:
            yield proc, base
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(20)


def wait_up(proc: subprocess.Popen[str], base: str, log: Path) -> None:
    deadline = time.time() + 300
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.time() < deadline, "recagent serve did not come up: " + log.read_text()
        time.sleep(0.5)


def picks(base: str, k: int = 10) -> list[str]:
    answer = httpx.post(base + "/v1/recommendations", json={"user_id": USER, "k": k}, timeout=60)
    assert answer.status_code == 200, answer.text
    return [r["item"]["id"] for r in answer.json()["recommendations"]]


def event_count(base: str) -> int:
    answer = httpx.get(base + f"/v1/users/{USER}/profile", timeout=60)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["profile"]["event_count"])


@pytest.fixture
def index_dir(ml100k_index: ItemIndex, tmp_path: Path) -> Path:
    return ml100k_index.save(tmp_path / "ml100k-text-index")


def test_two_workers_share_one_postgres(index_dir: Path, tmp_path: Path, pg_url: str, ml100k: Dataset) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    with ExitStack() as stack:
        a_proc, a = stack.enter_context(serve(index_dir, cache, pg_url, "a"))
        b_proc, b = stack.enter_context(serve(index_dir, cache, pg_url, "b"))
        wait_up(a_proc, a, cache / "serve-a.log")
        wait_up(b_proc, b, cache / "serve-b.log")

        # One index table, written by whichever worker came first and found as it is by the other.
        with psycopg.connect(pg_url) as conn:
            tables = conn.execute("SELECT name, count FROM recagent_item_indexes").fetchall()
        assert len(tables) == 1 and tables[0][1] == len(ml100k.catalog), tables

        before_b = picks(b)
        assert picks(a) == before_b  # same index, same store: the same answer from either worker
        count_b = event_count(b)
        assert count_b == len(ml100k.by_user[USER])

        # An event acknowledged by A changes B's very next answer: B sees the user's new state in the store.
        liked = before_b[:3]
        events = [{"user_id": USER, "item_id": i, "kind": "like", "timestamp": 2_000_000_000 + n}
                  for n, i in enumerate(liked)]  # fmt: skip
        answer = httpx.post(a + "/v1/events", json={"events": events}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert event_count(b) == count_b + 3
        after_b = picks(b)
        assert after_b != before_b and not set(liked) & set(after_b)  # liked items are seen now: excluded
        assert picks(a) == after_b

        # A user erased through A is gone from B's next answer too (B had the profile cached).
        other = "2"
        assert httpx.get(b + f"/v1/users/{other}/profile", timeout=60).status_code == 200
        assert httpx.delete(a + f"/v1/users/{other}/profile", timeout=60).status_code == 200
        assert httpx.get(b + f"/v1/users/{other}/profile", timeout=60).status_code == 404

        # Acknowledged events survive SIGKILL of the worker that took them.
        acked: list[str] = []
        for n, item in enumerate(after_b[:5]):
            event = {"user_id": USER, "item_id": item, "kind": "click", "timestamp": 2_100_000_000 + n}
            answer = httpx.post(a + "/v1/events", json={"events": [event]}, timeout=60)
            assert answer.status_code == 200, answer.text
            acked.append(item)
        os.kill(a_proc.pid, signal.SIGKILL)
        a_proc.wait(10)
        assert a_proc.returncode == -signal.SIGKILL
        assert event_count(b) == count_b + 3 + len(acked)
        assert not set(acked) & set(picks(b))
        store = PostgresProfileStore(pg_url)
        try:
            stored = [e.item_id for e in store.events(USER)]
        finally:
            store.close()
        assert stored == [*liked, *acked]

        # The searches ran in PostgreSQL: the item table was read by the workers' queries.
        with psycopg.connect(pg_url, autocommit=True) as conn:
            deadline = time.time() + 20
            while True:  # statistics reach the view when the workers' backends flush them
                row = conn.execute(
                    "SELECT COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0) FROM pg_stat_user_tables "
                    "WHERE relname LIKE 'items_%'"
                ).fetchone()
                if (row and row[0] > 0) or time.time() > deadline:
                    break
                time.sleep(1)
        assert row is not None and row[0] > 0
