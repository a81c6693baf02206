"""User profiles, LLM backends, ranking and justification, and the recommender pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recagent.retrieval.lazy import lazy_attributes

if TYPE_CHECKING:
    from .errors import DataFileError, IndexFileError, RecagentError, UnknownItemError, UnknownUserError
    from .factory import build_recommender, make_backend, open_index, open_store
    from .justifier import Justifier, gather_evidence, template_sentence, validate_sentence
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
    from .recommender import Recommender
    from .schemas import Justification, Recommendation, RecommendationRequest, RecommendationResult
    from .settings import Settings

# Each public name loads its module on first use, so importing a light module of this package (a schema,
# the remote tools) does not pull FAISS, torch or the pipeline.
_LAZY = {
    "AspectSentiment": "profiles.profile",
    "BUNDLED_MODEL": "llm.local_backend",
    "BehaviourStats": "profiles.profile",
    "ChatMessage": "llm",
    "Constraint": "profiles.profile",
    "Conversation": "llm",
    "ConversationMemory": "memory",
    "DataFileError": "errors",
    "ErasureReport": "profiles.store",
    "Evidence": "profiles.profile",
    "ExtractedClaim": "profiles.extraction",
    "Extraction": "profiles.extraction",
    "ExtractionReport": "profiles.extraction",
    "FastExtractor": "profiles.extraction",
    "IndexFileError": "errors",
    "Interest": "profiles.profile",
    "Justification": "schemas",
    "Justifier": "justifier",
    "LLMBackend": "llm",
    "LLMError": "llm",
    "LLMExtractor": "profiles.extraction",
    "LocalBackend": "llm.local_backend",
    "OpenAIBackend": "llm.openai_backend",
    "PROFILE_SCHEMA_VERSION": "profiles.profile",
    "ProfileBuilder": "profiles.profile_builder",
    "ProfileStore": "profiles.store",
    "ProfileTool": "tools",
    "ProfileVersion": "profiles.store",
    "Ranker": "ranker",
    "RatedItem": "profiles.profile",
    "RecagentError": "errors",
    "RecommendTool": "tools",
    "Recommendation": "schemas",
    "RecommendationRequest": "schemas",
    "RecommendationResult": "schemas",
    "Recommender": "recommender",
    "SessionMemory": "profiles.profile",
    "Settings": "settings",
    "TextExtractor": "profiles.extraction",
    "ToolCallingChat": "agent_mode",
    "UnknownItemError": "errors",
    "UnknownUserError": "errors",
    "UserProfile": "profiles.profile",
    "Vocabulary": "profiles.extraction",
    "add_gaussian_noise": "privacy",
    "build_recommender": "factory",
    "chat_mode": "agent_mode",
    "gather_evidence": "justifier",
    "make_backend": "factory",
    "materialise_bundled_model": "llm.local_backend",
    "open_index": "factory",
    "open_store": "factory",
    "parse_constraints": "memory",
    "recagent_tools": "tools",
    "redact": "privacy",
    "redact_text": "privacy",
    "summarise": "profiles.profile",
    "template_sentence": "justifier",
    "validate_sentence": "justifier",
}

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

__getattr__ = lazy_attributes(__name__, _LAZY)
