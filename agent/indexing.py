"""The served item index: built (text vectors, SASRec and item2vec on the TRAIN rows, fusion weights chosen on
validation) or loaded.

One folder per dataset and tie protocol holds everything the pipeline needs: the FAISS vectors, the text part,
the sequential model with the fingerprint of the data it was trained on, and ``fused.json`` with λ. A catalogue
without events gets a text-only index. ``recagent index build``, ``build_recommender`` (first start) and
``recagent eval`` all come through here, so what is evaluated is what is served.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from recagent.retrieval import (
    Dataset,
    Encoder,
    ImageEncoder,
    IndexFileError,
    InteractionArrays,
    ItemIndex,
    LeaveOneOut,
    MultimodalIndex,
    Phase,
    SequentialConfig,
    SequentialIndex,
    SequentialModel,
    data_fingerprint,
    encode_catalog_images,
    fit_item2vec,
    fit_sequential,
    load_bundled_arrays,
    load_index,
)
from recagent.retrieval.datasets import BUNDLED_DATASETS
from recagent.retrieval.threads import log_to_stderr

from .privacy import DEFAULT_REDACTOR
from .profiles.profile_builder import ProfileBuilder
from .query import QueryBuilder

TEXT_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
COLLAB_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
MIN_EVENTS_FOR_SEQUENTIAL = 1000


class TextWeightRow(BaseModel):
    text_weight: float
    collab_weight: float = 0.0
    valid_ndcg_at_10: float


class IndexReport(BaseModel):
    """How a served index was made (``index.json`` in its folder)."""

    dataset: str
    ties: str
    items: int
    sequential: bool
    text_weight: float | None = None
    collab_weight: float | None = None
    tuning: list[TextWeightRow] = Field(default_factory=list)
    tune_users: int = 0
    images: int = Field(default=0, description="Items whose image is in the item space (0: no image block).")
    image_weight: float | None = None
    image_encoder: str | None = None
    seconds: float = 0.0


def split_of(dataset: Dataset) -> LeaveOneOut:
    """The leave-one-out split of a dataset under its tie protocol (bundled ones read straight into arrays)."""
    if dataset.name in BUNDLED_DATASETS:
        data = load_bundled_arrays(dataset.name, dataset.ties)
    else:
        data = InteractionArrays.from_dataset(dataset)
    return LeaveOneOut(data)


def query_parts(
    index: SequentialIndex, model: SequentialModel, split: LeaveOneOut, users: Sequence[int], phase: Phase
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each user, the served query's three parts as the served :class:`QueryBuilder` computes them from the
    profile a :class:`ProfileBuilder` makes of the history: text, SASRec state, collaborative (zeros if none)."""
    builder = ProfileBuilder(index, ties=split.data.ties)
    queries = QueryBuilder(index, None, DEFAULT_REDACTOR, model)
    texts, states, collabs = [], [], []
    for user in users:
        profile = builder.build(split.data.user_ids[int(user)], split.history_events(int(user), phase))
        text, state, collab = (
            queries.text_part(profile, None),
            queries.sequence_state(profile),
            queries.collab_part(profile),
        )
        texts.append(np.zeros(index.text_dim, np.float32) if text is None else text)
        states.append(np.zeros(model.dim, np.float32) if state is None else state)
        collabs.append(np.zeros(max(1, index.collab_dim), np.float32) if collab is None else collab)
    return np.stack(texts), np.stack(states), np.stack(collabs)


def choose_weights(
    index: SequentialIndex,
    model: SequentialModel,
    split: LeaveOneOut,
    users: np.ndarray,
    text_weights: Sequence[float] = TEXT_WEIGHTS,
    collab_weights: Sequence[float] = COLLAB_WEIGHTS,
) -> tuple[float, float, list[TextWeightRow]]:
    """(λt, λc) with the best validation NDCG@10 of ``state·item + λt·cos(text) + λc·cos(item2vec)``."""
    texts, states, collabs = query_parts(index, model, split, users.tolist(), "valid")
    text_scores = texts @ index.text_vectors.T
    seq_scores = states @ model.item_vectors().T
    collab_scores = collabs @ index.collab_vectors.T if index.collab_vectors is not None else 0.0 * seq_scores
    seen = [split.history(int(u), "valid")[0] for u in users]
    targets = [split.target(int(u), "valid") for u in users]
    rows = []
    for tw in text_weights:
        for cw in collab_weights if index.collab_vectors is not None else [0.0]:
            scores = seq_scores + tw * text_scores + cw * collab_scores
            gains = []
            for row in range(len(users)):
                s = scores[row].copy()
                s[seen[row]] = -np.inf
                rank = int(np.count_nonzero(s > s[targets[row]]))
                gains.append(1.0 / np.log2(rank + 2) if rank < 10 else 0.0)
            rows.append(
                TextWeightRow(
                    text_weight=tw, collab_weight=cw, valid_ndcg_at_10=round(float(np.mean(gains)), 5)
                )
            )
    best = max(rows, key=lambda r: (r.valid_ndcg_at_10, -r.text_weight - r.collab_weight))
    return best.text_weight, best.collab_weight, rows


