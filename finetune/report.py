"""Writing an :class:`~recagent.finetune.evaluate.EvalReport`: the markdown table, the chart and the JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .evaluate import EvalReport


def markdown_table(report: EvalReport) -> str:
    protocol = {
        "shuffle": "same-second ties in a seeded per-user shuffle",
        "file": "same-second ties in the file's order",
    }
    lines = [
        f"{report.dataset}, chronological leave-one-out ({protocol.get(report.ties, report.ties)}), full ranking "
        f"over all unrated items; {report.users} test users (seed {report.seed}), LLM rows on {report.llm_users}. "
        f"{report.date}.",
        "",
        f"Command: `{report.command}`",
        "",
        "| system | users | Recall@10 | Recall@20 | NDCG@10 | MRR | valid candidates | valid justifications | latency p50 / p95 (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in report.systems:
        m, llm = s.metrics, s.llm
        valid = f"{llm.valid_candidate_share:.0%}" if llm else "–"
        just = (
            f"{llm.justification_valid_share:.0%} of {llm.justified_users}"
            if llm and llm.justification_valid_share is not None
            else "–"
        )
        lat = f"{llm.latency_p50_ms:.0f} / {llm.latency_p95_ms:.0f}" if llm else "–"
        lines.append(
            f"| {s.name} | {m.users} | {m.recall_at_10:.4f} | {m.recall_at_20:.4f} | {m.ndcg_at_10:.4f} | "
            f"{m.mrr:.4f} | {valid} | {just} | {lat} |"
        )
    paired = [
        f"- {s.name} − {c.reference}: NDCG@10 {c.difference:+.4f} (95% paired bootstrap {c.low:+.4f} … "
        f"{c.high:+.4f}; {'significant' if c.significant else 'not significant'})"
        for s in report.systems
        for c in s.compared
    ]
    extra = []
    if report.index is not None and report.index.text_weight is not None:
        best = max(report.index.tuning, key=lambda r: r.valid_ndcg_at_10)
        alone = next((r for r in report.index.tuning if r.text_weight == 0 and r.collab_weight == 0), None)
        extra.append(
            f"- served index: SASRec ⊕ MiniLM text ⊕ item2vec; λ text = {report.index.text_weight:g}, λ item2vec = "
            f"{report.index.collab_weight or 0:g}, chosen on validation items of {report.index.tune_users} users "
            f"(NDCG@10 {best.valid_ndcg_at_10:.4f}"
            + (f"; SASRec alone {alone.valid_ndcg_at_10:.4f})" if alone else ")")
        )
    if report.sequential:
        seq = report.sequential
        extra.append(
            f"- SASRec: {seq['epochs_run']} epochs ({seq['seconds'] / 60:.1f} min), best validation NDCG@10 "
            f"{seq['best_valid_ndcg_at_10']:.4f} at epoch {seq['best_epoch']}"
        )
    if report.fusion:
        extra.append(
            "- LLM fusion weight on validation (retrieval + w·LLM; None = LLM order): "
            + "; ".join(f"{r.variant} {r.weight}→{r.valid_ndcg_at_10:.4f}" for r in report.fusion)
        )
    extra.append(f"- served = evaluated: FAISS top 20 via Recommender.retrieve equal to the batched top 20 for "
                 f"{report.served_identity_users} of 20 users")  # fmt: skip
    if report.tie_diagnostic is not None:
        t = report.tie_diagnostic
        extra.append(
            f"- tie-order check on the {t.tied_users} users whose last two events share a second: the id right "
            f"after the last item scores NDCG@10 {t.next_id_ndcg:.4f}, the id right before {t.previous_id_ndcg:.4f} "
            "(equal = the order leaks nothing)"
        )
    lines += ["", *paired, *extra, *[f"- {n}" for n in report.notes], f"- total time {report.seconds:.0f} s"]
    if report.diversity:
        lines += [
            "",
            f"Diversity (served retriever, top 10 re-ordered by MMR from its top {report.diversity_candidates}, "
            "`RecommendationRequest.diversity`; plot: "
            f"[results-{report.ties}-diversity.png](results-{report.ties}-diversity.png)):",
            "",
            "| diversity | NDCG@10 | Recall@10 | intra-list distance (text) | genre distance |",
            "| ---: | ---: | ---: | ---: | ---: |",
            *(
                f"| {r.diversity:g} | {r.ndcg_at_10:.4f} | {r.recall_at_10:.4f} | {r.intra_list_distance:.4f} | "
                f"{r.genre_distance:.4f} |"
                for r in report.diversity
            ),
        ]
    return "\n".join(lines) + "\n"


def diversity_chart(report: EvalReport, path: Path) -> Path:
    """NDCG@10 against intra-list distance, one point per diversity setting: the trade-off."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [r.intra_list_distance for r in report.diversity]
    ys = [r.ndcg_at_10 for r in report.diversity]
    ax.plot(xs, ys, marker="o")
    for r in report.diversity:
        ax.annotate(f"diversity {r.diversity:g}", (r.intra_list_distance, r.ndcg_at_10), fontsize=8,
                    textcoords="offset points", xytext=(5, 5))  # fmt: skip
    ax.set_xlabel("intra-list distance of the top 10 (1 - cos, text embeddings)")
    ax.set_ylabel("NDCG@10")
    ax.set_title(
        f"{report.dataset} (ties: {report.ties}): accuracy vs diversity, {report.users} users", fontsize=9
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def bar_chart(report: EvalReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s.name for s in report.systems]
    metrics = [("Recall@10", "recall_at_10"), ("NDCG@10", "ndcg_at_10"), ("MRR", "mrr")]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(12, 5))
    for j, (label, attr) in enumerate(metrics):
        ax.bar(x + (j - 1) * 0.27, [getattr(s.metrics, attr) for s in report.systems], 0.27, label=label)
    ax.set_xticks(x, names, rotation=25, ha="right", fontsize=7)
    ax.set_title(
        f"{report.dataset} leave-one-out (ties: {report.ties}), full ranking, {report.users} users ({report.date})",
        fontsize=9,
    )
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(report: EvalReport, out_dir: Path) -> tuple[Path, Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"results-{report.ties}"
    md = out_dir / f"{stem}.md"
    md.write_text(markdown_table(report), encoding="utf-8")
    js = out_dir / f"{stem}.json"
    js.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    png = bar_chart(report, out_dir / f"{stem}.png")
    if report.diversity:
        diversity_chart(report, out_dir / f"{stem}-diversity.png")
    return md, js, png
