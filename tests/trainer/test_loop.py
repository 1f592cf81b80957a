"""The trainer in-process: learning, reproducibility, early stopping, time budget + exact resume, errors."""

from __future__ import annotations

import csv
import dataclasses
import time
from typing import NamedTuple

import pytest
import spine_toy as toy
import torch

from lstmkit.errors import LstmkitError
from lstmkit.trainer import TrainConfig, Trainer, to_device


def _fit(tmp_path, resume=False, **cfg):
    torch.manual_seed(123)
    model = toy.ToyModel()
    defaults = dict(epochs=3, batch_size=8, lr=0.02, seed=7, device="cpu")
    trainer = Trainer(
        model,
        TrainConfig(**{**defaults, **cfg}),
        toy.make_data(40, 1),
        toy.collate,
        toy.loss_fn,
        valid_set=toy.make_data(16, 2),
        evaluate=toy.evaluate,
        out_dir=tmp_path,
        resume=resume,
        quiet=True,
    )
    return model, trainer


def test_fit_learns_and_writes_history(tmp_path):
    model, trainer = _fit(tmp_path, epochs=4)
    result = trainer.fit()
    losses = [row["train_loss"] for row in result.history]
    assert len(result.history) == 4 and result.stopped == "completed"
    assert losses[-1] < 0.7 * losses[0]
    assert set(result.best_metrics) >= {"epoch", "train_loss", "valid_loss", "mae", "lr"}
    with open(tmp_path / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert float(rows[-1]["valid_loss"]) == pytest.approx(result.history[-1]["valid_loss"])
    assert (tmp_path / "loss.png").stat().st_size > 1000
    assert (tmp_path / "checkpoint" / "state.pt").is_file()


def test_same_seed_same_metrics(tmp_path):
    r1 = _fit(tmp_path / "a", schedule="plateau", optimizer="sgd", momentum=0.9, l1=1e-3)[1].fit()
    r2 = _fit(tmp_path / "b", schedule="plateau", optimizer="sgd", momentum=0.9, l1=1e-3)[1].fit()
    assert r1.history == r2.history


def test_early_stopping_restores_best(tmp_path):
    torch.manual_seed(0)
    model = toy.ToyModel()
    scores = iter([1.0, 3.0, 2.0, 2.5, 2.9, 9.0])
    cfg = TrainConfig(epochs=6, batch_size=8, patience=2, monitor="score", monitor_mode="max", device="cpu")
    trainer = Trainer(
        model,
        cfg,
        toy.make_data(16, 1),
        toy.collate,
        toy.loss_fn,
        valid_set=toy.make_data(8, 2),
        evaluate=lambda m, b: {"score": next(scores)},
    )
    snapshot = {}
    trainer.add_callback(
        "on_epoch_end",
        lambda t: snapshot.setdefault(t.state.epoch - 1, {k: v.clone() for k, v in t.model.state_dict().items()}),
    )
    result = trainer.fit()
    assert result.stopped == "early_stopping" and result.best_epoch == 2 and len(result.history) == 4
    assert result.best_metrics["score"] == 3.0
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshot[2][k])
    assert not torch.equal(snapshot[4]["head.weight"], snapshot[2]["head.weight"])


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_time_budget_then_resume_is_exact(tmp_path, ema):
    full = _fit(tmp_path / "full", ema=ema)
    full_model, full_result = full[0], full[1].fit()
    model, trainer = _fit(tmp_path / "cut", max_time=0.15, ema=ema)
    trainer.add_callback("on_batch_end", lambda t: time.sleep(0.03))
    cut = trainer.fit()
    assert cut.stopped == "max_time" and len(cut.history) < 3
    assert (tmp_path / "cut" / "checkpoint" / "state.pt").is_file()
    model, trainer = _fit(tmp_path / "cut", resume=True, ema=ema)
    resumed = trainer.fit()
    assert resumed.stopped == "completed"
    assert resumed.history == full_result.history
    for (k, a), b in zip(model.state_dict().items(), full_model.state_dict().values()):
        assert torch.equal(a, b), k


