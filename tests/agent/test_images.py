"""Images through the pipeline: an image-less catalogue is served exactly as before, a photo finds its item,
a user's image taste steers their picks, and the factory rebuilds a folder whose image settings changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageOps

from recagent.agent import RecommendationRequest, Recommender, Settings, build_recommender
from recagent.agent.indexing import build_index, index_report
from recagent.retrieval import (
    Dataset,
    Encoder,
    ImageEncoder,
    ImageError,
    ItemIndex,
    MultimodalIndex,
    SequentialConfig,
)
from tests.conftest import TINY_SASREC
from tests.retrieval.photos import PHOTO_SHOP as PHOTO_NAMES
from tests.retrieval.photos import data_url, photo, write_photo_shop


def test_an_image_less_catalogue_is_served_bit_for_bit_as_before(
    ml100k_served, ml100k: Dataset, encoder: Encoder, tmp_path: Path
) -> None:
    """The served ml-100k index (built without images) against a build with the image encoder on: the same
    vectors and the same picks, bit for bit."""
    folder, off, off_model = ml100k_served
    copy = tmp_path / "on"
    shutil.copytree(folder, copy)  # the trained SASRec is reused: only the image switch differs
    on, on_model = build_index(
        ml100k,
        encoder,
        copy,
        SequentialConfig(**TINY_SASREC),
        tune_users=300,
        progress=False,
        log=lambda _: None,
        image_encoder=ImageEncoder(cache_dir=tmp_path / "img"),
        image_weight=3.0,
    )
    assert type(off) is type(on) and on.image_vectors is None
    assert np.array_equal(off.vectors, on.vectors)
    report = index_report(copy)
    assert report is not None and report.images == 0
    assert off_model is not None and on_model is not None
    rec_off = Recommender(off, encoder, None, histories=ml100k.by_user, sequence=off_model)
    rec_on = Recommender(
        on, encoder, None, histories=ml100k.by_user, sequence=on_model, images=ImageEncoder(use_cache=False)
    )
    for user in ("1", "2", "13", "405"):
        for query in (None, "a funny 90s comedy"):
            request = RecommendationRequest(user_id=user, query=query, k=10, justify=False)
            a = [(r.item.id, r.score) for r in rec_off.recommend(request).recommendations]
            b = [(r.item.id, r.score) for r in rec_on.recommend(request).recommendations]
            assert a == b


@pytest.fixture(scope="module")
def photo_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_photo_shop(tmp_path_factory.mktemp("photo-shop"))


def _shop(photo_shop: tuple[Path, Path], cache: Path, **settings: object) -> Recommender:
    catalog, events = photo_shop
    return build_recommender(
        catalog,
        Settings(cache_dir=cache, llm_model="none", **settings),
        events=events,
        backend=None,
        store=None,
    )


def test_more_like_this_photo_and_image_taste(photo_shop: tuple[Path, Path], tmp_path: Path) -> None:
    rec = _shop(photo_shop, tmp_path)
    assert isinstance(rec.index, MultimodalIndex)
    for pos, name in enumerate(PHOTO_NAMES):
        mirrored = data_url(ImageOps.mirror(photo(name)))
        top = rec.recommend(RecommendationRequest(image=mirrored, k=1, justify=False)).recommendations[0]
        assert top.item.id in ({f"p{pos}", "closeup"} if name == "chelsea" else {f"p{pos}"})
    # The cat lover's picks, without a word: the close-up of the cat they liked comes first (image taste).
    own = rec.recommend(RecommendationRequest(user_id="cat-person", k=3, justify=False)).recommendations
    assert own[0].item.id == "closeup" and all(r.item.id not in ("p0", "p1") for r in own)
    # Words and a photo together; a bad photo is a clear error.
    both = rec.recommend(RecommendationRequest(query="product", image=data_url(photo("rocket")), k=1))
    assert both.recommendations[0].item.id == "p2"
    with pytest.raises(ImageError, match="corrupt|readable"):
        rec.recommend(RecommendationRequest(image="data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==", k=1))
    with pytest.raises(ValueError, match="data:image"):
        RecommendationRequest(image="https://example.com/cat.jpg")


def test_images_off_and_on_again_rebuild_the_folder(photo_shop: tuple[Path, Path], tmp_path: Path) -> None:
    off = _shop(photo_shop, tmp_path, images=False)
    assert type(off.index) is ItemIndex and off.images is None
    with pytest.raises(ImageError, match="no item images"):
        off.recommend(RecommendationRequest(image=data_url(photo("coffee")), k=1))
    on = _shop(photo_shop, tmp_path, image_weight=2.0)
    assert isinstance(on.index, MultimodalIndex) and on.index.image_weight == 2.0
    assert np.array_equal(on.index.text_vectors, off.index.vectors)  # the text part is untouched
    again = _shop(photo_shop, tmp_path, image_weight=2.0)
    assert np.array_equal(again.index.vectors, on.index.vectors)
