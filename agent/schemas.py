"""The pipeline's contracts: what a face asks for and what it gets back.

Kept apart from the pipeline so a client (the remote LangChain tools, an HTTP caller) can validate requests and
parse results without importing torch, FAISS or the ``Recommender``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from recagent.retrieval.items import Item, ItemFilter

from .profiles.profile import Evidence

MAX_K = 20
MAX_JUSTIFICATION_CHARS = 280
# A photo travels as a data URL: base64 is 4/3 of the bytes, so this bounds a request's photo at about 6 MB
# (the byte and pixel limits that apply are the settings' image_max_bytes / image_max_pixels).
MAX_IMAGE_URL_CHARS = 8_000_000

Diversity = Annotated[
    float,
    Field(
        ge=0.0,
        le=1.0,
        description="0 = the ranked order as is; towards 1, each next pick trades score for being unlike the "
        "picks above it (maximal marginal relevance over the item embeddings).",
    ),
]


class Justification(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_JUSTIFICATION_CHARS)
    source: Literal["generated", "template"]
    rejected_reason: str | None = Field(default=None, description="Why the generated text was not used.")


class RecommendationRequest(BaseModel):
    user_id: str | None = Field(
        default=None, max_length=256, description="Whose profile applies; None = anonymous."
    )
    query: str | None = Field(default=None, max_length=4000, description="What the user asked for right now.")
    history: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Earlier user turns of this conversation, oldest first.",
    )
    session_id: str | None = Field(
        default=None, max_length=256, description="Conversation whose memory applies."
    )
    k: int = Field(default=5, ge=1, le=MAX_K)
    filters: ItemFilter = Field(default_factory=ItemFilter)
    exclude_seen: bool = True
    justify: bool = True
    diversity: Diversity = 0.0
    image: str | None = Field(
        default=None,
        max_length=MAX_IMAGE_URL_CHARS,
        description="A photo to find items like ('more like this photo'): a data:image/...;base64 URL. "
        "Remote URLs are refused (recagent runs offline).",
    )

    @field_validator("image")
    @classmethod
    def _data_url(cls, value: str | None) -> str | None:
        if value is not None and not value[:11].lower().startswith("data:image/"):
            raise ValueError(
                "image must be a data:image/...;base64 URL; remote and file URLs are refused (recagent runs offline)"
            )
        return value


class Recommendation(BaseModel):
    item: Item
    rank: int = Field(ge=1)
    score: float = Field(
        description="The score the list is ordered by: the ranker's log-probability, or retrieval score + "
        "fusion weight × that log-probability when fusion is on (the retrieval score if not ranked)."
    )
    retrieval_score: float
    match: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="A score for people: the pick's share of the list's softmax over scores, rescaled so the "
        "best candidate is 1 (shown as a match %).",
    )
    justification: Justification | None = None
    evidence: list[Evidence] = Field(default_factory=list)


class RecommendationResult(BaseModel):
    user_id: str | None
    recommendations: list[Recommendation]
    candidates: int = Field(description="How many retrieved items the ranker saw.")
    ranker: str = Field(description="The backend that ranked, or 'retrieval' when none did.")
    mode: Literal["ranked", "retrieval-only"] = "ranked"
    degraded_reason: str | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
