"""Shared setup for the model benchmarks: MovieLens-100k, its index, and recommenders with a chosen backend."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

USERS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12")
REQUESTS = ("something light and funny", "a tense thriller", "an old classic", "a film to watch with kids")


@lru_cache(maxsize=1)
def dataset() -> Any:
    from recagent.retrieval import load_bundled

    return load_bundled("ml-100k")


def recommender(backend: Any, llm_order: bool = False) -> Any:
    """The real pipeline (index loaded or built once into the user's cache) around ``backend``; ``llm_order``
    ranks with the LLM (``RECAGENT_RANK_FUSION=none``) instead of the served default, the retriever's order."""
    from recagent.agent import Settings, build_recommender

    settings = Settings(rank_fusion=None) if llm_order else Settings()
    return build_recommender(dataset(), settings=settings, backend=backend)


def backend(dtype: str, prefix_cache: int = 4, generator: str = "auto") -> Any:
    from recagent.agent import LocalBackend

    llm = LocalBackend(dtype=dtype, prefix_cache=prefix_cache, generator=generator)
    llm.load()
    return llm


@contextmanager
def profile_titles(count: int) -> Iterator[None]:
    """Temporarily list ``count`` liked titles in ranking prompts (the skeleton listed 10)."""
    from recagent.agent import prompts

    before = prompts.RANK_PROFILE_TITLES
    prompts.RANK_PROFILE_TITLES = count
    try:
        yield
    finally:
        prompts.RANK_PROFILE_TITLES = before


def ranking_cases(
    rec: Any, users: Sequence[str], request: str | None = None
) -> list[tuple[Any, list[Any], str | None]]:
    """(profile, 20 retrieved candidates, request) per user, as the recommender would rank them."""
    from recagent.agent import RecommendationRequest

    cases = []
    for user in users:
        req = RecommendationRequest(user_id=user, query=request, justify=False)
        profile = rec.resolve_profile(req)
        cases.append((profile, [item for item, _ in rec.retrieve(profile, req)], request))
    return cases


def prompt_tokens(llm: Any, conversation: Any) -> int:
    return len(llm.tokenizer(llm.render(conversation))["input_ids"])
