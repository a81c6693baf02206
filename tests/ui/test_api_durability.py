"""Durability: every event `POST /v1/events` acknowledged survives `kill -9` of a real `recagent serve`
process in the middle of a stream of writes; a corrupt or foreign index folder stops the server start
with one clear line, not a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from recagent.agent import ProfileStore
from recagent.retrieval import Catalog, ItemIndex
from recagent.ui.cli import main

from .serve_process import free_port as _free_port

WRITERS = 4


def _serve(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "RECAGENT_CACHE_DIR": str(tmp_path),
        "RECAGENT_PROFILE_STORE": str(tmp_path / "profiles.sqlite"),
        "RECAGENT_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    cmd = [sys.executable, "-m", "recagent.ui.cli", "serve", "--no-llm", "--index", str(tmp_path / "index")]
    # Its log goes to a file: an unread pipe fills up under load and would stall the server.
    log = tmp_path / f"serve-{port}-{time.time_ns()}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    deadline = time.time() + 240
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert time.time() < deadline, "recagent serve did not come up"
        time.sleep(0.3)


def _key(event: dict[str, object]) -> tuple[str, str, float]:
    return str(event["user_id"]), str(event["item_id"]), float(event["timestamp"])  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_acknowledged_events_survive_kill_9(tmp_path: Path, ml100k_index: ItemIndex) -> None:
    ml100k_index.save(tmp_path / "index")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _serve(tmp_path, port)
    acknowledged: list[dict[str, object]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w: int) -> None:
        n = 0
        with httpx.Client(base_url=url, timeout=10) as client:
            while not stop.is_set():
                batch = [
                    {
                        "user_id": f"durable-{w}-{n % 3}",
                        "item_id": str(1 + (n * 7 + i) % 1600),
                        "rating": 1 + (n + i) % 5,
                        "timestamp": 1_000_000 + w * 1_000_000 + n * 10 + i,
                    }
                    for i in range(1 + n % 4)
                ]
                n += 1
                try:
                    response = client.post("/v1/events", json={"events": batch})
                except httpx.TransportError:
                    return  # the server died under us: this batch was never acknowledged
                if response.status_code == 200:
                    assert response.json()["accepted"] == len(batch)
                    with lock:
                        acknowledged.extend(batch)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    try:
        deadline = time.time() + 60
        while len(acknowledged) < 300 and time.time() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: writers are still sending
        proc.wait(10)
    finally:
        stop.set()
        for t in threads:
            t.join(20)
        if proc.poll() is None:
            proc.kill()
    assert len(acknowledged) >= 100, "too few writes before the kill to mean anything"

    # Restart on the same store; every acknowledged event must be there, in the store and in the profiles.
    proc = _serve(tmp_path, port)
    try:
        store = ProfileStore(tmp_path / "profiles.sqlite")
        assert store.integrity_check() == "ok"
        users = {str(e["user_id"]) for e in acknowledged}
        stored = {(e.user_id, e.item_id, float(e.timestamp)) for u in users for e in store.events(u)}
        recovered = [e for e in acknowledged if _key(e) in stored]
        for user in users:
            profile = httpx.get(f"{url}/v1/users/{user}/profile", timeout=30).json()["profile"]
            assert profile["event_count"] >= sum(1 for e in acknowledged if e["user_id"] == user)
        print(f"\nkill -9: events acknowledged={len(acknowledged)} recovered={len(recovered)}")
        assert len(recovered) == len(acknowledged)
    finally:
        proc.terminate()
        proc.wait(20)


def _serve_error(capsys: pytest.CaptureFixture[str], folder: Path) -> str:
    assert main(["serve", "--no-llm", "--index", str(folder), "--port", str(_free_port())]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_serve_refuses_a_corrupt_or_foreign_index(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    ml100k_index: ItemIndex,
) -> None:
    monkeypatch.setenv("RECAGENT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("RECAGENT_PROFILE_STORE", str(tmp_path / "p.sqlite"))
    good = ml100k_index.save(tmp_path / "good")

    meta = tmp_path / "bad-meta"
    ml100k_index.save(meta)
    (meta / "meta.json").write_text("{not json")
    assert "meta.json is corrupt" in _serve_error(capsys, meta)

    vectors = tmp_path / "bad-vectors"
    ml100k_index.save(vectors)
    (vectors / "vectors.npy").write_bytes(b"\x93NUMPY garbage")
    assert "missing or corrupt" in _serve_error(capsys, vectors)

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("my holiday photos")
    line = _serve_error(capsys, foreign)
    assert "not an index folder" in line and not (foreign / "meta.json").exists()

    other = ItemIndex(
        Catalog([i.model_copy(update={"id": f"x{i.id}"}) for i in ml100k_index.catalog], name="other"),
        ml100k_index.vectors,
        ml100k_index.meta.encoder,
    )
    assert "another catalogue" in _serve_error(capsys, other.save(tmp_path / "other"))

    monkeypatch.setenv("RECAGENT_API_KEYS", "k1:;k2:*")
    assert "RECAGENT_API_KEYS entry 1" in _serve_error(capsys, good)
