"""The sequential item model: SASRec (Kang & McAuley 2018) trained with full-softmax cross-entropy over the
catalogue, the loss that makes it state of the art on MovieLens (Klenitskiy & Vasilev 2023, "SASRec+").

Why a compact module of our own rather than RecTools 0.19 or RePlay 0.22: both pin numpy<2, pandas<3 and
Lightning (RecTools also a fork of ``implicit``), which would downgrade the whole stack (numpy 2.4, pandas 3.1
here) for one model of ~150 lines. This module is plain ``torch.nn.TransformerEncoder``: learned positions,
a causal mask that never lets a real position attend to padding, item embeddings tied to the output layer,
and the cross-entropy computed only on real positions (contiguous rows, no [B, items, L] transpose), which
halves an epoch on CPU.

A user's state is the last position's hidden vector ``h``; an item's score is ``h · e_item``. That is an
inner product, so the item embeddings go straight into the FAISS index beside the text vectors
(:class:`recagent.retrieval.SequentialIndex`) and the state is the behaviour part of the query.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from .items import DataFileError
from .split import LeaveOneOut
from .threads import log_to_stderr

if TYPE_CHECKING:
    import torch

CHECKPOINT = "sequential.pt"
META = "sequential.json"
RESUME = "sequential-resume.pt"


class SequentialConfig(BaseModel):
    """SASRec+ (Klenitskiy & Vasilev 2023): 2 blocks, 1 head, dropout 0.1, batch 128, Adam 1e-3; width and length
    measured here (see the field comments)."""

    # 256, not the reference 64: validation NDCG@10 on ml-1m after 10 epochs was 0.128 (64), 0.140 (128), 0.152
    # (256), at 17 / 20 / 37 s an epoch here.
    dim: int = Field(default=256, ge=8, description="embedding and hidden size")
    blocks: int = Field(default=2, ge=1, description="transformer blocks")
    heads: int = Field(default=1, ge=1, description="attention heads")
    # 0.3, not the reference 0.1: on ml-1m (shuffled ties) 0.1 overfits after epoch 12 (full-validation NDCG@10
    # 0.1545); 0.3 peaks at epoch 18 (0.1586); 0.5 learns slower (0.1521 at epoch 31 on 2000 users, stopped).
    dropout: float = Field(default=0.3, ge=0, lt=1, description="dropout on embeddings and blocks")
    # The SASRec+ reference code trains and predicts on the last 50 events (its 200 only sizes the position
    # table); on this CPU 50 also makes an epoch 3.5x shorter than 200 (17 s vs 60 s on ml-1m).
    max_len: int = Field(default=50, ge=2, description="most recent events a state is computed from")
    batch_size: int = Field(default=128, ge=1, description="sequences per training step")
    learning_rate: float = Field(default=1e-3, gt=0, description="Adam learning rate")
    epochs: int = Field(default=80, ge=1, description="most epochs; early stopping usually ends sooner")
    patience: int = Field(
        default=6, ge=1, description="epochs without a better validation NDCG@10 before stopping"
    )
    valid_users: int = Field(
        default=2000, ge=0, description="validation users checked after each epoch (0 = every one)"
    )
    time_budget_s: float | None = Field(
        default=None, gt=0, description="stop after the epoch that passes this many seconds (best epoch kept)"
    )
    # Members trained side by side on the same batches, each with its own initialisation and dropout; their
    # logits add up (the query and item vectors are the members' vectors side by side). On ml-1m (shuffled
    # ties), full-validation NDCG@10: one model 0.1586, two 0.1624 (fused with text and item2vec on the 1000
    # tuning users: 0.1733 vs 0.1760), at twice the epoch time (46 s vs 21 s here).
    members: int = Field(
        default=2, ge=1, description="independently initialised SASRec models whose scores add"
    )
    seed: int = Field(default=0, description="initialisation and batch-order seed (member i uses seed + i)")
    device: str = Field(default="cpu", description="cpu or cuda")
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto", description="bfloat16 autocast where the device has it natively, else float32"
    )

    def architecture(self) -> dict[str, Any]:
        return self.model_dump(include={"dim", "blocks", "heads", "dropout", "max_len", "members"})


class SequentialMeta(BaseModel):
    """What a checkpoint was trained on; checked when it is loaded."""

    item_ids: list[str]
    fingerprint: str = Field(description="sha256 of the catalogue ids, the tie protocol and the TRAIN rows")
    ties: str
    config: SequentialConfig
    epochs_run: int = 0
    best_epoch: int = 0
    best_valid_ndcg_at_10: float = 0.0
    valid_history: list[float] = Field(default_factory=list)
    losses: list[float] = Field(default_factory=list)
    seconds: float = 0.0


def data_fingerprint(split: LeaveOneOut) -> str:
    users, items, _ = split.train_rows()
    digest = hashlib.sha256()
    digest.update("\x1f".join(split.data.item_ids).encode())
    digest.update(split.data.ties.encode())
    digest.update(np.ascontiguousarray(users).tobytes())
    digest.update(np.ascontiguousarray(items).tobytes())
    return digest.hexdigest()


def _resolve_precision(config: SequentialConfig) -> Any:
    import torch

    from .threads import cpu_has_native_bf16

    if config.precision == "float32":
        return None
    if config.precision == "bfloat16":
        return torch.bfloat16
    if torch.device(config.device).type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if cpu_has_native_bf16() else None


def _full_softmax_ce() -> Any:
    """Cross-entropy over the whole catalogue for the real positions only, as one autograd function: the logits
    are kept once and turned into the gradient in place (softmax − one-hot), instead of log-softmax forward and
    backward passes over a second copy. On 2 CPU cores this halves the loss's share of a step."""
    import torch

    class FullSoftmaxCE(torch.autograd.Function):
        @staticmethod
        def forward(
            ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor
        ) -> torch.Tensor:
            logits = hidden @ weight.T
            picked = logits.gather(1, target[:, None])[:, 0]
            top = logits.max(dim=1, keepdim=True).values
            exp = logits.sub_(top).exp_()  # in place: the one [N, items] buffer becomes exp(logit - max)
            total = exp.sum(dim=1)
            loss = (total.log() + top[:, 0] - picked).mean()
            ctx.save_for_backward(hidden, weight, target, exp, total)
            return loss

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
            hidden, weight, target, exp, total = ctx.saved_tensors
            scale = grad / len(target)
            probs = exp.mul_(scale / total[:, None])  # softmax, times the mean's 1/N, in place
            probs[torch.arange(len(target), device=target.device), target] -= scale
            return probs @ weight, probs.T @ hidden, None

    return FullSoftmaxCE


