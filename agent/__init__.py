"""User profiles, LLM backends, ranking and justification, and the recommender pipeline."""

from __future__ import annotations

from .errors import DataFileError, IndexFileError, RecagentError, UnknownItemError, UnknownUserError
from .factory import build_recommender, make_backend, open_index, open_store
from .justifier import Justification, Justifier, gather_evidence, template_sentence, validate_sentence
from .llm import ChatMessage, Conversation, LLMBackend, LLMError
from .llm.local_backend import BUNDLED_MODEL, LocalBackend, materialise_bundled_model
from .llm.openai_backend import OpenAIBackend
from .memory import ConversationMemory, parse_constraints
from .privacy import add_gaussian_noise, redact, redact_text
from .profiles.extraction import (
    ExtractedClaim,
    Extraction,
    ExtractionReport,
    FastExtractor,
    LLMExtractor,
    TextExtractor,
    Vocabulary,
)
from .profiles.profile import (
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
from .profiles.profile_builder import ProfileBuilder
from .profiles.store import ErasureReport, ProfileStore, ProfileVersion
from .ranker import Ranker
from .recommender import Recommendation, RecommendationRequest, RecommendationResult, Recommender
from .settings import Settings

__all__ = [
    "AspectSentiment",
    "BUNDLED_MODEL",
    "BehaviourStats",
    "ChatMessage",
    "Constraint",
    "Conversation",
    "ConversationMemory",
    "DataFileError",
    "ErasureReport",
    "Evidence",
    "ExtractedClaim",
    "Extraction",
    "ExtractionReport",
    "FastExtractor",
    "IndexFileError",
    "Interest",
    "Justification",
    "Justifier",
    "LLMBackend",
    "LLMError",
    "LLMExtractor",
    "LocalBackend",
    "OpenAIBackend",
    "PROFILE_SCHEMA_VERSION",
    "ProfileBuilder",
    "ProfileStore",
    "ProfileVersion",
    "Ranker",
    "RatedItem",
    "RecagentError",
    "Recommendation",
    "RecommendationRequest",
    "RecommendationResult",
    "Recommender",
    "SessionMemory",
    "Settings",
    "TextExtractor",
    "UnknownItemError",
    "UnknownUserError",
    "UserProfile",
    "Vocabulary",
    "add_gaussian_noise",
    "build_recommender",
    "gather_evidence",
    "make_backend",
    "materialise_bundled_model",
    "open_index",
    "open_store",
    "parse_constraints",
    "redact",
    "redact_text",
    "summarise",
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
