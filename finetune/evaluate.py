"""The offline evaluation behind ``recagent eval``: every system on the same users of a MovieLens dataset under
chronological leave-one-out with full ranking over every item the user has not rated.

The served retriever is the index ``build_recommender`` gives the faces (SASRec ⊕ text, trained on the TRAIN rows,
λ chosen on validation) scored through the served :class:`Recommender`'s own profile and query code; the LLM rows
re-rank its top 20 with the served :class:`Ranker`. Hyper-parameters (old-hybrid settings, the LLM fusion weight)
are chosen on VALIDATION items; the test items are scored once, at the end.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from recagent.agent import Ranker, Recommender, Settings
from recagent.agent.diversity import intra_list_distance
from recagent.agent.factory import open_index
from recagent.agent.indexing import IndexReport, index_report, split_of
from recagent.agent.ranker import fused_scores
from recagent.retrieval import (
    CFConfig,
    Encoder,
    ItemIndex,
    LeaveOneOut,
    Phase,
    SequentialIndex,
    SequentialModel,
    TieBreak,
    load_bundled,
)
from recagent.retrieval.threads import log_to_stderr

from .metrics import RankingMetrics, ndcg_gains, paired_bootstrap_ndcg, percentile, ranking_metrics
from .protocol import (
    ALSScorer,
    PopularityScorer,
    SequentialScorer,
    ServedScorer,
    VectorScorer,
    collaborative_vectors,
    full_ranks,
    hybrid_scorer,
    prepare_threads,
    text_vectors,
)

RESULTS_ROOT = Path("benchmarks/results")
SERVED = ServedScorer.name
LLM_ONLY = "LLM order"


def results_dir(dataset: str) -> Path:
    """``benchmarks/results/ml1m-eval`` and so on: one folder per dataset, one file set per tie protocol."""
    return RESULTS_ROOT / f"{dataset.replace('-', '')}-eval"


class EvalConfig(BaseModel):
    dataset: str = "ml-1m"
    ties: TieBreak = Field(
        default="shuffle", description="shuffle (seeded per user) or file (the file's order)"
    )
    users: int | None = Field(default=1000, description="seeded random sample of evaluable users; None = all")
    llm_users: int | None = Field(default=None, description="users for the LLM rows (default: --users)")
    seed: int = 0
    candidates: int = Field(default=20, ge=2, le=26)
    justify_users: int = Field(
        default=100, ge=0, description="users whose top pick gets a generated justification"
    )
    llm: bool = Field(default=True, description="run the LLM rows")
    base_model: str = "smollm2"
    adapter: Path | None = None
    fusion_users: int = Field(
        default=300, ge=0, description="validation users for choosing the fusion weight"
    )
    fusion_weights: list[float] = Field(default_factory=lambda: [0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0])
    tune_users: int = Field(default=300, ge=50, description="validation users for the old hybrid's settings")
    cf_methods: list[str] = Field(default_factory=lambda: ["als", "item2vec"])
    cf_weights: list[float] = Field(default_factory=lambda: [0.9, 0.95])
    half_lives: list[float] = Field(default_factory=lambda: [1.0, 2.0])
    factors: int = 128
    batch: int = Field(default=8, ge=1, description="users per padded LLM forward pass")
    threads: int = 0
    dtype: str = Field(
        default="auto", description="LLM weights: auto (bfloat16 where native), float32, bfloat16"
    )
    diversities: list[float] = Field(
        default_factory=lambda: [0.0, 0.3, 0.7],
        description="served diversity settings to report (NDCG@10 and intra-list distance of the top 10)",
    )
    index_dir: Path | None = Field(default=None, description="served index folder (default: the cache dir's)")
    out_dir: Path | None = None
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


class FusionRow(BaseModel):
    """Validation NDCG@10 of an LLM variant for one fusion weight (None = the LLM's order alone)."""

    variant: str
    weight: float | None
    valid_ndcg_at_10: float


class DiversityRow(BaseModel):
    """The served top 10 at one ``diversity`` (MMR over the top-20 candidates, as ``Recommender.diversify``)."""

    diversity: float
    ndcg_at_10: float
    recall_at_10: float
    intra_list_distance: float = Field(description="mean pairwise 1 - cos of the picks' text embeddings")
    genre_distance: float = Field(description="mean pairwise Jaccard distance of the picks' genre sets")


class TieDiagnostic(BaseModel):
    """NDCG@10 on users whose last two events share a second of "the id right after the last item's" and of
    "the id right before it". Same-second ratings are close in id (MovieLens showed them as lists), so both
    beat chance; a tie-break that leaks the order shows as "after" far above "before"."""

    tied_users: int
    next_id_ndcg: float
    previous_id_ndcg: float


class EvalReport(BaseModel):
    date: str
    command: str
    dataset: str
    ties: str
    users: int
    llm_users: int
    seed: int
    systems: list[SystemResult]
    tuning: list[TuningRow]
    chosen: TuningRow
    fusion: list[FusionRow] = Field(default_factory=list)
    diversity: list[DiversityRow] = Field(default_factory=list)
    diversity_candidates: int = 20
    index: IndexReport | None = None
    sequential: dict[str, Any] | None = None
    served_identity_users: int = Field(
        default=0, description="users whose FAISS top 20 equalled the batched one"
    )
    tie_diagnostic: TieDiagnostic | None = None
    seconds: float
    notes: list[str] = Field(default_factory=list)


def tune_hybrid(
    split: LeaveOneOut, text: np.ndarray, config: EvalConfig, log: Callable[[str], None]
) -> tuple[list[TuningRow], TuningRow, np.ndarray]:
    """The old hybrid's grid (method, weight, half-life) on validation items of a separately seeded sample."""
    users = split.sample_users(config.tune_users, seed=config.seed + 1)
    rows: list[TuningRow] = []
    best: tuple[float, TuningRow, np.ndarray] | None = None
    for method in config.cf_methods:
        cf = collaborative_vectors(split, CFConfig(method=method, factors=config.factors, seed=config.seed))
        for weight in config.cf_weights:
            for half_life in config.half_lives:
                ranks, _ = full_ranks(split, hybrid_scorer(text, cf, weight, half_life), users, "valid")
                ndcg = ranking_metrics(ranks).ndcg_at_10
                row = TuningRow(method=method, cf_weight=weight, half_life=half_life, valid_ndcg_at_10=ndcg)
                rows.append(row)
                log(f"old hybrid {method} w={weight} h={half_life}: valid NDCG@10 {ndcg:.4f}")
                if best is None or ndcg > best[0]:
                    best = (ndcg, row, cf)
    assert best is not None
    return rows, best[1], best[2]


def tie_diagnostic(split: LeaveOneOut, users: np.ndarray) -> TieDiagnostic:
    """Does the test item sort after the validation item more often than before it? (See TieDiagnostic.)"""
    ids = split.data.item_ids
    rank_of_id = np.empty(len(ids), dtype=np.int64)
    rank_of_id[np.argsort(np.array(ids, dtype=object), kind="stable")] = np.arange(len(ids))
    gains: dict[int, list[float]] = {+1: [], -1: []}
    for user in users:
        end = int(split.bounds[user + 1])
        if split.data.timestamps[end - 1] != split.data.timestamps[end - 2]:
            continue
        items, _ = split.history(int(user), "test")
        target = split.target(int(user), "test")
        for direction, found in gains.items():
            offset = (rank_of_id - rank_of_id[items[-1]]) * direction
            scores = np.where(offset > 0, -offset, -(len(ids) + np.abs(offset))).astype(np.float64)
            scores[items] = -np.inf
            rank = int(np.count_nonzero(scores > scores[target]))
            found.append(1.0 / np.log2(rank + 2) if rank < 10 else 0.0)
    return TieDiagnostic(
        tied_users=len(gains[1]),
        next_id_ndcg=round(float(np.mean(gains[1])) if gains[1] else 0.0, 4),
        previous_id_ndcg=round(float(np.mean(gains[-1])) if gains[-1] else 0.0, 4),
    )


class _Candidates(BaseModel):
    """One user's served top ``k``: catalogue positions, retrieval scores, and the target's full rank."""

    user: int
    positions: list[int]
    scores: list[float]
    target: int
    retrieval_rank: int


def served_candidates(
    split: LeaveOneOut, served: ServedScorer, users: Sequence[int], phase: Phase, k: int
) -> list[_Candidates]:
    out = []
    for user in users:
        items, _ = split.history(int(user), phase)
        scores = np.asarray(served.user_scores(split, int(user), phase), dtype=np.float64)
        scores[items] = -np.inf
        top = np.argpartition(-scores, k)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        target = split.target(int(user), phase)
        others = scores >= scores[target]
        others[target] = False
        out.append(
            _Candidates(
                user=int(user),
                positions=top.tolist(),
                scores=scores[top].tolist(),
                target=target,
                retrieval_rank=int(np.count_nonzero(others)),
            )
        )
    return out


def diversity_rows(
    recommender: Recommender,
    split: LeaveOneOut,
    cases: Sequence[_Candidates],
    settings: Sequence[float],
    k: int = 10,
) -> list[DiversityRow]:
    """NDCG@10, Recall@10 and intra-list diversity of the served top ``k`` at each diversity setting."""
    catalogue = list(split.data.catalog)
    rows = []
    for diversity in settings:
        gains, hits, distances, genre_distances = [], [], [], []
        for case in cases:
            ranked = [(catalogue[p], score) for p, score in zip(case.positions, case.scores, strict=True)]
            picks = recommender.diversify(ranked, k, diversity)
            ids = [item.id for item, _ in picks]
            target = catalogue[case.target].id
            rank = ids.index(target) if target in ids else None
            gains.append(0.0 if rank is None else 1.0 / math.log2(rank + 2))
            hits.append(rank is not None)
            distances.append(intra_list_distance(recommender.index.text_vectors_for(ids)))
            genre_distances.append(_genre_distance([set(item.genres) for item, _ in picks]))
        rows.append(
            DiversityRow(
                diversity=diversity,
                ndcg_at_10=round(float(np.mean(gains)), 4),
                recall_at_10=round(float(np.mean(hits)), 4),
                intra_list_distance=round(float(np.mean(distances)), 4),
                genre_distance=round(float(np.mean(genre_distances)), 4),
            )
        )
    return rows


def _genre_distance(genres: Sequence[set[str]]) -> float:
    pairs = [(a, b) for i, a in enumerate(genres) for b in genres[i + 1 :]]
    if not pairs:
        return 0.0
    return float(np.mean([1 - len(a & b) / len(a | b) if a | b else 0.0 for a, b in pairs]))


def _rank_with(case: _Candidates, order_scores: Sequence[float]) -> int:
    """The target's rank after reordering the top ``k`` by ``order_scores`` (items below keep their rank)."""
    if case.target not in case.positions:
        return case.retrieval_rank
    order = sorted(range(len(case.positions)), key=lambda i: (-order_scores[i], i))
    return order.index(case.positions.index(case.target))


class _LLMRun(BaseModel):
    llm_scores: list[list[float]]
    latencies_ms: list[float]
    valid: int


def llm_scores(
    split: LeaveOneOut,
    served: ServedScorer,
    ranker: Ranker,
    cases: Sequence[_Candidates],
    phase: Phase,
    batch: int,
    progress: bool,
    desc: str,
) -> _LLMRun:
    """The served ranker's label log-probabilities for each user's candidates, ``batch`` users per pass."""
    from tqdm.auto import tqdm

    catalogue = list(split.data.catalog)
    scores: list[list[float]] = []
    latencies: list[float] = []
    valid = 0
    for start in tqdm(range(0, len(cases), batch), desc=desc, disable=not progress):
        chunk = cases[start : start + batch]
        inputs = [
            (served.profile(split, c.user, phase), [catalogue[p] for p in c.positions], None) for c in chunk
        ]
        t = time.perf_counter()
        rows = ranker.score_batch(inputs)
        latencies += [(time.perf_counter() - t) * 1000 / len(chunk)] * len(chunk)
        for case, row in zip(chunk, rows, strict=True):
            valid += len(row) == len(case.positions) and all(np.isfinite(row))
        scores += rows
    return _LLMRun(llm_scores=scores, latencies_ms=latencies, valid=valid)


def choose_fusion(
    cases: Sequence[_Candidates], run: _LLMRun, weights: Sequence[float], variant: str
) -> tuple[float | None, list[FusionRow]]:
    rows = []
    for weight in [None, *weights]:
        ranks = [
            _rank_with(c, fused_scores(s, c.scores, weight))
            for c, s in zip(cases, run.llm_scores, strict=True)
        ]
        rows.append(
            FusionRow(
                variant=variant, weight=weight, valid_ndcg_at_10=round(float(ndcg_gains(ranks, 10).mean()), 5)
            )
        )
    best = max(rows, key=lambda r: r.valid_ndcg_at_10)
    return best.weight, rows


def justify_top_picks(
    recommender: Recommender, split: LeaveOneOut, served: ServedScorer, cases: Sequence[_Candidates],
    run: _LLMRun, weight: float | None,
) -> tuple[int, int]:  # fmt: skip
    """The served justifier on each user's top pick: (justified, generated and valid)."""
    from recagent.agent import Recommendation, RecommendationResult

    catalogue = list(split.data.catalog)
    done = ok = 0
    for case, scores in zip(cases, run.llm_scores, strict=True):
        order = fused_scores(scores, case.scores, weight)
        top = catalogue[case.positions[int(np.argmax(order))]]
        profile = served.profile(split, case.user, "test")
        result = RecommendationResult(
            user_id=profile.user_id,
            recommendations=[Recommendation(item=top, rank=1, score=0.0, retrieval_score=0.0)],
            candidates=len(case.positions),
            ranker="eval",
        )
        justified = recommender.justify(profile, result, None).recommendations[0].justification
        done += 1
        ok += justified is not None and justified.source == "generated"
    return done, ok


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


def served_index(
    config: EvalConfig, log: Callable[[str], None]
) -> tuple[Settings, Any, ItemIndex, SequentialModel | None, Path]:
    """The served index for the dataset and tie protocol, built (SASRec trained) on first use."""
    settings = Settings(ties=config.ties, llm_model="none")
    dataset = load_bundled(config.dataset, config.ties)
    encoder = Encoder(settings.encoder, cache_dir=settings.cache_dir)
    folder = config.index_dir or settings.index_dir(dataset.name)
    log(f"served index: {folder}")
    index, model = open_index(dataset, settings, encoder, folder)
    return settings, encoder, index, model, folder


def run_evaluation(
    config: EvalConfig, progress: bool = True, log: Callable[[str], None] = log_to_stderr
) -> EvalReport:
    from recagent.agent import LocalBackend

    start = time.perf_counter()
    prepare_threads(config.threads)
    settings, encoder, index, model, folder = served_index(config, log)
    dataset_split = split_of(load_bundled(config.dataset, config.ties))
    split = dataset_split
    text = index.text_vectors if isinstance(index, SequentialIndex) else text_vectors(split, progress)
    log(f"{config.dataset} (ties={config.ties}): {split.n_users} users, {split.n_items} items, "
        f"{int(split.evaluable.sum())} evaluable")  # fmt: skip
    recommender = Recommender(index, encoder, None, sequence=model, ties=config.ties)
    served = ServedScorer(recommender)

    tuning, chosen, cf = tune_hybrid(split, text, config, log)
    users = split.sample_users(config.users, seed=config.seed)
    scorers = [
        PopularityScorer(split),
        ALSScorer(split, factors=config.factors, seed=config.seed),
        VectorScorer("Text (MiniLM)", text, chosen.half_life),
        hybrid_scorer(text, cf, chosen.cf_weight, chosen.half_life),
        *([SequentialScorer(model)] if model is not None else []),
        served,
    ]
    systems: list[SystemResult] = []
    # The served scorer's full ranking, top candidates and scores in one pass: its row, the diversity rows and
    # the LLM rows all read these.
    served_cases = served_candidates(split, served, users, "test", config.candidates)
    served_ranks = np.array([c.retrieval_rank for c in served_cases], dtype=np.int64)
    for scorer in scorers:
        ranks = served_ranks if scorer is served else full_ranks(split, scorer, users, "test")[0]
        systems.append(SystemResult(name=scorer.name, metrics=ranking_metrics(ranks)))
        log(f"{scorer.name}: NDCG@10 {systems[-1].metrics.ndcg_at_10:.4f}")
    diversity = diversity_rows(recommender, split, served_cases, config.diversities)
    log(
        "diversity: "
        + ", ".join(
            f"{r.diversity:g}→NDCG@10 {r.ndcg_at_10:.4f}, ILD {r.intra_list_distance:.3f}" for r in diversity
        )
    )
    notes = [
        f"old hybrid = MiniLM ⊕ {chosen.method} ({config.factors} factors, TRAIN rows), cf weight "
        f"{chosen.cf_weight}, recency half-life {chosen.half_life}; chosen on validation items",
    ]

    n_llm = len(users) if config.llm_users is None else min(config.llm_users, len(users))
    fusion_rows: list[FusionRow] = []
    if config.llm:
        if n_llm < len(users):
            # Users are a sorted random sample, so its first n_llm is itself a random sample.
            systems.append(
                SystemResult(
                    name=f"{SERVED} (same {n_llm} users)", metrics=ranking_metrics(served_ranks[:n_llm])
                )
            )
        variants: list[tuple[str, Path | None]] = [("base", None)]
        if config.adapter is not None:
            variants.append(("LoRA", config.adapter))
            notes.append(adapter_note(config.adapter))
        else:
            notes.append("no --adapter: the LoRA rows are missing (run `recagent finetune` first)")
        test_cases = served_cases[:n_llm]
        tune_cases = served_candidates(
            split,
            served,
            split.sample_users(config.fusion_users, seed=config.seed + 2),
            "valid",
            config.candidates,
        )
        references: list[tuple[str, np.ndarray]] = [("served retriever", served_ranks[:n_llm])]
        for variant, adapter in variants:
            backend = LocalBackend(config.base_model, adapter=adapter, dtype=config.dtype)
            backend.load()
            ranker = Ranker(backend)
            tune_run = llm_scores(
                split, served, ranker, tune_cases, "valid", config.batch, progress, f"{variant} valid"
            )
            weight, rows = choose_fusion(tune_cases, tune_run, config.fusion_weights, variant)
            fusion_rows += rows
            log(
                f"{variant} fusion on validation: "
                + ", ".join(f"{r.weight}→{r.valid_ndcg_at_10:.4f}" for r in rows)
            )
            run = llm_scores(
                split, served, ranker, test_cases, "test", config.batch, progress, f"{variant} test"
            )
            justifier = Recommender(index, encoder, backend, sequence=model, ties=config.ties)
            n_just = min(config.justify_users, len(test_cases))
            done, ok = justify_top_picks(
                justifier, split, served, test_cases[:n_just], _LLMRun(
                    llm_scores=run.llm_scores[:n_just], latencies_ms=[], valid=0), weight
            )  # fmt: skip
            stage = LLMStageMetrics(
                valid_candidate_share=run.valid / max(1, len(test_cases)),
                justification_valid_share=ok / done if done else None,
                justified_users=done,
                latency_p50_ms=round(percentile(run.latencies_ms, 50), 1),
                latency_p95_ms=round(percentile(run.latencies_ms, 95), 1),
            )
            for label, w in (
                (LLM_ONLY, None),
                (f"fused, w={weight:g} chosen on validation" if weight is not None else "", weight),
            ):
                if not label:
                    continue
                ranks = np.array(
                    [
                        _rank_with(c, fused_scores(s, c.scores, w))
                        for c, s in zip(test_cases, run.llm_scores, strict=True)
                    ]
                )
                compared = [
                    PairedDifference(reference=ref, **dict(zip(("difference", "low", "high"),
                                     paired_bootstrap_ndcg(ranks, ref_ranks, seed=config.seed), strict=True)))
                    for ref, ref_ranks in references
                ]  # fmt: skip
                name = f"+ {variant} LLM top-{config.candidates} ({label})"
                systems.append(
                    SystemResult(name=name, metrics=ranking_metrics(ranks), llm=stage, compared=compared)
                )
                log(f"{name}: NDCG@10 {systems[-1].metrics.ndcg_at_10:.4f}")
            references.append((f"+ {variant} LLM ({LLM_ONLY})", np.array(
                [_rank_with(c, s) for c, s in zip(test_cases, run.llm_scores, strict=True)])))  # fmt: skip
    return EvalReport(
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        command=config.command,
        dataset=config.dataset,
        ties=config.ties,
        users=len(users),
        llm_users=n_llm if config.llm else 0,
        seed=config.seed,
        systems=systems,
        tuning=tuning,
        chosen=chosen,
        fusion=fusion_rows,
        diversity=diversity,
        diversity_candidates=config.candidates,
        index=index_report(folder),
        sequential=model.meta.model_dump(exclude={"item_ids"}) if model is not None else None,
        served_identity_users=served_identity(recommender, split, served, users[:20]),
        tie_diagnostic=tie_diagnostic(split, users),
        seconds=round(time.perf_counter() - start, 1),
        notes=notes,
    )


def served_identity(
    recommender: Recommender, split: LeaveOneOut, served: ServedScorer, users: np.ndarray
) -> int:
    """How many users' FAISS top 20 through ``Recommender.retrieve`` equal the batched top 20 used above."""
    from recagent.agent import RecommendationRequest

    same = 0
    for user in users:
        profile = served.profile(split, int(user), "test")
        hits = recommender.retrieve(profile, RecommendationRequest(user_id=profile.user_id, k=20))
        case = served_candidates(split, served, [int(user)], "test", 20)[0]
        same += [split.data.catalog.position(item.id) for item, _ in hits] == case.positions
    return same
