"""The one pipeline every face calls: profile → query vector → FAISS candidates → LLM ranking → justified top-k."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from recagent.retrieval import Encoder, Interaction, Item, ItemFilter, ItemIndex

from .justifier import Justification, Justifier, gather_evidence
from .llm import LLMBackend, LLMError
from .profile import Evidence, UserProfile
from .profile_builder import ProfileBuilder
from .ranker import Ranker

MAX_K = 20


class UnknownUserError(KeyError):
    """The user has no history and the request gives nothing to go on."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown user"


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


class Recommendation(BaseModel):
    item: Item
    rank: int = Field(ge=1)
    score: float = Field(
        description="The ranker's log-probability for this item (retrieval similarity if not ranked)."
    )
    retrieval_score: float
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


def _unit(vec: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 and math.isfinite(norm) else vec


class Recommender:
    """Holds the index, encoder, model and user histories, loaded once per process."""

    # How the query vector mixes its parts: long-term taste, the request right now, and what to move away from.
    request_weight = 1.0
    negative_weight = 0.3

    def __init__(
        self,
        index: ItemIndex,
        encoder: Encoder,
        backend: LLMBackend | None = None,
        histories: Mapping[str, Sequence[Interaction]] | None = None,
        candidates: int = 20,
    ) -> None:
        self.index = index
        self.encoder = encoder
        self.backend = backend
        self.candidates = candidates
        self.builder = ProfileBuilder(index)
        self.ranker = Ranker(backend) if backend is not None else None
        self.justifier = Justifier(backend, index)
        self._histories: dict[str, list[Interaction]] = {u: list(evs) for u, evs in (histories or {}).items()}
        self._profiles: dict[str, UserProfile] = {}
        self._lock = threading.Lock()

    @property
    def catalog(self) -> Iterable[Item]:
        return self.index.catalog

    def known_user(self, user_id: str) -> bool:
        return user_id in self._histories

    def users(self) -> list[str]:
        return list(self._histories)

    def add_events(self, events: Iterable[Interaction]) -> None:
        with self._lock:
            for event in events:
                if event.item_id not in self.index.catalog:
                    raise KeyError(f"unknown item {event.item_id!r}")
                self._histories.setdefault(event.user_id, []).append(event)
                self._profiles.pop(event.user_id, None)

    def erase_user(self, user_id: str) -> bool:
        """Forget a user's events and profile; True if there was anything to forget."""
        with self._lock:
            self._profiles.pop(user_id, None)
            return self._histories.pop(user_id, None) is not None

    def profile(self, user_id: str) -> UserProfile:
        with self._lock:
            cached = self._profiles.get(user_id)
            if cached is not None:
                return cached
            if user_id not in self._histories:
                raise UnknownUserError(f"unknown user {user_id!r}")
            profile = self.builder.build(user_id, self._histories[user_id])
            self._profiles[user_id] = profile
            return profile

    def query_vector(self, profile: UserProfile, query: str | None) -> np.ndarray:
        """long-term + request − 0.3·negative, renormalised; each part is a unit vector."""
        parts: list[np.ndarray] = []
        if profile.vector is not None:
            parts.append(np.asarray(profile.vector, dtype=np.float32))
        if query:
            parts.append(self.request_weight * self.index.text_query(self.encoder.encode_one(query)))
        if not parts:
            raise UnknownUserError(
                f"user {profile.user_id!r} has no history yet; say what you are looking for"
            )
        vec = np.sum(parts, axis=0)
        if profile.negative_vector is not None:
            vec = vec - self.negative_weight * np.asarray(profile.negative_vector, dtype=np.float32)
        return _unit(vec).astype(np.float32)

    def resolve_profile(self, request: RecommendationRequest) -> UserProfile:
        if request.user_id is not None and self.known_user(request.user_id):
            return self.profile(request.user_id)
        if request.user_id is not None and not request.query:
            raise UnknownUserError(f"unknown user {request.user_id!r}")
        return UserProfile(user_id=request.user_id or "anonymous")

    def retrieve(self, profile: UserProfile, request: RecommendationRequest) -> list[tuple[Item, float]]:
        exclude = set(profile.seen) if request.exclude_seen else set()
        query = self.query_vector(profile, request.query)
        n = max(self.candidates, request.k)
        return self.index.search(query, n, exclude=exclude, item_filter=request.filters)

    def rank(self, request: RecommendationRequest) -> tuple[UserProfile, RecommendationResult]:
        """Everything up to the ranked top-k, without justifications (fast; the API streams these first)."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        profile = self.resolve_profile(request)
        timings["profile"] = (time.perf_counter() - start) * 1000
        t = time.perf_counter()
        hits = self.retrieve(profile, request)
        timings["retrieve"] = (time.perf_counter() - t) * 1000
        retrieval_score = {item.id: score for item, score in hits}
        candidates = [item for item, _ in hits]
        mode: Literal["ranked", "retrieval-only"] = "retrieval-only"
        degraded: str | None = None if self.ranker is not None else "no language model configured"
        ranked = hits
        if self.ranker is not None and len(candidates) > 1:
            t = time.perf_counter()
            try:
                ranked = self.ranker.rank(profile, candidates, request.query)
                mode = "ranked"
            except LLMError as exc:
                degraded = f"ranker unavailable: {exc}"
            timings["rank"] = (time.perf_counter() - t) * 1000
        recs = [
            Recommendation(
                item=item,
                rank=pos + 1,
                score=round(score, 6),
                retrieval_score=round(retrieval_score[item.id], 6),
            )
            for pos, (item, score) in enumerate(ranked[: request.k])
        ]
        timings["total"] = (time.perf_counter() - start) * 1000
        result = RecommendationResult(
            user_id=request.user_id,
            recommendations=recs,
            candidates=len(candidates),
            ranker=self.backend.name if mode == "ranked" and self.backend is not None else "retrieval",
            mode=mode,
            degraded_reason=degraded,
            timings_ms={k: round(v, 2) for k, v in timings.items()},
        )
        return profile, result

    def justify(
        self, profile: UserProfile, result: RecommendationResult, query: str | None
    ) -> RecommendationResult:
        t = time.perf_counter()
        items = [r.item for r in result.recommendations]
        evidence = [gather_evidence(item, profile, self.index, query) for item in items]
        justifications = self.justifier.justify(items, profile, query, evidence)
        recs = [
            r.model_copy(update={"justification": j, "evidence": ev})
            for r, j, ev in zip(result.recommendations, justifications, evidence, strict=True)
        ]
        timings = dict(result.timings_ms)
        timings["justify"] = round((time.perf_counter() - t) * 1000, 2)
        timings["total"] = round(timings.get("total", 0.0) + timings["justify"], 2)
        return result.model_copy(update={"recommendations": recs, "timings_ms": timings})

    def recommend(self, request: RecommendationRequest) -> RecommendationResult:
        profile, result = self.rank(request)
        return self.justify(profile, result, request.query) if request.justify else result
