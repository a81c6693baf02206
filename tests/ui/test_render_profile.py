from __future__ import annotations

from recagent.agent import Constraint, ProfileBuilder, SessionMemory
from recagent.retrieval import Dataset, ItemIndex
from recagent.ui.render import profile_markdown


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
