from __future__ import annotations

import pytest

from recagent.agent import RecommendationRequest, Recommender, UnknownUserError
from recagent.retrieval import Dataset, Encoder, ItemFilter, ItemIndex


def test_pipeline_returns_distinct_unseen_catalogue_items(recommender: Recommender, ml100k: Dataset) -> None:
    result = recommender.recommend(RecommendationRequest(user_id="1", k=5))
    recs = result.recommendations
    seen = {e.item_id for e in ml100k.history("1")}
    assert len(recs) == 5 and len({r.item.id for r in recs}) == 5
    assert [r.rank for r in recs] == [1, 2, 3, 4, 5]
    assert result.mode == "ranked" and result.candidates == 20
    for rec in recs:
        assert rec.item.id in ml100k.catalog and rec.item.id not in seen
        assert rec.justification is not None and rec.justification.source in ("generated", "template")
        assert rec.evidence and all(e.item_id is None or e.item_id in seen for e in rec.evidence)
    assert {"retrieve", "rank", "justify"} <= set(result.timings_ms)


def test_ranking_reorders_retrieval_candidates(recommender: Recommender) -> None:
    request = RecommendationRequest(user_id="1", k=20, justify=False)
    ranked = recommender.recommend(request)
    profile = recommender.profile("1")
    retrieved = [i.id for i, _ in recommender.retrieve(profile, request)]
    assert sorted(r.item.id for r in ranked.recommendations) == sorted(retrieved)


def test_filters_apply_inside_retrieval(recommender: Recommender) -> None:
    request = RecommendationRequest(
        user_id="1",
        query="funny",
        k=5,
        filters=ItemFilter(exclude_genres=("Horror",), year_min=1990, year_max=1999),
        justify=False,
    )
    for rec in recommender.recommend(request).recommendations:
        assert "Horror" not in rec.item.genres and 1990 <= (rec.item.year or 0) <= 1999


def test_unknown_user_without_query_is_an_error(recommender: Recommender) -> None:
    with pytest.raises(UnknownUserError, match="unknown user 'nobody'"):
        recommender.recommend(RecommendationRequest(user_id="nobody"))


def test_cold_start_from_the_request_alone(recommender: Recommender, encoder: Encoder) -> None:
    result = recommender.recommend(
        RecommendationRequest(user_id="brand-new", query="animated films for kids", k=5, justify=False)
    )
    assert len(result.recommendations) == 5
    kids = sum("Children's" in r.item.genres or "Animation" in r.item.genres for r in result.recommendations)
    assert kids >= 3


def test_without_llm_the_result_says_retrieval_only(
    ml100k: Dataset, ml100k_index: ItemIndex, encoder: Encoder
) -> None:
    result = Recommender(ml100k_index, encoder, None, histories=ml100k.by_user).recommend(
        RecommendationRequest(user_id="1", k=3)
    )
    assert result.mode == "retrieval-only" and result.ranker == "retrieval"
    assert all(
        r.justification is not None and r.justification.source == "template" for r in result.recommendations
    )


def test_events_change_the_profile_and_erase_forgets(ml100k_index: ItemIndex, encoder: Encoder) -> None:
    from recagent.retrieval import Interaction

    recommender = Recommender(ml100k_index, encoder, None)
    assert not recommender.known_user("zoe")
    recommender.add_events([Interaction(user_id="zoe", item_id="1", rating=5, timestamp=1)])
    assert [r.item_id for r in recommender.profile("zoe").liked] == ["1"]
    recommender.add_events([Interaction(user_id="zoe", item_id="50", kind="like", timestamp=2)])
    assert {r.item_id for r in recommender.profile("zoe").liked} == {"1", "50"}
    assert recommender.erase_user("zoe") and not recommender.known_user("zoe")
    with pytest.raises(UnknownUserError):
        recommender.profile("zoe")
