"""The event-level leave-one-out the columnar split (``recagent.retrieval.LeaveOneOut``) is checked against.

Kept in the tests as the readable reference: the served, fine-tuning and evaluation code all use the
columnar split, and ``test_split.py`` proves the two agree user by user under both tie protocols.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from recagent.retrieval import DEFAULT_TIES, Interaction, TieBreak, group_by_user


class LeaveOneOutSplit(BaseModel):
    """Chronological leave-one-out: last event is test, the one before is validation, the rest train."""

    train: dict[str, list[Interaction]]
    valid: dict[str, Interaction]
    test: dict[str, Interaction]

    @classmethod
    def from_events(
        cls, events: Sequence[Interaction], min_events: int = 3, ties: TieBreak = DEFAULT_TIES, seed: int = 0
    ) -> LeaveOneOutSplit:
        train: dict[str, list[Interaction]] = {}
        valid: dict[str, Interaction] = {}
        test: dict[str, Interaction] = {}
        for user, history in group_by_user(events, ties, seed).items():
            if len(history) < min_events:
                train[user] = history
                continue
            train[user], valid[user], test[user] = history[:-2], history[-2], history[-1]
        return cls(train=train, valid=valid, test=test)
