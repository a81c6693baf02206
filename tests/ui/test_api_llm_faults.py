"""Faults from the OpenAI-compatible LLM server behind the API: down, slow, HTTP 500s, garbage. The API still
answers 200 with retrieval-only picks marked as such (mode, degraded_reason) within a bounded time, and goes
back to LLM ranking when the server is healthy again. Everything is real HTTP on 127.0.0.1: our API server,
the real OpenAIBackend, and an OpenAI-shaped stub server computing answers with the tiny model."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from recagent.agent import LocalBackend, OpenAIBackend, Recommender, Settings
from recagent.retrieval import Dataset, Encoder, ItemIndex
from recagent.ui.api import build_app
from tests.agent.openai_stub_server import StubServer

from .test_api import _Server

TIMEOUT_S = 1.0
# One ranking call, then one concurrent batch of justification calls, each bounded by the timeout.
ANSWER_WITHIN_S = 4 * TIMEOUT_S + 3


def _stub_on(backend: LocalBackend, port: int) -> StubServer:
    """A stub server on a given port (the LLM server "coming back" where it was)."""
    stub = StubServer(backend)
    stub._sock.close()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    stub._sock, stub.port = sock, port
    stub._thread = threading.Thread(target=stub._server.run, kwargs={"sockets": [sock]}, daemon=True)
    return stub.start()


@pytest.fixture(scope="module")
def llm(tiny_backend: LocalBackend) -> Iterator[StubServer]:
    stub = StubServer(tiny_backend).start()
    yield stub
    stub.stop()


@pytest.fixture(scope="module")
def api(
    llm: StubServer, ml100k: Dataset, ml100k_index: ItemIndex, encoder: Encoder
) -> Iterator[tuple[str, OpenAIBackend]]:
    backend = OpenAIBackend(
        llm.base_url, model="recagent-base", timeout=TIMEOUT_S, connect_timeout=TIMEOUT_S, max_retries=0
    )
    recommender = Recommender(ml100k_index, encoder, backend, histories=ml100k.by_user)
    with _Server(build_app(recommender, Settings())) as url:
        yield url, backend


def _recommend(url: str) -> tuple[dict[str, Any], float]:
    start = time.monotonic()
    response = httpx.post(url + "/v1/recommendations", json={"user_id": "1", "k": 3}, timeout=60)
    elapsed = time.monotonic() - start
    assert response.status_code == 200, response.text
    return response.json(), elapsed


def _degraded(url: str, reason: str) -> None:
    result, elapsed = _recommend(url)
    assert result["mode"] == "retrieval-only" and reason in (result["degraded_reason"] or ""), result
    assert result["ranker"] == "retrieval" and len(result["recommendations"]) == 3
    assert all(r["justification"]["source"] == "template" for r in result["recommendations"])
    assert elapsed < ANSWER_WITHIN_S, elapsed


def _recovers(url: str, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    while True:
        result, _ = _recommend(url)
        if result["mode"] == "ranked":
            assert result["degraded_reason"] is None
            return
        assert time.monotonic() < deadline, f"still degraded: {result['degraded_reason']}"
        time.sleep(0.5)


def test_degraded_mode_and_recovery(api: tuple[str, OpenAIBackend], llm: StubServer) -> None:
    url, _ = api
    llm.reset()
    _recovers(url, within_s=5)  # healthy: ranked by the LLM

    llm.switches.garbage = True
    _degraded(url, "malformed")
    llm.reset()
    _recovers(url)

    llm.switches.fail_next = 1000
    _degraded(url, "HTTP 500")
    llm.reset()
    _recovers(url)

    llm.switches.delay_s = 3 * TIMEOUT_S
    _degraded(url, "timed out")
    llm.reset()
    _recovers(url)  # the stub first works off the calls that timed out


def test_llm_server_down_then_back(
    tiny_backend: LocalBackend, ml100k: Dataset, ml100k_index: ItemIndex, encoder: Encoder
) -> None:
    first = StubServer(tiny_backend).start()
    port = first.port
    backend = OpenAIBackend(
        first.base_url, model="recagent-base", timeout=TIMEOUT_S, connect_timeout=TIMEOUT_S, max_retries=0
    )
    recommender = Recommender(ml100k_index, encoder, backend, histories=ml100k.by_user)
    with _Server(build_app(recommender, Settings())) as url:
        _recovers(url, within_s=5)
        first.stop()
        _degraded(url, "cannot connect")
        chat = httpx.post(
            url + "/v1/chat/completions",
            json={"model": "recagent", "user": "1", "messages": [{"role": "user", "content": "a comedy"}]},
            timeout=60,
        )
        assert (
            chat.status_code == 200
            and "ranked by retrieval only" in chat.json()["choices"][0]["message"]["content"]
        )
        second = _stub_on(tiny_backend, port)
        try:
            _recovers(url)
        finally:
            second.stop()
