"""The one settings object: every ``RECAGENT_*`` variable, with its type, default and description.

It is built once at an entry point (the CLI, the app, the API server) and passed down; nothing below reads
the environment (retrieval functions take parameters). :func:`bootstrap_environment` is the one place that
writes process-wide variables (offline hub, no analytics, no tokenizer threads), before heavy imports.
``docs/configuration.md`` is generated from this module (:func:`configuration_markdown`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recagent.retrieval import (
    DEFAULT_ENCODER,
    DEFAULT_IMAGE_ENCODER,
    DEFAULT_TIES,
    ImageLimits,
    SequentialConfig,
    TieBreak,
    default_cache_dir,
)

# Defaults the process must have before transformers, tokenizers or gradio are imported.
PROCESS_DEFAULTS: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",  # models come from installed packages; nothing is fetched at run time
    "TOKENIZERS_PARALLELISM": "false",  # its own thread pool fights torch's on few cores
    # Idle OpenMP threads sleep instead of spinning: with another process on the cores, spinning threads took
    # 2.5x as long to justify five picks (38.2 s vs 15.2 s quiet); passive ones 19.4 s, for 6% when quiet
    # (16.2 s). benchmarks/bench_threads.py measures it. Read when torch/FAISS load, so set before.
    "OMP_WAIT_POLICY": "PASSIVE",
    "GRADIO_ANALYTICS_ENABLED": "False",
}

DEFAULT_API_MODEL_NAME = "recagent"


def bootstrap_environment() -> None:
    """Set :data:`PROCESS_DEFAULTS` where the user has not: the one write to ``os.environ``."""
    for name, value in PROCESS_DEFAULTS.items():
        os.environ.setdefault(name, value)


def child_environment(defaults: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process (a vLLM server): ``defaults`` under this process's own variables."""
    return {**(defaults or {}), **os.environ}


