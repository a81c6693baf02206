"""Text renderings of recommendation results shared by the chat faces."""

from __future__ import annotations

from recagent.agent import RecommendationResult, UserProfile


def result_markdown(result: RecommendationResult) -> str:
    if not result.recommendations:
        return "I found nothing that matches; try loosening the request."
    lines = []
    if result.mode == "retrieval-only":
        lines.append(f"_Ranked by retrieval only ({result.degraded_reason})._\n")
    for rec in result.recommendations:
        meta = ", ".join(rec.item.genres)
        lines.append(f"**{rec.rank}. {rec.item.display_title}**" + (f" — {meta}" if meta else ""))
        if rec.justification is not None:
            tag = "" if rec.justification.source == "generated" else " _(from your history)_"
            lines.append(f"   {rec.justification.text}{tag}")
    return "\n".join(lines)


def profile_markdown(profile: UserProfile, max_interests: int = 8) -> str:
    """The profile beside the chat: summary, interests with weights and evidence, session constraints."""
    lines = [f"**Profile of {profile.user_id}**", "", profile.summary or "_No profile yet._", ""]
    for interest in profile.top_interests(max_interests) + profile.top_interests(3, positive=False):
        quotes = "; ".join(e.quote or e.text for e in interest.evidence[:2])
        lines.append(f"- **{interest.tag}** {interest.weight:+.2f} _({interest.extractor})_ — {quotes}")
    for aspect in profile.aspects[:5]:
        quote = aspect.evidence[0].quote if aspect.evidence else ""
        lines.append(f'- aspect **{aspect.aspect}** {aspect.polarity:+.2f} — "{quote}"')
    if profile.session is not None:
        for c in profile.session.constraints:
            lines.append(f'- this chat: {c.kind} {c.field.replace("_", " ")} **{c.value}** ("{c.quote}")')
    return "\n".join(lines)
