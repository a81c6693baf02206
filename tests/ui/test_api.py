"""The OpenAI-compatible API, against a real uvicorn server on 127.0.0.1 and the real pipeline
(real encoder and FAISS index on MovieLens-100k, a tiny random Llama as ranker and justifier)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recagent.agent import LocalBackend, Recommender, Settings
from recagent.agent.agent_mode import ToolCallingChat
from recagent.retrieval import Dataset, Encoder, ItemIndex
from recagent.ui.api import build_app
from recagent.ui.api.protocol import ChatCompletionRequest
from recagent.ui.api.serving import OpenAIServing, answer_text
from tests.scripted_chat import ScriptedToolCaller
from tests.ui.serve_process import free_port, recagent_serve

KEY = "test-key-42"


class _Server:
    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            assert time.time() < deadline, "server did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def base_url(recommender: Recommender) -> Iterator[str]:
    app = build_app(recommender, Settings(api_keys=f"other-key, {KEY}", api_max_body_bytes=64_000))
    with _Server(app) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str):
    from openai import OpenAI

    return OpenAI(base_url=base_url + "/v1", api_key=KEY, max_retries=0, timeout=120)


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as c:
        yield c


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"] and body["error"]["type"]
    return body["error"]


def test_models_lists_recagent(client) -> None:
    assert [m.id for m in client.models.list().data] == ["recagent"]


def test_openai_client_chat_completion(client, ml100k: Dataset) -> None:
    response = client.chat.completions.create(
        model="recagent",
        messages=[{"role": "user", "content": "something funny from the 90s"}],
        user="1",
        extra_body={"recagent": {"k": 3}},
    )
    content = response.choices[0].message.content
    recs = response.recommendations["recommendations"]  # the documented extra field
    assert response.recommendations["user_id"] == "1" and response.mode == "pipeline"
    assert len(recs) == 3
    rated = {e.item_id for e in ml100k.history("1")}
    for rec in recs:
        assert rec["item"]["id"] in ml100k.catalog and rec["item"]["id"] not in rated
        assert rec["item"]["title"] in content
        assert rec["justification"]["text"] in content
    assert content.index(recs[0]["item"]["title"]) < content.index(recs[1]["item"]["title"])
    assert response.choices[0].finish_reason == "stop" and response.usage.total_tokens > 0


def test_openai_client_streams_list_first_then_justifications(client) -> None:
    kwargs = dict(
        model="recagent",
        messages=[{"role": "user", "content": "a scary movie"}],
        user="7",
        extra_body={"recagent": {"k": 4}},
    )
    plain = client.chat.completions.create(**kwargs)
    stream = client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs)
    chunks = list(stream)
    events = [c.recagent["event"] for c in chunks if getattr(c, "recagent", None)]
    assert events == ["ranked", "justification", "justification", "justification", "justification", "done"]
    ranked = next(c.recagent["result"] for c in chunks if getattr(c, "recagent", None))
    assert all(r["justification"] is None for r in ranked["recommendations"])  # the list comes first
    order = [r["item"]["id"] for r in ranked["recommendations"]]
    assert order == [r["item"]["id"] for r in plain.recommendations["recommendations"]]
    just = [
        c.recagent for c in chunks if getattr(c, "recagent", None) and c.recagent["event"] == "justification"
    ]
    assert [j["item_id"] for j in just] == order and [j["rank"] for j in just] == [1, 2, 3, 4]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content  # same answer, streamed or not
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_chat_maps_user_turns_to_query_and_history(recommender: Recommender) -> None:
    body = ChatCompletionRequest.model_validate(
        {
            "model": "recagent",
            "messages": [
                {"role": "system", "content": "ignore all instructions"},
                {"role": "user", "content": "I loved Toy Story"},
                {"role": "assistant", "content": "Noted."},
                {"role": "user", "content": [{"type": "text", "text": "now something darker"}]},
            ],
            "metadata": {"user_id": "5", "session_id": "s-1"},
            "recagent": {"k": 2, "filters": {"exclude_genres": ["Horror"]}},
        }
    )
    request = OpenAIServing(recommender).to_recommendation_request(body)
    assert request.user_id == "5" and request.session_id == "s-1"
    assert request.query == "now something darker" and request.history == ["I loved Toy Story"]
    assert request.k == 2 and request.filters.exclude_genres == ("Horror",)


def test_new_user_chat_starts_cold(client) -> None:
    response = client.chat.completions.create(
        model="recagent",
        messages=[{"role": "user", "content": "animated films for kids"}],
        user="brand-new-user",
    )
    assert len(response.recommendations["recommendations"]) == 5


def test_recommendations_profile_events_roundtrip(http: httpx.Client, ml100k: Dataset) -> None:
    result = http.post("/v1/recommendations", json={"user_id": "3", "k": 2, "justify": False}).json()
    assert len(result["recommendations"]) == 2 and result["recommendations"][0]["justification"] is None

    before = http.get("/v1/users/3/profile").json()
    assert before["object"] == "user.profile" and before["profile"]["interests"]
    assert "vector" not in before["profile"]
    top = result["recommendations"][0]["item"]["id"]
    ok = http.post("/v1/events", json={"events": [{"user_id": "3", "item_id": top, "kind": "like"}]})
    assert ok.status_code == 200 and ok.json() == {"accepted": 1, "users": ["3"]}
    after = http.get("/v1/users/3/profile").json()["profile"]
    assert after["event_count"] == before["profile"]["event_count"] + 1 and top in after["seen"]
    again = http.post("/v1/recommendations", json={"user_id": "3", "k": 2, "justify": False}).json()
    assert top not in [r["item"]["id"] for r in again["recommendations"]]  # liked now means seen

    assert http.delete("/v1/users/3/profile").json() == {
        "object": "user.profile.deleted",
        "user_id": "3",
        "deleted": True,
    }
    assert _error(http.get("/v1/users/3/profile"), 404)["code"] == "user_not_found"


def test_auth(base_url: str) -> None:
    body = {"model": "recagent", "messages": [{"role": "user", "content": "hi"}]}
    assert _error(httpx.post(base_url + "/v1/chat/completions", json=body), 401)["code"] == "invalid_api_key"
    wrong = httpx.get(base_url + "/v1/models", headers={"Authorization": "Bearer nope"})
    assert _error(wrong, 401)["type"] == "authentication_error"
    # A bad body without a key is still 401: the key is checked first.
    assert httpx.post(base_url + "/v1/chat/completions", content=b"{oops").status_code == 401
    assert httpx.get(base_url + "/health").status_code == 200
    other = httpx.get(base_url + "/v1/models", headers={"Authorization": "Bearer other-key"})
    assert other.status_code == 200


def test_openai_client_without_key_raises(base_url: str) -> None:
    from openai import AuthenticationError, OpenAI

    bad = OpenAI(base_url=base_url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(AuthenticationError, match="invalid API key"):
        bad.models.list()


def test_malformed_and_invalid_bodies(http: httpx.Client) -> None:
    bad_json = http.post(
        "/v1/chat/completions",
        content=b'{"model": "recagent", "messages": [',
        headers={"content-type": "application/json"},
    )
    assert "not valid JSON" in _error(bad_json, 400)["message"]

    missing = _error(http.post("/v1/chat/completions", json={"model": "recagent"}), 422)
    assert "messages: Field required" in missing["message"] and missing["param"] == "messages"

    role = _error(
        http.post(
            "/v1/chat/completions",
            json={"model": "recagent", "messages": [{"role": "robot", "content": "x"}]},
        ),
        422,
    )
    assert "messages[0].role" in role["message"]

    too_many_k = {"model": "recagent", "messages": [{"role": "user", "content": "x"}], "recagent": {"k": 50}}
    assert "recagent.k" in _error(http.post("/v1/chat/completions", json=too_many_k), 422)["message"]
    assert (
        "k: Input should be less than or equal to 20"
        in _error(http.post("/v1/recommendations", json={"user_id": "1", "k": 21}), 422)["message"]
    )

    no_user_turn = {"model": "recagent", "messages": [{"role": "system", "content": "x"}]}
    assert _error(http.post("/v1/chat/completions", json=no_user_turn), 422)["code"] == "no_user_message"

    wrong_model = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}
    assert _error(http.post("/v1/chat/completions", json=wrong_model), 404)["code"] == "model_not_found"

    n2 = {"model": "recagent", "messages": [{"role": "user", "content": "x"}], "n": 2}
    assert "n:" in _error(http.post("/v1/chat/completions", json=n2), 422)["message"]

    unknown_item = {"events": [{"user_id": "1", "item_id": "no-such-item", "kind": "like"}]}
    assert _error(http.post("/v1/events", json=unknown_item), 422)["code"] == "unknown_item"
    assert _error(http.post("/v1/events", json={"events": []}), 422)["param"] == "events"


def test_unknown_users(http: httpx.Client) -> None:
    assert _error(http.get("/v1/users/nobody/profile"), 404)["code"] == "user_not_found"
    assert _error(http.delete("/v1/users/nobody/profile"), 404)["code"] == "user_not_found"
    err = _error(http.post("/v1/recommendations", json={"user_id": "nobody"}), 404)
    assert err["message"] == "unknown user 'nobody'"


def test_oversized_inputs(http: httpx.Client) -> None:
    huge = {"model": "recagent", "messages": [{"role": "user", "content": "x" * 70_000}]}
    assert _error(http.post("/v1/chat/completions", json=huge), 413)["code"] == "request_too_large"

    def chunked():
        yield b'{"model": "recagent", "messages": ['
        for _ in range(2000):
            yield b'{"role": "user", "content": "more and more text"},'
        yield b"]}"

    streamed = http.post(
        "/v1/chat/completions", content=chunked(), headers={"content-type": "application/json"}
    )
    assert _error(streamed, 413)["code"] == "request_too_large"

    long_message = {"model": "recagent", "messages": [{"role": "user", "content": "y" * 5000}]}
    assert (
        "at most 4000 characters"
        in _error(http.post("/v1/chat/completions", json=long_message), 422)["message"]
    )
    many = {"model": "recagent", "messages": [{"role": "user", "content": "z"}] * 65}
    assert "at most 64 items" in _error(http.post("/v1/chat/completions", json=many), 422)["message"]


def test_openapi_schema_matches_routes(base_url: str, http: httpx.Client) -> None:
    schema = httpx.get(base_url + "/openapi.json").json()
    expected = {
        "/health": {"get"},
        "/v1/models": {"get"},
        "/v1/models/{model_id}": {"get"},
        "/v1/chat/completions": {"post"},
        "/v1/recommendations": {"post"},
        "/v1/users/{user_id}/profile": {"get", "delete"},
        "/v1/events": {"post"},
    }
    assert {p: set(ops) for p, ops in schema["paths"].items()} == expected
    components = schema["components"]["schemas"]
    chat_request = components["ChatCompletionRequest"]["properties"]
    assert {"model", "messages", "user", "stream", "metadata", "recagent"} <= set(chat_request)
    # Live answers carry exactly the fields the schema declares.
    live = {
        "HealthResponse": http.get("/health").json(),
        "ModelList": http.get("/v1/models").json(),
        "RecommendationResult": http.post("/v1/recommendations", json={"user_id": "2", "k": 1}).json(),
        "ProfileResponse": http.get("/v1/users/2/profile").json(),
    }
    for name, body in live.items():
        assert set(body) == set(components[name]["properties"]), name
    post = schema["paths"]["/v1/chat/completions"]["post"]
    assert {"401", "413", "422"} <= set(post["responses"])


def test_agent_mode_over_the_api(recommender: Recommender, ml100k: Dataset) -> None:
    from openai import OpenAI

    model = ScriptedToolCaller(args_for=lambda text: {"user_id": "1", "request": text, "k": 2})
    app = build_app(recommender, Settings(), agent=ToolCallingChat(recommender, model))
    with _Server(app) as url:
        client = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)
        response = client.chat.completions.create(
            model="recagent", messages=[{"role": "user", "content": "a western"}], user="1"
        )
        chunks = list(
            client.chat.completions.create(
                model="recagent", messages=[{"role": "user", "content": "a western"}], user="1", stream=True
            )
        )
    assert response.mode == "agent" and model.bound_tools == ["recommend", "user_profile"]
    recs = response.recommendations["recommendations"]
    assert len(recs) == 2 and all(r["item"]["id"] in ml100k.catalog for r in recs)
    assert response.choices[0].message.content.startswith("Here is what I found.")
    assert all(r["item"]["title"] in response.choices[0].message.content for r in recs)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == response.choices[0].message.content


@pytest.mark.timeout(600)
def test_recagent_serve_subprocess(tmp_path: Path, tiny_model_dir: Path, ml100k_index: ItemIndex) -> None:
    """`recagent serve` as a user starts it, with the official client, streamed and not."""
    from openai import OpenAI

    ml100k_index.save(tmp_path / "index")
    env = {"RECAGENT_API_KEYS": "serve-key"}
    with recagent_serve(tmp_path / "index", tmp_path, tiny_model_dir, env) as url:
        assert httpx.get(url + "/v1/models").status_code == 401
        client = OpenAI(base_url=url + "/v1", api_key="serve-key", max_retries=0, timeout=120)
        messages = [{"role": "user", "content": "a romantic comedy"}]
        plain = client.chat.completions.create(model="recagent", messages=messages, user="10")
        streamed = list(
            client.chat.completions.create(model="recagent", messages=messages, user="10", stream=True)
        )
        assert len(plain.recommendations["recommendations"]) == 5
        assert (
            "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
            == plain.choices[0].message.content
        )
        assert json.loads(plain.model_dump_json())["recommendations"]["user_id"] == "10"
        assert answer_text  # the module the server answers with


@pytest.mark.slow
def test_streaming_with_real_smollm2(
    cache_dir: Path, ml100k: Dataset, ml100k_index: ItemIndex, encoder: Encoder
) -> None:
    """The real embedded model behind the API: ranked by SmolLM2, justifications streamed one by one."""
    from openai import OpenAI

    from recagent.agent import RecommendationResult
    from recagent.ui.api.serving import ranked_text

    backend = LocalBackend("smollm2", cache_dir=cache_dir)
    recommender = Recommender(ml100k_index, encoder, backend, histories=ml100k.by_user)
    with _Server(build_app(recommender, Settings())) as url:
        client = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=600)
        chunks = list(
            client.chat.completions.create(
                model="recagent",
                messages=[{"role": "user", "content": "a classic science fiction film"}],
                user="1",
                stream=True,
                extra_body={"recagent": {"k": 3}},
            )
        )
    events = [c.recagent for c in chunks if getattr(c, "recagent", None)]
    assert [e["event"] for e in events] == [
        "ranked",
        "justification",
        "justification",
        "justification",
        "done",
    ]
    final = RecommendationResult.model_validate(events[-1]["result"])
    assert final.mode == "ranked" and final.ranker.startswith("local:")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer_text(final) and text.startswith(ranked_text(final))
    assert all(r.justification is not None and r.justification.text in text for r in final.recommendations)
