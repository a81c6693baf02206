"""LLM backends: the protocol every ranker and justifier talks to (``base``), the embedded model
(``local_backend``), an OpenAI-compatible server such as vLLM (``openai_backend``) and vLLM's process
(``vllm_serving``)."""

from __future__ import annotations

from .base import ChatMessage, Conversation, LLMBackend, LLMError, current_llm_user, llm_user

__all__ = ["ChatMessage", "Conversation", "LLMBackend", "LLMError", "current_llm_user", "llm_user"]