def _build_module(n_items: int, config: SequentialConfig) -> Any:
    import torch
    import torch.nn.functional as F
    from torch import nn

    heads = config.heads
    if config.dim % heads:
        raise ValueError(f"dim {config.dim} is not divisible by heads {heads}")

    class Block(nn.Module):
        """Pre-norm self-attention + feed-forward. Attention is causal SDPA with no padding mask: sequences
        are right-padded, so a real position only ever sees real positions before it. (No dropout on the
        attention weights: on CPU it forces SDPA's slow path and its mask sampling cost a fifth of a step.)"""

        def __init__(self) -> None:
            super().__init__()
            self.norm1 = nn.LayerNorm(config.dim)
            self.qkv = nn.Linear(config.dim, 3 * config.dim)
            self.out = nn.Linear(config.dim, config.dim)
            self.norm2 = nn.LayerNorm(config.dim)
            self.ff1 = nn.Linear(config.dim, config.dim)
            self.ff2 = nn.Linear(config.dim, config.dim)
            self.dropout = nn.Dropout(config.dropout)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            batch, length, dim = x.shape
            q, k, v = (
                t.view(batch, length, heads, dim // heads).transpose(1, 2)
                for t in self.qkv(self.norm1(x)).chunk(3, dim=-1)
            )
            attn = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.dropout(self.out(attn.transpose(1, 2).reshape(batch, length, dim)))
            return x + self.dropout(self.ff2(F.gelu(self.ff1(self.norm2(x)))))

    class SASRec(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.items = nn.Embedding(n_items + 1, config.dim, padding_idx=0)
            self.positions = nn.Embedding(config.max_len, config.dim)
            self.dropout = nn.Dropout(config.dropout)
            self.blocks = nn.ModuleList(Block() for _ in range(config.blocks))
            self.norm = nn.LayerNorm(config.dim)
            # GPT-2/RecBole-style initialisation (N(0, 0.02), zero biases), as the SASRec+ reference code.
            for module in self.modules():
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(module.weight, std=0.02)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
            with torch.no_grad():
                self.items.weight[0].zero_()

        def forward(self, seq: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
            """``seq``: [B, L] item codes (catalogue position + 1), right-padded with 0; ``positions``: each
            event's distance from the row's newest one, counted down from ``max_len - 1``. Returns [B, L, d]."""
            x = self.dropout(self.items(seq) * math.sqrt(config.dim) + self.positions(positions))
            for block in self.blocks:
                x = block(x)
            return self.norm(x)

    if config.members == 1:
        return SASRec()

    class Ensemble(nn.Module):
        """Members side by side: the hidden states concatenated, so state·items is the sum of their logits."""

        def __init__(self) -> None:
            super().__init__()
            self.members = nn.ModuleList(SASRec() for _ in range(config.members))

        def forward(self, seq: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
            return torch.cat([member(seq, positions) for member in self.members], dim=-1)

    return Ensemble()


def _members(module: Any) -> list[Any]:
    """The SASRec models inside a built module (itself, or an ensemble's members)."""
    return list(module.members) if hasattr(module, "members") else [module]


def _batch(sequences: Sequence[Any], length: int, max_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The last ``length`` items of each sequence as right-padded codes (position + 1), their position ids
    (the newest event is always ``max_len - 1``, so states are comparable across lengths), and the lengths."""
    codes = np.zeros((len(sequences), length), dtype=np.int64)
    positions = np.zeros((len(sequences), length), dtype=np.int64)
    lengths = np.zeros(len(sequences), dtype=np.int64)
    for row, seq in enumerate(sequences):
        tail = np.asarray(seq, dtype=np.int64)[-length:]
        n = len(tail)
        codes[row, :n] = tail + 1
        positions[row, :n] = np.arange(max_len - n, max_len)
        lengths[row] = n
    return codes, positions, lengths


class SequentialModel:
    """A trained SASRec: item vectors for the index and user states for queries (both float32 numpy)."""

    def __init__(self, module: Any, meta: SequentialMeta) -> None:
        self.module = module.eval()
        self.meta = meta
        self._positions = {item_id: pos for pos, item_id in enumerate(meta.item_ids)}
        self._item_vectors: np.ndarray | None = None

    @property
    def config(self) -> SequentialConfig:
        return self.meta.config

    @property
    def dim(self) -> int:
        """Width of a state and of an item vector: every member's, side by side."""
        return self.config.dim * self.config.members

    def item_vectors(self) -> np.ndarray:
        """(n_items, dim) output embeddings, in the order of ``meta.item_ids`` (the catalogue's)."""
        if self._item_vectors is None:
            weight = np.concatenate(
                [m.items.weight.detach().float().cpu().numpy()[1:] for m in _members(self.module)], axis=1
            )
            self._item_vectors = np.ascontiguousarray(weight, dtype=np.float32)
        return self._item_vectors

    def positions(self, item_ids: Sequence[str]) -> list[int]:
        """Catalogue positions of the items this model knows (unknown ones, e.g. added later, are skipped)."""
        return [self._positions[i] for i in item_ids if i in self._positions]

    def states(self, sequences: Sequence[Any], batch_size: int = 256) -> np.ndarray:
        """The state after each sequence of catalogue positions (oldest first); zeros for an empty one."""
        import torch

        out = np.zeros((len(sequences), self.dim), dtype=np.float32)
        device = next(self.module.parameters()).device
        order = [i for i, s in enumerate(sequences) if len(s)]
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                length = min(self.config.max_len, max(len(sequences[r]) for r in rows))
                codes, positions, lengths = _batch([sequences[r] for r in rows], length, self.config.max_len)
                hidden = self.module(
                    torch.from_numpy(codes).to(device), torch.from_numpy(positions).to(device)
                )
                last = hidden[torch.arange(len(rows)), torch.from_numpy(lengths - 1).to(device)]
                out[rows] = last.float().cpu().numpy()
        return out

    def state(self, sequence: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.states([sequence])[0]

    # ------------------------------------------------------------------ files

    def save(self, folder: str | Path) -> Path:
        import torch

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.module.state_dict(), folder / CHECKPOINT)
        # The meta file last: its presence marks a complete checkpoint.
        (folder / META).write_text(self.meta.model_dump_json(indent=2), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path, expected_fingerprint: str | None = None) -> SequentialModel:
        import torch

        folder = Path(folder)
        try:
            meta = SequentialMeta.model_validate_json((folder / META).read_text(encoding="utf-8"))
            state = torch.load(folder / CHECKPOINT, map_location="cpu", weights_only=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise DataFileError(
                f"{folder}: no usable sequential model ({exc.__class__.__name__}: {exc})"
            ) from None
        if expected_fingerprint is not None and meta.fingerprint != expected_fingerprint:
            raise DataFileError(f"{folder}: the sequential model was trained on other data; retrain it")
        module = _build_module(len(meta.item_ids), meta.config)
        module.load_state_dict(state)
        return cls(module, meta)

    @staticmethod
    def exists(folder: str | Path) -> bool:
        return (Path(folder) / META).exists() and (Path(folder) / CHECKPOINT).exists()


# ---------------------------------------------------------------------- training


def train_sequences(split: LeaveOneOut) -> list[np.ndarray]:
    """Each user's TRAIN rows (catalogue positions, oldest first): the validation and test items never enter."""
    bounds = split.bounds
    items = split.data.items
    mask = split.train_mask
    return [items[bounds[u] : bounds[u + 1]][mask[bounds[u] : bounds[u + 1]]] for u in range(split.n_users)]


def valid_ndcg(model: SequentialModel, split: LeaveOneOut, users: np.ndarray) -> float:
    """NDCG@10 of each user's validation item, full ranking over items the user has not rated."""
    histories = [split.history(int(u), "valid")[0] for u in users]
    states = model.states(histories)
    scores = states @ model.item_vectors().T
    gains = []
    for row, (user, history) in enumerate(zip(users, histories, strict=True)):
        s = scores[row]
        target = split.target(int(user), "valid")
        s[history] = -np.inf
        rank = int(np.count_nonzero(s > s[target]))
        gains.append(1.0 / math.log2(rank + 2) if rank < 10 else 0.0)
    return float(np.mean(gains)) if gains else 0.0


# Where and how fast it runs does not change what a finished model is.
_RUNTIME_FIELDS = {"device", "precision", "time_budget_s"}


def _finished_model(folder: str | Path, fingerprint: str, config: SequentialConfig) -> SequentialModel | None:
    """The model a completed run left in ``folder``, if it was trained on these rows with this recipe."""
    if not SequentialModel.exists(folder) or (Path(folder) / RESUME).exists():
        return None
    try:
        model = SequentialModel.load(folder, expected_fingerprint=fingerprint)
    except DataFileError:
        return None
    same = model.meta.config.model_dump(exclude=_RUNTIME_FIELDS) == config.model_dump(exclude=_RUNTIME_FIELDS)
    return model if same else None


def fit_sequential(
    split: LeaveOneOut,
    config: SequentialConfig | None = None,
    folder: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    log: Callable[[str], None] = log_to_stderr,
) -> SequentialModel:
    """Train SASRec on the TRAIN rows; early-stop on validation NDCG@10; keep the best epoch.

    With ``folder``, a resume file is written after every epoch (a stopped run continues where it was), and the
    best model is saved there (``sequential.pt`` + ``sequential.json`` with the data fingerprint).
    """
    import torch
    from tqdm.auto import tqdm

    config = config or SequentialConfig()
    fingerprint = data_fingerprint(split)
    finished = _finished_model(folder, fingerprint, config) if resume and folder is not None else None
    if finished is not None:
        log(f"{folder}: SASRec already trained on this data with this recipe; loaded")
        return finished
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    meta = SequentialMeta(
        item_ids=split.data.item_ids, fingerprint=fingerprint, ties=split.data.ties, config=config
    )
    module = _build_module(split.n_items, config).to(config.device)
    optimizer = torch.optim.Adam(module.parameters(), lr=config.learning_rate, betas=(0.9, 0.98))
    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    resume_path = Path(folder) / RESUME if folder is not None else None
    if resume and resume_path is not None and resume_path.exists():
        saved = torch.load(resume_path, map_location=config.device, weights_only=False)
        if saved["meta"]["fingerprint"] == fingerprint and saved["meta"]["config"] == config.model_dump():
            module.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            best_state = saved["best"]
            meta = SequentialMeta.model_validate(saved["meta"])
            rng = np.random.default_rng([config.seed, meta.epochs_run])
            log(f"resuming sequential training after epoch {meta.epochs_run}")
    sequences = [s for s in train_sequences(split) if len(s) >= 2]
    valid_users = split.sample_users(config.valid_users or None, seed=config.seed + 7)
    autocast = _resolve_precision(config)
    loss_fn = _full_softmax_ce()
    device_type = torch.device(config.device).type
    started = time.perf_counter() - meta.seconds
    stale = meta.epochs_run - meta.best_epoch
    while meta.epochs_run < config.epochs and stale < config.patience:
        module.train()
        order = rng.permutation(len(sequences))
        batches = range(0, len(order), config.batch_size)
        bar = tqdm(batches, desc=f"SASRec epoch {meta.epochs_run + 1}", disable=not progress, leave=False)
        total, count = 0.0, 0
        for start in bar:
            rows = [sequences[i] for i in order[start : start + config.batch_size]]
            length = min(config.max_len, max(len(s) - 1 for s in rows))
            codes, positions, _ = _batch([s[:-1] for s in rows], length, config.max_len)
            targets_np, _, _ = _batch([s[1:] for s in rows], length, config.max_len)
            targets = torch.from_numpy(targets_np).to(config.device)
            real = targets > 0
            with torch.autocast(device_type, dtype=autocast, enabled=autocast is not None):
                hidden = module(
                    torch.from_numpy(codes).to(config.device), torch.from_numpy(positions).to(config.device)
                )
            # Only real positions enter the loss, as contiguous rows: [N, d] against every item. Members' losses
            # are summed, so each gets the gradient it would get trained alone.
            rows_hidden, labels = hidden[real].float(), targets[real] - 1
            members = _members(module)
            loss = sum(
                loss_fn.apply(
                    rows_hidden[:, m * config.dim : (m + 1) * config.dim], member.items.weight[1:], labels
                )
                for m, member in enumerate(members)
            ) / len(members)
            optimizer.zero_grad(set_to_none=True)
            (loss * len(members)).backward()
            optimizer.step()
            with torch.no_grad():
                for member in members:
                    member.items.weight[0].zero_()
            total += float(loss.detach()) * int(real.sum())
            count += int(real.sum())
            bar.set_postfix(loss=f"{total / max(1, count):.3f}")
        meta.epochs_run += 1
        meta.losses.append(round(total / max(1, count), 4))
        model = SequentialModel(module, meta)
        ndcg = valid_ndcg(model, split, valid_users)
        meta.valid_history.append(round(ndcg, 5))
        if ndcg > meta.best_valid_ndcg_at_10:
            meta.best_valid_ndcg_at_10, meta.best_epoch = ndcg, meta.epochs_run
            best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        stale = meta.epochs_run - meta.best_epoch
        meta.seconds = round(time.perf_counter() - started, 1)
        if resume_path is not None:
            resume_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = resume_path.with_suffix(".tmp")
            torch.save(
                {
                    "model": module.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "best": best_state,
                    "meta": meta.model_dump(mode="json"),
                },
                tmp,
            )
            tmp.replace(resume_path)
        log(
            f"SASRec epoch {meta.epochs_run}: loss {meta.losses[-1]:.3f}, valid NDCG@10 {ndcg:.4f} "
            f"(best {meta.best_valid_ndcg_at_10:.4f} at {meta.best_epoch}), {meta.seconds:.0f} s"
        )
        if config.time_budget_s is not None and meta.seconds >= config.time_budget_s:
            log(f"SASRec: time budget of {config.time_budget_s:.0f} s reached after epoch {meta.epochs_run}")
            break
    module.load_state_dict(best_state)
    model = SequentialModel(module.cpu(), meta)
    if folder is not None:
        model.save(folder)
        if resume_path is not None:
            resume_path.unlink(missing_ok=True)
    return model


def sequential_meta_of(folder: str | Path) -> dict[str, Any] | None:
    """The training record of a saved model (for reports), or None."""
    path = Path(folder) / META
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    data.pop("item_ids", None)
    return data