class Settings(BaseSettings):
    """Configuration of every face; ``RECAGENT_<FIELD>`` (nested: ``RECAGENT_SASREC__EPOCHS``)."""

    model_config = SettingsConfigDict(env_prefix="RECAGENT_", extra="ignore", env_nested_delimiter="__")

    cache_dir: Path = Field(default_factory=default_cache_dir, description="Models, embeddings and indexes.")
    encoder: str = Field(
        default=DEFAULT_ENCODER, description="Text encoder: the bundled all-MiniLM-L6-v2 or a local folder."
    )
    images: bool = Field(
        default=True,
        description="Encode the catalogue's images (its image column) into the item space and accept photos as "
        "queries. A catalogue without images is served exactly as without this.",
    )
    image_encoder: str = Field(
        default=DEFAULT_IMAGE_ENCODER,
        description="Image encoder: the bundled EfficientNet-Lite0 (1280-d), or a local folder with a CLIP-family "
        "model (sentence-transformers format), whose text embeddings let words match item images too.",
    )
    image_weight: float = Field(
        default=1.0,
        ge=0,
        description="λ of the image block: score += λ × cos(photo or image taste, item image). Not tuned: no "
        "offline data here has images and behaviour together.",
    )
    image_allow_remote: bool = Field(
        default=False,
        description="Fetch http(s) catalogue images when building an index (off: recagent runs offline; such "
        "images are skipped with a warning). Photos sent to the API must always be data URLs.",
    )
    image_max_bytes: int = Field(
        default=5_000_000, ge=1024, description="Largest image accepted (catalogue file or photo), in bytes."
    )
    image_max_pixels: int = Field(
        default=40_000_000, ge=1, description="Largest image accepted, in decoded pixels (width × height)."
    )
    llm_model: str = Field(
        default="smollm2", description="'smollm2' (bundled), a local model folder or a hub id already cached."
    )
    llm_dtype: str = Field(
        default="auto",
        description="Local model precision: auto (bfloat16 where the CPU has it natively), float32, bfloat16.",
    )
    llm_generator: Literal["auto", "llamacpp", "transformers"] = Field(
        default="auto",
        description="Who writes justifications with the embedded model: llama.cpp on a Q8_0 copy of the bundled "
        "GGUF, one thread (auto: on a CPU when xllamacpp is installed; ~3x faster decoding here) or transformers.",
    )
    llm_adapter: Path | None = Field(default=None, description="A PEFT LoRA adapter folder for the ranker.")
    llm_base_url: str | None = Field(
        default=None, description="An OpenAI-compatible server (vLLM) instead of the local model."
    )
    llm_api_key: SecretStr | None = Field(
        default=None, description="API key of the LLM server, if it wants one."
    )
    llm_served_model: str | None = Field(
        default=None,
        description="Model name on the server: 'recagent-ranker' selects the LoRA adapter on vLLM, the base "
        "model's name the plain model; unset = 'recagent-ranker' if served, else the first listed.",
    )
    llm_generation_model: str | None = Field(
        default=None,
        description="Served model for justifications (default: the base model when ranking uses the LoRA ranker).",
    )
    llm_timeout: float = Field(default=60.0, gt=0, description="Seconds per request to the LLM server.")
    llm_max_retries: int = Field(default=3, ge=0, le=10, description="Retries (with backoff) per request.")
    llm_user_header: str | None = Field(
        default="X-User-Id",
        description="Header naming the user on every request to the LLM server (the body's `user` is set too), so "
        "vllm-router --policy consistent_hash keeps a user on one replica; empty = send neither.",
    )
    llm_top_logprobs: int = Field(
        default=20, ge=0, description="top_logprobs asked for when ranking (20 = the OpenAI API's maximum)."
    )
    threads: int = Field(default=0, description="Threads for torch and FAISS; 0 = all cores.")
    ties: TieBreak = Field(
        default=DEFAULT_TIES,
        description="How same-second events are ordered: shuffle (seeded per user, default) or file (the data "
        "file's order, as published MovieLens numbers). Decides the split the sequential model trains on.",
    )
    sequential: bool = Field(
        default=True, description="Train/use the SASRec sequential model when the dataset has events."
    )
    sasrec: SequentialConfig = Field(
        default_factory=SequentialConfig,
        description="How SASRec is trained when an index is built (RECAGENT_SASREC__EPOCHS=..., and so on).",
    )
    candidates: int = Field(default=20, ge=2, le=26, description="How many retrieved items the LLM ranks.")
    # 0: on ml-1m validation every weight > 0 and the LLM's order alone scored below the retriever's order
    # (NDCG@10 0.1797 at 0, 0.1770 at 0.1, 0.1610 LLM alone; docs/evaluation.md).
    rank_fusion: float | None = Field(
        default=0.0,
        ge=0,
        description="Order ranked candidates by retrieval score + this × the LLM's log-probability; unset (none) = "
        "the LLM's order alone, 0 = the retriever's order (the value chosen on validation, docs/evaluation.md).",
    )
    rank_batch: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Cross-request batching: up to this many concurrent requests share one ranking forward pass "
        "(1 = each ranks alone; 0 = 8 for an embedded model on a GPU or in bfloat16 on a CPU with native bf16, "
        "else 1: on other CPUs a padded pass of 8 measured slower than 8 prefix-cached ones). Only matters when "
        "the LLM's scores are used (rank_fusion not 0).",
    )
    profile_store: Path | None = Field(
        default=None, description="SQLite file for profiles, events and redacted texts (default: cache dir)."
    )
    profile_noise_epsilon: float | None = Field(
        default=None,
        gt=0,
        description="Gaussian noise on stored profile vectors, (epsilon, 1e-5)-DP per save.",
    )
    store_url: SecretStr | None = Field(
        default=None,
        description="postgresql://user:pass@host:5432/db: keep profiles, events and texts in PostgreSQL instead of "
        "the SQLite file, so many API workers share them (docs/scale.md).",
    )
    store_vacuum_full: bool = Field(
        default=False,
        description="PostgreSQL store: erase runs VACUUM FULL (rewrites the tables; no data file keeps the erased "
        "bytes; locks them meanwhile) instead of VACUUM (rows gone, bytes left in free page space).",
    )
    index_url: SecretStr | None = Field(
        default=None,
        description="postgresql://...: search the item index in PostgreSQL with pgvector (HNSW) instead of FAISS "
        "in this process; the table is written once and shared by every worker (docs/scale.md).",
    )
    index_precision: Literal["float32", "float16"] = Field(
        default="float32",
        description="pgvector column type: float32 = vector, float16 = halfvec (half the table and HNSW graph, for "
        "millions of items; docs/scale.md).",
    )
    index_table: str | None = Field(
        default=None, description="pgvector table of the item index (default: derived from the index folder)."
    )
    llm_extraction: bool = Field(
        default=True, description="Read reviews with the LLM (validated) when one is set."
    )
    # Chat faces (Gradio, /v1/chat/completions).
    chat_mode: Literal["auto", "pipeline", "agent"] = Field(
        default="auto", description="auto = agent when RECAGENT_LLM_BASE_URL is set, else pipeline."
    )
    agent_model: str | None = Field(
        default=None, description="Model name at RECAGENT_LLM_BASE_URL (default: RECAGENT_LLM_MODEL)."
    )
    agent_max_steps: int = Field(default=8, ge=2, le=50, description="Graph steps before the agent stops.")
    app_concurrency: int = Field(
        default=4, ge=1, le=64, description="Chat turns the Gradio app runs at once (across all its users)."
    )
    # The HTTP API.
    api_keys: SecretStr = Field(
        default=SecretStr(""),
        description="'k1,k2' (every user) or 'k1:user1,user2;k2:tenant-*;k3:*' (bound); empty means no auth.",
    )
    api_keys_file: Path | None = Field(
        default=None, description='JSON file {"key": ["user", "tenant-*"] or "*"}, added to api_keys.'
    )
    api_max_body_bytes: int = Field(default=1_000_000, ge=1024, description="Largest request body accepted.")
    api_model_name: str = Field(default=DEFAULT_API_MODEL_NAME, description="The model id /v1/models lists.")
    api_max_concurrency: int = Field(
        default=16, ge=1, description="Requests processed at once; more wait in the queue."
    )
    api_max_queue: int = Field(
        default=256, ge=0, description="Requests waiting for a slot; past that the answer is 429."
    )
    api_queue_timeout_s: float = Field(
        default=30.0, gt=0, description="Longest wait for a slot before the answer is 429."
    )
    api_user_header: str | None = Field(
        default=None,
        description="A header naming the user of a chat completion, set by a trusted front-end (Open WebUI "
        "with ENABLE_FORWARD_USER_INFO_HEADERS sends X-OpenWebUI-User-Id). Off by default; when set, the key "
        "must still be allowed to act for that user.",
    )

    @field_validator("llm_user_header", mode="before")
    @classmethod
    def _no_header(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("rank_fusion", mode="before")
    @classmethod
    def _unset_fusion(cls, value: object) -> object:
        # An environment variable cannot be None; RECAGENT_RANK_FUSION=none selects the LLM's order alone.
        return None if isinstance(value, str) and value.strip().lower() in {"", "none", "null"} else value

    @property
    def image_limits(self) -> ImageLimits:
        return ImageLimits(max_bytes=self.image_max_bytes, max_pixels=self.image_max_pixels)

    @property
    def index_root(self) -> Path:
        return self.cache_dir / "indexes"

    def profile_store_path(self, dataset: str = "ml-100k") -> Path:
        """One store per dataset (user ids of different datasets collide), unless ``profile_store`` is set."""
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(dataset).stem)
        return self.profile_store or self.cache_dir / f"profiles-{stem}.sqlite"

    def index_dir(self, dataset: str) -> Path:
        """One folder per dataset, encoder and (with the sequential model) tie protocol."""
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(dataset).stem)
        kind = f"sasrec-{self.ties}" if self.sequential else "text"
        return self.index_root / f"{stem}-{re.sub(r'[^A-Za-z0-9._-]', '_', self.encoder)}-{kind}"


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if not getattr(annotation, "__args__", None) else None
    return text or str(annotation).replace("typing.", "").replace("pathlib.", "").replace(
        "pydantic.types.", ""
    )


