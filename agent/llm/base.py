"""The LLM backend protocol every ranker and justifier talks to."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol, TypedDict, runtime_checkable

from ..errors import LLMError

__all__ = ["ChatMessage", "Conversation", "LLMBackend", "LLMError", "current_llm_user", "llm_user"]

# The user a model call is made for: an OpenAI-compatible backend sends it (the X-User-Id header and the body's
# `user`), so a router such as vllm-router's consistent_hash keeps each user on one replica and its prefix cache.
_LLM_USER: ContextVar[str | None] = ContextVar("recagent_llm_user", default=None)


@contextmanager
def llm_user(user_id: str | None) -> Iterator[None]:
    """Model calls made inside this block (in this thread or context) are made for ``user_id``."""
    token = _LLM_USER.set(user_id)
    try:
        yield
    finally:
        _LLM_USER.reset(token)


def current_llm_user() -> str | None:
    return _LLM_USER.get()


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
