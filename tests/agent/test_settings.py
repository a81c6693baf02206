from __future__ import annotations

import pytest

from recagent.agent import Settings


def test_rank_fusion_defaults_to_the_retrievers_order_and_none_selects_the_llms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().rank_fusion == 0.0
    monkeypatch.setenv("RECAGENT_RANK_FUSION", "none")
    assert Settings().rank_fusion is None
    monkeypatch.setenv("RECAGENT_RANK_FUSION", "0.25")
    assert Settings().rank_fusion == 0.25
    monkeypatch.setenv("RECAGENT_RANK_FUSION", "-1")
    with pytest.raises(ValueError):
        Settings()


def test_docs_configuration_is_generated_from_the_settings() -> None:
    from pathlib import Path

    from recagent.agent.settings import configuration_markdown

    doc = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert doc.read_text(encoding="utf-8") == configuration_markdown(), "run `make docs`"
    for name in Settings.model_fields:
        assert f"`RECAGENT_{name.upper()}" in doc.read_text(encoding="utf-8")


def test_secrets_are_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECAGENT_API_KEYS", "sk-very-secret:alice")
    monkeypatch.setenv("RECAGENT_LLM_API_KEY", "sk-llm-secret")
    settings = Settings()
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert "sk-very-secret" not in shown and "sk-llm-secret" not in shown
    assert settings.api_keys.get_secret_value() == "sk-very-secret:alice"
