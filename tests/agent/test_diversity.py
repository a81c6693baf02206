"""Diversity (MMR) on the real pipeline: real encoder and FAISS index on ml-100k, retrieval-only ranking."""

from __future__ import annotations

import numpy as np
import pytest

from recagent.agent import RecommendationRequest, Recommender
from recagent.agent.diversity import intra_list_distance, mmr_order
from recagent.retrieval import Dataset, Encoder, ItemIndex


@pytest.fixture(scope="module")
def retrieval_only(ml100k: Dataset, ml100k_index: ItemIndex, encoder: Encoder) -> Recommender:
    return Recommender(ml100k_index, encoder, None, histories=ml100k.by_user)


def test_mmr_trades_score_for_novelty() -> None:
    vectors = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0]])  # two near-duplicates and one different item
    assert mmr_order([3.0, 2.9, 2.0], vectors, 3, 0.0) == [0, 1, 2]
    assert mmr_order([3.0, 2.9, 2.0], vectors, 3, 0.5) == [0, 2, 1]
    assert mmr_order([3.0, 2.9, 2.0], vectors, 2, 1.0)[0] == 0  # the best pick always leads
    assert intra_list_distance(vectors[[0, 1]]) < intra_list_distance(vectors[[0, 2]])


def test_diversity_zero_is_the_ranking_as_before(retrieval_only: Recommender) -> None:
    for user in ("1", "7", "42"):
        request = RecommendationRequest(user_id=user, k=10, justify=False)
        hits = retrieval_only.retrieve(retrieval_only.profile(user), request)
        plain = retrieval_only.recommend(request)
        zero = retrieval_only.recommend(request.model_copy(update={"diversity": 0.0}))
        expected = [item.id for item, _ in hits[:10]]
        assert [r.item.id for r in plain.recommendations] == expected
        assert [r.item.id for r in zero.recommendations] == expected
        assert [r.score for r in zero.recommendations] == [r.score for r in plain.recommendations]


def test_more_diversity_gives_more_varied_picks_from_the_same_candidates(retrieval_only: Recommender) -> None:
    distances: dict[float, list[float]] = {0.0: [], 0.7: []}
    for user in [str(u) for u in range(1, 21)]:
        request = RecommendationRequest(user_id=user, k=10, justify=False)
        candidates = {item.id for item, _ in retrieval_only.retrieve(retrieval_only.profile(user), request)}
        for diversity, out in distances.items():
            result = retrieval_only.recommend(request.model_copy(update={"diversity": diversity}))
            ids = [r.item.id for r in result.recommendations]
            assert len(ids) == 10 and set(ids) <= candidates
            out.append(intra_list_distance(retrieval_only.index.text_vectors_for(ids)))
    assert np.mean(distances[0.7]) > np.mean(distances[0.0]) + 0.01


def test_match_is_relative_to_the_best_candidate(retrieval_only: Recommender) -> None:
    result = retrieval_only.recommend(RecommendationRequest(user_id="1", k=5, justify=False))
    matches = [r.match for r in result.recommendations]
    assert matches[0] == 1.0 and all(m is not None and 0 < m <= 1 for m in matches)
    assert matches == sorted(matches, reverse=True)
