"""Training data, LoRA fine-tuning of the ranker, offline evaluation and baselines."""

from __future__ import annotations

from .data import RankingExample, build_examples, load_examples, save_examples
from .evaluate import EvalConfig, EvalReport, markdown_table, results_dir, run_evaluation, write_report
from .lora import LoraSettings, TrainingPair, TrainReport, train_lora
from .metrics import RankingMetrics, mrr, ndcg_at, paired_bootstrap_ndcg, rank_of, recall_at, summarise
from .pipeline import DEFAULT_ADAPTER, FinetuneConfig, run_finetune
from .protocol import (
    PopularityScorer,
    SequentialScorer,
    ServedScorer,
    VectorScorer,
    full_ranks,
    recency_query,
)

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
    "summarise",
    "train_lora",
    "write_report",
]
