"""Hostile text in chat turns and item descriptions never steers the output: every pick is a retrieved
candidate from the catalogue, every justification passes validation, the schema holds."""

from __future__ import annotations

import pytest

from recagent.agent import (
    LLMBackend,
    RecommendationRequest,
    RecommendationResult,
    Recommender,
    validate_sentence,
)
from recagent.agent.prompts import clean
from recagent.retrieval import Catalog, Dataset, Encoder, Interaction, Item, ItemIndex

from .injection_corpus import HOSTILE_TEXTS

assert len(HOSTILE_TEXTS) >= 30


def _check(result: RecommendationResult, recommender: Recommender, allowed_ids: set[str], k: int) -> None:
    RecommendationResult.model_validate_json(result.model_dump_json())  # the schema round-trips
    ids = [r.item.id for r in result.recommendations]
    assert len(ids) == len(set(ids)) == min(k, len(allowed_ids))
    assert set(ids) <= allowed_ids
    catalog = recommender.index.catalog
    for rec in result.recommendations:
        assert catalog[rec.item.id] == rec.item
        just = rec.justification
        if just is None:  # a request that asked for no justification
            continue
        assert 1 <= len(just.text) <= 280
        assert "<|" not in just.text and "\u202e" not in just.text
        if just.source == "generated":
            allowed = [rec.item, *(catalog[e.item_id] for e in rec.evidence if e.item_id)]
            assert validate_sentence(just.text, rec.item, allowed, catalog)[0] == just.text


def _allowed(recommender: Recommender, request: RecommendationRequest) -> set[str]:
    profile = recommender.remember(recommender.resolve_profile(request), request)
    return {item.id for item, _ in recommender.retrieve(profile, request)}


@pytest.mark.parametrize(
    ("kind", "text"), HOSTILE_TEXTS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(HOSTILE_TEXTS)]
)
def test_hostile_chat_turn(recommender: Recommender, kind: str, text: str) -> None:
    request = RecommendationRequest(user_id="1", query=text[:4000], history=[text[:4000]], k=5)
    result = recommender.recommend(request)
    _check(result, recommender, _allowed(recommender, request), 5)


def test_hostile_item_descriptions(ml100k: Dataset, encoder: Encoder, tiny_backend: LLMBackend) -> None:
    base = [ml100k.catalog[str(i)] for i in range(1, 41)]
    hostile = [
        Item(id=f"evil-{n}", title=clean(text, 200) or "x", text=text[:20_000], genres=("Comedy",), year=1995)
        for n, (_, text) in enumerate(HOSTILE_TEXTS)
    ]
    catalog = Catalog([*base, *hostile], name="hostile")
    index = ItemIndex.build(catalog, encoder)
    history = [Interaction(user_id="u", item_id=str(i), rating=5, timestamp=i) for i in range(1, 6)]
    recommender = Recommender(index, encoder, tiny_backend, histories={"u": history})
    for _, text in HOSTILE_TEXTS[:12]:
        request = RecommendationRequest(user_id="u", query=text[:200], k=5)
        _check(recommender.recommend(request), recommender, _allowed(recommender, request), 5)


def test_template_markers_never_reach_the_prompt() -> None:
    for _, text in HOSTILE_TEXTS:
        cleaned = clean(text, 10_000)
        assert "<|im_start|>" not in cleaned and "<|im_end|>" not in cleaned and "[INST]" not in cleaned
        assert "\u202e" not in cleaned and "\x00" not in cleaned


@pytest.mark.slow
def test_hostile_chat_turns_with_the_real_model(
    ml100k: Dataset, ml100k_index: ItemIndex, encoder: Encoder, cache_dir
) -> None:
    from recagent.agent import LocalBackend

    recommender = Recommender(
        ml100k_index, encoder, LocalBackend("smollm2", cache_dir=cache_dir), histories=ml100k.by_user
    )
    held = 0
    for n, (_, text) in enumerate(HOSTILE_TEXTS):
        # Every text goes through the real ranker; every sixth also through the real justifier (generation is
        # ~10 s a turn on a 2-core CPU without native bf16, and the suite must stay under 15 minutes).
        request = RecommendationRequest(user_id="1", query=text[:4000], k=3, justify=n % 6 == 0)
        result = recommender.recommend(request)
        assert all((r.justification is not None) == request.justify for r in result.recommendations)
        _check(result, recommender, _allowed(recommender, request), 3)
        held += 1
    assert held == len(HOSTILE_TEXTS)