def test_ema_validates_and_keeps_the_average_while_training_the_raw_weights(tmp_path):
    model, trainer = _fit(tmp_path, epochs=3, ema=0.8)
    names = [n for n, _ in model.named_parameters()]
    raw: list[dict[str, torch.Tensor]] = []  # the parameters after every step
    seen: list[tuple[float, bool]] = []  # per epoch: valid_loss, and whether the raw weights came back
    snap = lambda t: {n: p.detach().clone() for n, p in t.model.named_parameters()}  # noqa: E731
    trainer.add_callback("on_epoch_start", lambda t: raw.append(snap(t)) if not raw else None)
    trainer.add_callback("on_batch_end", lambda t: raw.append(snap(t)))
    trainer.add_callback(
        "on_epoch_end",
        lambda t: seen.append(
            (t.last_metrics["valid_loss"], all(torch.equal(raw[-1][n], v) for n, v in snap(t).items()))
        ),
    )
    result = trainer.fit()
    final = snap(trainer)  # what fit() left in the model: the best epoch's average
    # the reference: shadow_k = d_k shadow_{k-1} + (1 - d_k) theta_k, d_k = min(0.8, (1 + k) / (10 + k))
    steps = len(toy.make_data(40, 1)) // 8  # batches per epoch
    shadow, averages = dict(raw[0]), []
    for k, theta in enumerate(raw[1:], start=1):
        d = min(0.8, (1 + k) / (10 + k))
        shadow = {n: d * shadow[n] + (1 - d) * theta[n] for n in names}
        if k % steps == 0:
            averages.append(shadow)
    assert len(averages) == 3 and all(back for _, back in seen)
    for n in names:
        torch.testing.assert_close(final[n], averages[result.best_epoch - 1][n], rtol=1e-5, atol=1e-6)
    valid = toy.collate(toy.make_data(16, 2))
    with torch.no_grad():
        for (loss, _), avg, last in zip(seen, averages, raw[steps::steps]):
            model.load_state_dict(avg, strict=False)
            assert loss == pytest.approx(float(toy.loss_fn(model, valid)), rel=1e-5)
            model.load_state_dict(last, strict=False)
            assert abs(loss - float(toy.loss_fn(model, valid))) > 1e-4  # the raw weights score otherwise


def test_resume_refuses_changed_settings(tmp_path):
    _fit(tmp_path, epochs=1)[1].fit()
    with pytest.raises(LstmkitError, match="lr"):
        _fit(tmp_path, epochs=2, lr=0.5, resume=True)[1].fit()


def test_errors_are_user_errors(tmp_path):
    with pytest.raises(LstmkitError, match="lr"):
        TrainConfig(lr=-1)
    with pytest.raises(LstmkitError, match="optimizer"):
        TrainConfig(optimizer="adam")
    with pytest.raises(LstmkitError, match="nosuch"):
        _fit(tmp_path, monitor="nosuch")[1].fit()
    with pytest.raises(LstmkitError, match="diverged"):
        _fit(tmp_path, lr=float("1e30"), clip_grad=0.0, epochs=50)[1].fit()
    with pytest.raises(LstmkitError, match="empty"):
        Trainer(toy.ToyModel(), TrainConfig(), [], toy.collate, toy.loss_fn)


def test_without_validation_monitors_train_loss():
    torch.manual_seed(0)
    trainer = Trainer(
        toy.ToyModel(), TrainConfig(epochs=2, device="cpu"), toy.make_data(16, 1), toy.collate, toy.loss_fn
    )
    result = trainer.fit()
    assert trainer.monitor == "train_loss" and "valid_loss" not in result.best_metrics
    assert result.best_metrics["train_loss"] == min(r["train_loss"] for r in result.history)


class _NT(NamedTuple):
    a: torch.Tensor
    b: list


@dataclasses.dataclass
class _DC:
    x: torch.Tensor
    meta: str


def test_to_device_walks_containers():
    batch = {"nt": _NT(torch.zeros(1), [torch.ones(2), 3]), "dc": _DC(torch.zeros(2), "m"), "t": (torch.ones(1),)}
    moved = to_device(batch, "cpu")
    assert isinstance(moved["nt"], _NT) and isinstance(moved["dc"], _DC) and moved["dc"].meta == "m"
    assert torch.equal(moved["nt"].b[0], torch.ones(2)) and moved["nt"].b[1] == 3
    assert isinstance(moved["t"], tuple)
