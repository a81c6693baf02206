"""The user profile: what a person likes and dislikes, and the evidence behind each claim.

Version 1 adds aspect sentiment, stated constraints, behaviour statistics, a session (short-term) part and
a summary that is always generated *from* the structured fields. Version 0 profiles still load: every new
field has a default, and unknown fields survive (``extra="allow"``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from recagent.retrieval import ItemFilter

PROFILE_SCHEMA_VERSION = 2  # 2: vectors always in text space (the index may fuse behaviour)

EvidenceSource = Literal["rating", "review", "chat", "click", "request", "event"]
Extractor = Literal["behaviour", "fast", "llm"]


class Evidence(BaseModel):
    """Where a claim comes from: a rated item, a review span, a chat turn.

    ``source_id`` names the event, review or chat turn; ``quote`` is the exact span of (redacted) text the
    claim rests on, empty for behavioural evidence.
    """

    source: EvidenceSource
    item_id: str | None = None
    text: str = Field(default="", max_length=500)
    weight: float = 0.0
    source_id: str | None = Field(default=None, max_length=256)
    quote: str = Field(default="", max_length=500)
    extractor: Extractor = "behaviour"


class Interest(BaseModel):
    """A tag or topic with a weight in [-1, 1]; negative means dislike."""

    tag: str
    weight: float = Field(ge=-1.0, le=1.0)
    confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    evidence: list[Evidence] = Field(default_factory=list)
    extractor: Extractor = "behaviour"


class AspectSentiment(BaseModel):
    """How the user feels about one aspect of items (plot, acting, fit, fabric, sizing, price...)."""

    aspect: str
    polarity: float = Field(ge=-1.0, le=1.0, description="Mean sentiment over the mentions, -1..1.")
    strength: float = Field(ge=0.0, le=1.0, description="How sure and how often: grows with mentions.")
    mentions: int = Field(default=1, ge=1)
    evidence: list[Evidence] = Field(default_factory=list)
    extractor: Extractor = "fast"


ConstraintField = Literal[
    "exclude_genre", "include_genre", "year_min", "year_max", "price_max", "mood", "avoid"
]


class Constraint(BaseModel):
    """Something the user stated. Hard constraints filter retrieval; soft ones only steer it."""

    kind: Literal["hard", "soft"]
    field: ConstraintField
    value: str | int | float
    quote: str = Field(default="", max_length=300, description="The words it was read from.")
    source_id: str | None = None
    extractor: Extractor = "fast"


class BehaviourStats(BaseModel):
    """Counts, rating mean, recency and activity rhythm of a user's events."""

    counts: dict[str, int] = Field(default_factory=dict, description="Events per kind.")
    rating_mean: float | None = None
    rating_count: int = 0
    first_timestamp: float | None = None
    last_timestamp: float | None = None
    active_days: int = 0
    events_per_active_day: float = 0.0
    median_gap_hours: float | None = None
    hour_histogram: list[int] = Field(default_factory=lambda: [0] * 24, description="Events per UTC hour.")
    weekday_histogram: list[int] = Field(default_factory=lambda: [0] * 7, description="Monday first.")
    # Accumulators that let one new event update the profile without replaying the history.
    genre_totals: dict[str, float] = Field(default_factory=dict)
    genre_counts: dict[str, int] = Field(default_factory=dict)
    positive_mass: float = 0.0
    negative_mass: float = 0.0
    rating_sum: float = 0.0


class SessionMemory(BaseModel):
    """The part of the profile that belongs to one conversation: what the user wants right now."""

    session_id: str
    turns: list[str] = Field(default_factory=list, description="Redacted user turns, oldest first.")
    short_term_vector: list[float] | None = None
    avoid_vector: list[float] | None = Field(
        default=None,
        description="Things the user said not to want this session ('not another superhero movie').",
    )
    constraints: list[Constraint] = Field(default_factory=list)
    interests: list[Interest] = Field(default_factory=list)

    def item_filter(self) -> ItemFilter:
        return constraints_filter(self.constraints)


class RatedItem(BaseModel):
    item_id: str
    title: str
    rating: float | None = None
    timestamp: float = 0.0


