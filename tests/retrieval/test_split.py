"""Tie protocols of the leave-one-out split: deterministic, the same in every code path, and leak-free."""

from __future__ import annotations

import numpy as np
import pytest

from recagent.finetune.evaluate import tie_diagnostic
from recagent.retrieval import (
    Dataset,
    Interaction,
    InteractionArrays,
    LeaveOneOut,
    chronological,
    load_bundled,
    load_bundled_arrays,
)

from .event_split import LeaveOneOutSplit


def _tied(user: str = "u") -> list[Interaction]:
    return [Interaction(user_id=user, item_id=i, rating=4, timestamp=5) for i in ["c", "a", "b", "d", "e"]]


def test_shuffle_is_seeded_per_user_and_independent_of_input_order() -> None:
    events = _tied()
    first = [e.item_id for e in chronological(events, "shuffle")]
    assert first == [e.item_id for e in chronological(list(reversed(events)), "shuffle")]
    orders = {tuple(e.item_id for e in chronological(_tied(f"user-{n}"), "shuffle")) for n in range(30)}
    assert len(orders) > 20  # each user gets their own order (120 possible): no global item order to learn
    reseeded = {tuple(e.item_id for e in chronological(events, "shuffle", seed=s)) for s in range(10)}
    assert len(reseeded) > 5


def test_file_order_keeps_the_given_order_within_a_second() -> None:
    events = [*_tied(), Interaction(user_id="u", item_id="z", timestamp=1)]
    assert [e.item_id for e in chronological(events, "file")] == ["z", "c", "a", "b", "d", "e"]
    split = LeaveOneOutSplit.from_events(events, ties="file")
    assert split.test["u"].item_id == "e" and split.valid["u"].item_id == "d"
    with pytest.raises(ValueError, match="tie-break"):
        chronological(events, "by-id")  # type: ignore[arg-type]


@pytest.mark.parametrize("ties", ["shuffle", "file"])
def test_columnar_split_agrees_with_the_event_split(ties: str) -> None:
    data = load_bundled("ml-100k", ties)  # type: ignore[arg-type]
    reference = LeaveOneOutSplit.from_events(data.events, ties=data.ties)
    split = LeaveOneOut(load_bundled_arrays("ml-100k", ties))  # type: ignore[arg-type]
    same = LeaveOneOut(InteractionArrays.from_dataset(data))
    ids = split.data.item_ids
    for arrays in (split, same):
        assert {arrays.data.user_ids[u] for u in np.flatnonzero(arrays.evaluable)} == set(reference.test)
        for user, uid in enumerate(arrays.data.user_ids):
            assert ids[arrays.target(user, "test")] == reference.test[uid].item_id
            assert ids[arrays.target(user, "valid")] == reference.valid[uid].item_id
            assert [e.item_id for e in arrays.history_events(user, "valid")] == [
                e.item_id for e in reference.train[uid]
            ]


def test_the_two_protocols_pick_different_test_items_for_tied_users(ml100k: Dataset) -> None:
    shuffle = LeaveOneOut(load_bundled_arrays("ml-100k", "shuffle"))
    file = LeaveOneOut(load_bundled_arrays("ml-100k", "file"))
    differ = np.count_nonzero(shuffle.test_item != file.test_item)
    assert 50 < differ < len(shuffle.test_item)  # ties decide a real share of test items


def _id_sorted(split: LeaveOneOut) -> LeaveOneOut:
    """The old protocol (ties by item-id string), rebuilt here only to show the check below can fail."""
    data = split.data
    ids = np.array(data.item_ids, dtype=object)
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))
    order = np.lexsort((rank[data.items], data.timestamps, data.users))
    return LeaveOneOut(
        InteractionArrays(
            name=data.name,
            catalog=data.catalog,
            user_ids=data.user_ids,
            users=data.users[order],
            items=data.items[order],
            ratings=data.ratings[order],
            timestamps=data.timestamps[order],
        )
    )


def test_next_id_in_sort_order_scores_at_chance_on_tied_users() -> None:
    """Same-second ratings sit close in id, so "an id near the last item's" beats chance either way; what the
    old tie-break leaked is the direction (the test item always sorted after the validation item)."""
    split = LeaveOneOut(load_bundled_arrays("ml-1m", "shuffle"))
    users = split.sample_users(2000, seed=0)
    shuffled = tie_diagnostic(split, users)
    leaky = tie_diagnostic(_id_sorted(split), users)
    assert shuffled.tied_users > 500
    # With ties by id "the id right after" finds tied users' test items and "right before" never does...
    assert leaky.next_id_ndcg > 0.03 and leaky.previous_id_ndcg < 0.002
    # ...with the shuffle both directions are worth the same: knowing "next in sort order" is chance level.
    assert abs(shuffled.next_id_ndcg - shuffled.previous_id_ndcg) < 0.01
    assert shuffled.next_id_ndcg < leaky.next_id_ndcg / 1.5
