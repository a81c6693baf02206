"""Runtime configuration, from ``RECAGENT_*`` environment variables or arguments."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recagent.retrieval import DEFAULT_ENCODER, DEFAULT_TIES, SequentialConfig, TieBreak, default_cache_dir


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECAGENT_", extra="ignore", env_nested_delimiter="__")

    cache_dir: Path = Field(default_factory=default_cache_dir, description="Models, embeddings and indexes.")
    encoder: str = DEFAULT_ENCODER
    llm_model: str = Field(
        default="smollm2", description="'smollm2' (bundled), a local model folder or a hub id already cached."
    )
    llm_dtype: str = Field(
        default="auto",
        description="Local model precision: auto (bfloat16 where the CPU has it natively), float32, bfloat16.",
    )
    llm_adapter: Path | None = Field(default=None, description="A PEFT LoRA adapter folder for the ranker.")
    llm_base_url: str | None = Field(
        default=None, description="An OpenAI-compatible server (vLLM) instead of the local model."
    )
    llm_api_key: str | None = None
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
    justify: bool = True
    profile_store: Path | None = Field(
        default=None, description="SQLite file for profiles, events and redacted texts (default: cache dir)."
    )
    profile_noise_epsilon: float | None = Field(
        default=None,
        gt=0,
        description="Gaussian noise on stored profile vectors, (epsilon, 1e-5)-DP per save.",
    )
    llm_extraction: bool = Field(
        default=True, description="Read reviews with the LLM (validated) when one is set."
    )

    @field_validator("rank_fusion", mode="before")
    @classmethod
    def _unset_fusion(cls, value: object) -> object:
        # An environment variable cannot be None; RECAGENT_RANK_FUSION=none selects the LLM's order alone.
        return None if isinstance(value, str) and value.strip().lower() in {"", "none", "null"} else value

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
