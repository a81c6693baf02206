from __future__ import annotations

from recagent.agent import Constraint, ProfileBuilder, SessionMemory
from recagent.agent.render import profile_markdown
from recagent.retrieval import Dataset, ItemIndex


def test_profile_markdown_shows_weights_evidence_and_session(
    ml100k: Dataset, ml100k_index: ItemIndex
) -> None:
    profile = ProfileBuilder(ml100k_index).build("1", ml100k.history("1"))
    top = profile.top_interests(1)[0]
    text = profile_markdown(profile)
    assert f"**{top.tag}** {top.weight:+.2f}" in text and top.evidence[0].text in text
    session = SessionMemory(
        session_id="s",
        constraints=[Constraint(kind="hard", field="exclude_genre", value="Horror", quote="no horror")],
    )
    with_chat = profile_markdown(profile.model_copy(update={"session": session}))
    assert 'this chat: hard exclude genre **Horror** ("no horror")' in with_chat and with_chat != text


def test_message_content_is_flattened_one_way_for_every_face() -> None:
    from recagent.agent.render import content_text

    assert content_text("a 90s comedy") == "a 90s comedy"
    parts = [
        {"type": "text", "text": "a 90s "},
        {"type": "image_url", "image_url": {"url": "x"}},
        {"text": "comedy"},
    ]
    assert content_text(parts) == "a 90s comedy"
    assert content_text(None) == ""


def test_an_empty_result_reads_the_same_on_every_face() -> None:
    from recagent.agent import RecommendationResult
    from recagent.agent.render import NOTHING_FOUND, ranked_text, result_markdown, summarise_result

    empty = RecommendationResult(user_id="1", recommendations=[], candidates=0, ranker="retrieval")
    assert ranked_text(empty) == result_markdown(empty) == summarise_result(empty) == NOTHING_FOUND
