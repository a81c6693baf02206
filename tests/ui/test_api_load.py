"""Load: 50 concurrent clients for 30 s against a real `recagent serve --no-llm` on 127.0.0.1 (retrieval-only
ranking and template justifications, so it is CPU-feasible here), zero errors, p95 reported; and past capacity
the server answers 429 with Retry-After (back-pressure) instead of failing, then recovers."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from benchmarks.api_load import run_load
from recagent.agent import Recommender, Settings
from recagent.retrieval import Dataset, Encoder, ItemIndex
from recagent.ui.api import build_app

from .serve_process import free_port as _free_port
from .test_api import _Server
from .test_api_durability import _serve


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_50_clients_for_30_seconds(tmp_path: Path, ml100k_index: ItemIndex) -> None:
    ml100k_index.save(tmp_path / "index")
    port = _free_port()
    proc = _serve(tmp_path, port)
    try:
        report = run_load(f"http://127.0.0.1:{port}", clients=50, duration_s=30)
        print(f"\nload (recagent serve --no-llm, 50 clients, 30 s):\n{report.table()}")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    assert report.requests >= 100
    assert report.errors == [] and report.throttled == 0, report.errors[:5]
    assert report.percentile(95) < 30_000  # the queue timeout: nothing waited into a 429


@pytest.fixture(scope="module")
def small_server(ml100k: Dataset, ml100k_index: ItemIndex, encoder: Encoder) -> Iterator[str]:
    recommender = Recommender(ml100k_index, encoder, None, histories=ml100k.by_user)
    settings = Settings(api_max_concurrency=2, api_max_queue=3, api_queue_timeout_s=20)
    with _Server(build_app(recommender, settings)) as url:
        yield url


def test_back_pressure_past_capacity(small_server: str) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=small_server, timeout=60) as client:
            calls = [
                client.post("/v1/recommendations", json={"user_id": str(1 + i), "query": "a comedy", "k": 5})
                for i in range(40)
            ]
            return await asyncio.gather(*calls)

    responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= 5 and statuses.count(429) >= 1, statuses
    for response in responses:
        if response.status_code == 429:
            assert response.headers["retry-after"] == "1"
            error = response.json()["error"]
            assert error["type"] == "rate_limit_error" and error["code"] == "server_busy"
    # /health skips the queue, and the server serves normally once the burst is over.
    assert httpx.get(small_server + "/health").status_code == 200
    again = httpx.post(small_server + "/v1/recommendations", json={"user_id": "1", "k": 3}, timeout=60)
    assert again.status_code == 200 and len(again.json()["recommendations"]) == 3
