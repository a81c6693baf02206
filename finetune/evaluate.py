"""The offline evaluation harness behind ``recagent eval``: six systems on the same users of MovieLens-1M under
chronological leave-one-out with full ranking over every item the user has not rated.

Hybrid hyper-parameters (collaborative method, fusion weight, recency half-life) are chosen on the VALIDATION
items; the test items are scored once, at the end.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from recagent.retrieval import DEFAULT_ENCODER, CFConfig, HybridIndex

from .metrics import RankingMetrics, paired_bootstrap_ndcg, percentile, summarise
from .protocol import (
    ALSScorer,
    LeaveOneOut,
    PopularityScorer,
    VectorScorer,
    collaborative_vectors,
    full_ranks,
    hybrid_scorer,
    prepare,
)

DEFAULT_RESULTS = Path("benchmarks/results/ml1m-eval")


class EvalConfig(BaseModel):
    dataset: str = "ml-1m"
    users: int | None = Field(default=1000, description="seeded random sample of evaluable users; None = all")
    llm_users: int | None = Field(
        default=None, description="users for the two LLM systems (default: --users)"
    )
    seed: int = 0
    candidates: int = Field(default=20, ge=2, le=26)
    history_titles: int = Field(default=3, ge=1, le=20)
    candidate_genres: bool = Field(
        default=False, description="show genres after candidate titles (longer prompt)"
    )
    justify_users: int = Field(
        default=20, ge=0, description="users whose top pick gets a generated justification"
    )
    base_model: str = "smollm2"
    adapter: Path | None = None
    tune_users: int = Field(default=300, ge=50, description="validation users for choosing hybrid settings")
    cf_methods: list[str] = Field(default_factory=lambda: ["als", "item2vec"])
    cf_weights: list[float] = Field(default_factory=lambda: [0.9, 0.95])
    half_lives: list[float] = Field(default_factory=lambda: [1.0, 2.0])
    factors: int = 128
    threads: int = 0
    dtype: str = Field(
        default="auto", description="LLM weights: auto (bfloat16 where native), float32, bfloat16"
    )
    out_dir: Path = DEFAULT_RESULTS
    command: str = ""


class LLMStageMetrics(BaseModel):
    valid_candidate_share: float = Field(
        description="ranked outputs that are a permutation of the candidates"
    )
    justification_valid_share: float | None = Field(
        default=None, description="generated justifications that passed schema and catalogue validation"
    )
    justified_users: int = 0
    latency_p50_ms: float
    latency_p95_ms: float


class PairedDifference(BaseModel):
    """NDCG@10 of a system minus a reference's on the same users, with a 95% paired-bootstrap interval."""

    reference: str
    difference: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


class SystemResult(BaseModel):
    name: str
    metrics: RankingMetrics
    llm: LLMStageMetrics | None = None
    compared: list[PairedDifference] = Field(default_factory=list)
    note: str = ""


class TuningRow(BaseModel):
    method: str
    cf_weight: float
    half_life: float
    valid_ndcg_at_10: float


class EvalReport(BaseModel):
    date: str
    command: str
    dataset: str
    users: int
    llm_users: int
    seed: int
    systems: list[SystemResult]
    tuning: list[TuningRow]
    chosen: TuningRow
    seconds: float
    notes: list[str] = Field(default_factory=list)


def tune_hybrid(
    split: LeaveOneOut, text: np.ndarray, config: EvalConfig, log: Callable[[str], None]
) -> tuple[list[TuningRow], TuningRow, np.ndarray]:
    """Grid over (method, weight, half-life) on validation items of a sample disjoint in seed from the test run."""
    users = split.sample_users(config.tune_users, seed=config.seed + 1)
    rows: list[TuningRow] = []
    best: tuple[float, TuningRow, np.ndarray] | None = None
    for method in config.cf_methods:
        cf = collaborative_vectors(split, CFConfig(method=method, factors=config.factors, seed=config.seed))
        for weight in config.cf_weights:
            for half_life in config.half_lives:
                ranks, _ = full_ranks(split, hybrid_scorer(text, cf, weight, half_life), users, "valid")
                ndcg = summarise(ranks).ndcg_at_10
                row = TuningRow(method=method, cf_weight=weight, half_life=half_life, valid_ndcg_at_10=ndcg)
                rows.append(row)
                log(f"tune {method} w={weight} h={half_life}: valid NDCG@10 {ndcg:.4f}")
                if best is None or ndcg > best[0]:
                    best = (ndcg, row, cf)
    assert best is not None
    return rows, best[1], best[2]


