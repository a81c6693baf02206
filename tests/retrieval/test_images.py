"""The image encoder on real photos (the packaged EfficientNet-Lite0 weights) and how catalogue images are read."""

from __future__ import annotations

import base64
import warnings
from pathlib import Path

import numpy as np
import pytest

from recagent.retrieval import (
    ImageEncoder,
    ImageError,
    ImageLimits,
    decode_data_url,
    decode_image,
    encode_catalog_images,
    load_catalog,
    read_image_ref,
)
from recagent.retrieval.efficientnet import EfficientNetLite0, load_efficientnet_lite0, weights_path
from tests.retrieval.photos import jpeg_bytes, photo, png_bytes, write_photo_catalog


@pytest.fixture(scope="module")
def image_encoder(tmp_path_factory: pytest.TempPathFactory) -> ImageEncoder:
    return ImageEncoder(cache_dir=tmp_path_factory.mktemp("image-cache"))


def test_packaged_weights_fit_the_architecture_exactly() -> None:
    import torch

    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model = EfficientNetLite0()
    assert set(state) == set(model.state_dict())  # strict=True below would fail on any missing/extra key
    assert load_efficientnet_lite0() is not None


def test_imagenet_sanity_a_cat_is_a_cat(image_encoder: ImageEncoder) -> None:
    logits = image_encoder.classify([photo("chelsea"), photo("coffee")])
    cat, coffee = (int(i) for i in logits.argmax(axis=1))
    print(f"ImageNet top-1: chelsea -> {cat}, coffee -> {coffee}")
    assert 281 <= cat <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert coffee == 967  # espresso


def test_vectors_are_unit_1280_and_batching_does_not_change_them(tmp_path: Path) -> None:
    datas = [jpeg_bytes(photo(n)) for n in ("astronaut", "coffee", "chelsea")]
    batched = ImageEncoder(cache_dir=tmp_path / "a", batch_size=16).encode_bytes(datas)
    single = ImageEncoder(cache_dir=tmp_path / "b", batch_size=1).encode_bytes(datas)
    assert batched.shape == (3, 1280) and batched.dtype == np.float32
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert np.allclose(batched, single, atol=1e-4)
    # Different photos point different ways; the same photo re-encoded as PNG is nearly the same vector.
    again = ImageEncoder(cache_dir=tmp_path / "b").encode_one(png_bytes(photo("chelsea")))
    assert float(again @ batched[2]) > 0.98 > float(batched[0] @ batched[2]) + 0.1


def test_cache_means_an_image_is_encoded_once(tmp_path: Path) -> None:
    datas = [jpeg_bytes(photo(n)) for n in ("rocket", "clock")]
    first = ImageEncoder(cache_dir=tmp_path).encode_bytes(datas)
    again = ImageEncoder(cache_dir=tmp_path)
    assert np.array_equal(again.encode_bytes(datas), first)
    assert again._model is None  # from the cache: the network was never loaded


