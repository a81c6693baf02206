"""Training data, LoRA fine-tuning of the ranker, offline evaluation and baselines."""

from __future__ import annotations

from .data import RankingExample, build_examples, load_examples, save_examples, short_profile
from .evaluate import EvalConfig, EvalReport, markdown_table, run_evaluation, write_report
from .lora import LoraSettings, TrainingPair, TrainReport, train_lora
from .metrics import RankingMetrics, mrr, ndcg_at, paired_bootstrap_ndcg, rank_of, recall_at, summarise
from .pipeline import DEFAULT_ADAPTER, FinetuneConfig, run_finetune
from .protocol import LeaveOneOut, PopularityScorer, VectorScorer, recency_query

__all__ = [
    "DEFAULT_ADAPTER",
    "EvalConfig",
    "EvalReport",
    "FinetuneConfig",
    "LeaveOneOut",
    "LoraSettings",
    "PopularityScorer",
    "RankingExample",
    "RankingMetrics",
    "TrainReport",
    "TrainingPair",
    "VectorScorer",
    "build_examples",
    "load_examples",
    "markdown_table",
    "mrr",
    "ndcg_at",
    "rank_of",
    "recall_at",
    "recency_query",
    "run_evaluation",
    "run_finetune",
    "save_examples",
    "short_profile",
    "summarise",
    "paired_bootstrap_ndcg",
    "train_lora",
    "write_report",
]
