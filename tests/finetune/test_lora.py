from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recagent.agent import Recommender
from recagent.finetune import LoraSettings, ServedScorer, TrainingPair, build_examples, train_lora
from recagent.retrieval import Encoder, LeaveOneOut, load_bundled_arrays

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pairs(ml100k_served, encoder: Encoder) -> list[TrainingPair]:
    _, index, model = ml100k_served
    split = LeaveOneOut(load_bundled_arrays("ml-100k"))
    served = ServedScorer(Recommender(index, encoder, None, sequence=model))
    examples = list(build_examples(split, served, split.sample_users(300, seed=5).tolist(), limit=6))
    assert len(examples) == 6
    return [TrainingPair(conversation=list(ex.conversation), target=ex.target_label) for ex in examples]  # type: ignore[arg-type]


def test_tiny_finetune_loss_falls_adapter_reloads_and_resumes(
    pairs: list[TrainingPair], tiny_model_dir: Path, cache_dir: Path, tmp_path: Path
) -> None:
    from recagent.agent import LocalBackend
    from recagent.agent.prompts import LABELS

    settings = LoraSettings(
        base_model=str(tiny_model_dir),
        r=4,
        alpha=8,
        dropout=0.0,
        target_modules=["q_proj", "v_proj"],
        learning_rate=2e-2,
        epochs=6,
        batch_size=3,
        grad_accum=1,
        max_steps=8,
        save_every=4,
    )
    out = tmp_path / "adapter"
    first = train_lora(pairs, out, settings, cache_dir=cache_dir, progress=False)
    assert first.steps == 8 and first.resumed_from == 0
    assert np.mean(first.losses[-2:]) < np.mean(first.losses[:2])
    assert (out / "adapter_config.json").exists() and (out / "adapter_model.safetensors").exists()
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 4

    base = LocalBackend(str(tiny_model_dir), cache_dir=cache_dir)
    tuned = LocalBackend(str(tiny_model_dir), cache_dir=cache_dir, adapter=out)
    conversations = [p.conversation for p in pairs]
    labels = list(LABELS[:20])
    base_scores = np.array(base.label_scores(conversations, labels))  # type: ignore[arg-type]
    tuned_scores = np.array(tuned.label_scores(conversations, labels))  # type: ignore[arg-type]
    targets = [labels.index(p.target) for p in pairs]
    rows = np.arange(len(pairs))
    assert tuned_scores[rows, targets].mean() > base_scores[rows, targets].mean()
    # Ranking with the adapter unmerged equals ranking with it merged; sentences come from the base weights.
    merged = LocalBackend(str(tiny_model_dir), cache_dir=cache_dir, adapter=out, generate_with_adapter=True)
    merged_scores = np.array(merged.label_scores(conversations, labels))  # type: ignore[arg-type]
    np.testing.assert_allclose(tuned_scores, merged_scores, atol=1e-3)
    assert tuned.generate(conversations[:2], 6) == base.generate(conversations[:2], 6)  # type: ignore[arg-type]

    resumed = train_lora(
        pairs, out, settings.model_copy(update={"max_steps": 12}), cache_dir=cache_dir, progress=False
    )
    assert resumed.resumed_from == 8 and resumed.steps == 12
    assert resumed.losses[:8] == first.losses


def test_empty_training_set_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no training examples"):
        train_lora([], tmp_path / "x", LoraSettings(), progress=False)


def test_bfloat16_autocast_tracks_float32_and_bad_precision_is_refused(
    pairs: list[TrainingPair], tiny_model_dir: Path, cache_dir: Path, tmp_path: Path
) -> None:
    settings = LoraSettings(
        base_model=str(tiny_model_dir), r=4, alpha=8, dropout=0.0, max_steps=1, batch_size=3
    )
    losses = {
        precision: train_lora(
            pairs,
            tmp_path / precision,
            settings.model_copy(update={"precision": precision}),
            cache_dir=cache_dir,
            progress=False,
        ).losses[0]
        for precision in ("float32", "bfloat16")
    }
    # Same weights, same batch: the first loss differs only by bfloat16 rounding.
    assert losses["bfloat16"] == pytest.approx(losses["float32"], abs=0.05)
    with pytest.raises(ValueError, match="unknown precision"):
        train_lora(pairs, tmp_path / "bad", settings.model_copy(update={"precision": "fp8"}), progress=False)
