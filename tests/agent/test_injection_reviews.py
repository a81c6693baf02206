"""Hostile text written as reviews: the profile gains only vocabulary aspects and tags (never the text's
instructions, fake ids or ratings), and the recommendations made from that profile stay valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from recagent.agent import LLMBackend, ProfileStore, RecommendationRequest, Recommender, UserProfile
from recagent.retrieval import Dataset, Encoder, ItemIndex

from .injection_corpus import HOSTILE_TEXTS
from .test_injection import _allowed, _check

MARKERS = ("<|im_start|>", "<|im_end|>", "[INST]", "<<SYS>>", "\u202e", "\x00", "\x1b")


def _check_profile(profile: UserProfile, before: UserProfile, recommender: Recommender) -> None:
    vocabulary = recommender.text_extractor.fast.vocabulary
    genres = set(recommender.index.catalog.genres())
    assert {a.aspect for a in profile.aspects} <= set(vocabulary.aspects)
    for interest in profile.interests:
        allowed = genres if interest.extractor == "behaviour" else set(vocabulary.tags)
        assert interest.tag in allowed, interest.tag
    # A review cannot fake ratings, seen items, constraints or events.
    assert profile.liked == before.liked and profile.disliked == before.disliked
    assert profile.seen == before.seen and profile.event_count == before.event_count
    assert profile.constraints == before.constraints
    for claim in [*profile.aspects, *profile.interests]:
        for evidence in claim.evidence:
            assert len(evidence.quote) <= 500 and len(evidence.text) <= 500
            assert not any(m in evidence.quote or m in evidence.text for m in MARKERS), evidence.quote
    UserProfile.model_validate_json(profile.model_dump_json())


@pytest.fixture
def recommender(
    ml100k: Dataset,
    ml100k_index: ItemIndex,
    encoder: Encoder,
    tiny_backend: LLMBackend,
    tmp_path: Path,
) -> Recommender:
    store = ProfileStore(tmp_path / "profiles.sqlite")
    return Recommender(
        ml100k_index,
        encoder,
        tiny_backend,
        histories=ml100k.by_user,
        store=store,
        extract_with_llm=False,  # the fast extractor; the LLM path is covered below
    )


def test_hostile_reviews_through_the_fast_extractor(recommender: Recommender) -> None:
    held = 0
    for n, (kind, text) in enumerate(HOSTILE_TEXTS):
        user = "7"
        before = recommender.profile(user)
        profile, report = recommender.add_text(user, text, source="review", item_id="50")
        names = recommender.text_extractor.fast.vocabulary
        for claim in report.claims:
            assert claim.name in names.names(claim.kind), (kind, claim)
        _check_profile(profile, before, recommender)
        if n % 8 == 0 or n == len(HOSTILE_TEXTS) - 1:  # the full pipeline (ranker + justifier) is ~2 s a call
            request = RecommendationRequest(user_id=user, k=5)
            allowed = _allowed(recommender, request)
            _check(recommender.recommend(request), recommender, allowed, 5)
        held += 1
    stored = recommender.store.load("7") if recommender.store is not None else None
    assert stored is not None and stored.aspects == recommender.profile("7").aspects
    print(f"\nreview injections tried={len(HOSTILE_TEXTS)} held={held}")
    assert held == len(HOSTILE_TEXTS)


def test_hostile_reviews_through_the_llm_extractor(
    ml100k: Dataset, ml100k_index: ItemIndex, encoder: Encoder, tiny_backend: LLMBackend, tmp_path: Path
) -> None:
    """The LLM extractor's reply is validated against the vocabulary: a hostile review cannot name new tags."""
    recommender = Recommender(
        ml100k_index,
        encoder,
        tiny_backend,
        histories=ml100k.by_user,
        store=ProfileStore(tmp_path / "p.sqlite"),
        extract_with_llm=True,
    )
    assert recommender.text_extractor.llm is not None
    for _, text in (HOSTILE_TEXTS[6], HOSTILE_TEXTS[12]):  # fake JSON, a fake system turn
        before = recommender.profile("8")
        profile, _ = recommender.add_text("8", text, source="review")
        _check_profile(profile, before, recommender)
    request = RecommendationRequest(user_id="8", k=3)
    allowed = _allowed(recommender, request)
    _check(recommender.recommend(request), recommender, allowed, 3)
