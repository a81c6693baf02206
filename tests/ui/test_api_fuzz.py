"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis), valid and invalid
requests, against a real server on 127.0.0.1: no 5xx, and every error is an OpenAI-style error object.
Plus the explicit limits (body size, message count, k, text length), each with a clear 4xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from recagent.agent import ProfileStore, Recommender, Settings
from recagent.retrieval import Dataset, Encoder, ItemIndex
from recagent.ui.api import build_app
from recagent.ui.api.protocol import MAX_MESSAGE_CHARS, MAX_MESSAGES

from .test_api import _Server

KEY = "fuzz-key"
EXAMPLES = 40  # per operation and mode: 7 operations, about 400 requests in all
TALLY: dict[str, int] = {"cases": 0, "5xx": 0}


@pytest.fixture(scope="module")
def fuzz_url(
    ml100k: Dataset, ml100k_index: ItemIndex, encoder: Encoder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    store = ProfileStore(tmp_path_factory.mktemp("fuzz") / "profiles.sqlite")
    # Retrieval only: the fuzzer looks for crashes in parsing and routing, not in the language model.
    recommender = Recommender(ml100k_index, encoder, None, histories=ml100k.by_user, store=store)
    app = build_app(recommender, Settings(api_keys=f"{KEY}:*", api_max_body_bytes=100_000))
    with _Server(app) as url:
        yield url


def _assert_error_object(response: Any) -> None:
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]


def test_fuzz_from_openapi(fuzz_url: str) -> None:
    """Every operation of /openapi.json, schema-valid and schema-violating cases (schemathesis strategies)."""
    schema = schemathesis.openapi.from_url(f"{fuzz_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                response = case.call(headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
                TALLY["cases"] += 1
                if response.status_code >= 500:
                    TALLY["5xx"] += 1
                    failures.append(f"{case.method} {case.path} {case.body!r:.300} -> {response.text[:300]}")
                elif response.status_code >= 400:
                    _assert_error_object(response)

            try:
                check()
            except Unsatisfiable:
                # Nothing in this operation can be made schema-invalid (no body, no parameters).
                assert mode == GenerationMode.NEGATIVE, operation.label
    print(f"\nfuzz: operations={len(operations)} cases={TALLY['cases']} 5xx={TALLY['5xx']}")
    assert not failures, failures[:5]


# ------------------------------------------------------------------ the limits, one by one


def _post(url: str, path: str, body: Any = None, content: bytes | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    data = content if content is not None else json.dumps(body).encode()
    return httpx.post(url + path, content=data, headers=headers, timeout=60)


def _clear_4xx(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    _assert_error_object(response)
    message = response.json()["error"]["message"]
    assert all(w in message for w in words), message


def test_limits_each_give_a_clear_4xx(fuzz_url: str) -> None:
    chat: dict[str, Any] = {"model": "recagent", "messages": [{"role": "user", "content": "a comedy"}]}
    assert _post(fuzz_url, "/v1/chat/completions", chat).status_code == 200
    big = {**chat, "messages": [{"role": "user", "content": "x" * 3000}] * 40}
    _clear_4xx(_post(fuzz_url, "/v1/chat/completions", big), 413, "exceeds 100000 bytes")
    many = {**chat, "messages": [{"role": "user", "content": "hi"}] * (MAX_MESSAGES + 1)}
    _clear_4xx(_post(fuzz_url, "/v1/chat/completions", many), 422, "messages", str(MAX_MESSAGES))
    long = {**chat, "messages": [{"role": "user", "content": "y" * (MAX_MESSAGE_CHARS + 1)}]}
    _clear_4xx(_post(fuzz_url, "/v1/chat/completions", long), 422, str(MAX_MESSAGE_CHARS), "characters")
    for k in (0, 21, 10**9):
        _clear_4xx(_post(fuzz_url, "/v1/chat/completions", {**chat, "recagent": {"k": k}}), 422, "k")
        _clear_4xx(_post(fuzz_url, "/v1/recommendations", {"user_id": "1", "k": k}), 422, "k")
    _clear_4xx(_post(fuzz_url, "/v1/recommendations", {"query": "z" * 5000}), 422, "query")
    _clear_4xx(_post(fuzz_url, "/v1/events", content=b'{"events": [{"user_id": '), 400, "not valid JSON")
    _clear_4xx(_post(fuzz_url, "/v1/events", {"events": []}), 422, "events")
