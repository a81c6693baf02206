"""The image block of the fused item space: λi · cos(photo, item image) added to the score, nothing when the
catalogue has no images, and the text ⊕ image index of a catalogue without events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recagent.retrieval import Catalog, Item, MultimodalIndex, SequentialIndex, load_index, unit_rows


def _catalog(n: int) -> Catalog:
    return Catalog([Item(id=str(i), title=f"item {i}") for i in range(n)])


def test_image_block_adds_its_weight_times_cosine() -> None:
    rng = np.random.default_rng(0)
    catalog = _catalog(25)
    text = unit_rows(rng.normal(size=(25, 8)))
    items = rng.normal(size=(25, 4)).astype(np.float32)
    images = rng.normal(size=(25, 16)).astype(np.float32)
    images[[3, 9]] = 0  # items without a usable image
    t, h = text[1], rng.normal(size=4).astype(np.float32)
    v = unit_rows(rng.normal(size=(1, 16)))[0]
    for weight in (0.0, 0.5, 3.0):
        index = SequentialIndex(catalog, text, items, "enc", 0.5, image_vectors=images, image_weight=weight)
        for scale in (1.0, 8.0):
            expected = 0.5 * (text @ t) + items @ h + weight * scale * (unit_rows(images) @ v)
            got = index.vectors @ index.query(t, h, 1.0, None, v, scale)
            assert np.allclose(got, expected, atol=1e-4)
            hits = index.search(index.query(t, h, 1.0, None, v, scale), k=25)
            assert [it.id for it, _ in hits] == [str(i) for i in np.argsort(-expected, kind="stable")]
        # Without a photo the image block contributes nothing.
        assert np.allclose(index.vectors @ index.query(t, h), 0.5 * (text @ t) + items @ h, atol=1e-4)
    assert np.all(index.vectors[3, -16:] == 0) and index.image_vector("3") is None
    assert index.image_vector("4") is not None and index.image_dim == 16


def test_without_images_the_item_space_is_unchanged_bit_for_bit() -> None:
    rng = np.random.default_rng(1)
    catalog = _catalog(40)
    text, items, cf = unit_rows(rng.normal(size=(40, 8))), rng.normal(size=(40, 5)), rng.normal(size=(40, 6))
    before = SequentialIndex(catalog, text, items, "enc", 2.0, collab_vectors=cf, collab_weight=4.0)
    after = SequentialIndex(
        catalog,
        text,
        items,
        "enc",
        2.0,
        collab_vectors=cf,
        collab_weight=4.0,
        image_vectors=None,
        image_weight=7.0,
    )
    assert np.array_equal(before.vectors, after.vectors)
    q = before.query(text[0], items[0].astype(np.float32), 8.0, before.collab_query([1, 2]))
    assert np.array_equal(
        q, after.query(text[0], items[0].astype(np.float32), 8.0, after.collab_query([1, 2]))
    )
    assert before.search(q, k=10) == after.search(q, k=10)


def test_image_taste_is_the_unit_mean_of_liked_items_images() -> None:
    rng = np.random.default_rng(2)
    images = rng.normal(size=(6, 16)).astype(np.float32)
    images[5] = 0
    index = MultimodalIndex(_catalog(6), unit_rows(rng.normal(size=(6, 8))), images, "enc", 1.0)
    taste = index.image_taste(["0", "2", "5", "not-an-item"])
    expected = unit_rows(images)[[0, 2]].mean(axis=0)
    assert taste is not None and np.allclose(taste, expected / np.linalg.norm(expected), atol=1e-6)
    assert index.image_taste(["5"]) is None and index.image_taste([]) is None


def test_multimodal_index_finds_by_photo_alone_and_saves(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    text = unit_rows(rng.normal(size=(12, 8)))
    images = unit_rows(rng.normal(size=(12, 16)))
    index = MultimodalIndex(_catalog(12), text, images, "enc", 2.0)
    photo = images[7] + 0.05 * rng.normal(size=16).astype(np.float32)
    assert index.search(index.query(None, image=photo), k=1)[0][0].id == "7"
    assert index.search(index.query(text[4]), k=1)[0][0].id == "4"
    assert np.allclose(index.text_vector("4"), text[4])
    with pytest.raises(ValueError, match="photo"):
        index.query(None)
    index.save(tmp_path / "mm")
    loaded = load_index(tmp_path / "mm")
    assert isinstance(loaded, MultimodalIndex) and loaded.image_weight == 2.0
    assert np.array_equal(loaded.vectors, index.vectors)


def test_fused_folder_keeps_its_image_block(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    index = SequentialIndex(
        _catalog(10), rng.normal(size=(10, 4)), rng.normal(size=(10, 3)), "enc", 1.5,
        image_vectors=rng.normal(size=(10, 16)), image_weight=0.25,
    )  # fmt: skip
    index.save(tmp_path / "f")
    loaded = load_index(tmp_path / "f")
    assert isinstance(loaded, SequentialIndex) and loaded.image_weight == 0.25 and loaded.image_dim == 16
    assert np.array_equal(loaded.vectors, index.vectors)
    # Re-saved without images, the folder forgets them.
    SequentialIndex(_catalog(10), index.text_vectors, index.item_vectors, "enc", 1.5).save(tmp_path / "f")
    assert load_index(tmp_path / "f").image_vectors is None
