"""A CLIP-family image encoder from a local folder (sentence-transformers format): images and words in one
space, cached like the default encoder, and words reaching the image block of a served index. The model is a
tiny random CLIP, so these tests check the wiring and the arithmetic, not that CLIP understands photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recagent.agent import RecommendationRequest, Settings, build_recommender
from recagent.retrieval import ImageEncoder, ImageError, MultimodalIndex
from tests.retrieval.photos import jpeg_bytes, photo, write_photo_shop
from tests.retrieval.tiny_clip import save_tiny_clip


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


def test_clip_embeds_images_and_words_in_one_space(clip_dir: Path, tmp_path: Path) -> None:
    encoder = ImageEncoder(str(clip_dir), cache_dir=tmp_path)
    assert encoder.encodes_text and encoder.dim == 16
    datas = [jpeg_bytes(photo(n)) for n in ("chelsea", "coffee")]
    images = encoder.encode_bytes(datas)
    words = encoder.encode_text(["a ginger cat", "a cup of coffee"])
    assert images.shape == words.shape == (2, 16)
    assert np.allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    assert np.allclose(np.linalg.norm(words, axis=1), 1, atol=1e-5)
    assert not np.allclose(images[0], images[1])
    again = ImageEncoder(str(clip_dir), cache_dir=tmp_path)
    assert np.array_equal(again.encode_bytes(datas), images) and again._model is None  # from the cache
    with pytest.raises(ValueError, match="EfficientNet"):
        encoder.classify([photo("chelsea")])
    with pytest.raises(ValueError, match="images only"):
        ImageEncoder(use_cache=False).encode_text(["a cat"])
    with pytest.raises(ImageError, match="nothing is downloaded"):
        ImageEncoder("openai/clip-vit-base-patch32", use_cache=False)


def test_words_reach_the_image_block_with_a_clip_encoder(clip_dir: Path, tmp_path: Path) -> None:
    catalog, events = write_photo_shop(tmp_path / "shop")
    settings = Settings(
        cache_dir=tmp_path / "cache", llm_model="none", image_encoder=str(clip_dir), image_weight=2.0
    )
    rec = build_recommender(catalog, settings, events=events, backend=None, store=None)
    index = rec.index
    assert isinstance(index, MultimodalIndex) and index.image_dim == 16
    request = RecommendationRequest(query="a ginger cat", k=11, justify=False)
    got = {item.id: score for item, score in rec.retrieve(rec.resolve_profile(request), request)}
    words = rec.encoder.encode_one("a ginger cat")
    in_image_space = ImageEncoder(str(clip_dir), use_cache=False).encode_text(["a ginger cat"])[0]
    expected = index.text_vectors @ words + 2.0 * (index.image_vectors @ in_image_space)
    for pos, item_id in enumerate(index.catalog.ids):
        assert got[item_id] == pytest.approx(float(expected[pos]), abs=1e-4)
    # Back to the default encoder over the same cache: the folder is rebuilt, not served with 16-d images.
    default = build_recommender(
        catalog, Settings(cache_dir=tmp_path / "cache", llm_model="none", image_weight=2.0), events=events,
        backend=None, store=None,
    )  # fmt: skip
    assert default.index.image_dim == 1280 and default.words_in_image_space("a ginger cat") is None
