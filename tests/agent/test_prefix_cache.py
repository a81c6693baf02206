"""LocalBackend's prefix KV cache and dtype choice: same scores as a full forward pass, fewer tokens computed."""

from __future__ import annotations

from pathlib import Path

import pytest

from recagent.agent import LLMError, LocalBackend
from recagent.agent.llm.local_backend import resolve_dtype
from recagent.agent.prompts import LABELS


def _conversation(profile: str, request: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You rank items. Answer with one letter."},
        {"role": "user", "content": f"User likes: {profile}\nRequest: {request}\nA. Alien\nB. Heat\nC. Babe"},
    ]


def test_prefix_cache_gives_the_same_scores_and_reuses_the_shared_prefix(
    tiny_model_dir: Path, cache_dir: Path
) -> None:
    cached = LocalBackend(str(tiny_model_dir), cache_dir=cache_dir, dtype="float32", prefix_cache=3)
    plain = LocalBackend(str(tiny_model_dir), cache_dir=cache_dir, dtype="float32", prefix_cache=0)
    profile = "space horror, heist films, talking pigs, " * 4
    turns = [
        (profile, "something scary"),
        (profile, "something with a bank robbery"),  # same user, new request
        ("romantic comedies only", "a date night film"),  # another user: only the system prompt is shared
        (profile, "something scary"),  # the first user again, still cached
    ]
    reused = []
    for user, request in turns:
        conversation = _conversation(user, request)
        got = cached.label_scores([conversation], LABELS[:3])[0]
        want = plain.label_scores([conversation], LABELS[:3])[0]
        assert got == pytest.approx(want, abs=1e-4)
        reused.append(cached.last_reused_tokens)
    prompt_len = len(cached.tokenizer(cached.render(_conversation(*turns[0])))["input_ids"])
    assert reused[0] == 0
    assert reused[1] > 30  # system prompt and profile
    assert 0 < reused[2] < reused[1]
    assert reused[3] == prompt_len - 1  # identical prompt: only the last token runs
    assert plain.last_reused_tokens == 0


def test_dtype_choice() -> None:
    assert resolve_dtype("float32", "cpu") == "float32"
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"
    assert resolve_dtype("auto", "cpu") in ("float32", "bfloat16")
    assert resolve_dtype("auto", "cuda") == "float32"
    with pytest.raises(LLMError):
        resolve_dtype("int3", "cpu")
