from __future__ import annotations

import numpy as np
import pytest

from recagent.agent import Recommender
from recagent.finetune import PopularityScorer, ServedScorer, build_examples, full_ranks, recency_query
from recagent.retrieval import Encoder, LeaveOneOut, load_bundled_arrays


@pytest.fixture(scope="module")
def split() -> LeaveOneOut:
    return LeaveOneOut(load_bundled_arrays("ml-100k"))


def test_training_rows_hold_no_validation_or_test_event(split: LeaveOneOut) -> None:
    users, items, _ = split.train_rows()
    held_out = {(int(u), int(split.test_item[u])) for u in np.flatnonzero(split.evaluable)}
    held_out |= {(int(u), int(split.valid_item[u])) for u in np.flatnonzero(split.evaluable)}
    assert held_out.isdisjoint(zip(users.tolist(), items.tolist(), strict=True))
    assert len(users) == len(split.data.items) - 2 * int(split.evaluable.sum())


def test_test_history_ends_with_the_validation_item(split: LeaveOneOut) -> None:
    user = int(np.flatnonzero(split.evaluable)[0])
    items, _ = split.history(user, "test")
    assert items[-1] == split.target(user, "valid")
    assert split.target(user, "test") not in split.history(user, "valid")[0][-1:]


def test_training_examples_never_use_test_items(split: LeaveOneOut, ml100k_served, encoder: Encoder) -> None:
    _, index, model = ml100k_served
    served = ServedScorer(Recommender(index, encoder, None, sequence=model))
    users = split.sample_users(120, seed=3)
    examples = list(build_examples(split, served, users.tolist(), prefixes=3))
    assert examples and {ex.prefix for ex in examples} == {0, 1, 2}
    by_id = {uid: n for n, uid in enumerate(split.data.user_ids)}
    ids = split.data.item_ids
    labels = set()
    for ex in examples:
        user = by_id[ex.user_id]
        held_out = {ids[split.target(user, "test")], ids[split.target(user, "valid")]}
        if ex.prefix == 0:
            assert ex.target_item == ids[split.target(user, "valid")]
        else:
            assert ex.target_item not in held_out
        prompt = ex.conversation[-1]["content"]
        assert ex.candidates[ord(ex.target_label) - ord("A")] == ex.target_item
        assert (
            split.data.catalog[ids[split.target(user, "test")]].display_title
            not in prompt.split("Candidates:")[0]
        )
        labels.add(ex.target_label)
    assert len(labels) > 5  # shuffled candidates: the answer is not always near "A"


def test_full_ranking_excludes_rated_items_and_sampling_is_seeded(split: LeaveOneOut) -> None:
    users = split.sample_users(50, seed=0)
    assert np.array_equal(users, split.sample_users(50, seed=0))
    assert not np.array_equal(users, split.sample_users(50, seed=1))
    ranks, tops = full_ranks(split, PopularityScorer(split), users, "test")
    for user, top in zip(users, tops, strict=True):
        assert not set(top.tolist()) & set(split.history(int(user), "test")[0].tolist())
    assert (ranks >= 0).all() and (ranks < split.n_items).all()


def test_recency_query_leans_on_the_latest_items() -> None:
    vectors = np.eye(3, dtype=np.float32)
    q = recency_query(vectors, np.array([0, 1, 2]), half_life=1.0)
    assert q[2] > q[1] > q[0]
    assert np.linalg.norm(q) == pytest.approx(1.0)
