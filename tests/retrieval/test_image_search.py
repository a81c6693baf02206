"""'More like this photo', measured: scikit-image's sample photos are the catalogue, augmented copies of them
(crop, mirror, colour jitter, all three) are the queries; the original must come first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from recagent.retrieval import (
    ImageEncoder,
    MultimodalIndex,
    encode_catalog_images,
    load_catalog,
)
from tests.retrieval.photos import PHOTOS, jpeg_bytes, photo, write_photo_catalog


def crop(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A random window of 65-85% of each side."""
    w, h = image.size
    fw, fh = rng.uniform(0.65, 0.85, size=2)
    cw, ch = int(w * fw), int(h * fh)
    left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return image.crop((left, top, left + cw, top + ch))


def jitter(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Brightness, contrast and saturation each scaled by 0.7-1.3."""
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhancer(image).enhance(float(rng.uniform(0.7, 1.3)))
    return image


def augmented(image: Image.Image, rng: np.random.Generator) -> dict[str, Image.Image]:
    return {
        "crop": crop(image, rng),
        "mirror": ImageOps.mirror(image),
        "jitter": jitter(image, rng),
        "all": jitter(ImageOps.mirror(crop(image, rng)), rng),
    }


def test_recall_at_1_of_the_original_photo(tmp_path: Path) -> None:
    catalog = load_catalog(write_photo_catalog(tmp_path))
    images = ImageEncoder(cache_dir=tmp_path / "cache")
    vectors = encode_catalog_images(catalog, images)
    assert vectors is not None
    # A photo query has no text part, so the titles' text vectors cannot help: leave them out (zeros).
    index = MultimodalIndex(
        catalog, np.zeros((len(catalog), 384), np.float32), vectors, "none", image_weight=1.0
    )
    rng = np.random.default_rng(0)
    hits: dict[str, list[bool]] = {}
    for pos, name in enumerate(PHOTOS):
        for kind, query in augmented(photo(name), rng).items():
            vec = images.encode_one(jpeg_bytes(query, quality=85))
            top = index.search(index.query(None, image=vec), k=1)[0][0]
            hits.setdefault(kind, []).append(top.id == f"p{pos}")
    recall = {kind: float(np.mean(h)) for kind, h in hits.items()}
    overall = float(np.mean([x for h in hits.values() for x in h]))
    n = sum(len(h) for h in hits.values())
    print(f"recall@1 over {n} augmented queries, {len(PHOTOS)} photos: {overall:.3f} {recall}")
    assert overall >= 0.9, recall
