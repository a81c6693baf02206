"""What ``recagent eval`` measures is what ``recagent recommend`` returns: the served Recommender's FAISS top 20
equals the evaluation's batched top 20 for every sampled user, with the served index (text ⊕ SASRec)."""

from __future__ import annotations

import numpy as np

from recagent.agent import RecommendationRequest, Recommender
from recagent.agent.indexing import load_served_index, split_of
from recagent.finetune import ServedScorer, full_ranks
from recagent.retrieval import Dataset, Encoder, SequentialIndex


def test_served_recommendations_equal_the_evaluated_ranking(
    ml100k_served, ml100k: Dataset, encoder: Encoder
) -> None:
    folder, _, _ = ml100k_served
    index, model = load_served_index(folder, ml100k, encoder.model_name)  # what build_recommender loads
    assert isinstance(index, SequentialIndex) and model is not None and index.text_weight >= 0
    split = split_of(ml100k)
    users = split.sample_users(60, seed=4)
    histories = {split.data.user_ids[int(u)]: split.history_events(int(u), "test") for u in users}
    served = Recommender(index, encoder, None, histories=histories, sequence=model)
    _, tops = full_ranks(split, ServedScorer(served), users, "test", top=20)
    ids = split.data.item_ids
    for user, top in zip(users, tops, strict=True):
        result = served.recommend(
            RecommendationRequest(user_id=split.data.user_ids[int(user)], k=20, justify=False)
        )
        assert [r.item.id for r in result.recommendations] == [ids[i] for i in top]
        assert result.mode == "retrieval-only"
    # And the sequence part matters: without SASRec the same users get other lists.
    text_only = Recommender(index, encoder, None, histories=histories)
    differ = sum(
        [
            r.item.id
            for r in text_only.recommend(
                RecommendationRequest(user_id=u, k=20, justify=False)
            ).recommendations
        ]
        != [ids[i] for i in top]
        for u, top in zip(histories, tops, strict=True)
    )
    assert differ > len(users) // 2
    assert np.all(np.isfinite(index.vectors))
