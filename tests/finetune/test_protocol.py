from __future__ import annotations

import numpy as np
import pytest

from recagent.finetune import LeaveOneOut, PopularityScorer, build_examples, recency_query
from recagent.finetune.protocol import full_ranks
from recagent.retrieval import Dataset, load_bundled_arrays


@pytest.fixture(scope="module")
def split() -> LeaveOneOut:
    return LeaveOneOut(load_bundled_arrays("ml-100k"))


def test_columnar_split_agrees_with_leave_one_out_split(split: LeaveOneOut, ml100k: Dataset) -> None:
    reference = ml100k.split()
    ids = split.data.item_ids
    assert set(reference.test) == {split.data.user_ids[u] for u in np.flatnonzero(split.evaluable)}
    for user, uid in enumerate(split.data.user_ids):
        if uid not in reference.test:
            continue
        assert ids[split.target(user, "test")] == reference.test[uid].item_id
        assert ids[split.target(user, "valid")] == reference.valid[uid].item_id
        items, _ = split.history(user, "valid")
        assert [ids[i] for i in items] == [e.item_id for e in reference.train[uid]]


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


def test_training_examples_never_use_test_items(split: LeaveOneOut) -> None:
    users = split.sample_users(200, seed=3)
    examples = list(build_examples(split, PopularityScorer(split), users.tolist(), "valid"))
    assert examples, "popularity should retrieve some validation items"
    by_id = {uid: n for n, uid in enumerate(split.data.user_ids)}
    ids = split.data.item_ids
    for ex in examples:
        user = by_id[ex.user_id]
        assert ex.target_item == ids[split.target(user, "valid")]
        assert ids[split.target(user, "test")] not in {h.item_id for h in ex.history}
        assert ex.candidates[ord(ex.target_label) - ord("A")] == ex.target_item
    with pytest.raises(ValueError, match="never"):
        next(build_examples(split, PopularityScorer(split), users.tolist(), "test"))


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
