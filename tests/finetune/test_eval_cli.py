from __future__ import annotations

import json
from pathlib import Path

import pytest

from recagent.finetune import (
    LeaveOneOut,
    LoraSettings,
    PopularityScorer,
    TrainingPair,
    build_examples,
    train_lora,
)
from recagent.retrieval import load_bundled_arrays
from recagent.ui.cli import main

pytestmark = pytest.mark.slow


def test_eval_command_writes_table_chart_and_json_for_all_six_systems(
    tiny_model_dir: Path, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("RECAGENT_CACHE_DIR", str(cache_dir))
    split = LeaveOneOut(load_bundled_arrays("ml-100k"))
    examples = list(
        build_examples(split, PopularityScorer(split), split.sample_users(200, seed=9).tolist(), limit=4)
    )
    pairs = [
        TrainingPair(conversation=list(e.conversation(split.data.catalog)), target=e.target_label)
        for e in examples
    ]  # type: ignore[arg-type]
    adapter = tmp_path / "adapter"
    train_lora(
        pairs,
        adapter,
        LoraSettings(base_model=str(tiny_model_dir), max_steps=2, batch_size=2),
        progress=False,
    )

    out = tmp_path / "results"
    argv = [
        "eval", "--dataset", "ml-100k", "--users", "40", "--llm-users", "8", "--justify-users", "2",
        "--base-model", str(tiny_model_dir), "--adapter", str(adapter), "--out", str(out), "--threads", "2",
    ]  # fmt: skip
    assert main(argv) == 0
    table = (out / "results.md").read_text()
    for name in (
        "Popularity",
        "ALS (implicit)",
        "Text retrieval",
        "Hybrid retrieval",
        "base LLM",
        "LoRA LLM",
    ):
        assert name in table
    assert "Command: `recagent" in table
    assert (out / "results.png").stat().st_size > 5_000
    report = json.loads((out / "results.json").read_text())
    llm_rows = [s for s in report["systems"] if s["llm"]]
    assert len(llm_rows) == 2
    assert all(s["llm"]["valid_candidate_share"] == 1.0 and s["metrics"]["users"] == 8 for s in llm_rows)
    assert report["users"] == 40 and report["llm_users"] == 8
    # Each LLM row is compared with the retrieval it reorders on the same users; LoRA also with the base LLM.
    assert [c["reference"] for c in llm_rows[0]["compared"]] == ["hybrid retrieval"]
    assert [c["reference"] for c in llm_rows[1]["compared"]] == ["hybrid retrieval", "Hybrid + base LLM top-20"]
    assert table.count("95% paired bootstrap") == 3


def test_eval_rejects_a_folder_that_is_not_an_adapter(tmp_path: Path, capsys) -> None:
    assert main(["eval", "--adapter", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "adapter_config.json" in capsys.readouterr().err
