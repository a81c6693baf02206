"""The image benchmark's query recipe does what its table says: crops of 65-85% per side, an exact mirror."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from benchmarks.bench_image import PHOTOS, augmentations, sample_photos


def test_augmentations_are_what_the_table_names() -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(np.arange(200 * 300 * 3, dtype=np.uint32).reshape(200, 300, 3).astype(np.uint8))
    crop, mirror, jitter, everything = augmentations(image, rng)
    assert 0.65 * 300 - 1 <= crop.width <= 0.85 * 300 and 0.65 * 200 - 1 <= crop.height <= 0.85 * 200
    assert mirror.tobytes() == ImageOps.mirror(image).tobytes()
    assert jitter.size == image.size and jitter.tobytes() != image.tobytes()
    assert everything.width <= 0.85 * 300


def test_sample_photos_load_offline_as_rgb() -> None:
    photos = sample_photos()
    assert len(photos) == len(PHOTOS) and all(p.mode == "RGB" for p in photos)
