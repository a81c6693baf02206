"""The real vllm-router binary (the Rust router from the vllm-router wheel) over two OpenAI-compatible workers on
127.0.0.1: OpenAIBackend's X-User-Id keeps each user on one replica under --policy consistent_hash, and when that
replica dies its users are answered by the other."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recagent.agent.llm import llm_user
from recagent.agent.llm.openai_backend import OpenAIBackend
from tests.agent.openai_stub_server import StubServer
from tests.ui.serve_process import free_port

USERS = [f"user-{n}" for n in range(16)]
HELLO = [{"role": "user", "content": "Say hi."}]


def router_binary() -> str:
    found = shutil.which("vllm-router", path=str(Path(sys.executable).parent)) or shutil.which("vllm-router")
    assert found, "the vllm-router wheel is not installed (it is in the dev extra: run `make setup`)"
    return found


@pytest.fixture
def workers(tiny_backend) -> Iterator[list[StubServer]]:
    stubs = [StubServer(tiny_backend), StubServer(tiny_backend)]
    for name, stub in zip("AB", stubs, strict=True):
        stub.switches.worker = name
        stub.start()
    yield stubs
    for stub in stubs:
        stub.stop()


@pytest.fixture
def router(workers: list[StubServer], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "router.log").open("w")
    cmd = [
        router_binary(),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--policy", "consistent_hash",
        "--worker-urls", *[f"http://127.0.0.1:{w.port}" for w in workers],
        "--health-check-interval-secs", "1",
        "--health-failure-threshold", "1",
        "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "router.log").read_text()
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.time() < deadline, "vllm-router did not come up: " + (tmp_path / "router.log").read_text()
            time.sleep(0.2)
        yield url + "/v1"
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def _answered_by(backend: OpenAIBackend, user: str) -> str:
    with llm_user(user):
        response = backend._chat(HELLO, "hello", model="recagent-base", max_tokens=2)
    return str(response.system_fingerprint)


def test_consistent_hash_keeps_a_user_on_one_replica_and_fails_over(
    router: str, workers: list[StubServer]
) -> None:
    backend = OpenAIBackend(router, model="recagent-base", max_retries=3, timeout=20)
    seen = {user: Counter(_answered_by(backend, user) for _ in range(3)) for user in USERS}
    assert all(len(c) == 1 for c in seen.values()), seen  # every user's requests went to one replica
    home = {user: next(iter(c)) for user, c in seen.items()}
    assert set(home.values()) == {"A", "B"}, home  # and the users are spread over both
    # What the workers received: the header the router hashes, and the body's user field.
    for stub in workers:
        assert stub.switches.user_headers and all(h in USERS for h in stub.switches.user_headers)
        assert {r["user"] for r in stub.switches.requests} == set(stub.switches.user_headers)
    assert {u for u, w in home.items() if w == "A"} == set(workers[0].switches.user_headers)

    # Generation through the backend's own API sends the user too.
    with llm_user(USERS[0]):
        backend.generate([HELLO], 2)
    owner = workers[0] if home[USERS[0]] == "A" else workers[1]
    assert owner.switches.user_headers[-1] == USERS[0]

    # Replica A dies: its users are answered by B (the router retries and marks A unhealthy).
    workers[0].stop()
    moved = [u for u, w in home.items() if w == "A"]
    deadline = time.time() + 30
    answers: dict[str, str] = {}
    while time.time() < deadline and len(answers) < len(moved):
        for user in moved:
            if user not in answers:
                try:
                    answers[user] = _answered_by(backend, user)
                except Exception:  # noqa: BLE001 - a request in flight when A died may fail once
                    time.sleep(0.5)
    assert answers == {u: "B" for u in moved}
    assert all(_answered_by(backend, u) == "B" for u in USERS)  # B's own users stay where they were
    backend.close()


def test_backend_sends_no_user_outside_llm_user(workers: list[StubServer]) -> None:
    backend = OpenAIBackend(workers[1].base_url, model="recagent-base")
    backend._chat(HELLO, "hello", max_tokens=1)
    assert workers[1].switches.user_headers == [None] and "user" not in workers[1].switches.requests[0]
    backend.close()
    quiet = OpenAIBackend(workers[1].base_url, model="recagent-base", user_header=None)  # RECAGENT_LLM_USER_HEADER=
    with llm_user("user-1"):
        quiet._chat(HELLO, "hello", max_tokens=1)
    assert workers[1].switches.user_headers[-1] is None and "user" not in workers[1].switches.requests[-1]
    quiet.close()
