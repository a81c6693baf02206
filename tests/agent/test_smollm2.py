"""The real embedded model: SmolLM2-135M-Instruct converted from the bundled GGUF."""

from __future__ import annotations

from pathlib import Path

import pytest

from recagent.agent import LocalBackend, RecommendationRequest, Recommender, materialise_bundled_model
from recagent.retrieval import Dataset, Encoder, ItemIndex

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2(cache_dir: Path) -> LocalBackend:
    backend = LocalBackend("smollm2", cache_dir=cache_dir)
    backend.load()
    return backend


def test_gguf_is_converted_once_to_safetensors(smollm2: LocalBackend, cache_dir: Path) -> None:
    folder = cache_dir / "models" / "SmolLM2-135M-Instruct"
    assert (folder / "model.safetensors").exists() and (folder / "config.json").exists()
    assert "quantization_config" not in (folder / "config.json").read_text()
    mtime = (folder / "model.safetensors").stat().st_mtime
    assert materialise_bundled_model(cache_dir) == folder
    assert (folder / "model.safetensors").stat().st_mtime == mtime
    assert smollm2.model.config.num_hidden_layers == 30


def test_real_model_ranks_and_justifies(
    smollm2: LocalBackend, ml100k: Dataset, ml100k_index: ItemIndex, encoder: Encoder
) -> None:
    recommender = Recommender(ml100k_index, encoder, smollm2, histories=ml100k.by_user)
    result = recommender.recommend(RecommendationRequest(user_id="1", k=5))
    seen = {e.item_id for e in ml100k.history("1")}
    assert result.mode == "ranked" and result.ranker.startswith("local:")
    assert len({r.item.id for r in result.recommendations}) == 5
    assert not seen & {r.item.id for r in result.recommendations}
    for rec in result.recommendations:
        assert rec.justification is not None and 12 <= len(rec.justification.text) <= 280
    # Greedy decoding of a real instruct model yields at least some usable sentences.
    assert any(r.justification and r.justification.source == "generated" for r in result.recommendations)
