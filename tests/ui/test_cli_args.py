"""The CLI's flags are generated from the config models: no flags = the models' defaults, every field has a
flag, and a flag reaches the field it names."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from recagent.agent import Settings
from recagent.finetune import EvalConfig, FinetuneConfig
from recagent.retrieval import SequentialConfig
from recagent.ui.cli import build_parser
from recagent.ui.cli.common import settings_from_args
from recagent.ui.cli.quality import eval_config, finetune_config


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def _dests(*command: str) -> set[str]:
    parser = build_parser()
    for name in command:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return {a.dest for a in parser._actions}


def test_no_flags_give_the_config_models_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(Settings.model_fields):
        monkeypatch.delenv(f"RECAGENT_{name.upper()}", raising=False)
    assert finetune_config(_parse("finetune")) == FinetuneConfig()
    assert eval_config(_parse("eval")) == EvalConfig()
    assert settings_from_args(_parse("index", "build", "--dataset", "ml-100k")) == Settings()
    assert settings_from_args(_parse("recommend", "--user", "1")) == Settings()


def test_every_config_field_has_a_flag() -> None:
    finetune = _dests("finetune")
    assert {f for f in FinetuneConfig.model_fields if f != "lora"} <= finetune
    assert {
        f"lora__{f}" for f in FinetuneConfig.model_fields["lora"].annotation.model_fields if f != "seed"
    } <= finetune  # type: ignore[union-attr]
    assert {f for f in EvalConfig.model_fields if f != "command"} <= _dests("eval")
    assert {f"sasrec__{f}" for f in SequentialConfig.model_fields} <= _dests("index", "build")


def test_flags_reach_the_fields_they_name(tmp_path: Path) -> None:
    config = finetune_config(
        _parse(
            "finetune", "--lr", "0.01", "--top-layers", "none", "--keep-order", "--no-resume", "--seed", "3",
            "--target-modules", "q_proj,v_proj", "--examples", "50", "--precision", "float32",
        )
    )  # fmt: skip
    assert config.lora.learning_rate == 0.01 and config.lora.top_layers is None
    assert config.lora.target_modules == ["q_proj", "v_proj"] and config.lora.precision == "float32"
    assert not config.shuffle_candidates and not config.resume and config.examples == 50
    assert config.seed == 3 and config.lora.seed == 3
    assert config.lora.r == FinetuneConfig().lora.r  # untouched fields keep the model's default
    evaluated = eval_config(
        _parse("eval", "--no-llm", "--users", "20", "--index", str(tmp_path), "--ties", "file")
    )
    assert not evaluated.llm and evaluated.users == 20 and evaluated.index_dir == tmp_path
    assert evaluated.ties == "file"
    settings = settings_from_args(
        _parse("index", "build", "--dataset", "ml-100k", "--epochs", "3", "--members", "1", "--threads", "1")
    )
    assert settings.sasrec.epochs == 3 and settings.sasrec.members == 1 and settings.threads == 1
    assert settings.sasrec.dim == SequentialConfig().dim
    with pytest.raises(SystemExit):
        _parse("eval", "--dataset", "not-a-dataset")
