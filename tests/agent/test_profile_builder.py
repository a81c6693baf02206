from __future__ import annotations

import numpy as np
import pytest

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


@pytest.mark.slow
def test_ml1m_profile_has_interests_and_dislikes_backed_by_real_ratings(encoder) -> None:
    """A real MovieLens-1M user; the index holds the items that user rated (encoded for real)."""
    from recagent.retrieval import Catalog, load_bundled

    ml1m = load_bundled("ml-1m")
    history = ml1m.history("10")
    catalog = Catalog(
        [ml1m.catalog[i] for i in dict.fromkeys(e.item_id for e in history)], name="ml-1m-user-10"
    )
    index = ItemIndex.build(catalog, encoder)
    profile = ProfileBuilder(index).build("10", history)
    ratings = {e.item_id: e.rating for e in history}
    likes, dislikes = profile.top_interests(5), profile.top_interests(5, positive=False)
    assert likes and dislikes, profile.summary
    for interest in likes + dislikes:
        assert interest.evidence
        for ev in interest.evidence:
            assert ev.item_id in ratings and interest.tag in ml1m.catalog[ev.item_id].genres
            assert ev.source_id is not None and ev.item_id in ev.source_id
            assert (ev.weight > 0) == (interest.weight > 0)
            assert f"{ratings[ev.item_id]:g}/5" in ev.text
    assert profile.behaviour.counts == {"rating": len(history)} and profile.behaviour.active_days >= 1
    assert profile.negative_vector is not None and profile.summary.startswith("User 10 has")


def test_incremental_update_matches_a_rebuild(ml100k: Dataset, ml100k_index: ItemIndex) -> None:
    builder = ProfileBuilder(ml100k_index)
    history = ml100k.history("13")
    base, new = history[:-10], history[-10:]
    profile = builder.build("13", base)
    for event in new:
        profile = builder.update(profile, event)
    rebuilt = builder.build("13", history)
    assert profile.event_count == rebuilt.event_count and set(profile.seen) == set(rebuilt.seen)
    assert profile.rating_mean == pytest.approx(rebuilt.rating_mean)
    assert float(np.dot(profile.vector, rebuilt.vector)) > 0.995
    assert float(np.dot(profile.negative_vector, rebuilt.negative_vector)) > 0.98
    assert [i.tag for i in profile.top_interests(3)] == [i.tag for i in rebuilt.top_interests(3)]
    assert profile.behaviour.counts == rebuilt.behaviour.counts
    assert [r.item_id for r in profile.liked[:5]] == [r.item_id for r in rebuilt.liked[:5]]
