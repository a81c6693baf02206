"""API keys bound to users and tenants: a key cannot read, erase, post events for, or be recommended as
another user, over real HTTP on 127.0.0.1 against a real recommender and SQLite store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recagent.agent import ProfileStore, Recommender, Settings
from recagent.retrieval import Dataset, Encoder, ItemIndex
from recagent.ui.api import build_app, configured_grants
from recagent.ui.api.auth import APIKeyError, load_api_keys_file, parse_api_keys

from .test_api import _Server

KEYS = "alice-key:alice;acme-key:acme-*;admin-key:*"


@pytest.fixture(scope="module")
def recommender(
    ml100k: Dataset, ml100k_index: ItemIndex, encoder: Encoder, tmp_path_factory: pytest.TempPathFactory
) -> Recommender:
    store = ProfileStore(tmp_path_factory.mktemp("isolation") / "profiles.sqlite")
    return Recommender(ml100k_index, encoder, None, histories=ml100k.by_user, store=store)


@pytest.fixture(scope="module")
def base_url(recommender: Recommender) -> Iterator[str]:
    with _Server(build_app(recommender, Settings(api_keys=KEYS))) as url:
        yield url


def _as(key: str, base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def _event(user: str, item: str = "50") -> dict[str, object]:
    return {"user_id": user, "item_id": item, "rating": 5}


def _forbidden(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["type"] == "permission_error" and error["code"] == "user_not_allowed"


def test_keys_act_only_for_their_users(base_url: str, recommender: Recommender) -> None:
    admin, alice, acme = (_as(k, base_url) for k in ("admin-key", "alice-key", "acme-key"))
    for user in ("alice", "acme-1", "acme-2", "bob"):
        assert admin.post("/v1/events", json={"events": [_event(user)]}).status_code == 200
    # Alice's key: her own profile, nobody else's, whether the other user exists or not.
    assert alice.get("/v1/users/alice/profile").json()["user_id"] == "alice"
    for user in ("bob", "acme-1", "no-such-user"):
        _forbidden(alice.get(f"/v1/users/{user}/profile"))
        _forbidden(alice.delete(f"/v1/users/{user}/profile"))
    _forbidden(alice.post("/v1/events", json={"events": [_event("alice"), _event("bob")]}))
    _forbidden(alice.post("/v1/recommendations", json={"user_id": "bob", "k": 3}))
    chat = {"model": "recagent", "messages": [{"role": "user", "content": "a comedy"}]}
    _forbidden(alice.post("/v1/chat/completions", json={**chat, "user": "bob"}))
    _forbidden(alice.post("/v1/chat/completions", json={**chat, "metadata": {"user_id": "bob"}}))
    assert alice.post("/v1/chat/completions", json={**chat, "user": "alice"}).status_code == 200
    assert alice.post("/v1/chat/completions", json=chat).status_code == 200  # anonymous is open
    # The tenant key: every acme-* user, no one else.
    assert acme.get("/v1/users/acme-2/profile").status_code == 200
    assert acme.post("/v1/events", json={"events": [_event("acme-1"), _event("acme-9")]}).status_code == 200
    _forbidden(acme.get("/v1/users/alice/profile"))
    _forbidden(acme.get("/v1/users/acme/profile"))  # the prefix is "acme-", not "acme"
    # Nothing was erased or written by the refused calls.
    assert recommender.known_user("bob") and recommender.known_user("acme-1")
    assert len(recommender.store.events("alice") if recommender.store else []) == 1
    assert alice.delete("/v1/users/alice/profile").json()["deleted"] is True
    assert admin.get("/v1/users/bob/profile").status_code == 200
    assert httpx.get(base_url + "/v1/users/bob/profile").status_code == 401


def test_key_spec_forms(tmp_path: Path) -> None:
    plain = parse_api_keys("k1, k2")
    assert [g.key for g in plain] == ["k1", "k2"] and all(g.everyone for g in plain)
    bound = {g.key: g for g in parse_api_keys(KEYS)}
    assert bound["alice-key"].allows("alice") and not bound["alice-key"].allows("alice2")
    assert bound["acme-key"].allows("acme-7") and not bound["acme-key"].allows("bob")
    assert bound["admin-key"].allows("anyone") and bound["alice-key"].allows(None)
    with pytest.raises(APIKeyError, match="entry 1"):
        parse_api_keys("k1:;k2:*")
    with pytest.raises(APIKeyError, match="twice"):
        parse_api_keys("k1:a;k1:b")
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"file-key": ["carol", "team-*"], "ops-key": "*"}))
    grants = {g.key: g for g in load_api_keys_file(path)}
    assert grants["file-key"].allows("team-x") and not grants["file-key"].allows("bob")
    assert grants["ops-key"].everyone
    path.write_text("[1, 2]")
    with pytest.raises(APIKeyError, match="JSON object"):
        load_api_keys_file(path)
    settings = Settings(api_keys="env-key:dave", api_keys_file=tmp_path / "missing.json")
    with pytest.raises(APIKeyError, match="missing.json"):
        configured_grants(settings)