def rerank_ranks(
    split: LeaveOneOut,
    users: np.ndarray,
    tops: Sequence[np.ndarray],
    retrieval_ranks: np.ndarray,
    backend: Any,
    config: EvalConfig,
    index: HybridIndex | None,
    log: Callable[[str], None],
    progress: bool = True,
) -> tuple[np.ndarray, LLMStageMetrics]:
    """The LLM reorders each user's top ``candidates``; items below keep their retrieval rank."""
    from tqdm.auto import tqdm

    from recagent.agent import Justifier, Ranker, gather_evidence

    from .data import compact, short_profile

    ranker = Ranker(backend)
    catalogue = list(split.data.catalog)
    ranks = retrieval_ranks.copy()
    latencies: list[float] = []
    valid = 0
    justified = generated_ok = 0
    justifier = Justifier(backend, index) if index is not None else None
    for pos, user in enumerate(tqdm(users, desc=f"rank {backend.name}", disable=not progress)):
        items, ratings = split.history(int(user), "test")
        profile = short_profile(
            split.data.user_ids[int(user)], split.data.catalog, items, ratings, config.history_titles
        )
        candidates = compact([catalogue[i] for i in tops[pos][: config.candidates]], config.candidate_genres)
        t = time.perf_counter()
        ranked = ranker.rank(profile, candidates)
        latencies.append((time.perf_counter() - t) * 1000)
        ids = [item.id for item, _ in ranked]
        if len(ids) == len(candidates) and set(ids) == {c.id for c in candidates}:
            valid += 1
        target = catalogue[split.target(int(user), "test")].id
        if target in ids:
            ranks[pos] = ids.index(target)
        if justifier is not None and index is not None and pos < config.justify_users:
            top_item = split.data.catalog[ranked[0][0].id]
            evidence = gather_evidence(top_item, profile, index, None)
            result = justifier.justify([top_item], profile, None, [evidence])[0]
            justified += 1
            generated_ok += result.source == "generated"
    return ranks, LLMStageMetrics(
        valid_candidate_share=valid / max(1, len(users)),
        justification_valid_share=(generated_ok / justified) if justified else None,
        justified_users=justified,
        latency_p50_ms=round(percentile(latencies, 50), 1),
        latency_p95_ms=round(percentile(latencies, 95), 1),
    )


def adapter_note(adapter: Path) -> str:
    """Which adapter the LoRA row used and how it was trained (from its training_report.json)."""
    from .lora import load_report

    try:
        report = load_report(adapter)
    except (OSError, ValueError):
        return f"LoRA adapter {adapter} (no training_report.json)"
    settings = report.get("settings", {})
    return (
        f"LoRA adapter {adapter}: {report.get('steps')} steps on {report.get('examples')} examples in "
        f"{float(report.get('seconds', 0)) / 60:.1f} min; r={settings.get('r')}, "
        f"modules {','.join(settings.get('target_modules', []))}, top layers {settings.get('top_layers') or 'all'}"
    )


