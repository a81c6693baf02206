"""Real photos for the image tests: scikit-image's sample images that ship inside its wheel (no download)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

# Each loads offline (checked with the network unshared); others in skimage.data fetch through pooch.
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "horse", "hubble_deep_field",
          "immunohistochemistry", "moon", "page", "text", "clock", "coins", "grass", "gravel", "brick",
          "colorwheel", "retina", "logo")  # fmt: skip


def photo(name: str) -> Image.Image:
    import skimage.data

    arr = np.asarray(getattr(skimage.data, name)())
    if arr.dtype != np.uint8:
        arr = (255 * (arr.astype(np.float64) / max(1.0, float(arr.max())))).astype(np.uint8)
    return Image.fromarray(arr).convert("RGB")


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def write_photo_catalog(folder: Path, names: tuple[str, ...] = PHOTOS, fmt: str = "csv") -> Path:
    """A catalogue file whose items are the photos, saved as JPEGs under folder/images/ (relative paths)."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, name in enumerate(names):
        (folder / "images" / f"{name}.jpg").write_bytes(jpeg_bytes(photo(name)))
        rows.append((f"p{i}", name.replace("_", " ").title(), f"images/{name}.jpg"))
    path = folder / f"photos.{fmt}"
    path.write_text("id,title,image\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows), encoding="utf-8")
    return path


def data_url(image: Image.Image) -> str:
    import base64

    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(image, quality=85)).decode()


PHOTO_SHOP = ("chelsea", "coffee", "rocket", "astronaut", "clock", "coins", "brick", "colorwheel")


def write_photo_shop(folder: Path) -> tuple[Path, Path]:
    """A catalogue of photos with neutral titles (text cannot tell them apart: "Product 0", ...), one more item
    that is a close-up of the cat, one without a photo, and an events file: 'cat-person' loved the cat (p0)
    and did not like the coffee (p1). Returns (catalogue, events)."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, name in enumerate(PHOTO_SHOP):
        (folder / "img" / f"{name}.jpg").write_bytes(jpeg_bytes(photo(name)))
        rows.append(f"p{i},Product {i},img/{name}.jpg")
    (folder / "img" / "closeup.jpg").write_bytes(jpeg_bytes(photo("chelsea").crop((60, 20, 300, 260))))
    rows += ["closeup,Product 99,img/closeup.jpg", "no-photo,Product 100,"]
    catalog = folder / "shop.csv"
    catalog.write_text("id,title,image\n" + "\n".join(rows) + "\n", encoding="utf-8")
    events = folder / "events.csv"
    events.write_text(
        "user_id,item_id,rating,timestamp\ncat-person,p0,5,1\ncat-person,p1,2,2\n", encoding="utf-8"
    )
    return catalog, events
