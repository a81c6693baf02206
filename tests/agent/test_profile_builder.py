from __future__ import annotations

import numpy as np

from recagent.agent import ProfileBuilder
from recagent.retrieval import Dataset, Interaction, ItemIndex


def test_profile_from_real_history(ml100k: Dataset, ml100k_index: ItemIndex) -> None:
    history = ml100k.history("1")
    profile = ProfileBuilder(ml100k_index).build("1", history)
    ratings = {e.item_id: e.rating for e in history}
    assert profile.event_count == len(history)
    assert profile.liked and all(ratings[r.item_id] >= 4 for r in profile.liked)
    assert all(ratings[r.item_id] <= 2 for r in profile.disliked)
    assert set(profile.seen) == set(ratings)
    vec = np.asarray(profile.vector)
    assert abs(np.linalg.norm(vec) - 1) < 1e-4
    assert profile.interests and all(-1 <= i.weight <= 1 for i in profile.interests)
    for interest in profile.interests[:5]:
        assert interest.evidence, interest.tag
        for ev in interest.evidence:
            assert ev.item_id in ratings
            assert interest.tag in ml100k.catalog[ev.item_id].genres


def test_genre_weights_follow_ratings(ml100k_index: ItemIndex) -> None:
    catalog = ml100k_index.catalog
    horror = [i.id for i in catalog if "Horror" in i.genres][:5]
    comedy = [i.id for i in catalog if i.genres == ("Comedy",)][:5]
    events = [Interaction(user_id="u", item_id=i, rating=5, timestamp=t) for t, i in enumerate(comedy)]
    events += [Interaction(user_id="u", item_id=i, rating=1, timestamp=10 + t) for t, i in enumerate(horror)]
    profile = ProfileBuilder(ml100k_index).build("u", events)
    assert profile.interest_weight("Comedy") > 0.3
    assert profile.interest_weight("Horror") < -0.5
    assert {r.item_id for r in profile.disliked} == set(horror)
    # The long-term vector points towards the liked items, away from the disliked ones.
    vec = np.asarray(profile.vector)
    assert ml100k_index.vectors_for(comedy).mean(0) @ vec > ml100k_index.vectors_for(horror).mean(0) @ vec
