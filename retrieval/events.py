"""Interaction events: what users did with items."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .items import DataFileError, _read_rows, _validate

EventKind = Literal["rating", "click", "review", "like", "dislike"]


class Interaction(BaseModel):
    """One event. ``rating`` is on the catalogue's scale (MovieLens: 1-5)."""

    model_config = ConfigDict(frozen=True)

    user_id: str = Field(min_length=1, max_length=256)
    item_id: str = Field(min_length=1, max_length=512)
    rating: float | None = Field(default=None, ge=0, le=10)
    timestamp: float = 0.0
    kind: EventKind = "rating"
    review: str | None = Field(default=None, max_length=20_000)


def load_events(path: str | Path) -> list[Interaction]:
    """Read events from CSV or JSONL: ``user_id``, ``item_id`` required; ``rating``, ``timestamp``, ``review`` optional."""
    path = Path(path)
    aliases = {"user": "user_id", "item": "item_id", "text": "review"}
    events = []
    for row_no, row in _read_rows(path, required=("user_id", "item_id"), aliases=aliases):
        data = {k: v for k, v in row.items() if k in Interaction.model_fields and v not in (None, "")}
        events.append(_validate(Interaction, data, path, row_no))
    if not events:
        raise DataFileError(f"{path}: no events found")
    return events


def chronological(events: Iterable[Interaction]) -> list[Interaction]:
    """Sort by time with a fixed tie-break (item id), so equal timestamps always order the same way."""
    return sorted(events, key=lambda e: (e.timestamp, e.item_id))


def group_by_user(events: Iterable[Interaction]) -> dict[str, list[Interaction]]:
    """Each user's events in chronological order."""
    by_user: dict[str, list[Interaction]] = {}
    for event in events:
        by_user.setdefault(event.user_id, []).append(event)
    return {user: chronological(evs) for user, evs in by_user.items()}


class LeaveOneOutSplit(BaseModel):
    """Chronological leave-one-out: last event is test, the one before is validation, the rest train."""

    train: dict[str, list[Interaction]]
    valid: dict[str, Interaction]
    test: dict[str, Interaction]

    @classmethod
    def from_events(cls, events: Sequence[Interaction], min_events: int = 3) -> LeaveOneOutSplit:
        train: dict[str, list[Interaction]] = {}
        valid: dict[str, Interaction] = {}
        test: dict[str, Interaction] = {}
        for user, history in group_by_user(events).items():
            if len(history) < min_events:
                train[user] = history
                continue
            train[user], valid[user], test[user] = history[:-2], history[-2], history[-1]
        return cls(train=train, valid=valid, test=test)
