"""``recagent finetune``: LlamaRec-style examples from the served retriever on ml-1m, then a LoRA adapter."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from recagent.agent import Recommender
from recagent.retrieval import TieBreak
from recagent.retrieval.threads import log_to_stderr

from .data import build_examples, save_examples
from .evaluate import EvalConfig, served_index
from .lora import LoraSettings, TrainingPair, TrainReport, train_lora
from .protocol import ServedScorer, prepare_threads

DEFAULT_ADAPTER = Path("finetune/adapters/smollm2-ranker")


class FinetuneConfig(BaseModel):
    dataset: str = "ml-1m"
    ties: TieBreak = "shuffle"
    out: Path = DEFAULT_ADAPTER
    examples: int = Field(default=2000, ge=1, description="most training examples")
    prefixes: int = Field(
        default=2, ge=1, description="history prefixes per user (validation item, then earlier)"
    )
    shuffle_candidates: bool = Field(default=True, description="so a label's position carries no hint")
    eval_users: int = Field(default=1000, description="the eval sample (same seed) is excluded from training")
    seed: int = 0
    candidates: int = 20
    lora: LoraSettings = Field(default_factory=lambda: LoraSettings(top_layers=6))
    resume: bool = True
    threads: int = 0


def run_finetune(
    config: FinetuneConfig, progress: bool = True, log: Callable[[str], None] = log_to_stderr
) -> TrainReport:
    start = time.perf_counter()
    prepare_threads(config.threads)
    eval_config = EvalConfig(dataset=config.dataset, ties=config.ties)
    _, encoder, index, model, _ = served_index(eval_config, log)
    from recagent.agent.indexing import split_of
    from recagent.retrieval import load_bundled

    split = split_of(load_bundled(config.dataset, config.ties))
    served = ServedScorer(Recommender(index, encoder, None, sequence=model, ties=config.ties))
    held_out = set(split.sample_users(config.eval_users, seed=config.seed).tolist())
    pool = np.array([u for u in np.flatnonzero(split.evaluable) if int(u) not in held_out])
    np.random.default_rng(config.seed).shuffle(pool)
    examples = list(
        build_examples(
            split,
            served,
            pool.tolist(),
            config.candidates,
            config.prefixes,
            config.shuffle_candidates,
            config.seed,
            limit=config.examples,
        )
    )
    config.out.mkdir(parents=True, exist_ok=True)
    save_examples(examples, config.out / "train_examples.jsonl")
    log(
        f"{len(examples)} training examples from users outside the eval sample ({config.prefixes} prefixes each)"
    )
    pairs = [TrainingPair(conversation=list(ex.conversation), target=ex.target_label) for ex in examples]
    report = train_lora(pairs, config.out, config.lora, resume=config.resume, progress=progress)
    log(
        f"trained {report.steps} steps on {report.examples} pairs in {report.seconds:.0f} s "
        f"(total {time.perf_counter() - start:.0f} s); adapter in {report.adapter_dir}"
    )
    return report
