"""The LLM backend protocol every ranker and justifier talks to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypedDict, runtime_checkable

from ..errors import LLMError

__all__ = ["ChatMessage", "Conversation", "LLMBackend", "LLMError"]


class ChatMessage(TypedDict):
    role: str
    content: str


Conversation = list[ChatMessage]


@runtime_checkable
class LLMBackend(Protocol):
    """What recagent needs from a language model: label scores and short generations."""

    @property
    def name(self) -> str: ...

    def label_scores(self, conversations: Sequence[Conversation], labels: Sequence[str]) -> list[list[float]]:
        """For each conversation, the log-probability of each label as the assistant's first token."""
        ...

    def generate(
        self, conversations: Sequence[Conversation], max_new_tokens: int = 48, stop: Sequence[str] = ()
    ) -> list[str]:
        """Greedy completions of the assistant turn, one per conversation; a backend may end one early at a
        ``stop`` sequence (OpenAI semantics) or ignore it, so callers still cut the text themselves."""
        ...
