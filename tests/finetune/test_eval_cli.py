from __future__ import annotations

import json
from pathlib import Path

import pytest

from recagent.agent import Recommender
from recagent.finetune import LoraSettings, ServedScorer, TrainingPair, build_examples, train_lora
from recagent.retrieval import LeaveOneOut, load_bundled_arrays
from recagent.ui.cli import main

pytestmark = pytest.mark.slow


def test_eval_command_writes_table_chart_and_json_for_every_system(
    tiny_model_dir: Path,
    cache_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ml100k_served,
    encoder,
) -> None:
    monkeypatch.setenv("RECAGENT_CACHE_DIR", str(cache_dir))
    folder, index, model = ml100k_served
    split = LeaveOneOut(load_bundled_arrays("ml-100k"))
    served = ServedScorer(Recommender(index, encoder, None, sequence=model))
    examples = list(build_examples(split, served, split.sample_users(200, seed=9).tolist(), limit=4))
    pairs = [TrainingPair(conversation=list(e.conversation), target=e.target_label) for e in examples]  # type: ignore[arg-type]
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
        "--fusion-users", "10", "--base-model", str(tiny_model_dir), "--adapter", str(adapter),
        "--index", str(folder), "--out", str(out), "--threads", "2",
    ]  # fmt: skip
    assert main(argv) == 0
    table = (out / "results-shuffle.md").read_text()
    for name in ("Popularity", "ALS (implicit)", "Text (MiniLM)", "Old hybrid", "SASRec", "Served retriever",
                 "base LLM", "LoRA LLM"):  # fmt: skip
        assert name in table
    assert "Command: `recagent" in table and "seeded per-user shuffle" in table
    assert (out / "results-shuffle.png").stat().st_size > 5_000
    report = json.loads((out / "results-shuffle.json").read_text())
    assert report["ties"] == "shuffle" and report["users"] == 40 and report["llm_users"] == 8
    assert report["served_identity_users"] == 20  # FAISS through Recommender == the batched ranking
    llm_rows = [s for s in report["systems"] if s["llm"]]
    assert len(llm_rows) in (2, 4)  # LLM order, plus the fused row when validation picks a weight
    assert all(s["llm"]["valid_candidate_share"] == 1.0 and s["metrics"]["users"] == 8 for s in llm_rows)
    assert llm_rows[0]["compared"][0]["reference"] == "served retriever"
    assert {r["variant"] for r in report["fusion"]} == {"base", "LoRA"}
    assert table.count("95% paired bootstrap") >= 3
    # Diversity 0 is the served ranking itself; more diversity buys a more varied top 10.
    served_row = next(s for s in report["systems"] if s["name"].startswith("Served retriever"))
    zero, *more = report["diversity"]
    assert zero["diversity"] == 0 and zero["ndcg_at_10"] == pytest.approx(
        served_row["metrics"]["ndcg_at_10"], abs=1e-4
    )
    assert more[-1]["intra_list_distance"] > zero["intra_list_distance"]
    assert (out / "results-shuffle-diversity.png").stat().st_size > 5_000 and "| 0.7 |" in table


def test_eval_rejects_a_folder_that_is_not_an_adapter(tmp_path: Path, capsys) -> None:
    assert main(["eval", "--adapter", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "adapter_config.json" in capsys.readouterr().err
