"""Builds a :class:`UserProfile` from a user's events and the item index."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from recagent.retrieval import Interaction, ItemIndex, chronological

from .profile import Evidence, Interest, RatedItem, UserProfile

LIKE_THRESHOLD = 4.0
DISLIKE_THRESHOLD = 2.0


def _unit(vec: np.ndarray) -> np.ndarray | None:
    norm = float(np.linalg.norm(vec))
    return None if norm == 0 or not math.isfinite(norm) else vec / norm


class ProfileBuilder:
    """Behaviour → profile.

    Each event's weight is its rating's distance from the user's own mean (so a harsh rater's 4 counts
    like a generous rater's 5), times a recency factor that halves every ``half_life`` events.
    """

    def __init__(self, index: ItemIndex, half_life: int = 30, max_listed: int = 20) -> None:
        self.index = index
        self.half_life = half_life
        self.max_listed = max_listed

    def _rating_sign(self, event: Interaction) -> float:
        if event.kind == "like":
            return 1.0
        if event.kind == "dislike":
            return -1.0
        if event.rating is None:
            return 0.5  # a click or view: mild positive signal
        return 0.0

    def build(self, user_id: str, events: Sequence[Interaction]) -> UserProfile:
        catalog = self.index.catalog
        history = [e for e in chronological(events) if e.item_id in catalog]
        rated = [e.rating for e in history if e.rating is not None]
        mean = float(np.mean(rated)) if rated else None
        n = len(history)
        weights = []
        for age, event in enumerate(reversed(history)):
            recency = 0.5 ** (age / self.half_life)
            if event.rating is not None and event.kind == "rating":
                centre = mean if mean is not None else 3.0
                # Ratings at or above the like threshold always count as positive, even for generous raters.
                signal = (event.rating - centre) / 2.0
                if event.rating >= LIKE_THRESHOLD:
                    signal = max(signal, 0.25)
                elif event.rating <= DISLIKE_THRESHOLD:
                    signal = min(signal, -0.25)
            else:
                signal = self._rating_sign(event)
            weights.append((event, signal * recency))
        weights.reverse()

        liked = [e for e, _ in weights if (e.rating or 0) >= LIKE_THRESHOLD or e.kind == "like"]
        disliked = [
            e
            for e, _ in weights
            if (e.rating is not None and e.rating <= DISLIKE_THRESHOLD) or e.kind == "dislike"
        ]

        positive = [(e, w) for e, w in weights if w > 0]
        negative = [(e, -w) for e, w in weights if w < 0]
        vector = self._weighted_mean(positive)
        negative_vector = self._weighted_mean(negative)

        return UserProfile(
            user_id=user_id,
            liked=[self._rated(e) for e in reversed(liked)][: self.max_listed],
            disliked=[self._rated(e) for e in reversed(disliked)][: self.max_listed],
            interests=self._interests(weights),
            seen=list(dict.fromkeys(e.item_id for e in history)),
            event_count=n,
            rating_mean=mean,
            vector=None if vector is None else vector.tolist(),
            negative_vector=None if negative_vector is None else negative_vector.tolist(),
        )

    def _rated(self, event: Interaction) -> RatedItem:
        item = self.index.catalog[event.item_id]
        return RatedItem(
            item_id=item.id, title=item.display_title, rating=event.rating, timestamp=event.timestamp
        )

    def _weighted_mean(self, pairs: Sequence[tuple[Interaction, float]]) -> np.ndarray | None:
        if not pairs:
            return None
        vecs = self.index.vectors_for([e.item_id for e, _ in pairs])
        w = np.array([w for _, w in pairs], dtype=np.float32)
        return _unit((vecs * w[:, None]).sum(axis=0))

    def _interests(self, weights: Sequence[tuple[Interaction, float]]) -> list[Interest]:
        """Genre weights: the sum of event weights per genre, scaled into [-1, 1] by the largest magnitude."""
        totals: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        support: dict[str, list[tuple[float, Interaction]]] = defaultdict(list)
        for event, w in weights:
            for genre in self.index.catalog[event.item_id].genres:
                totals[genre] += w
                counts[genre] += 1
                support[genre].append((w, event))
        if not totals:
            return []
        scale = max(abs(v) for v in totals.values()) or 1.0
        interests = []
        for genre, total in totals.items():
            weight = max(-1.0, min(1.0, total / scale))
            if abs(weight) < 0.05:
                continue
            strongest = sorted(support[genre], key=lambda p: -p[0] if weight > 0 else p[0])[:3]
            evidence = [
                Evidence(
                    source="rating",
                    item_id=e.item_id,
                    text=f"rated {self.index.catalog[e.item_id].display_title} {e.rating:g}/5"
                    if e.rating is not None
                    else f"{e.kind} on {self.index.catalog[e.item_id].display_title}",
                    weight=round(w, 4),
                )
                for w, e in strongest
                if (w > 0) == (weight > 0)
            ]
            confidence = 1.0 - 1.0 / (1.0 + counts[genre] / 3.0)
            interests.append(
                Interest(
                    tag=genre, weight=round(weight, 4), confidence=round(confidence, 4), evidence=evidence
                )
            )
        return sorted(interests, key=lambda i: -abs(i.weight))
