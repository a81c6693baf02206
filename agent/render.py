"""Every text rendering of results and profiles, for every face: the CLI, the API's chat answers, the
LangChain tools and the Gradio app. One module so a sentence is written once and the faces agree."""

from __future__ import annotations

from typing import Any

from .profiles.profile import UserProfile
from .schemas import Recommendation, RecommendationResult

NOTHING_FOUND = "I found nothing that matches; try loosening the request."


def _genres(rec: Recommendation) -> str:
    return ", ".join(rec.item.genres)


def _pick_line(rec: Recommendation, with_id: bool = False) -> str:
    """ "3. [id] Title (year) (genres)": one pick as the tool and the chat answer list it."""
    genres = _genres(rec)
    item_id = f"[{rec.item.id}] " if with_id else ""
    return f"{rec.rank}. {item_id}{rec.item.display_title}" + (f" ({genres})" if genres else "")


# ------------------------------------------------------------------ results


def summarise_result(result: RecommendationResult) -> str:
    """One line per pick: rank, item id, title, genres, score and why; readable by people and models."""
    if not result.recommendations:
        return NOTHING_FOUND
    who = f"user {result.user_id}" if result.user_id else "this request"
    lines = [f"Top {len(result.recommendations)} for {who} (ranked by {result.ranker}):"]
    for rec in result.recommendations:
        line = _pick_line(rec, with_id=True)
        if rec.justification is not None:
            line += f": {rec.justification.text}"
        lines.append(line)
    if result.degraded_reason:
        lines.append(f"Note: {result.degraded_reason}.")
    return "\n".join(lines)


def ranked_text(result: RecommendationResult) -> str:
    """The ranked list, first part of the assistant's answer."""
    if not result.recommendations:
        return NOTHING_FOUND
    who = f" for user {result.user_id}" if result.user_id else ""
    lines = [f"Top {len(result.recommendations)} picks{who}:"]
    lines += [_pick_line(rec) for rec in result.recommendations]
    if result.degraded_reason:
        lines.append(f"(ranked by retrieval only: {result.degraded_reason})")
    return "\n".join(lines)


def justification_text(rec: Recommendation) -> str:
    """One pick's justification, appended after the list as it is generated."""
    if rec.justification is None:
        return ""
    lead = "\n\nWhy:\n" if rec.rank == 1 else "\n"
    return f"{lead}{rec.rank}. {rec.justification.text}"


def answer_text(result: RecommendationResult) -> str:
    return ranked_text(result) + "".join(justification_text(r) for r in result.recommendations)


def result_markdown(result: RecommendationResult) -> str:
    if not result.recommendations:
        return NOTHING_FOUND
    lines = []
    if result.mode == "retrieval-only":
        lines.append(f"_Ranked by retrieval only ({result.degraded_reason})._\n")
    for rec in result.recommendations:
        meta = _genres(rec)
        lines.append(f"**{rec.rank}. {rec.item.display_title}**" + (f" — {meta}" if meta else ""))
        if rec.justification is not None:
            tag = "" if rec.justification.source == "generated" else " _(from your history)_"
            lines.append(f"   {rec.justification.text}{tag}")
    return "\n".join(lines)


def result_table(result: RecommendationResult) -> str:
    """``recagent recommend``: one line per pick with genres and score, its justification below."""
    lines = [f"Top {len(result.recommendations)} for user {result.user_id} (ranked by {result.ranker}):"]
    for rec in result.recommendations:
        lines.append(f"{rec.rank:>2}. {rec.item.display_title}  [{_genres(rec)}]  score {rec.score:.3f}")
        if rec.justification is not None:
            lines.append(f"    {rec.justification.text}  ({rec.justification.source})")
    return "\n".join(lines)


# ------------------------------------------------------------------ profiles


def summarise_profile(profile: UserProfile, n: int = 5) -> str:
    likes = ", ".join(f"{i.tag} ({i.weight:+.2f})" for i in profile.top_interests(n)) or "none yet"
    dislikes = ", ".join(f"{i.tag} ({i.weight:+.2f})" for i in profile.top_interests(n, positive=False))
    lines = [f"User {profile.user_id}: {profile.event_count} events.", f"Likes: {likes}."]
    if dislikes:
        lines.append(f"Dislikes: {dislikes}.")
    if profile.liked:
        lines.append("Recently liked: " + "; ".join(r.title for r in profile.liked[:n]) + ".")
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


def profile_table(profile: UserProfile, evidence: int = 2) -> str:
    """A readable rendering of a profile: summary, interests with evidence, aspects, constraints, behaviour."""
    lines = [f"Profile of user {profile.user_id} (schema v{profile.schema_version})", "", profile.summary, ""]
    if profile.interests:
        lines.append(f"{'interest':<16} {'weight':>7} {'conf':>5}  {'from':<9} evidence")
        for interest in profile.interests[:15]:
            quotes = "; ".join(e.quote or e.text for e in interest.evidence[:evidence])
            lines.append(
                f"{interest.tag[:16]:<16} {interest.weight:>+7.3f} {interest.confidence:>5.2f}  "
                f"{interest.extractor:<9} {quotes[:90]}"
            )
        lines.append("")
    if profile.aspects:
        lines.append(f"{'aspect':<16} {'polarity':>8} {'strength':>8} {'n':>3}  {'from':<5} evidence")
        for aspect in profile.aspects:
            quote = aspect.evidence[0].quote if aspect.evidence else ""
            lines.append(
                f"{aspect.aspect[:16]:<16} {aspect.polarity:>+8.3f} {aspect.strength:>8.2f} {aspect.mentions:>3}  "
                f'{aspect.extractor:<5} "{quote[:80]}"'
            )
        lines.append("")
    for constraint in profile.constraints:
        lines.append(
            f'constraint: {constraint.kind} {constraint.field} = {constraint.value} ("{constraint.quote}")'
        )
    stats = profile.behaviour
    if profile.event_count:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(stats.counts.items()))
        gap = f", median gap {stats.median_gap_hours:.1f} h" if stats.median_gap_hours is not None else ""
        lines.append(f"behaviour: {counts}; {stats.active_days} active days{gap}")
    return "\n".join(lines).rstrip()


# ------------------------------------------------------------------ messages


def content_text(content: Any) -> str:
    """A chat message's content as text: a string as it is, content parts (OpenAI, LangChain, Gradio) joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
        return " ".join(p.strip() for p in parts if p and p.strip())
    return "" if content is None else str(content)
