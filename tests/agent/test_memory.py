"""Conversation memory on the real pipeline: MovieLens-100k, the MiniLM encoder, FAISS, the tiny Llama ranker.

The chat turns here are written for the tests (MovieLens has no user text).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from recagent.agent import (
    Conversation,
    LocalBackend,
    ProfileStore,
    RecommendationRequest,
    Recommender,
    parse_constraints,
)
from recagent.retrieval import Dataset, Encoder, ItemFilter, ItemIndex

ML_GENRES = [
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip


def _parsed(text: str) -> set[tuple[str, str, object]]:
    constraints, _, _ = parse_constraints(text, ML_GENRES)
    return {(c.kind, c.field, c.value) for c in constraints}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "no horror, something funny from the 90s",
            {
                ("hard", "exclude_genre", "Horror"),
                ("soft", "mood", "Comedy"),
                ("hard", "year_min", 1990),
                ("hard", "year_max", 1999),
            },
        ),
        ("I'm in the mood for something funny", {("soft", "mood", "Comedy")}),
        ("not another superhero movie", {("soft", "avoid", "superhero movie")}),
        ("only comedies after 2000", {("hard", "include_genre", "Comedy"), ("hard", "year_min", 2001)}),
        (
            "nothing scary, under $50, before 1980",
            {("hard", "exclude_genre", "Horror"), ("hard", "price_max", 50.0), ("hard", "year_max", 1979)},
        ),
        (
            "a romantic film from the eighties",
            {("soft", "mood", "Romance"), ("hard", "year_min", 1980), ("hard", "year_max", 1989)},
        ),
        ("anything with a great soundtrack", set()),
    ],
)
def test_constraints_from_chat_text(text: str, expected: set[tuple[str, str, object]]) -> None:
    assert _parsed(text) == expected


class RecordingBackend:
    """The real tiny model, with a record of every conversation sent to it (to inspect what the LLM saw)."""

    def __init__(self, inner: LocalBackend) -> None:
        self.inner = inner
        self.sent: list[Conversation] = []

    @property
    def name(self) -> str:
        return self.inner.name

    def label_scores(self, conversations: Sequence[Conversation], labels: Sequence[str]) -> list[list[float]]:
        self.sent.extend(conversations)
        return self.inner.label_scores(conversations, labels)

    def generate(
        self, conversations: Sequence[Conversation], max_new_tokens: int = 48, stop: Sequence[str] = ()
    ) -> list[str]:
        self.sent.extend(conversations)
        return self.inner.generate(conversations, max_new_tokens)


def test_no_horror_something_funny_from_the_90s_changes_the_next_picks(recommender: Recommender) -> None:
    before = recommender.recommend(RecommendationRequest(user_id="7", k=10, justify=False))
    turn = "no horror, something funny from the 90s"
    after = recommender.recommend(RecommendationRequest(user_id="7", query=turn, k=10, justify=False))
    # The request carries no filters: they come from the chat turn.
    picks = [r.item for r in after.recommendations]
    assert len(picks) == 10
    assert all("Horror" not in item.genres for item in picks)
    assert all(item.year is not None and 1990 <= item.year <= 1999 for item in picks)
    assert {i.id for i in picks} != {r.item.id for r in before.recommendations}
    comedies_after = sum("Comedy" in i.genres for i in picks)
    comedies_before = sum("Comedy" in r.item.genres for r in before.recommendations)
    assert comedies_after >= 5 and comedies_after > comedies_before


def test_session_remembers_constraints_across_turns(recommender: Recommender) -> None:
    first = "no horror, something funny from the 90s"
    recommender.recommend(RecommendationRequest(user_id="7", query=first, session_id="s-mem", justify=False))
    # Next turn sends only the new message: the session remembers the first one.
    second = RecommendationRequest(
        user_id="7", query="with a great soundtrack", session_id="s-mem", k=10, justify=False
    )
    result = recommender.recommend(second)
    session = recommender.memory.get("s-mem", "7")
    assert session is not None and session.turns == [first, "with a great soundtrack"]
    assert session.item_filter() == ItemFilter(exclude_genres=("Horror",), year_min=1990, year_max=1999)
    for rec in result.recommendations:
        assert "Horror" not in rec.item.genres and 1990 <= (rec.item.year or 0) <= 1999
    # A later turn can lift a bound: the newest statement of a year range wins.
    third = RecommendationRequest(
        user_id="7", query="actually, from the 80s", session_id="s-mem", justify=False
    )
    for rec in recommender.recommend(third).recommendations:
        assert 1980 <= (rec.item.year or 0) <= 1989 and "Horror" not in rec.item.genres


def test_avoid_phrase_pushes_the_query_away(recommender: Recommender, encoder: Encoder) -> None:
    profile = recommender.profile("7")
    superhero = encoder.encode_one("a superhero movie")
    plain = recommender.remember(profile, RecommendationRequest(user_id="7", query="an action movie"))
    avoid = recommender.remember(
        profile,
        RecommendationRequest(user_id="7", query="an action movie", history=["not another superhero movie"]),
    )
    assert avoid.session is not None and avoid.session.avoid_vector is not None
    q_plain = recommender.query_vector(plain, None)
    q_avoid = recommender.query_vector(avoid, None)
    assert float(q_avoid @ superhero) < float(q_plain @ superhero) - 0.02


def test_mood_turn_moves_picks_towards_comedy(recommender: Recommender) -> None:
    plain = recommender.recommend(RecommendationRequest(user_id="7", k=10, justify=False))
    funny = recommender.recommend(
        RecommendationRequest(user_id="7", query="I'm in the mood for something funny", k=10, justify=False)
    )
    count = lambda result: sum("Comedy" in r.item.genres for r in result.recommendations)  # noqa: E731
    assert count(funny) > count(plain)


def test_text_is_redacted_before_storage_and_before_the_llm(
    tmp_path: Path, ml100k: Dataset, ml100k_index: ItemIndex, encoder: Encoder, tiny_backend: LocalBackend
) -> None:
    backend = RecordingBackend(tiny_backend)
    store = ProfileStore(tmp_path / "profiles.sqlite")
    recommender = Recommender(
        ml100k_index,
        encoder,
        backend,
        histories={"7": ml100k.history("7")},
        store=store,
        extract_with_llm=True,
    )
    email, phone = "lena.k@example.com", "+1 415 555 0199"
    message = f"something funny please, and mail the list to {email} or call {phone}"
    recommender.recommend(RecommendationRequest(user_id="7", query=message, session_id="chat-1", k=3))
    recommender.add_text(
        "7", f"Loved the acting. Contact me at {email}, {phone}.", source="review", item_id="1"
    )
    sent = "\n".join(m["content"] for conv in backend.sent for m in conv)
    assert backend.sent and "[EMAIL]" in sent and "[PHONE]" in sent
    assert email not in sent and "555 0199" not in sent
    texts = store.texts("7")
    assert len(texts) == 2 and all("[EMAIL]" in t and "[PHONE]" in t for t in texts)
    store.close()
    for file in tmp_path.iterdir():
        raw = file.read_bytes()
        assert email.encode() not in raw and b"555 0199" not in raw, file.name


def test_profile_and_text_persist_and_erase_removes_everything(
    tmp_path: Path, ml100k_index: ItemIndex, encoder: Encoder
) -> None:
    from recagent.retrieval import Interaction

    path = tmp_path / "profiles.sqlite"
    first = Recommender(ml100k_index, encoder, None, store=ProfileStore(path))
    first.add_events([Interaction(user_id="nina-x1", item_id="1", rating=5, timestamp=1)])
    first.profile("nina-x1")
    first.add_events([Interaction(user_id="nina-x1", item_id="50", rating=5, timestamp=2)])
    first.add_text("nina-x1", "The plot was gripping and the music was wonderful.")
    # A new process-like instance on the same file sees the same user, events and text-derived aspects.
    second = Recommender(ml100k_index, encoder, None, store=ProfileStore(path))
    assert second.known_user("nina-x1")
    again = second.profile("nina-x1")
    assert {r.item_id for r in again.liked} == {"1", "50"} and again.aspect("plot") is not None
    assert len(second.store.history("nina-x1")) >= 2  # type: ignore[union-attr]
    assert second.erase_user("nina-x1") and not second.known_user("nina-x1")
    second.store.close()  # type: ignore[union-attr]
    first.store.close()  # type: ignore[union-attr]
    for file in tmp_path.iterdir():
        assert b"nina-x1" not in file.read_bytes()
    assert not Recommender(ml100k_index, encoder, None, store=ProfileStore(path)).known_user("nina-x1")
