from __future__ import annotations

from recagent.retrieval import Dataset, load_bundled

from .event_split import LeaveOneOutSplit


def test_ml100k_loads_from_site_packages(ml100k: Dataset) -> None:
    assert len(ml100k.catalog) == 1682
    assert len(ml100k.events) == 100_000
    assert len(ml100k.users) == 943
    assert ml100k.catalog["1"].title == "Toy Story" and ml100k.catalog["1"].year == 1995
    assert "Animation" in ml100k.catalog["1"].genres


def test_leave_one_out_is_chronological_and_leak_free(ml100k: Dataset) -> None:
    split = LeaveOneOutSplit.from_events(ml100k.events, ties=ml100k.ties)
    assert len(split.test) == 943
    for user, test_event in list(split.test.items())[:200]:
        train = split.train[user]
        valid = split.valid[user]
        assert all(e.timestamp <= valid.timestamp for e in train)
        assert valid.timestamp <= test_event.timestamp
        assert test_event not in train and valid not in train
        assert len(train) + 2 == len(ml100k.history(user))


def test_ml1m_user_ids_are_plain() -> None:
    data = load_bundled("ml-1m")
    assert len(data.catalog) == 3883
    assert "1" in data.by_user and len(data.by_user) == 6040
