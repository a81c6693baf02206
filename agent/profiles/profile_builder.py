"""Builds a :class:`UserProfile` from a user's events and the item index, and updates it one event at a time."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from recagent.retrieval import (
    DEFAULT_TIES,
    Interaction,
    ItemIndex,
    TieBreak,
    UnknownItemError,
    chronological,
    unit_vector,
)

from ..privacy import DEFAULT_REDACTOR, Redactor
from .extraction import ExtractionReport, TextExtractor
from .profile import (
    AspectSentiment,
    BehaviourStats,
    Evidence,
    EvidenceSource,
    Interest,
    RatedItem,
    UserProfile,
    summarise,
)

LIKE_THRESHOLD = 4.0
DISLIKE_THRESHOLD = 2.0
EVIDENCE_PER_CLAIM = 3


def event_id(event: Interaction) -> str:
    """A stable name for an event: kind, item and time (Interaction has no id of its own)."""
    when = int(event.timestamp) if float(event.timestamp).is_integer() else event.timestamp
    return f"{event.user_id}/{event.kind}/{event.item_id}@{when}"


class ProfileBuilder:
    """Behaviour → profile.

    Each event's weight is its rating's distance from the user's own mean (so a harsh rater's 4 counts
    like a generous rater's 5), times a recency factor that halves every ``half_life`` events.

    ``update`` applies one new event without replaying the history: every older contribution decays by the
    same factor when an event arrives, so the per-genre totals and the unnormalised vector sums (kept in
    ``profile.behaviour``) are multiplied by it and the new event is added. The one approximation is that
    older events keep the centring of the rating mean they were scored with; ``build`` recentres them all.
    """

    def __init__(
        self,
        index: ItemIndex,
        half_life: int = 30,
        max_listed: int = 20,
        text_extractor: TextExtractor | None = None,
        redactor: Redactor | None = None,
        ties: TieBreak = DEFAULT_TIES,
    ) -> None:
        self.index = index
        self.ties = ties  # the dataset's tie protocol: a profile's order is the split's order
        self.redactor = redactor or DEFAULT_REDACTOR
        self.text_extractor = text_extractor
        self.half_life = half_life
        self.max_listed = max_listed

    @property
    def decay(self) -> float:
        return float(0.5 ** (1.0 / self.half_life))

    def _signal(self, event: Interaction, mean: float | None) -> float:
        if event.rating is not None and event.kind == "rating":
            centre = mean if mean is not None else 3.0
            # Ratings at or above the like threshold always count as positive, even for generous raters.
            signal = (event.rating - centre) / 2.0
            if event.rating >= LIKE_THRESHOLD:
                signal = max(signal, 0.25)
            elif event.rating <= DISLIKE_THRESHOLD:
                signal = min(signal, -0.25)
            return signal
        if event.kind == "like":
            return 1.0
        if event.kind == "dislike":
            return -1.0
        if event.rating is None:
            return 0.5  # a click or view: mild positive signal
        return 0.0

    @staticmethod
    def _is_liked(event: Interaction) -> bool:
        return (event.rating or 0) >= LIKE_THRESHOLD or event.kind == "like"

    @staticmethod
    def _is_disliked(event: Interaction) -> bool:
        return (event.rating is not None and event.rating <= DISLIKE_THRESHOLD) or event.kind == "dislike"

    def build(self, user_id: str, events: Sequence[Interaction]) -> UserProfile:
        catalog = self.index.catalog
        history = [e for e in chronological(events, self.ties) if e.item_id in catalog]
        rated = [e.rating for e in history if e.rating is not None]
        mean = float(np.mean(rated)) if rated else None
        weights = []
        for age, event in enumerate(reversed(history)):
            recency = 0.5 ** (age / self.half_life)
            weights.append((event, self._signal(event, mean) * recency))
        weights.reverse()

        liked = [e for e, _ in weights if self._is_liked(e)]
        disliked = [e for e, _ in weights if self._is_disliked(e)]
        positive = [(e, w) for e, w in weights if w > 0]
        negative = [(e, -w) for e, w in weights if w < 0]
        pos_sum = self._weighted_sum(positive)
        neg_sum = self._weighted_sum(negative)

        stats = self._stats(history)
        totals: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        for event, w in weights:
            for genre in catalog[event.item_id].genres:
                totals[genre] += w
                counts[genre] += 1
        stats.genre_totals = dict(totals)
        stats.genre_counts = dict(counts)
        stats.positive_mass = 0.0 if pos_sum is None else float(np.linalg.norm(pos_sum))
        stats.negative_mass = 0.0 if neg_sum is None else float(np.linalg.norm(neg_sum))
        stats.rating_sum = float(sum(rated))
        vector = None if pos_sum is None else unit_vector(pos_sum)
        negative_vector = None if neg_sum is None else unit_vector(neg_sum)

        profile = UserProfile(
            user_id=user_id,
            liked=[self._rated(e) for e in reversed(liked)][: self.max_listed],
            disliked=[self._rated(e) for e in reversed(disliked)][: self.max_listed],
            interests=self._interests(weights, totals, counts),
            seen=list(dict.fromkeys(e.item_id for e in history)),
            event_count=len(history),
            rating_mean=mean,
            behaviour=stats,
            vector=None if vector is None else vector.tolist(),
            negative_vector=None if negative_vector is None else negative_vector.tolist(),
        )
        profile.summary = summarise(profile)
        return profile

    def update(self, profile: UserProfile, event: Interaction) -> UserProfile:
        """The profile after one more event, without replaying the history (see the class docstring)."""
        catalog = self.index.catalog
        if event.item_id not in catalog:
            raise UnknownItemError(f"unknown item {event.item_id!r}")
        stats = profile.behaviour.model_copy(deep=True)
        if event.rating is not None:
            stats.rating_sum += event.rating
            stats.rating_count += 1
        mean = stats.rating_sum / stats.rating_count if stats.rating_count else None
        weight = self._signal(event, mean)
        decay = self.decay

        totals = {g: v * decay for g, v in stats.genre_totals.items()}
        counts = dict(stats.genre_counts)
        for genre in catalog[event.item_id].genres:
            totals[genre] = totals.get(genre, 0.0) + weight
            counts[genre] = counts.get(genre, 0) + 1
        stats.genre_totals, stats.genre_counts = totals, counts

        item_vec = self.index.text_vector(event.item_id).astype(np.float32)

        def mix(unit: list[float] | None, mass: float, add: float) -> tuple[list[float] | None, float]:
            total = np.zeros_like(item_vec) if unit is None else np.asarray(unit, np.float32) * mass * decay
            total = total + add * item_vec
            vec = unit_vector(total)
            return (None, 0.0) if vec is None else (vec.tolist(), float(np.linalg.norm(total)))

        vector, stats.positive_mass = mix(profile.vector, stats.positive_mass, max(weight, 0.0))
        negative, stats.negative_mass = mix(profile.negative_vector, stats.negative_mass, max(-weight, 0.0))
        self._stats_add(stats, event)

        interests = self._merge_interest(profile.interests, totals, counts, event, weight)
        liked, disliked = list(profile.liked), list(profile.disliked)
        if self._is_liked(event):
            liked = [self._rated(event), *liked][: self.max_listed]
        if self._is_disliked(event):
            disliked = [self._rated(event), *disliked][: self.max_listed]
        seen = profile.seen if event.item_id in profile.seen else [*profile.seen, event.item_id]
        updated = profile.model_copy(
            update={
                "liked": liked,
                "disliked": disliked,
                "interests": interests,
                "seen": seen,
                "event_count": profile.event_count + 1,
                "rating_mean": mean,
                "behaviour": stats,
                "vector": vector,
                "negative_vector": negative,
            }
        )
        updated.summary = summarise(updated)
        return updated

    def _merge_interest(
        self,
        interests: list[Interest],
        totals: dict[str, float],
        counts: dict[str, int],
        event: Interaction,
        weight: float,
    ) -> list[Interest]:
        by_tag = {i.tag: i for i in interests if i.extractor == "behaviour"}
        text_claims = [i for i in interests if i.extractor != "behaviour"]
        scale = max((abs(v) for v in totals.values()), default=0.0) or 1.0
        genres = set(self.index.catalog[event.item_id].genres)
        out = []
        for genre, total in totals.items():
            value = max(-1.0, min(1.0, total / scale))
            if abs(value) < 0.05:
                continue
            evidence = list(by_tag[genre].evidence) if genre in by_tag else []
            if genre in genres and (weight > 0) == (value > 0) and weight != 0:
                evidence = [self._evidence(event, weight), *evidence][:EVIDENCE_PER_CLAIM]
            evidence = [e for e in evidence if (e.weight > 0) == (value > 0)]
            out.append(
                Interest(
                    tag=genre,
                    weight=round(value, 4),
                    confidence=round(1.0 - 1.0 / (1.0 + counts[genre] / 3.0), 4),
                    evidence=evidence,
                )
            )
        return sorted([*out, *text_claims], key=lambda i: -abs(i.weight))

    def _stats(self, history: Sequence[Interaction]) -> BehaviourStats:
        stats = BehaviourStats()
        for event in history:
            if event.rating is not None:
                stats.rating_count += 1
            self._stats_add(stats, event, recompute=False)
        self._rhythm(stats, [e.timestamp for e in history])
        rated = [e.rating for e in history if e.rating is not None]
        stats.rating_mean = float(np.mean(rated)) if rated else None
        return stats

    def _stats_add(self, stats: BehaviourStats, event: Interaction, recompute: bool = True) -> None:
        stats.counts[event.kind] = stats.counts.get(event.kind, 0) + 1
        if event.timestamp > 0:
            when = datetime.fromtimestamp(event.timestamp, UTC)
            stats.hour_histogram[when.hour] += 1
            stats.weekday_histogram[when.weekday()] += 1
            first = stats.first_timestamp
            stats.first_timestamp = event.timestamp if first is None else min(first, event.timestamp)
            last = stats.last_timestamp
            if recompute and (last is None or int(event.timestamp) // 86400 != int(last) // 86400):
                stats.active_days += 1  # events arrive in time order, so a new day is a new active day
            if recompute and last is not None and event.timestamp > last:
                # A running approximation: the new gap folds into the median like one more sample.
                gap = (event.timestamp - last) / 3600.0
                old = stats.median_gap_hours
                stats.median_gap_hours = gap if old is None else round(old * 0.9 + gap * 0.1, 4)
            stats.last_timestamp = event.timestamp if last is None else max(last, event.timestamp)
        if recompute:
            stats.rating_mean = stats.rating_sum / stats.rating_count if stats.rating_count else None
            total = sum(stats.counts.values())
            stats.events_per_active_day = round(total / max(stats.active_days, 1), 3)

    @staticmethod
    def _rhythm(stats: BehaviourStats, timestamps: Sequence[float]) -> None:
        times = sorted(t for t in timestamps if t > 0)
        days = {int(t) // 86400 for t in times}
        stats.active_days = len(days)
        stats.events_per_active_day = round(len(timestamps) / max(len(days), 1), 3)
        gaps = [(b - a) / 3600.0 for a, b in zip(times, times[1:], strict=False) if b > a]
        stats.median_gap_hours = round(statistics.median(gaps), 4) if gaps else None

    def _rated(self, event: Interaction) -> RatedItem:
        item = self.index.catalog[event.item_id]
        return RatedItem(
            item_id=item.id, title=item.display_title, rating=event.rating, timestamp=event.timestamp
        )

    def _weighted_sum(self, pairs: Sequence[tuple[Interaction, float]]) -> np.ndarray | None:
        if not pairs:
            return None
        vecs = self.index.text_vectors_for([e.item_id for e, _ in pairs])
        w = np.array([w for _, w in pairs], dtype=np.float32)
        return (vecs * w[:, None]).sum(axis=0)

    def _evidence(self, event: Interaction, weight: float) -> Evidence:
        title = self.index.catalog[event.item_id].display_title
        return Evidence(
            source="rating" if event.kind == "rating" else "event",
            item_id=event.item_id,
            text=f"rated {title} {event.rating:g}/5"
            if event.rating is not None
            else f"{event.kind} on {title}",
            weight=round(weight, 4),
            source_id=event_id(event),
            extractor="behaviour",
        )

    def _interests(
        self,
        weights: Sequence[tuple[Interaction, float]],
        totals: dict[str, float],
        counts: dict[str, int],
    ) -> list[Interest]:
        """Genre weights: the sum of event weights per genre, scaled into [-1, 1] by the largest magnitude."""
        support: dict[str, list[tuple[float, Interaction]]] = defaultdict(list)
        for event, w in weights:
            for genre in self.index.catalog[event.item_id].genres:
                support[genre].append((w, event))
        if not totals:
            return []
        scale = max(abs(v) for v in totals.values()) or 1.0
        interests = []
        for genre, total in totals.items():
            weight = max(-1.0, min(1.0, total / scale))
            if abs(weight) < 0.05:
                continue
            strongest = sorted(support[genre], key=lambda p: -p[0] if weight > 0 else p[0])
            evidence = [self._evidence(e, w) for w, e in strongest if (w > 0) == (weight > 0) and w != 0]
            confidence = 1.0 - 1.0 / (1.0 + counts[genre] / 3.0)
            interests.append(
                Interest(
                    tag=genre,
                    weight=round(weight, 4),
                    confidence=round(confidence, 4),
                    evidence=evidence[:EVIDENCE_PER_CLAIM],
                )
            )
        return sorted(interests, key=lambda i: -abs(i.weight))

    def update_from_text(
        self,
        profile: UserProfile,
        text: str,
        source: EvidenceSource = "review",
        source_id: str | None = None,
        item_id: str | None = None,
    ) -> tuple[UserProfile, ExtractionReport]:
        """Read one review, comment or chat turn into aspects and interests, without a rebuild.

        The text is redacted first; only the redacted text reaches the extractor (and any LLM) and the quotes.
        """
        if self.text_extractor is None:
            raise ValueError("this ProfileBuilder has no text extractor")
        report = self.text_extractor.extract(self.redactor(text))
        return merge_claims(profile, report, source, source_id, item_id), report


MAX_TEXT_EVIDENCE = 5


def merge_claims(
    profile: UserProfile,
    report: ExtractionReport,
    source: EvidenceSource,
    source_id: str | None,
    item_id: str | None = None,
) -> UserProfile:
    """Fold extracted claims into the profile: running mean polarity per aspect or tag, newest evidence first."""
    aspects = {a.aspect: a for a in profile.aspects}
    behaviour = [i for i in profile.interests if i.extractor == "behaviour"]
    text_interests = {i.tag: i for i in profile.interests if i.extractor != "behaviour"}
    for claim in report.claims:
        evidence = Evidence(
            source=source,
            item_id=item_id,
            text=f'{source} said "{claim.quote[:120]}"',
            weight=claim.polarity,
            source_id=source_id,
            quote=claim.quote,
            extractor=report.extractor,
        )
        if claim.kind == "aspect":
            old = aspects.get(claim.name)
            mentions = 1 if old is None else old.mentions + 1
            mean = (
                claim.polarity if old is None else (old.polarity * old.mentions + claim.polarity) / mentions
            )
            aspects[claim.name] = AspectSentiment(
                aspect=claim.name,
                polarity=round(max(-1.0, min(1.0, mean)), 4),
                strength=round(min(1.0, abs(mean) * mentions / (mentions + 1)), 4),
                mentions=mentions,
                evidence=[evidence, *([] if old is None else old.evidence)][:MAX_TEXT_EVIDENCE],
                extractor=report.extractor,
            )
        else:
            prev = text_interests.get(claim.name)
            n = 1 if prev is None else len(prev.evidence) + 1
            mean = claim.polarity if prev is None else (prev.weight * (n - 1) + claim.polarity) / n
            text_interests[claim.name] = Interest(
                tag=claim.name,
                weight=round(max(-1.0, min(1.0, mean)), 4),
                confidence=round(n / (n + 2), 4),
                evidence=[evidence, *([] if prev is None else prev.evidence)][:MAX_TEXT_EVIDENCE],
                extractor=report.extractor,
            )
    updated = profile.model_copy(
        update={
            "aspects": sorted(aspects.values(), key=lambda a: -a.strength),
            "interests": sorted([*behaviour, *text_interests.values()], key=lambda i: -abs(i.weight)),
        }
    )
    updated.summary = summarise(updated)
    return updated