def _field_rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows += _field_rows(annotation, f"{prefix}{name.upper()}__")
            continue
        if field.default_factory is not None:
            default = "(computed)" if name == "cache_dir" else repr(field.default_factory())  # type: ignore[call-arg]
        else:
            default = (
                ""
                if isinstance(field.default, SecretStr) and not field.default.get_secret_value()
                else ("(secret)" if isinstance(field.default, SecretStr) else repr(field.default))
            )
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        kind = _type_name(annotation).replace("|", "\\|")
        rows.append(f"| `{prefix}{name.upper()}` | `{kind}` | `{default}` | {description} |")
    return rows


def configuration_markdown() -> str:
    """``docs/configuration.md``: one row per variable, from the field descriptions above."""
    lines = [
        "# Configuration",
        "",
        "<!-- Generated from recagent/agent/settings.py by `make docs`; a test keeps it current. -->",
        "",
        "Every setting is an environment variable (or a field of `recagent.agent.Settings`); the CLI's flags",
        "override them for one command. Secrets are `SecretStr` and never printed. `cache_dir` defaults to",
        "`~/.cache/recagent`. Process defaults set before heavy imports (unless already set): "
        + ", ".join(f"`{k}={v}`" for k, v in PROCESS_DEFAULTS.items())
        + ".",
        "",
        "| variable | type | default | what it does |",
        "|---|---|---|---|",
        *_field_rows(Settings, "RECAGENT_"),
        "",
    ]
    return "\n".join(lines)
