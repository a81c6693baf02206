"""``recagent finetune``: build LlamaRec-style examples from hybrid retrieval on ml-1m, then train a LoRA adapter."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from recagent.retrieval import DEFAULT_ENCODER, CFConfig, HybridIndex

from .data import build_examples, save_examples
from .evaluate import EvalConfig, TuningRow, tune_hybrid
from .lora import LoraSettings, TrainingPair, TrainReport, train_lora
from .protocol import collaborative_vectors, hybrid_scorer, prepare

DEFAULT_ADAPTER = Path("finetune/adapters/smollm2-ranker")


class FinetuneConfig(BaseModel):
    dataset: str = "ml-1m"
    out: Path = DEFAULT_ADAPTER
    examples: int = Field(
        default=400, ge=1, description="training examples (users whose valid item was retrieved)"
    )
    eval_users: int = Field(default=1000, description="the eval sample (same seed) is excluded from training")
    seed: int = 0
    history_titles: int = 3
    candidates: int = 20
    justification_share: float = Field(
        default=0.0, ge=0, le=1, description="share of examples that also train a justification sentence"
    )
    lora: LoraSettings = Field(default_factory=LoraSettings)
    resume: bool = True
    threads: int = 0
    hybrid: str | None = Field(
        default=None, description="'method:weight:half_life' to skip choosing them on validation items"
    )


def run_finetune(
    config: FinetuneConfig, progress: bool = True, log: Callable[[str], None] = print
) -> TrainReport:
    from recagent.agent.prompts import justification_conversation

    start = time.perf_counter()
    split, text = prepare(config.dataset, config.threads, progress)
    data = split.data
    if config.hybrid:
        method, weight, half_life = config.hybrid.split(":")
        chosen = TuningRow(
            method=method, cf_weight=float(weight), half_life=float(half_life), valid_ndcg_at_10=-1
        )
        cf = collaborative_vectors(
            split, CFConfig(method=method, factors=EvalConfig().factors, seed=config.seed)
        )
    else:
        _, chosen, cf = tune_hybrid(split, text, EvalConfig(dataset=config.dataset, seed=config.seed), log)
    log(f"hybrid retrieval for training: {chosen.method} w={chosen.cf_weight} h={chosen.half_life}")
    held_out = set(split.sample_users(config.eval_users, seed=config.seed).tolist())
    pool = np.array([u for u in np.flatnonzero(split.evaluable) if int(u) not in held_out])
    np.random.default_rng(config.seed).shuffle(pool)
    index = HybridIndex(data.catalog, text, cf, DEFAULT_ENCODER, chosen.cf_weight)
    scorer = hybrid_scorer(text, cf, chosen.cf_weight, chosen.half_life)
    examples = list(
        build_examples(
            split,
            scorer,
            pool.tolist(),
            "valid",
            config.candidates,
            config.history_titles,
            index=index if config.justification_share > 0 else None,
            limit=config.examples,
        )
    )
    config.out.mkdir(parents=True, exist_ok=True)
    save_examples(examples, config.out / "train_examples.jsonl")
    log(f"{len(examples)} training examples from validation items of users outside the eval sample")
    pairs = [
        TrainingPair(conversation=list(ex.conversation(data.catalog)), target=ex.target_label)
        for ex in examples
    ]
    n_just = int(round(config.justification_share * len(examples)))
    for ex in examples[:n_just]:
        if ex.justification:
            item = data.catalog[ex.target_item]
            conv = justification_conversation(item, [h.title for h in ex.history[:2]], None)
            pairs.append(TrainingPair(conversation=list(conv), target=ex.justification))
    report = train_lora(pairs, config.out, config.lora, resume=config.resume, progress=progress)
    log(
        f"trained {report.steps} steps on {report.examples} pairs in {report.seconds:.0f} s "
        f"(total {time.perf_counter() - start:.0f} s); adapter in {report.adapter_dir}"
    )
    return report
