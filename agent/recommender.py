"""The one pipeline every face calls: profile → query vector → FAISS candidates → LLM ranking → justified top-k."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Literal

import numpy as np

from recagent.retrieval import (
    DEFAULT_TIES,
    Encoder,
    ImageEncoder,
    ImageError,
    Interaction,
    Item,
    ItemIndex,
    SequentialModel,
    TieBreak,
    decode_data_url,
    decode_image,
)

from .diversity import mmr_order
from .errors import UnknownItemError, UnknownUserError
from .justifier import Justifier, gather_evidence
from .llm import LLMBackend, LLMError, llm_user
from .memory import ConversationMemory, with_session
from .privacy import Redactor, title_phrases
from .profiles.extraction import ExtractionReport, FastExtractor, LLMExtractor, TextExtractor, Vocabulary
from .profiles.profile import PROFILE_SCHEMA_VERSION, EvidenceSource, UserProfile
from .profiles.profile_builder import ProfileBuilder
from .profiles.store import ProfileStore
from .query import QueryBuilder
from .ranker import Ranker
from .schemas import Recommendation, RecommendationRequest, RecommendationResult


class Recommender:
    """Holds the index, encoder, model and user histories, loaded once per process."""

    def __init__(
        self,
        index: ItemIndex,
        encoder: Encoder,
        backend: LLMBackend | None = None,
        histories: Mapping[str, Sequence[Interaction]] | None = None,
        candidates: int = 20,
        store: ProfileStore | None = None,
        text_extractor: TextExtractor | None = None,
        extract_with_llm: bool = True,
        redactor: Redactor | None = None,
        sequence: SequentialModel | None = None,
        ties: TieBreak = DEFAULT_TIES,
        rank_fusion: float | None = None,
        rank_batch: int = 0,
        images: ImageEncoder | None = None,
    ) -> None:
        self.index = index
        # Encodes the photos requests send (the index's image block was built with the same network).
        self.images = images
        # The behaviour part of the query: SASRec's state after the user's event sequence (None: text only).
        self.sequence = sequence
        # One redactor for every text this pipeline reads, stores or prompts with; the catalogue's titles are
        # protected so "Mrs. Doubtfire" in a review stays a film, not a [NAME].
        self.redactor = redactor or Redactor(protected=title_phrases(item.title for item in index.catalog))
        self.encoder = encoder
        self.backend = backend
        self.candidates = candidates
        self.store = store
        genres = index.catalog.genres()
        fast = FastExtractor(encoder, Vocabulary.for_movies(genres))
        if text_extractor is None:
            llm = LLMExtractor(backend, fast.vocabulary) if backend is not None and extract_with_llm else None
            text_extractor = TextExtractor(fast, llm)
        self.text_extractor = text_extractor
        self.memory = ConversationMemory(fast, genres, redactor=self.redactor)
        self.builder = ProfileBuilder(index, text_extractor=text_extractor, redactor=self.redactor, ties=ties)
        self.queries = QueryBuilder(index, encoder, self.redactor, sequence)
        # rank_fusion: order by retrieval score + rank_fusion·LLM log-prob (None: the LLM's order alone).
        # rank_batch > 1: concurrent requests (API threads) share one forward pass; 0: by device (agent/batching.py).
        self.ranker = Ranker(backend, rank_fusion, batch=rank_batch) if backend is not None else None
        self.justifier = Justifier(backend, index)
        self._histories: dict[str, list[Interaction]] = {u: list(evs) for u, evs in (histories or {}).items()}
        # The dataset's own events (read-only); a shared store's events are added on top of them.
        self._base_histories = histories or {}
        self._profiles: dict[str, UserProfile] = {}
        # A shared store (PostgreSQL, many workers): what the store held for a user when this process last read it
        # (user_state); a different answer means another worker changed the user, so the cache is refreshed.
        self._store_state: dict[str, tuple[int, int, int]] = {}
        # Re-entrant: add_text and add_events build the profile while holding it.
        self._lock = threading.RLock()
        if store is not None:
            store.redactor = self.redactor
            for user_id in store.users():
                self._histories.setdefault(user_id, []).extend(store.events(user_id))
                if store.shared:
                    self._store_state[user_id] = store.user_state(user_id)

    @property
    def catalog(self) -> Iterable[Item]:
        return self.index.catalog

    def known_user(self, user_id: str) -> bool:
        self._sync(user_id)
        return user_id in self._histories

    def _sync(self, user_id: str) -> None:
        """With a shared store, re-read a user another worker changed: its events, and its profile from the store.

        One indexed query per call (the user's last event/text sequence and profile version); the events and the
        stored profile are read only when that differs from what this process saw last."""
        store = self.store
        if store is None or not store.shared:
            return
        with self._lock:
            state = store.user_state(user_id)
            last = self._store_state.get(user_id)
            if state == last:
                return
            self._profiles.pop(user_id, None)
            base = list(self._base_histories.get(user_id, ()))
            if state == (0, 0, 0):
                if last is not None:  # erased elsewhere: forgotten here too, dataset events included
                    self._histories.pop(user_id, None)
                    self.memory.forget_owner(user_id)
                    self._store_state.pop(user_id, None)
                return
            self._histories[user_id] = base + store.events(user_id)
            self._store_state[user_id] = state

    def _written(self, user_id: str) -> None:
        """This process wrote the user: the next _sync re-reads it (another worker may have written meanwhile)."""
        if self.store is not None and self.store.shared:
            self._store_state[user_id] = (-1, -1, -1)

    def users(self) -> list[str]:
        return list(self._histories)

    def add_events(self, events: Iterable[Interaction]) -> None:
        """Record events; a cached profile is updated one event at a time (no rebuild) and persisted."""
        events = list(events)
        for event in events:
            if event.item_id not in self.index.catalog:
                raise UnknownItemError(f"unknown item {event.item_id!r}")
        with self._lock:
            touched: set[str] = set()
            for event in events:
                self._histories.setdefault(event.user_id, []).append(event)
                cached = self._profiles.get(event.user_id)
                if cached is not None:
                    self._profiles[event.user_id] = self.builder.update(cached, event)
                    touched.add(event.user_id)
            if self.store is not None:
                self.store.add_events(events)
                for user_id in touched:
                    self.store.save(self._profiles[user_id])
                for user_id in {e.user_id for e in events}:
                    self._written(user_id)

    def add_text(
        self,
        user_id: str,
        text: str,
        source: EvidenceSource = "review",
        source_id: str | None = None,
        item_id: str | None = None,
    ) -> tuple[UserProfile, ExtractionReport]:
        """Read a review or comment into the user's long-term profile (aspects, interests, evidence).

        The text is redacted before it is stored, extracted or shown to an LLM; only the redacted text is kept.
        """
        if item_id is not None and item_id not in self.index.catalog:
            raise UnknownItemError(f"unknown item {item_id!r}")
        clean_text = self.redactor(text)
        with self._lock:
            self._histories.setdefault(user_id, [])
            profile = self.profile(user_id)
            source_id = source_id or f"{user_id}/{source}/{time.time_ns()}"
            profile, report = self.builder.update_from_text(profile, clean_text, source, source_id, item_id)
            self._profiles[user_id] = profile
            if self.store is not None:
                self.store.add_text(user_id, source, clean_text, source_id)
                self.store.save(profile)
                self._written(user_id)
        return profile, report

    def erase_user(self, user_id: str) -> bool:
        """Forget a user everywhere: events, profile, sessions, and every row in the store; True if any existed."""
        with self._lock:
            self._profiles.pop(user_id, None)
            self.memory.forget_owner(user_id)
            existed = self._histories.pop(user_id, None) is not None
            if self.store is not None:
                existed = self.store.erase(user_id).total > 0 or existed
                self._store_state.pop(user_id, None)
            return existed

    def profile(self, user_id: str) -> UserProfile:
        self._sync(user_id)
        return self._cached_profile(user_id)

    def _cached_profile(self, user_id: str) -> UserProfile:
        """The user's profile, built once from their events (callers have synced the user with a shared store)."""
        with self._lock:
            cached = self._profiles.get(user_id)
            if cached is not None:
                return cached
            if user_id not in self._histories:
                raise UnknownUserError(f"unknown user {user_id!r}")
            history = self._histories[user_id]
            stored = self.store.load(user_id) if self.store is not None else None
            if (
                stored is not None
                and stored.schema_version == PROFILE_SCHEMA_VERSION
                and stored.event_count == len([e for e in history if e.item_id in self.index.catalog])
            ):
                profile = stored
            else:
                profile = self.builder.build(user_id, history)
                if stored is not None:  # what was read from text is not in the events: carry it over
                    profile = profile.model_copy(
                        update={
                            "aspects": stored.aspects,
                            "constraints": stored.constraints,
                            "interests": sorted(
                                [
                                    *profile.interests,
                                    *(i for i in stored.interests if i.extractor != "behaviour"),
                                ],
                                key=lambda i: -abs(i.weight),
                            ),
                        }
                    )
                if self.store is not None:
                    self.store.save(profile)
                    self._written(user_id)
            self._profiles[user_id] = profile
            return profile

    def query_vector(
        self, profile: UserProfile, query: str | None, photo: np.ndarray | None = None
    ) -> np.ndarray:
        """The retrieval query for a profile (and the request text and photo): see :class:`QueryBuilder`."""
        return self.queries.query_vector(profile, query, photo)

    def photo_vector(self, image: str | None) -> np.ndarray | None:
        """The request's photo (a data URL) as an image embedding; :class:`ImageError` (422 at the API) when it
        is too large, cannot be decoded, or this catalogue has no images to match it against.

        The photo is neither stored nor cached: only its vector lives, for this request."""
        if image is None:
            return None
        self.queries.require_images()  # before any decoding
        if self.images is None:
            raise ImageError("this server has no image encoder (RECAGENT_IMAGES is off)")
        data = decode_data_url(image, self.images.limits.max_bytes)
        return self.images.encode_images([decode_image(data, self.images.limits)])[0]

    def remember(self, profile: UserProfile, request: RecommendationRequest) -> UserProfile:
        """Apply the conversation (history + query) to the session part of the profile.

        With a ``session_id`` the session is kept between calls and only new turns are read (and, with a store
        and a user, saved redacted); without one it is built from this request's turns and forgotten.
        """
        turns = [*request.history, *([request.query] if request.query else [])]
        if not turns:
            return profile
        if request.session_id is None:
            return with_session(profile, self.memory.transient(turns))
        before = self.memory.get(request.session_id, request.user_id)
        old_turns = before.turns if before is not None else []
        session = self.memory.update(request.session_id, turns, owner=request.user_id)
        if self.store is not None and request.user_id is not None and self.known_user(request.user_id):
            kept = len(old_turns) if session.turns[: len(old_turns)] == old_turns else 0
            for pos in range(kept, len(session.turns)):
                self.store.add_text(
                    request.user_id, "chat", session.turns[pos], f"{request.session_id}#{pos + 1}"
                )
        return with_session(profile, session)

    def words_in_image_space(self, query: str) -> np.ndarray | None:
        """With a CLIP-family image encoder, the request's words as a vector in the image space (text → image
        search: "a ginger cat" finds the pictures of one); None otherwise."""
        if self.images is None or not self.images.encodes_text or self.index.image_vectors is None:
            return None
        return self.images.encode_text([self.redactor(query)])[0]

    def resolve_profile(self, request: RecommendationRequest) -> UserProfile:
        if request.user_id is not None and self.known_user(request.user_id):  # known_user syncs the user
            return self._cached_profile(request.user_id)
        if request.user_id is not None and not request.query and request.image is None:
            raise UnknownUserError(f"unknown user {request.user_id!r}")
        return UserProfile(user_id=request.user_id or "anonymous")

    def retrieve(self, profile: UserProfile, request: RecommendationRequest) -> list[tuple[Item, float]]:
        exclude = set(profile.seen) if request.exclude_seen else set()
        photo = self.photo_vector(request.image)
        if photo is None and request.query:
            photo = self.words_in_image_space(request.query)
        query = self.query_vector(profile, request.query, photo)
        n = max(self.candidates, request.k)
        # Hard constraints the user stated in the conversation are retrieval filters, like the request's own.
        item_filter = request.filters.merged(profile.hard_filter())
        return self.index.search(query, n, exclude=exclude, item_filter=item_filter)

    def rank(self, request: RecommendationRequest) -> tuple[UserProfile, RecommendationResult]:
        """Everything up to the ranked top-k, without justifications (fast; the API streams these first)."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        profile = self.remember(self.resolve_profile(request), request)
        timings["profile"] = (time.perf_counter() - start) * 1000
        query = self.redactor(request.query) if request.query else None
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
                with llm_user(request.user_id):
                    ranked = self.ranker.rank(profile, candidates, query, [score for _, score in hits])
                mode = "ranked"
            except LLMError as exc:
                degraded = f"ranker unavailable: {exc}"
            timings["rank"] = (time.perf_counter() - t) * 1000
        best = max((score for _, score in ranked), default=0.0)
        picks = self.diversify(ranked, request.k, request.diversity)
        recs = [
            Recommendation(
                item=item,
                rank=pos + 1,
                score=round(score, 6),
                retrieval_score=round(retrieval_score[item.id], 6),
                match=round(math.exp(min(score - best, 0.0)), 4),
            )
            for pos, (item, score) in enumerate(picks)
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

    def diversify(
        self, ranked: Sequence[tuple[Item, float]], k: int, diversity: float
    ) -> list[tuple[Item, float]]:
        """The top ``k`` of ``ranked``, re-ordered by maximal marginal relevance when ``diversity`` > 0."""
        if diversity <= 0.0:
            return list(ranked[:k])
        vectors = self.index.text_vectors_for([item.id for item, _ in ranked])
        return [ranked[pos] for pos in mmr_order([s for _, s in ranked], vectors, k, diversity)]

    def justify(
        self, profile: UserProfile, result: RecommendationResult, query: str | None
    ) -> RecommendationResult:
        t = time.perf_counter()
        query = self.redactor(query) if query else None
        items = [r.item for r in result.recommendations]
        evidence = [gather_evidence(item, profile, self.index, query) for item in items]
        with llm_user(profile.user_id if self.known_user(profile.user_id) else None):
            justifications = self.justifier.justify(items, profile, query, evidence)
        recs = [
            r.model_copy(update={"justification": j, "evidence": ev})
            for r, j, ev in zip(result.recommendations, justifications, evidence, strict=True)
        ]
        timings = dict(result.timings_ms)
        timings["justify"] = round((time.perf_counter() - t) * 1000, 2)
        timings["total"] = round(timings.get("total", 0.0) + timings["justify"], 2)
        return result.model_copy(update={"recommendations": recs, "timings_ms": timings})

    def justify_each(
        self, profile: UserProfile, result: RecommendationResult, query: str | None
    ) -> Iterator[Recommendation]:
        """The picks with their justifications, in rank order, each yielded as soon as it is written.

        The first is written alone, so it shows soonest; the rest are asked for together, which a backend that
        decodes several sequences at once (llama.cpp's slots, a vLLM server) finishes sooner than one by one.
        """
        recs = result.recommendations
        for group in (recs[:1], recs[1:]):
            if group:
                yield from self.justify(
                    profile, result.model_copy(update={"recommendations": group}), query
                ).recommendations

    def recommend(self, request: RecommendationRequest) -> RecommendationResult:
        profile, result = self.rank(request)
        return self.justify(profile, result, request.query) if request.justify else result
