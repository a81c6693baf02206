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
