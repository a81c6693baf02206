"""Assembles a :class:`Recommender` for a dataset from :class:`Settings`: the one place faces build it."""

from __future__ import annotations

from pathlib import Path

from recagent.retrieval import (
    Dataset,
    Encoder,
    ImageEncoder,
    IndexFileError,
    ItemIndex,
    SequentialModel,
    configure_threads,
    load_dataset,
)
from recagent.retrieval.images import catalog_image_refs
from recagent.retrieval.threads import log_to_stderr

from .indexing import build_index, index_report, load_served_index
from .llm import LLMBackend
from .llm.local_backend import LocalBackend
from .profiles.store import ProfileStore
from .recommender import Recommender
from .settings import Settings


def make_image_encoder(settings: Settings) -> ImageEncoder | None:
    """The image encoder when images are on (``RECAGENT_IMAGES``); the network loads on first use."""
    if not settings.images:
        return None
    return ImageEncoder(
        settings.image_encoder,
        cache_dir=settings.cache_dir,
        threads=settings.threads or None,
        limits=settings.image_limits,
    )


def open_index(
    dataset: Dataset,
    settings: Settings,
    encoder: Encoder,
    index_dir: Path | None = None,
    image_encoder: ImageEncoder | None = None,
) -> tuple[ItemIndex, SequentialModel | None]:
    """Load the dataset's index folder, building it first (text vectors, images, SASRec, λ) if it is missing.

    A folder whose image block disagrees with the settings (images switched on or off for a catalogue that has
    them, another image weight) is rebuilt: the trained SASRec and the cached embeddings are reused."""
    folder = index_dir or settings.index_dir(dataset.name)

    def build() -> tuple[ItemIndex, SequentialModel | None]:
        return build_index(
            dataset,
            encoder,
            folder,
            settings.sasrec,
            sequential=settings.sequential,
            image_encoder=image_encoder,
            image_weight=settings.image_weight,
            image_allow_remote=settings.image_allow_remote,
        )

    if (folder / "meta.json").exists():
        index, model = load_served_index(folder, dataset, settings.encoder)
        wants_images = image_encoder is not None and bool(catalog_image_refs(dataset.catalog))
        if _image_block_current(index, folder, wants_images, image_encoder, settings.image_weight):
            return index, model
        log_to_stderr(f"{folder}: the image settings changed; rebuilding the index")
        return build()
    # A folder the user named that holds something else is not ours to fill; the default folder is.
    if index_dir is not None and folder.exists() and any(folder.iterdir()):
        raise IndexFileError(
            f"{folder}: not an index folder (no meta.json) and not empty; pass an index folder or an empty one"
        )
    return build()


def _image_block_current(
    index: ItemIndex, folder: Path, wants_images: bool, image_encoder: ImageEncoder | None, weight: float
) -> bool:
    """Whether a loaded index's image block matches the settings (else the index is rebuilt)."""
    has_images = index.image_vectors is not None
    report = index_report(folder)
    built_with = None if report is None else report.image_encoder
    same_encoder = image_encoder is None or built_with in (None, image_encoder.model_name)
    if wants_images == has_images:
        return not has_images or (index.image_weight == weight and same_encoder)
    # Built with images on, and none of them could be read: a rebuild would have nothing to add.
    tried = report is not None and report.image_weight is not None and report.images == 0
    return wants_images and tried and same_encoder


def make_backend(settings: Settings) -> LLMBackend | None:
    if settings.llm_model == "none":
        return None
    if settings.llm_base_url:
        from .llm.openai_backend import OpenAIBackend

        return OpenAIBackend(
            settings.llm_base_url,
            model=settings.llm_served_model,
            generation_model=settings.llm_generation_model,
            api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
            top_logprobs=settings.llm_top_logprobs,
            user_header=settings.llm_user_header,
        )
    return LocalBackend(
        settings.llm_model,
        cache_dir=settings.cache_dir,
        adapter=settings.llm_adapter,
        dtype=settings.llm_dtype,
        generator=settings.llm_generator,
    )


def build_recommender(
    dataset: str | Path | Dataset,
    settings: Settings | None = None,
    events: str | Path | None = None,
    index_dir: Path | None = None,
    backend: LLMBackend | None | str = "auto",
    store: ProfileStore | None | str = "auto",
) -> Recommender:
    settings = settings or Settings()
    configure_threads(settings.threads or None)
    data = dataset if isinstance(dataset, Dataset) else load_dataset(dataset, events, ties=settings.ties)
    encoder = Encoder(settings.encoder, cache_dir=settings.cache_dir)
    images = make_image_encoder(settings)
    index, sequence = open_index(data, settings, encoder, index_dir, images)
    if settings.index_url is not None:
        attach_index(index, settings, (index_dir or settings.index_dir(data.name)).name)
    llm = make_backend(settings) if backend == "auto" else backend
    return Recommender(
        index,
        encoder,
        llm if not isinstance(llm, str) else None,
        histories=data.by_user,
        candidates=settings.candidates,
        store=open_store(settings, data.name)
        if store == "auto"
        else store
        if not isinstance(store, str)
        else None,
        extract_with_llm=settings.llm_extraction,
        sequence=sequence,
        ties=data.ties,
        rank_fusion=settings.rank_fusion,
        rank_batch=settings.rank_batch,
        images=images if index.image_vectors is not None else None,
    )


def attach_index(index: ItemIndex, settings: Settings, folder_name: str) -> None:
    """Search ``index`` in PostgreSQL (``RECAGENT_INDEX_URL``): written to its table unless already there."""
    from recagent.retrieval.pgvector import attach_pgvector, table_name

    assert settings.index_url is not None
    table = settings.index_table or table_name(f"items_{folder_name}")
    attach_pgvector(index, settings.index_url.get_secret_value(), table, precision=settings.index_precision)


def open_store(settings: Settings, dataset: str = "ml-100k") -> ProfileStore:
    """The dataset's profile store: PostgreSQL at ``RECAGENT_STORE_URL`` when set, else the SQLite file
    (``RECAGENT_PROFILE_STORE``, default ``profiles-<dataset>.sqlite`` in the cache dir)."""
    if settings.store_url is not None:
        from .profiles.pg_store import PostgresProfileStore

        return PostgresProfileStore(
            settings.store_url.get_secret_value(),
            noise_epsilon=settings.profile_noise_epsilon,
            vacuum_full=settings.store_vacuum_full,
        )
    return ProfileStore(settings.profile_store_path(dataset), noise_epsilon=settings.profile_noise_epsilon)
