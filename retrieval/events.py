"""Interaction events: what users did with items."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .items import DataFileError, _read_rows, _validate

EventKind = Literal["rating", "click", "review", "like", "dislike"]

# How events with the same timestamp are ordered (42% of ML-1M users rated their last two items in the same
# second, so this decides their held-out item):
#   shuffle: a seeded per-user pseudo-random order, hash(seed, user, item): deterministic, independent of the
#            input order, and carrying no global item order a sequential model could learn (the default);
#   file:    the order the events were given in (a stable sort; the ratings file's own order), which is what
#            published MovieLens numbers use.
TieBreak = Literal["shuffle", "file"]
DEFAULT_TIES: TieBreak = "shuffle"


def tie_key(user_id: str, item_id: str, seed: int = 0) -> int:
    """The shuffle protocol's rank of an event among its user's same-second events."""
    digest = hashlib.blake2b(f"{seed}\x1f{user_id}\x1f{item_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


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


def chronological(
    events: Iterable[Interaction], ties: TieBreak = DEFAULT_TIES, seed: int = 0
) -> list[Interaction]:
    """Sort by time; equal timestamps are ordered by the ``ties`` protocol (see :data:`TieBreak`)."""
    if ties == "file":
        return sorted(events, key=lambda e: e.timestamp)  # stable: the given order within a second
    if ties != "shuffle":
        raise ValueError(f"unknown tie-break {ties!r}; use 'shuffle' or 'file'")
    return sorted(events, key=lambda e: (e.timestamp, tie_key(e.user_id, e.item_id, seed)))


def group_by_user(
    events: Iterable[Interaction], ties: TieBreak = DEFAULT_TIES, seed: int = 0
) -> dict[str, list[Interaction]]:
    """Each user's events in chronological order."""
    by_user: dict[str, list[Interaction]] = {}
    for event in events:
        by_user.setdefault(event.user_id, []).append(event)
    return {user: chronological(evs, ties, seed) for user, evs in by_user.items()}
