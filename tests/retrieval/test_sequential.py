"""SASRec with full-softmax CE: the loss is exact, training learns, checkpoints reload, resume continues, and a
checkpoint trained on other data is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recagent.retrieval import (
    DataFileError,
    LeaveOneOut,
    SequentialConfig,
    SequentialModel,
    data_fingerprint,
    fit_sequential,
    load_bundled_arrays,
)
from recagent.retrieval.sequential import RESUME, _full_softmax_ce, train_sequences

TINY = SequentialConfig(dim=16, max_len=20, epochs=2, patience=5, valid_users=150, batch_size=64, members=1)


@pytest.fixture(scope="module")
def split() -> LeaveOneOut:
    return LeaveOneOut(load_bundled_arrays("ml-100k", "shuffle"))


def test_full_softmax_loss_and_gradients_match_torch_cross_entropy() -> None:
    torch.manual_seed(0)
    hidden = torch.randn(40, 8, requires_grad=True)
    weight = torch.randn(25, 8, requires_grad=True)
    target = torch.randint(0, 25, (40,))
    loss = _full_softmax_ce().apply(hidden, weight, target)
    loss.backward()
    ours = hidden.grad.clone(), weight.grad.clone()
    hidden.grad, weight.grad = None, None
    reference = torch.nn.functional.cross_entropy(hidden @ weight.T, target)
    reference.backward()
    assert float(loss) == pytest.approx(float(reference), rel=1e-5)
    assert torch.allclose(ours[0], hidden.grad, atol=1e-6) and torch.allclose(ours[1], weight.grad, atol=1e-6)


def test_training_sequences_hold_no_held_out_item(split: LeaveOneOut) -> None:
    sequences = train_sequences(split)
    for user in np.flatnonzero(split.evaluable)[:100]:
        assert list(sequences[user]) == list(split.history(int(user), "valid")[0])


def test_tiny_sasrec_learns_saves_reloads_and_resumes(split: LeaveOneOut, tmp_path: Path) -> None:
    model = fit_sequential(split, TINY, folder=tmp_path / "m", progress=False, log=lambda _: None)
    assert model.meta.epochs_run == 2 and model.meta.losses[-1] < model.meta.losses[0]
    # Better than popularity on validation items already (popularity scores ~0.01 here).
    assert model.meta.best_valid_ndcg_at_10 > 0.015
    assert model.item_vectors().shape == (split.n_items, 16)
    histories = [split.history(int(u), "test")[0] for u in np.flatnonzero(split.evaluable)[:5]]
    states = model.states([*histories, []])
    assert np.allclose(states[-1], 0) and not np.allclose(states[0], 0)
    assert np.allclose(model.state(histories[1]), states[1], atol=1e-5)  # batched == one at a time
    loaded = SequentialModel.load(tmp_path / "m", expected_fingerprint=data_fingerprint(split))
    assert np.allclose(loaded.states(histories), states[:-1], atol=1e-5)
    other = LeaveOneOut(load_bundled_arrays("ml-100k", "file"))
    with pytest.raises(DataFileError, match="other data"):
        SequentialModel.load(tmp_path / "m", expected_fingerprint=data_fingerprint(other))
    assert not (tmp_path / "m" / RESUME).exists()


def test_an_interrupted_training_resumes_where_it_stopped(split: LeaveOneOut, tmp_path: Path) -> None:
    folder = tmp_path / "r"

    def stop_after_first_epoch(message: str) -> None:
        if "epoch 1:" in message:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_sequential(split, TINY, folder=folder, progress=False, log=stop_after_first_epoch)
    assert (folder / RESUME).exists() and not SequentialModel.exists(folder)
    messages: list[str] = []
    resumed = fit_sequential(split, TINY, folder=folder, progress=False, log=messages.append)
    assert messages[0] == "resuming sequential training after epoch 1"
    assert resumed.meta.epochs_run == 2 and len(resumed.meta.losses) == 2
    assert SequentialModel.exists(folder) and not (folder / RESUME).exists()


def test_an_ensemble_scores_the_sum_of_its_members_and_a_finished_run_is_loaded(
    split: LeaveOneOut, tmp_path: Path
) -> None:
    config = TINY.model_copy(update={"members": 2, "epochs": 1})
    model = fit_sequential(split, config, folder=tmp_path / "e", progress=False, log=lambda _: None)
    assert model.dim == 32 and model.item_vectors().shape == (split.n_items, 32)
    history = split.history(int(np.flatnonzero(split.evaluable)[0]), "test")[0]
    state, items = model.state(history), model.item_vectors()
    # Each half is one member's own state and item table: the summed logits are the ensemble's scores.
    halves = [state[:16] @ items[:, :16].T, state[16:] @ items[:, 16:].T]
    assert not np.allclose(halves[0], halves[1])
    assert np.allclose(state @ items.T, halves[0] + halves[1], atol=1e-4)
    logs: list[str] = []
    again = fit_sequential(split, config, folder=tmp_path / "e", progress=False, log=logs.append)
    assert any("already trained" in line for line in logs)
    assert np.array_equal(again.item_vectors(), items)
    # Another recipe in the same folder is trained, not loaded.
    other = fit_sequential(split, TINY.model_copy(update={"epochs": 1}), folder=tmp_path / "e", progress=False,
                           log=logs.append)  # fmt: skip
    assert other.dim == 16