def build_index(
    dataset: Dataset,
    encoder: Encoder,
    folder: Path,
    config: SequentialConfig | None = None,
    sequential: bool = True,
    # Every evaluable user: with a 1000-user sample, λ item2vec 8 won on validation by +0.0074 NDCG@10 and lost
    # 0.004 on the test items of ml-1m (docs/evaluation.md); the full set costs seconds.
    tune_users: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = log_to_stderr,
    image_encoder: ImageEncoder | None = None,
    image_weight: float = 1.0,
    image_allow_remote: bool = False,
) -> tuple[ItemIndex, SequentialModel | None]:
    """Encode the catalogue (text, and images with ``image_encoder``), train SASRec and item2vec on the TRAIN
    rows (SASRec resumable, in ``folder``), choose the text and item2vec weights on validation, save.

    The image block, when the catalogue has usable images, joins with ``image_weight`` (not tuned); without
    images nothing changes, bit for bit."""
    start = time.perf_counter()
    text = encoder.encode([item.embedding_text() for item in dataset.catalog], show_progress=progress)
    images = (
        encode_catalog_images(dataset.catalog, image_encoder, allow_remote=image_allow_remote)
        if image_encoder is not None
        else None
    )
    report = IndexReport(
        dataset=dataset.name, ties=dataset.ties, items=len(dataset.catalog), sequential=False
    )
    if image_encoder is not None:  # recorded even when none could be used, so a load knows it was tried
        count = 0 if images is None else int(np.count_nonzero(np.any(images != 0, axis=1)))
        if count:
            log(
                f"{count:,} of {len(dataset.catalog):,} items have an image in the item space (λ {image_weight:g})"
            )
        report = report.model_copy(
            update={"images": count, "image_weight": image_weight, "image_encoder": image_encoder.model_name}
        )
    if not sequential or len(dataset.events) < MIN_EVENTS_FOR_SEQUENTIAL:
        index = (
            ItemIndex(dataset.catalog, text, encoder.model_name, kind="auto")
            if images is None
            else MultimodalIndex(dataset.catalog, text, images, encoder.model_name, image_weight, kind="auto")
        )
        model = None
    else:
        split = split_of(dataset)
        log(
            f"training SASRec on the TRAIN rows of {dataset.name} ({len(split.data.items):,} events, ties={dataset.ties})"
        )
        model = fit_sequential(split, config, folder=folder, progress=progress, log=log)
        users, items, _ = split.train_rows()
        collab = fit_item2vec(users, items, split.n_items, factors=128, window=5, seed=0)
        probe = SequentialIndex(
            dataset.catalog,
            text,
            model.item_vectors(),
            encoder.model_name,
            1.0,
            collab_vectors=collab,
            collab_weight=1.0,
        )
        tuned = split.sample_users(tune_users, seed=1)
        text_weight, collab_weight, rows = choose_weights(probe, model, split, tuned)
        log(f"on validation: λ text {text_weight:g}, λ item2vec {collab_weight:g} (NDCG@10 "
            f"{max(r.valid_ndcg_at_10 for r in rows):.4f}; SASRec alone {rows[0].valid_ndcg_at_10:.4f})")  # fmt: skip
        index = SequentialIndex(
            dataset.catalog,
            text,
            model.item_vectors(),
            encoder.model_name,
            text_weight,
            kind="auto",
            collab_vectors=collab,
            collab_weight=collab_weight,
            image_vectors=images,
            image_weight=image_weight,
        )
        report = report.model_copy(
            update={
                "sequential": True,
                "text_weight": text_weight,
                "collab_weight": collab_weight,
                "tuning": rows,
                "tune_users": len(tuned),
            }
        )
    index.save(folder)
    report.seconds = round(time.perf_counter() - start, 1)
    (folder / "index.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    return index, model


def load_served_index(
    folder: Path, dataset: Dataset, encoder_name: str
) -> tuple[ItemIndex, SequentialModel | None]:
    """Load a built folder and check it against the dataset: same items, same data under the same protocol."""
    index = load_index(folder, expected_encoder=encoder_name)
    if len(index) != len(dataset.catalog):
        raise IndexFileError(
            f"{folder}: holds {len(index)} items but the catalogue has {len(dataset.catalog)}; rebuild it"
        )
    if set(index.catalog.ids) != set(dataset.catalog.ids):
        raise IndexFileError(
            f"{folder}: holds another catalogue's items than {dataset.name!r}; rebuild it or pass its --index"
        )
    index.catalog.root = (
        dataset.catalog.root
    )  # where relative image paths start (items.jsonl keeps them as written)
    if not isinstance(index, SequentialIndex):
        return index, None
    model = SequentialModel.load(folder, expected_fingerprint=data_fingerprint(split_of(dataset)))
    return index, model


def index_report(folder: Path) -> IndexReport | None:
    path = folder / "index.json"
    if not path.exists():
        return None
    return IndexReport.model_validate(json.loads(path.read_text(encoding="utf-8")))
