from __future__ import annotations

import importlib


def test_every_folder_imports_through_the_recagent_namespace() -> None:
    for name in ("retrieval", "agent", "finetune", "ui"):
        module = importlib.import_module(f"recagent.{name}")
        assert module.__name__ == f"recagent.{name}"
