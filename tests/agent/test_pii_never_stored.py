"""Every personal datum of the labelled corpus, sent as reviews, events, chat turns and requests through the
real pipeline, never reaches the SQLite file (its raw bytes and WAL) nor any prompt an LLM is given."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from recagent.agent import LocalBackend, ProfileStore, RecommendationRequest, Recommender
from recagent.agent.agent_mode import ToolCallingChat
from recagent.agent.llm import Conversation
from recagent.retrieval import Dataset, Encoder, Interaction, ItemIndex
from tests.scripted_chat import InjectionFollower

from .pii_corpus import PII


class RecordingBackend:
    """The real tiny model, with every conversation it is given kept for inspection."""

    def __init__(self, inner: LocalBackend) -> None:
        self.inner = inner
        self.prompts: list[str] = []

    @property
    def name(self) -> str:
        return self.inner.name

    def _keep(self, conversations: Sequence[Conversation]) -> None:
        self.prompts += [m["content"] for c in conversations for m in c]

    def label_scores(self, conversations: Sequence[Conversation], labels: Sequence[str]) -> list[list[float]]:
        self._keep(conversations)
        return self.inner.label_scores(conversations, labels)

    def generate(
        self, conversations: Sequence[Conversation], max_new_tokens: int = 48, stop: Sequence[str] = ()
    ) -> list[str]:
        self._keep(conversations)
        return self.inner.generate(conversations, max_new_tokens)


def _secrets() -> list[str]:
    return [secret for _, labels in PII for _, secret in labels]


def test_no_corpus_pii_in_the_store_or_prompts(
    ml100k: Dataset, ml100k_index: ItemIndex, encoder: Encoder, tiny_backend: LocalBackend, tmp_path: Path
) -> None:
    path = tmp_path / "profiles.sqlite"
    backend = RecordingBackend(tiny_backend)
    recommender = Recommender(
        ml100k_index,
        encoder,
        backend,
        histories=ml100k.by_user,
        store=ProfileStore(path),
        extract_with_llm=True,
    )
    texts = [text for text, _ in PII]
    # Reviews read by the LLM extractor (prompts) and stored: ten corpus texts per review keeps it quick.
    for start in range(0, len(texts), 10):
        recommender.add_text("1", "\n".join(texts[start : start + 10]), source="review", item_id="50")
    recommender.add_events(
        [
            Interaction(user_id="1", item_id="181", rating=4, timestamp=p, review=t)
            for p, t in enumerate(texts)
        ]
    )
    # Chat turns: a remembered session (stored), and requests with history; every third one justified.
    for pos in range(0, len(texts), 2):
        request = RecommendationRequest(
            user_id="1",
            query=texts[pos],
            history=texts[pos + 1 : pos + 2],
            session_id="pii-session",
            k=2,
            justify=pos % 3 == 0,
        )
        recommender.recommend(request)
    follower = InjectionFollower()
    ToolCallingChat(recommender, follower).run(
        [{"role": "user", "content": t} for t in texts[:10]], user_id="1"
    )

    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("profiles.sqlite"))
    assert len(raw) > 10_000 and b"[EMAIL]" in raw and b"[PHONE]" in raw  # the texts were stored, redacted
    assert backend.prompts and follower.seen_text
    leaks = {
        secret
        for secret in _secrets()
        if secret.encode() in raw
        or any(secret in p for p in backend.prompts)
        or any(secret in t for t in follower.seen_text)
    }
    assert leaks == set()


@pytest.mark.parametrize("secret", ["jane.doe+films@mail.example.org", "4111 1111 1111 1111"])
def test_the_check_can_fail(tmp_path: Path, secret: str) -> None:
    """The byte scan finds a secret written without redaction (so an empty result above means something)."""
    import sqlite3

    conn = sqlite3.connect(tmp_path / "raw.sqlite")
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.execute("INSERT INTO t VALUES (?)", (f"text with {secret}",))
    conn.commit()
    conn.close()
    assert secret.encode() in (tmp_path / "raw.sqlite").read_bytes()
