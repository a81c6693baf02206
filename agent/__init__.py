"""User profiles, LLM backends, ranking and justification, and the recommender pipeline."""

from __future__ import annotations

from .factory import build_recommender, make_backend, open_index
from .justifier import Justification, Justifier, gather_evidence, template_sentence, validate_sentence
from .llm import ChatMessage, Conversation, LLMBackend, LLMError
from .local_backend import BUNDLED_MODEL, LocalBackend, materialise_bundled_model
from .openai_backend import OpenAIBackend
from .profile import Evidence, Interest, RatedItem, UserProfile
from .profile_builder import ProfileBuilder
from .ranker import Ranker
from .recommender import (
    Recommendation,
    RecommendationRequest,
    RecommendationResult,
    Recommender,
    UnknownUserError,
)
from .settings import Settings

__all__ = [
    "BUNDLED_MODEL",
    "ChatMessage",
    "Conversation",
    "Evidence",
    "Interest",
    "Justification",
    "Justifier",
    "LLMBackend",
    "LLMError",
    "LocalBackend",
    "OpenAIBackend",
    "ProfileBuilder",
    "RatedItem",
    "Ranker",
    "Recommendation",
    "RecommendationRequest",
    "RecommendationResult",
    "Recommender",
    "Settings",
    "UnknownUserError",
    "UserProfile",
    "build_recommender",
    "gather_evidence",
    "make_backend",
    "materialise_bundled_model",
    "open_index",
    "template_sentence",
    "validate_sentence",
]