def run_evaluation(
    config: EvalConfig, progress: bool = True, log: Callable[[str], None] = print
) -> EvalReport:
    from recagent.agent import LocalBackend

    start = time.perf_counter()
    split, text = prepare(config.dataset, config.threads, progress)
    data = split.data
    log(
        f"{config.dataset}: {split.n_users} users, {split.n_items} items, {int(split.evaluable.sum())} evaluable"
    )

    tuning, chosen, cf = tune_hybrid(split, text, config, log)
    log(f"chosen on validation: {chosen.method} w={chosen.cf_weight} h={chosen.half_life}")
    users = split.sample_users(config.users, seed=config.seed)
    notes = [
        f"hybrid = MiniLM text ⊕ {chosen.method} ({config.factors} factors, TRAIN rows only), "
        f"cf weight {chosen.cf_weight}, recency half-life {chosen.half_life} events; chosen on validation items",
    ]

    systems: list[SystemResult] = []
    scorers = [
        PopularityScorer(split),
        ALSScorer(split, factors=config.factors, seed=config.seed),
        VectorScorer("Text retrieval (MiniLM)", text, chosen.half_life),
        hybrid_scorer(text, cf, chosen.cf_weight, chosen.half_life),
    ]
    hybrid_ranks: np.ndarray | None = None
    hybrid_tops: list[np.ndarray] = []
    for scorer in scorers:
        ranks, tops = full_ranks(split, scorer, users, "test")
        systems.append(SystemResult(name=scorer.name, metrics=summarise(ranks)))
        log(f"{scorer.name}: NDCG@10 {systems[-1].metrics.ndcg_at_10:.4f}")
        if scorer.name == "Hybrid retrieval":
            hybrid_ranks, hybrid_tops = ranks, tops
    assert hybrid_ranks is not None

    n_llm = len(users) if config.llm_users is None else min(config.llm_users, len(users))
    llm_users = users[:n_llm] if n_llm < len(users) else users
    if n_llm < len(users):
        # Users are a sorted random sample, so its first n_llm is itself a random sample; report the stage on it.
        sub = summarise(hybrid_ranks[:n_llm])
        systems.append(
            SystemResult(
                name=f"Hybrid retrieval (same {n_llm} users)", metrics=sub, note="reference for LLM rows"
            )
        )
    index = HybridIndex(data.catalog, text, cf, DEFAULT_ENCODER, chosen.cf_weight)
    variants: list[tuple[str, Path | None]] = [("Hybrid + base LLM top-20", None)]
    if config.adapter is not None:
        variants.append(("Hybrid + LoRA LLM top-20", config.adapter))
        notes.append(adapter_note(config.adapter))
    else:
        notes.append("no --adapter given: the LoRA row is missing (run `recagent finetune` first)")
    references: list[tuple[str, np.ndarray]] = [("hybrid retrieval", hybrid_ranks[:n_llm])]
    for name, adapter in variants:
        # 'auto': bfloat16 where the CPU has it natively (~2x faster; label log-probs within ~0.2 nats).
        backend = LocalBackend(config.base_model, adapter=adapter, dtype=config.dtype)
        backend.load()
        ranks, llm = rerank_ranks(
            split, llm_users, hybrid_tops[:n_llm], hybrid_ranks[:n_llm], backend, config, index, log, progress
        )
        compared = []
        for reference, reference_ranks in references:
            difference, low, high = paired_bootstrap_ndcg(ranks, reference_ranks, seed=config.seed)
            compared.append(PairedDifference(reference=reference, difference=difference, low=low, high=high))
        systems.append(SystemResult(name=name, metrics=summarise(ranks), llm=llm, compared=compared))
        references.append((name, ranks))
        log(f"{name}: NDCG@10 {systems[-1].metrics.ndcg_at_10:.4f}")
    return EvalReport(
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        command=config.command,
        dataset=config.dataset,
        users=len(users),
        llm_users=n_llm,
        seed=config.seed,
        systems=systems,
        tuning=tuning,
        chosen=chosen,
        seconds=round(time.perf_counter() - start, 1),
        notes=notes,
    )


def markdown_table(report: EvalReport) -> str:
    lines = [
        f"MovieLens-1M ({report.dataset}), chronological leave-one-out, full ranking over all unrated items; "
        f"{report.users} test users (seed {report.seed}), LLM rows on {report.llm_users} of them. {report.date}.",
        "",
        f"Command: `{report.command}`",
        "",
        "| system | users | Recall@10 | Recall@20 | NDCG@10 | MRR | valid candidates | valid justifications | latency p50 / p95 (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in report.systems:
        m = s.metrics
        llm = s.llm
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
    lines += ["", *paired, *[f"- {n}" for n in report.notes], f"- total time {report.seconds:.0f} s"]
    return "\n".join(lines) + "\n"


def bar_chart(report: EvalReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s.name for s in report.systems]
    metrics = [("Recall@10", "recall_at_10"), ("NDCG@10", "ndcg_at_10"), ("MRR", "mrr")]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(11, 4.8))
    for j, (label, attr) in enumerate(metrics):
        ax.bar(x + (j - 1) * 0.27, [getattr(s.metrics, attr) for s in report.systems], 0.27, label=label)
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    ax.set_title(
        f"{report.dataset} leave-one-out, full ranking, {report.users} users ({report.date})", fontsize=9
    )
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(report: EvalReport, out_dir: Path) -> tuple[Path, Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "results.md"
    md.write_text(markdown_table(report), encoding="utf-8")
    js = out_dir / "results.json"
    js.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    png = bar_chart(report, out_dir / "results.png")
    return md, js, png
