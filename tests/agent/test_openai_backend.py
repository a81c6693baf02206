"""OpenAIBackend against a real HTTP server on 127.0.0.1 that computes its answers with the tiny model."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from recagent.agent import LLMError, LocalBackend, OpenAIBackend, ProfileBuilder, Settings, make_backend
from recagent.agent.prompts import LABELS, justification_conversation, ranking_conversation
from recagent.retrieval import Dataset, ItemIndex

from .openai_stub_server import StubServer


@pytest.fixture(scope="module")
def stub(tiny_backend: LocalBackend) -> Iterator[StubServer]:
    server = StubServer(tiny_backend).start()
    yield server
    server.stop()


@pytest.fixture()
def server(stub: StubServer) -> StubServer:
    stub.reset()
    return stub


@pytest.fixture(scope="module")
def conversations(ml100k: Dataset, ml100k_index: ItemIndex):
    builder = ProfileBuilder(ml100k_index)
    cases = []
    for user, query in [("1", None), ("2", "something light"), ("3", "a war film")]:
        profile = builder.build(user, ml100k.history(user))
        vector = np.asarray(profile.vector, dtype=np.float32)
        candidates = [i for i, _ in ml100k_index.search(vector, 12, exclude=set(profile.seen))]
        cases.append(ranking_conversation(profile, candidates, query))
    return cases


def backend_for(server: StubServer, **kwargs) -> OpenAIBackend:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("timeout", 30.0)
    return OpenAIBackend(server.base_url, **kwargs)


def assert_scores_match(backend: OpenAIBackend, tiny_backend: LocalBackend, conversations, labels):
    """Label scores through the server equal the in-process ones (within float noise); returns both."""
    remote = backend.label_scores(conversations, labels)
    local = tiny_backend.label_scores(conversations, labels)
    for r, loc in zip(remote, local, strict=True):
        assert max(abs(a - b) for a, b in zip(r, loc, strict=True)) < 1e-4
    return remote, local


def order(row: list[float]) -> list[int]:
    return sorted(range(len(row)), key=lambda i: (-row[i], i))


def test_model_is_picked_by_name_from_the_server(server: StubServer) -> None:
    assert backend_for(server).model == "recagent-ranker"
    server.switches.models = ["only-base"]
    assert backend_for(server).model == "only-base"
    assert backend_for(server, model="recagent-base").model == "recagent-base"


def test_sentences_go_to_the_base_model_when_ranking_uses_the_lora_ranker(
    server: StubServer, conversations
) -> None:
    backend = backend_for(server)
    backend.generate(conversations[:1], max_new_tokens=8)
    assert backend.model == "recagent-ranker" and backend.generation_model == "recagent-base"
    assert server.switches.requests[-1]["model"] == "recagent-base"
    pinned = backend_for(server, generation_model="recagent-ranker")
    pinned.generate(conversations[:1], max_new_tokens=8)
    assert server.switches.requests[-1]["model"] == "recagent-ranker"
    assert backend_for(server, model="recagent-base").generation_model == "recagent-base"


def test_label_token_ids_scores_equal_local(
    server: StubServer, tiny_backend: LocalBackend, conversations
) -> None:
    backend = backend_for(server)
    labels = LABELS[:12]
    remote, local = assert_scores_match(backend, tiny_backend, conversations, labels)
    for r, loc in zip(remote, local, strict=True):
        assert order(r) == order(loc)
    assert backend.stats["label_token_ids"] == 3 and backend.stats["top_logprobs"] == 0
    ids = server.switches.requests[-1]["logprob_token_ids"]
    assert ids == [tiny_backend.label_token_id(label) for label in labels]


def test_top_logprobs_scores_equal_local(
    server: StubServer, tiny_backend: LocalBackend, conversations
) -> None:
    server.switches.tokenize = False
    server.switches.max_logprobs = 60000
    backend = backend_for(server, top_logprobs=60000)
    labels = LABELS[:12]
    remote, local = assert_scores_match(backend, tiny_backend, conversations, labels)
    for r, loc in zip(remote, local, strict=True):
        assert order(r) == order(loc)
    assert backend.stats == {"label_token_ids": 0, "top_logprobs": 3, "prompt_logprobs": 0, "structured": 0}
    assert backend.label_token_ids is False


def test_labels_outside_top_k_are_probed_exactly(
    server: StubServer, tiny_backend: LocalBackend, conversations
) -> None:
    server.switches.tokenize = False
    server.switches.max_logprobs = 3
    backend = backend_for(server, top_logprobs=3)
    labels = LABELS[:12]
    assert_scores_match(backend, tiny_backend, conversations, labels)
    assert backend.stats["prompt_logprobs"] == 3
    probes = [b for b in server.switches.requests if b.get("continue_final_message")]
    assert probes and all(b["messages"][-1]["role"] == "assistant" for b in probes)


def test_missing_logprobs_fall_back_to_validated_structured_choice(
    server: StubServer, tiny_backend: LocalBackend, conversations
) -> None:
    server.switches.drop_logprobs = True
    server.switches.prompt_logprobs = False
    backend = backend_for(server)
    labels = LABELS[:12]
    remote = backend.label_scores(conversations, labels)
    local = tiny_backend.label_scores(conversations, labels)
    for r, loc in zip(remote, local, strict=True):
        assert len(r) == len(labels)
        assert order(r)[0] == order(loc)[0]  # the guided choice is the model's top label
        assert sorted(order(r)) == list(range(len(labels)))
    assert backend.stats["structured"] == 3
    assert backend.label_probe is False  # learnt once, not asked again


def test_structured_choice_outside_the_candidates_is_rejected(server: StubServer, conversations) -> None:
    server.switches.drop_logprobs = True
    server.switches.prompt_logprobs = False
    server.switches.bad_choice = True
    with pytest.raises(LLMError, match="not a candidate"):
        backend_for(server).label_scores(conversations[:1], LABELS[:12])


def test_no_logprobs_and_no_structured_output_is_a_clear_error(server: StubServer, conversations) -> None:
    server.switches.drop_logprobs = True
    server.switches.prompt_logprobs = False
    server.switches.response_format = False
    with pytest.raises(LLMError, match="HTTP 400"):
        backend_for(server).label_scores(conversations[:1], LABELS[:12])


def test_retries_with_backoff_recover_from_500s(server: StubServer, conversations) -> None:
    server.switches.fail_next = 2
    backend = backend_for(server, max_retries=3, model="recagent-base")
    scores = backend.label_scores(conversations[:1], LABELS[:12])
    assert len(scores[0]) == 12
    assert len(server.switches.requests) >= 3


def test_retries_give_up_with_llm_error(server: StubServer, conversations) -> None:
    server.switches.fail_next = 100
    backend = backend_for(server, max_retries=1, model="recagent-base")
    with pytest.raises(LLMError, match="HTTP 500"):
        backend.label_scores(conversations[:1], LABELS[:12])
    assert len(server.switches.requests) == 2


def test_timeout_is_enforced(server: StubServer, conversations) -> None:
    server.switches.delay_s = 3.0
    backend = backend_for(server, timeout=0.5, max_retries=0, model="recagent-base")
    started = time.monotonic()
    with pytest.raises(LLMError, match="timed out"):
        backend.label_scores(conversations[:1], LABELS[:12])
    assert time.monotonic() - started < 2.5


def test_non_json_answer_is_a_malformed_error(server: StubServer, conversations) -> None:
    server.switches.garbage = True
    with pytest.raises(LLMError, match="malformed"):
        backend_for(server, model="recagent-base").label_scores(conversations[:1], LABELS[:12])


def test_unreachable_server_is_an_llm_error() -> None:
    backend = OpenAIBackend("http://127.0.0.1:9/v1", model="m", max_retries=0, timeout=2.0)
    with pytest.raises(LLMError, match="cannot connect"):
        backend.generate([[{"role": "user", "content": "hi"}]])


def test_structured_generation_and_plain_fallback(server: StubServer, ml100k: Dataset) -> None:
    item = next(iter(ml100k.catalog))
    conversation = justification_conversation(item, ["you rated Star Wars (1977) 5/5"], None)
    backend = backend_for(server, model="recagent-base")
    [text] = backend.generate([conversation], max_new_tokens=8)
    assert isinstance(text, str) and not text.startswith("{")
    assert server.switches.requests[-1]["response_format"]["type"] == "json_schema"

    server.switches.response_format = False
    [plain] = backend.generate([conversation], max_new_tokens=8)
    assert isinstance(plain, str)
    assert backend.structured_output is False
    assert "response_format" not in server.switches.requests[-1]


def test_factory_picks_openai_backend_when_base_url_is_set(server: StubServer) -> None:
    settings = Settings(llm_base_url=server.base_url, llm_served_model="recagent-ranker", llm_timeout=7)
    backend = make_backend(settings)
    assert isinstance(backend, OpenAIBackend)
    assert backend.model == "recagent-ranker" and backend.timeout == 7
    assert not isinstance(make_backend(Settings()), OpenAIBackend)
