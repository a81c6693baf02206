"""User profiles, LLM backends, ranking and justification, and the recommender pipeline."""

from __future__ import annotations

from .extraction import (
    ExtractedClaim,
    Extraction,
    ExtractionReport,
    FastExtractor,
    LLMExtractor,
    TextExtractor,
    Vocabulary,
)
from .factory import build_recommender, make_backend, open_index, open_store
from .justifier import Justification, Justifier, gather_evidence, template_sentence, validate_sentence
from .llm import ChatMessage, Conversation, LLMBackend, LLMError
from .local_backend import BUNDLED_MODEL, LocalBackend, materialise_bundled_model
from .memory import ConversationMemory, parse_constraints
from .openai_backend import OpenAIBackend
from .privacy import add_gaussian_noise, redact, redact_text
from .profile import (
    PROFILE_SCHEMA_VERSION,
    AspectSentiment,
    BehaviourStats,
    Constraint,
    Evidence,
    Interest,
    RatedItem,
    SessionMemory,
    UserProfile,
    summarise,
)
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
from .store import ErasureReport, ProfileStore, ProfileVersion

__all__ = [
    "BUNDLED_MODEL",
    "PROFILE_SCHEMA_VERSION",
    "AspectSentiment",
    "BehaviourStats",
    "Constraint",
    "ConversationMemory",
    "ErasureReport",
    "ExtractedClaim",
    "Extraction",
    "ExtractionReport",
    "FastExtractor",
    "LLMExtractor",
    "ProfileStore",
    "ProfileVersion",
    "SessionMemory",
    "TextExtractor",
    "Vocabulary",
    "add_gaussian_noise",
    "open_store",
    "parse_constraints",
    "redact",
    "redact_text",
    "summarise",
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

# The LangChain faces load on first use, so `import recagent.agent` stays free of LangChain.
_LAZY = {
    "RecommendTool": "tools",
    "ProfileTool": "tools",
    "recagent_tools": "tools",
    "ToolCallingChat": "agent_mode",
    "chat_mode": "agent_mode",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
