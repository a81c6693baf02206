from __future__ import annotations

import math

import numpy as np
import pytest

from recagent.finetune import mrr, ndcg_at, rank_of, ranking_metrics, recall_at


def test_single_relevant_item_metrics_match_hand_computed_values() -> None:
    ranks = [0, 1, 9, 10, 19, 100]
    assert recall_at(ranks, 10) == pytest.approx(3 / 6)
    assert recall_at(ranks, 20) == pytest.approx(5 / 6)
    expected_ndcg10 = (1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(11)) / 6
    assert ndcg_at(ranks, 10) == pytest.approx(expected_ndcg10)
    assert mrr(ranks) == pytest.approx((1 + 1 / 2 + 1 / 10 + 1 / 11 + 1 / 20 + 1 / 101) / 6)


def test_perfect_and_hopeless_rankers() -> None:
    best = ranking_metrics([0, 0, 0])
    assert (best.recall_at_10, best.ndcg_at_10, best.mrr) == (1.0, 1.0, 1.0)
    worst = ranking_metrics([50, 60])
    assert worst.recall_at_20 == 0.0 and worst.ndcg_at_10 == 0.0
    assert worst.mrr == pytest.approx((1 / 51 + 1 / 61) / 2)


def test_rank_of_skips_excluded_items_and_counts_ties_against_the_target() -> None:
    scores = np.array([0.9, 0.5, 0.8, 0.5, 0.1])
    assert rank_of(scores, 1) == 3  # 0.9, 0.8 and the tied 0.5 all beat it
    excluded = np.array([True, False, False, False, False])
    assert rank_of(scores, 1, excluded) == 2
    assert rank_of(np.zeros(5), 2) == 4  # a constant scorer gets no credit


def test_empty_input_gives_zero_not_nan() -> None:
    assert recall_at([], 10) == 0.0 and ndcg_at([], 10) == 0.0 and mrr([]) == 0.0


def test_paired_bootstrap_difference_and_interval() -> None:
    from recagent.finetune import paired_bootstrap_ndcg

    same = [0, 3, 50, 7]
    assert paired_bootstrap_ndcg(same, same) == (0.0, 0.0, 0.0)

    # Moving every user's item from rank 1 to rank 0 gains 1 - 1/log2(3) each: significant, known size.
    better, worse = [0] * 50, [1] * 50
    diff, low, high = paired_bootstrap_ndcg(better, worse)
    assert diff == pytest.approx(1 - 1 / math.log2(3))
    assert low == pytest.approx(diff) and high == pytest.approx(diff)

    # One user better, one worse by the same amount: the interval straddles zero.
    diff, low, high = paired_bootstrap_ndcg([0, 1] * 20, [1, 0] * 20)
    assert diff == pytest.approx(0.0) and low < 0 < high

    with pytest.raises(ValueError, match="same users"):
        paired_bootstrap_ndcg([0, 1], [0])
