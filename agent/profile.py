"""The user profile: what a person likes and dislikes, and the evidence behind each claim.

Version 0 holds behavioural interests; the schema is open (``extra`` fields survive) so later versions
can add finer structure without breaking stored profiles.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PROFILE_SCHEMA_VERSION = 0


class Evidence(BaseModel):
    """Where a claim comes from: a rated item, a review span, a chat turn."""

    source: Literal["rating", "review", "chat", "click", "request"]
    item_id: str | None = None
    text: str = Field(default="", max_length=500)
    weight: float = 0.0


class Interest(BaseModel):
    """A tag or topic with a weight in [-1, 1]; negative means dislike."""

    tag: str
    weight: float = Field(ge=-1.0, le=1.0)
    confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    evidence: list[Evidence] = Field(default_factory=list)


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
    seen: list[str] = Field(default_factory=list, description="Every item the user interacted with.")
    event_count: int = 0
    rating_mean: float | None = None
    vector: list[float] | None = Field(
        default=None, description="Rating- and recency-weighted mean of liked items."
    )
    negative_vector: list[float] | None = Field(default=None, description="Mean of disliked items.")

    @property
    def is_cold(self) -> bool:
        return self.event_count == 0

    def top_interests(self, n: int = 5, positive: bool = True) -> list[Interest]:
        chosen = [i for i in self.interests if (i.weight > 0) == positive and i.weight != 0]
        return sorted(chosen, key=lambda i: -abs(i.weight))[:n]

    def interest_weight(self, tag: str) -> float:
        tag = tag.lower()
        return next((i.weight for i in self.interests if i.tag.lower() == tag), 0.0)