class UserProfile(BaseModel):
    model_config = ConfigDict(extra="allow")

    schema_version: int = PROFILE_SCHEMA_VERSION
    user_id: str
    liked: list[RatedItem] = Field(default_factory=list, description="Most recent first.")
    disliked: list[RatedItem] = Field(default_factory=list, description="Most recent first.")
    interests: list[Interest] = Field(default_factory=list, description="Strongest first.")
    aspects: list[AspectSentiment] = Field(default_factory=list, description="Strongest first.")
    constraints: list[Constraint] = Field(
        default_factory=list, description="Standing (long-term) constraints."
    )
    seen: list[str] = Field(default_factory=list, description="Every item the user interacted with.")
    event_count: int = 0
    rating_mean: float | None = None
    behaviour: BehaviourStats = Field(default_factory=BehaviourStats)
    vector: list[float] | None = Field(
        default=None, description="Long-term: rating- and recency-weighted mean of liked items."
    )
    negative_vector: list[float] | None = Field(default=None, description="Mean of disliked items.")
    short_term_vector: list[float] | None = Field(
        default=None, description="The current session's turns, most recent weighted most."
    )
    session: SessionMemory | None = None
    summary: str = Field(default="", description="Generated from the structured fields by summarise().")

    @property
    def is_cold(self) -> bool:
        return self.event_count == 0

    def top_interests(self, n: int = 5, positive: bool = True) -> list[Interest]:
        chosen = [i for i in self.interests if (i.weight > 0) == positive and i.weight != 0]
        return sorted(chosen, key=lambda i: -abs(i.weight))[:n]

    def interest_weight(self, tag: str) -> float:
        tag = tag.lower()
        return next((i.weight for i in self.interests if i.tag.lower() == tag), 0.0)

    def aspect(self, name: str) -> AspectSentiment | None:
        return next((a for a in self.aspects if a.aspect.lower() == name.lower()), None)

    def hard_filter(self) -> ItemFilter:
        """Standing hard constraints plus the session's, as a retrieval filter."""
        found = constraints_filter(self.constraints)
        return found.merged(self.session.item_filter()) if self.session is not None else found


def constraints_filter(constraints: list[Constraint]) -> ItemFilter:
    """Hard constraints → ItemFilter; the latest statement of a year bound wins within one list."""
    include: list[str] = []
    exclude: list[str] = []
    year_min: int | None = None
    year_max: int | None = None
    for c in constraints:
        if c.kind != "hard":
            continue
        if c.field == "exclude_genre":
            exclude.append(str(c.value))
            include = [g for g in include if g.lower() != str(c.value).lower()]
        elif c.field == "include_genre":
            include.append(str(c.value))
            exclude = [g for g in exclude if g.lower() != str(c.value).lower()]
        elif c.field == "year_min":
            year_min = int(c.value)
        elif c.field == "year_max":
            year_max = int(c.value)
    return ItemFilter(
        include_genres=tuple(dict.fromkeys(include)),
        exclude_genres=tuple(dict.fromkeys(exclude)),
        year_min=year_min,
        year_max=year_max,
    )


def _fmt_tags(interests: list[Interest]) -> str:
    return ", ".join(f"{i.tag} ({i.weight:+.2f})" for i in interests)


def summarise(profile: UserProfile) -> str:
    """One paragraph from the structured fields; never parsed back (the fields are the truth)."""
    parts: list[str] = []
    stats = profile.behaviour
    if profile.event_count:
        mean = f", rating {profile.rating_mean:.1f}/5 on average" if profile.rating_mean is not None else ""
        rhythm = ""
        if stats.active_days:
            rhythm = f" over {stats.active_days} active day{'s' if stats.active_days != 1 else ''}"
        parts.append(f"User {profile.user_id} has {profile.event_count} events{rhythm}{mean}.")
    elif profile.aspects or profile.interests:
        parts.append(f"User {profile.user_id} has no rated events; this profile comes from what they wrote.")
    else:
        parts.append(f"User {profile.user_id} has no recorded events yet.")
    likes = profile.top_interests(4)
    if likes:
        parts.append(f"They like {_fmt_tags(likes)}.")
    dislikes = profile.top_interests(3, positive=False)
    if dislikes:
        parts.append(f"They dislike {_fmt_tags(dislikes)}.")
    if profile.liked:
        parts.append("Recent favourites: " + "; ".join(r.title for r in profile.liked[:3]) + ".")
    good = [a for a in profile.aspects if a.polarity > 0.05][:3]
    bad = [a for a in profile.aspects if a.polarity < -0.05][:3]
    if good:
        parts.append("Pleased by " + ", ".join(f"{a.aspect} ({a.polarity:+.2f})" for a in good) + ".")
    if bad:
        parts.append("Critical of " + ", ".join(f"{a.aspect} ({a.polarity:+.2f})" for a in bad) + ".")
    standing = [c for c in profile.constraints]
    session = profile.session.constraints if profile.session is not None else []
    if standing or session:
        said = [f"{c.kind} {c.field.replace('_', ' ')} {c.value}" for c in [*standing, *session]]
        parts.append("Stated constraints: " + "; ".join(said[:6]) + ".")
    return " ".join(parts)
