"""Training data, LoRA fine-tuning of the ranker, offline evaluation and baselines."""

from __future__ import annotations

from .data import RankingExample, build_examples, load_examples, save_examples
from .evaluate import EvalConfig, EvalReport, results_dir, run_evaluation
from .lora import LoraSettings, TrainingPair, TrainReport, train_lora
from .metrics import RankingMetrics, mrr, ndcg_at, paired_bootstrap_ndcg, rank_of, ranking_metrics, recall_at
from .pipeline import DEFAULT_ADAPTER, FinetuneConfig, run_finetune
from .protocol import (
    PopularityScorer,
    SequentialScorer,
    ServedScorer,
    VectorScorer,
    full_ranks,
    recency_query,
)
from .report import markdown_table, write_report

__all__ = [
    "DEFAULT_ADAPTER",
    "EvalConfig",
    "EvalReport",
    "FinetuneConfig",
    "LoraSettings",
    "PopularityScorer",
    "RankingExample",
    "RankingMetrics",
    "SequentialScorer",
    "ServedScorer",
    "TrainReport",
    "TrainingPair",
    "VectorScorer",
    "build_examples",
    "full_ranks",
    "load_examples",
    "markdown_table",
    "mrr",
    "ndcg_at",
    "paired_bootstrap_ndcg",
    "rank_of",
    "recall_at",
    "recency_query",
    "results_dir",
    "run_evaluation",
    "run_finetune",
    "save_examples",
    "ranking_metrics",
    "train_lora",
    "write_report",
]
