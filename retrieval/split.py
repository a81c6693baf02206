"""Chronological leave-one-out on columnar data: the one split that serving, fine-tuning and evaluation share.

Last event = test, the one before = validation, the rest train; users with fewer than ``min_events`` events only
train. It is :class:`LeaveOneOutSplit` computed on numpy arrays (ml-1m splits in a second), with the same
tie-break protocol (``InteractionArrays.ties``). Every model is fitted on the TRAIN rows only; validation picks
hyper-parameters; test is touched once, by the final report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .datasets import InteractionArrays
from .events import Interaction

Phase = Literal["valid", "test"]


@dataclass
class LeaveOneOut:
    data: InteractionArrays
    min_events: int = 3
    bounds: np.ndarray = field(init=False)
    train_mask: np.ndarray = field(init=False)
    evaluable: np.ndarray = field(init=False)
    valid_item: np.ndarray = field(init=False)
    test_item: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.bounds = self.data.user_slices()
        n_users = len(self.data.user_ids)
        lengths = np.diff(self.bounds)
        self.evaluable = lengths >= self.min_events
        self.train_mask = np.ones(len(self.data.items), dtype=bool)
        self.valid_item = np.full(n_users, -1, dtype=np.int64)
        self.test_item = np.full(n_users, -1, dtype=np.int64)
        ends = self.bounds[1:]
        users = np.flatnonzero(self.evaluable)
        self.train_mask[ends[users] - 1] = False
        self.train_mask[ends[users] - 2] = False
        self.test_item[users] = self.data.items[ends[users] - 1]
        self.valid_item[users] = self.data.items[ends[users] - 2]

    @property
    def n_items(self) -> int:
        return len(self.data.catalog)

    @property
    def n_users(self) -> int:
        return len(self.data.user_ids)

    def train_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = self.train_mask
        return self.data.users[m], self.data.items[m], self.data.ratings[m]

    def history(self, user: int, phase: Phase) -> tuple[np.ndarray, np.ndarray]:
        """(items, ratings) the user had before the held-out item of ``phase``, oldest first."""
        start, end = self.bounds[user], self.bounds[user + 1]
        end -= 2 if phase == "valid" else 1
        return self.data.items[start:end], self.data.ratings[start:end]

    def history_events(self, user: int, phase: Phase) -> list[Interaction]:
        """The same history as events, for the served pipeline (profiles, sequence state)."""
        length = int(self.bounds[user + 1] - self.bounds[user]) - (2 if phase == "valid" else 1)
        return self.data.events(user, 0, length)

    def target(self, user: int, phase: Phase) -> int:
        return int(self.valid_item[user] if phase == "valid" else self.test_item[user])

    def sample_users(self, n: int | None, seed: int = 0) -> np.ndarray:
        """A fixed, seeded random sample of evaluable users (all of them when ``n`` is None or too big)."""
        users = np.flatnonzero(self.evaluable)
        if n is None or n >= len(users):
            return users
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(users, size=n, replace=False))
