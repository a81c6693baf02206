from __future__ import annotations

import torch

from recagent.agent import LocalBackend, ProfileBuilder, Ranker
from recagent.agent.prompts import LABELS, ranking_conversation
from recagent.retrieval import Dataset, ItemIndex


def test_labels_are_single_tokens(tiny_backend: LocalBackend) -> None:
    ids = [tiny_backend.label_token_id(label) for label in LABELS]
    assert len(set(ids)) == len(LABELS)


def test_ranking_is_a_permutation_ordered_by_label_logits(
    tiny_backend: LocalBackend, ml100k: Dataset, ml100k_index: ItemIndex
) -> None:
    profile = ProfileBuilder(ml100k_index).build("1", ml100k.history("1"))
    candidates = [
        item for item, _ in ml100k_index.search(ml100k_index.vectors[0], 20, exclude=set(profile.seen))
    ]
    ranked = Ranker(tiny_backend).rank(profile, candidates, "something light")
    assert sorted(i.id for i, _ in ranked) == sorted(i.id for i in candidates)
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True)

    # Recompute the next-token logits by hand: the ranker must read exactly these.
    conversation = ranking_conversation(profile, candidates, "something light")
    tok = tiny_backend.tokenizer
    ids = tok(tiny_backend.render(conversation), return_tensors="pt")
    with torch.inference_mode():
        logprobs = torch.log_softmax(tiny_backend.model(**ids).logits[0, -1], dim=-1)
    expected = {candidates[i].id: float(logprobs[tiny_backend.label_token_id(LABELS[i])]) for i in range(20)}
    for item, score in ranked:
        assert abs(expected[item.id] - score) < 1e-3


def test_batched_scores_match_single(
    tiny_backend: LocalBackend, ml100k: Dataset, ml100k_index: ItemIndex
) -> None:
    builder = ProfileBuilder(ml100k_index)
    ranker = Ranker(tiny_backend)
    cases = []
    for user in ["1", "2", "3"]:
        profile = builder.build(user, ml100k.history(user))
        candidates = [
            i for i, _ in ml100k_index.search(profile_vector(profile), 8, exclude=set(profile.seen))
        ]
        cases.append((profile, candidates, None))
    batched = ranker.score_batch(cases)
    for case, row in zip(cases, batched, strict=True):
        single = ranker.score(*case)
        assert max(abs(a - b) for a, b in zip(single, row, strict=True)) < 1e-3


def profile_vector(profile):
    import numpy as np

    return np.asarray(profile.vector, dtype=np.float32)


class _CountingBackend:
    """Wraps the real tiny model and counts the ranking passes it is asked for."""

    def __init__(self, inner: LocalBackend) -> None:
        self.inner, self.calls = inner, 0
        self.name = inner.name

    def label_scores(self, conversations, labels):
        self.calls += 1
        return self.inner.label_scores(conversations, labels)

    def generate(self, conversations, max_new_tokens=48, stop=()):
        return self.inner.generate(conversations, max_new_tokens)


def test_fusion_weight_zero_keeps_the_retrievers_order_without_a_model_pass(
    tiny_backend: LocalBackend, ml100k: Dataset, ml100k_index: ItemIndex
) -> None:
    profile = ProfileBuilder(ml100k_index).build("1", ml100k.history("1"))
    hits = ml100k_index.search(ml100k_index.vectors[0], 20, exclude=set(profile.seen))
    candidates, retrieval = [i for i, _ in hits], [s for _, s in hits]
    counting = _CountingBackend(tiny_backend)
    ranked = Ranker(counting, fusion_weight=0.0).rank(profile, candidates, None, retrieval)
    assert counting.calls == 0
    # Exactly what fusing with the model's real scores at weight 0 gives.
    fused = Ranker(tiny_backend, fusion_weight=1e-12).rank(profile, candidates, None, retrieval)
    assert [i.id for i, _ in ranked] == [i.id for i in candidates] == [i.id for i, _ in fused]
    Ranker(counting, fusion_weight=0.5).rank(profile, candidates, None, retrieval)
    assert counting.calls == 1
