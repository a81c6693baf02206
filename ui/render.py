"""Text renderings of recommendation results shared by the chat faces."""

from __future__ import annotations

from recagent.agent import RecommendationResult


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
