"""``recagent finetune`` and ``recagent eval``: their flags are generated from ``FinetuneConfig`` and
``EvalConfig``, so ``recagent finetune`` with no flags is exactly ``run_finetune(FinetuneConfig())``."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from .args import add_model_args, model_from_args

BUNDLED = ["ml-1m", "ml-100k"]
PRECISIONS = ["auto", "float32", "bfloat16"]
# Flag names kept from before the flags were generated (scripts and docs use them).
FINETUNE_ALIASES = {
    "lora.learning_rate": ["--lr", "--learning-rate"],
    "lora.epochs": ["--epochs"],
    "lora.device": ["--device"],
    "lora.precision": ["--precision"],
    "shuffle_candidates": ["--keep-order"],
    "resume": ["--no-resume"],
}
EVAL_ALIASES = {"index_dir": ["--index"], "out_dir": ["--out"]}


COMMANDS = {
    "finetune": "LoRA-tune the LLM ranker on MovieLens on the served retriever's candidates",
    "eval": "offline evaluation of the served pipeline and baselines: leave-one-out, full ranking, table + chart",
}


def register(sub: argparse._SubParsersAction) -> None:
    from recagent.finetune import EvalConfig, FinetuneConfig

    ft = sub.add_parser("finetune", help=COMMANDS["finetune"])
    add_model_args(
        ft, FinetuneConfig, exclude=["lora.seed"], aliases=FINETUNE_ALIASES,
        choices={"dataset": BUNDLED, "lora.precision": PRECISIONS},
    )  # fmt: skip
    ft.set_defaults(func=cmd_finetune)

    ev = sub.add_parser(
        "eval",
        help=COMMANDS["eval"],
    )
    add_model_args(
        ev,
        EvalConfig,
        exclude=["command"],
        aliases=EVAL_ALIASES,
        choices={"dataset": BUNDLED, "dtype": PRECISIONS},
    )
    ev.add_argument("--command-line", help=argparse.SUPPRESS)
    ev.set_defaults(func=cmd_eval)


def finetune_config(args: argparse.Namespace) -> Any:
    from recagent.finetune import FinetuneConfig

    config = model_from_args(args, FinetuneConfig)
    # One seed for the example sampling and the LoRA initialisation, as the flag always meant.
    return config.model_copy(update={"lora": config.lora.model_copy(update={"seed": config.seed})})


def eval_config(args: argparse.Namespace, command: str = "") -> Any:
    from recagent.finetune import EvalConfig

    return model_from_args(args, EvalConfig, command=command)


def cmd_finetune(args: argparse.Namespace) -> int:
    from recagent.finetune import run_finetune

    report = run_finetune(finetune_config(args), log=lambda m: print(m, file=sys.stderr))
    print(f"adapter written to {report.adapter_dir} ({report.steps} steps, {report.seconds:.0f} s)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from recagent.finetune import DEFAULT_ADAPTER, results_dir, run_evaluation, write_report

    command = (
        "recagent " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        if args.command_line is None
        else args.command_line
    )
    config = eval_config(args, command)
    if config.adapter is None and (DEFAULT_ADAPTER / "adapter_config.json").exists():
        config = config.model_copy(update={"adapter": DEFAULT_ADAPTER})
    if config.adapter is not None and not (config.adapter / "adapter_config.json").exists():
        print(
            f"recagent: error: {config.adapter}: no adapter_config.json (run 'recagent finetune' first)",
            file=sys.stderr,
        )
        return 2
    out = config.out_dir or results_dir(config.dataset)
    config = config.model_copy(update={"out_dir": out})
    report = run_evaluation(config, log=lambda m: print(m, file=sys.stderr))
    md, _, png = write_report(report, out)
    print(md.read_text(encoding="utf-8"))
    print(f"table: {md}\nchart: {png}")
    return 0
