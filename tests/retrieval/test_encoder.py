from __future__ import annotations

from pathlib import Path

import numpy as np

from recagent.retrieval import Encoder


def test_vectors_are_unit_and_meaningful(encoder: Encoder) -> None:
    vecs = encoder.encode(
        ["a space opera with starships", "science fiction in outer space", "a cookbook of pasta recipes"]
    )
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2


def test_cache_means_a_catalogue_is_encoded_once(tmp_path: Path) -> None:
    texts = [f"movie number {i}" for i in range(10)]
    first = Encoder(cache_dir=tmp_path).encode(texts)
    again = Encoder(cache_dir=tmp_path)
    second = again.encode(texts)
    assert again._model is None  # every text came from the cache; the model was never loaded
    assert np.array_equal(first, second)
    mixed = again.encode([*texts[:3], "an unseen text"])
    assert again._model is not None and np.array_equal(mixed[:3], first[:3])
