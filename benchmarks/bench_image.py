"""Image benchmark: EfficientNet-Lite0 images/s at batch 1 vs 16 (and 32) on one thread, the embedding cache on a
re-encode, and the photo-search quality check (recall@1 of the original for augmented copies of real photos).
The baseline is batch size 1 on one thread, measured in the same run."""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .common import Report, batch_thread_sweep, ratio, timed

# scikit-image's sample photos that ship in its wheel (the others download on first use).
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "horse", "hubble_deep_field",
          "immunohistochemistry", "moon", "page", "text", "clock", "coins", "grass", "gravel", "brick",
          "colorwheel", "retina", "logo")  # fmt: skip


def sample_photos() -> list[Any]:
    import skimage.data
    from PIL import Image

    out = []
    for name in PHOTOS:
        arr = np.asarray(getattr(skimage.data, name)())
        out.append(Image.fromarray(arr.astype(np.uint8)).convert("RGB"))
    return out


def jpeg(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def augmentations(image: Any, rng: np.random.Generator) -> list[Any]:
    """Crop (65-85% of each side), mirror, colour jitter (x0.7-1.3 brightness/contrast/saturation), all three."""
    from PIL import ImageEnhance, ImageOps

    def crop(im: Any) -> Any:
        w, h = im.size
        cw, ch = (int(s * f) for s, f in zip((w, h), rng.uniform(0.65, 0.85, size=2), strict=True))
        left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        return im.crop((left, top, left + cw, top + ch))

    def jitter(im: Any) -> Any:
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            im = enhancer(im).enhance(float(rng.uniform(0.7, 1.3)))
        return im

    return [crop(image), ImageOps.mirror(image), jitter(image), jitter(ImageOps.mirror(crop(image)))]


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32 images, batch 1 and 16 only")
    args = parser.parse_args(argv)
    import torch

    from recagent.retrieval import Catalog, ImageEncoder, Item, MultimodalIndex, configure_threads

    report = Report("image", "Images: EfficientNet-Lite0 throughput, the cache, photo search", args.quick)
    photos = sample_photos()
    count = 32 if args.quick else 64
    images = [photos[i % len(photos)] for i in range(count)]
    encoder = ImageEncoder(use_cache=False)
    encoder.encode_images(images[:2])  # load the network outside the timings
    table = report.table(
        f"Encoding {count} photos (decoded; resize + centre crop 224 + network; no cache)",
        ["batch size", "threads", "p50 s", "images/s", "CPU ms per image", "speed-up vs batch 1, 1 thread"],
    )
    settings = [(1, 1), (16, 1)] if args.quick else [(1, 1), (16, 1), (32, 1), (16, 2)]
    batch_thread_sweep(
        table,
        settings,
        encoder,
        lambda: encoder.encode_images(images),
        count,
        1 if args.quick else 3,
        "images",
    )
    table.notes.append(
        f"torch {torch.__version__}; {len(PHOTOS)} scikit-image photos cycled; one run per setting in --quick, "
        "median of 3 otherwise; CPU shared"
    )

    configure_threads(1)
    cache_table = report.table(
        f"Encoding {len(photos)} JPEG files: cold vs cached", ["run", "seconds", "speed-up"]
    )
    datas = [jpeg(p) for p in photos]
    with tempfile.TemporaryDirectory() as tmp:
        cached = ImageEncoder(cache_dir=Path(tmp), batch_size=16)
        cached.encode_bytes(datas[:1])
        _, cold_ms = timed(lambda: cached.encode_bytes(datas[1:]))
        _, warm_ms = timed(lambda: cached.encode_bytes(datas[1:]))
    cache_table.add("cold (decode + encode)", cold_ms / 1000, 1.0)
    cache_table.add(
        "again (sqlite cache hit, keyed by sha256 of the bytes)", warm_ms / 1000, ratio(cold_ms, warm_ms)
    )

    quality = report.table(
        "Photo search: recall@1 of the original for augmented copies",
        ["augmentation", "queries", "recall@1"],
    )
    catalog = Catalog([Item(id=f"p{i}", title=name) for i, name in enumerate(PHOTOS)])
    vectors = encoder.encode_images(photos)
    index = MultimodalIndex(
        catalog, np.zeros((len(catalog), 1), np.float32), vectors, "none", image_weight=1.0
    )
    rng = np.random.default_rng(0)
    hits: dict[str, list[bool]] = {k: [] for k in ("crop", "mirror", "jitter", "all three")}
    for pos, photo in enumerate(photos):
        for kind, query in zip(hits, augmentations(photo, rng), strict=True):
            vec = encoder.encode_bytes([jpeg(query)])[0]
            hits[kind].append(index.search(index.query(None, image=vec), k=1)[0][0].id == f"p{pos}")
    for kind, got in hits.items():
        quality.add(kind, len(got), float(np.mean(got)))
    everything = [h for got in hits.values() for h in got]
    quality.add("all", len(everything), float(np.mean(everything)))
    quality.notes.append(
        f"{len(PHOTOS)} scikit-image sample photos are the catalogue (image block only); the same test runs in "
        "tests/retrieval/test_image_search.py. Says nothing of how images help recommendations on a real "
        "catalogue: that is not measured offline."
    )
    report.plot_bars(
        "throughput",
        [f"b{b} t{t}" for b, t in settings],
        {"images/s": table.column("images/s")},
        "images per second",
        table.title,
    )
    report.write()
    return report


if __name__ == "__main__":
    main()