def test_bad_images_are_skipped_with_a_warning_naming_the_item(
    tmp_path: Path, image_encoder: ImageEncoder
) -> None:
    (tmp_path / "img").mkdir()
    good = jpeg_bytes(photo("coffee"))
    (tmp_path / "img" / "good.jpg").write_bytes(good)
    (tmp_path / "img" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (tmp_path / "img" / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (tmp_path / "img" / "notes.jpg").write_text("this is a text file, not a photo\n", encoding="utf-8")
    (tmp_path / "img" / "huge.png").write_bytes(png_bytes(photo("retina")))  # 1411x1411 > the limit below
    abs_uri = (tmp_path / "img" / "good.jpg").as_uri()
    rows = [
        ("ok", "img/good.jpg"),
        ("uri", abs_uri),
        ("missing", "img/nope.jpg"),
        ("truncated", "img/truncated.jpg"),
        ("garbage", "img/garbage.png"),
        ("text", "img/notes.jpg"),
        ("huge", "img/huge.png"),
        ("remote", "https://example.com/cover.jpg"),
        ("folder", "img"),
        ("none", ""),
    ]
    path = tmp_path / "items.csv"
    path.write_text("id,title,image\n" + "".join(f"{i},Item {i},{r}\n" for i, r in rows), encoding="utf-8")
    catalog = load_catalog(path)
    limited = ImageEncoder(cache_dir=tmp_path / "cache", limits=ImageLimits(max_pixels=1_000_000))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vectors = encode_catalog_images(catalog, limited)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    skipped = {i for i, _ in rows[2:-1]}
    for item_id in skipped:
        assert any(m.startswith(f"item {item_id!r}: image skipped") for m in messages), (item_id, messages)
    assert len(messages) == len(skipped)
    assert any("offline" in m for m in messages if "'remote'" in m)
    assert vectors is not None and vectors.shape == (len(rows), 1280)
    norms = np.linalg.norm(vectors, axis=1)
    assert np.allclose(norms[:2], 1.0, atol=1e-5) and np.all(norms[2:] == 0)
    assert np.allclose(vectors[0], vectors[1])  # a relative path and a file:// URL to the same file


def test_an_image_less_catalogue_has_no_image_part(tmp_path: Path, image_encoder: ImageEncoder) -> None:
    path = tmp_path / "items.csv"
    path.write_text("id,title\na,Alpha\nb,Beta\n", encoding="utf-8")
    assert encode_catalog_images(load_catalog(path), image_encoder) is None


def test_relative_paths_start_at_the_catalogue_file(tmp_path: Path, image_encoder: ImageEncoder) -> None:
    path = write_photo_catalog(tmp_path / "shop", ("chelsea", "coffee"), fmt="csv")
    catalog = load_catalog(path)
    assert catalog.root == path.parent.resolve()
    vectors = encode_catalog_images(catalog, image_encoder)
    assert vectors is not None and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_data_urls_and_limits() -> None:
    data = png_bytes(photo("clock"))
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    assert decode_data_url(url, 10_000_000) == data == read_image_ref(url)
    assert decode_image(data).size == (400, 300)
    with pytest.raises(ImageError, match="larger than"):
        decode_data_url(url, 1000)
    with pytest.raises(ImageError, match="base64 image"):
        decode_data_url("data:text/plain;base64,aGVsbG8=", 1000)
    with pytest.raises(ImageError, match="not valid base64"):
        decode_data_url("data:image/png;base64,@@@@", 1000)
    with pytest.raises(ImageError, match="not a readable image"):
        decode_image(b"hello, world")
    with pytest.raises(ImageError, match="refused"):
        read_image_ref("http://127.0.0.1:9/x.png")
    with pytest.raises(ImageError, match="pixels"):
        decode_image(data, ImageLimits(max_pixels=100))


def test_remote_images_only_when_allowed(tmp_path: Path, image_encoder: ImageEncoder) -> None:
    """http(s) images are refused unless allowed; allowed, they are fetched (a real server on 127.0.0.1) with
    the byte limit applied while reading."""
    import functools
    import http.server
    import threading

    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "cat.jpg").write_bytes(jpeg_bytes(photo("chelsea")))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        path = tmp_path / "items.csv"
        path.write_text(
            f"id,title,image\ncat,Cat,{base}/cat.jpg\ngone,Gone,{base}/gone.jpg\n", encoding="utf-8"
        )
        catalog = load_catalog(path)
        with pytest.warns(UserWarning) as offline:
            assert encode_catalog_images(catalog, image_encoder) is None
        assert [str(w.message).split(":")[0] for w in offline] == ["item 'cat'", "item 'gone'"]
        assert all("offline" in str(w.message) for w in offline)
        with pytest.warns(UserWarning, match="item 'gone': image skipped .*could not be fetched") as fetched:
            vectors = encode_catalog_images(catalog, image_encoder, allow_remote=True)
        assert len(fetched) == 1
        assert vectors is not None and np.linalg.norm(vectors[0]) == pytest.approx(1, abs=1e-5)
        assert not vectors[1].any()
        with pytest.raises(ImageError, match="larger than"):
            read_image_ref(f"{base}/cat.jpg", limits=ImageLimits(max_bytes=1000), allow_remote=True)
    finally:
        server.shutdown()
        server.server_close()
