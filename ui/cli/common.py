"""What several commands share: parent parsers for the data, LLM and runtime flags, and the one
translation from flags to :class:`~recagent.agent.Settings`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .args import add_model_args, model_from_args

DATASET_HELP = "ml-100k, ml-1m (bundled MovieLens) or a catalogue file (.csv/.jsonl)"


def data_parent(default: str | None = "ml-100k", index: bool = True) -> argparse.ArgumentParser:
    """``--dataset`` (required when ``default`` is None), ``--events`` and, for commands that load one, ``--index``."""
    parent = argparse.ArgumentParser(add_help=False)
    if default is None:
        parent.add_argument("--dataset", required=True, help=DATASET_HELP)
    else:
        parent.add_argument("--dataset", default=default, help=f"{DATASET_HELP} (default {default})")
    parent.add_argument("--events", help="interactions file (.csv/.jsonl) for a custom catalogue")
    if index:
        parent.add_argument(
            "--index", type=Path, help="index folder (default: the dataset's, built if missing)"
        )
    return parent


def llm_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--no-llm", action="store_true", help="retrieval only, no language model")
    parent.add_argument("--adapter", type=Path, help="a LoRA adapter folder for the ranker")
    return parent


def runtime_parent() -> argparse.ArgumentParser:
    """``--ties`` and ``--threads``, generated from the settings fields."""
    from recagent.agent import Settings

    parent = argparse.ArgumentParser(add_help=False)
    add_model_args(parent, Settings, fields=["ties", "threads"])
    return parent


def settings_from_args(args: argparse.Namespace) -> Any:
    """The environment's settings with this command's flags on top."""
    from recagent.agent import Settings

    fixed: dict[str, Any] = {}
    if getattr(args, "no_llm", False):
        fixed["llm_model"] = "none"
    if getattr(args, "adapter", None):
        fixed["llm_adapter"] = args.adapter
    return model_from_args(args, Settings, **fixed)
