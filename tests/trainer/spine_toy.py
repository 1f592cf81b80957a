"""A tiny training script for the trainer's subprocess tests (resume after SIGKILL, torchrun DDP).

Usage: python spine_toy.py OUT [--epochs N] [--batch-size B] [--resume] [--sleep S]
Writes OUT/result.json (best metrics, stop reason) and OUT/weights.safetensors on rank 0.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors.torch import save_file
from torch import nn

from lstmkit.trainer import TrainConfig, Trainer, is_main_process, unwrap


class Batch(NamedTuple):
    x: torch.Tensor  # (B, T, 2)
    y: torch.Tensor  # (B,)


class ToyModel(nn.Module):
    """LSTM(2 -> 8) over T steps, then a linear head on the last state: (B, T, 2) -> (B,)."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(2, 8, batch_first=True)
        self.head = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)  # (B, T, 8)
        return self.head(out[:, -1]).squeeze(-1)  # (B,)


def make_data(n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, 2, generator=g)  # (N, T, 2)
    y = x[:, :, 0].sum(1) * 0.5 - x[:, -1, 1]  # (N,)
    return [(x[i], y[i]) for i in range(n)]


def collate(examples: list) -> Batch:
    return Batch(torch.stack([e[0] for e in examples]), torch.stack([e[1] for e in examples]))


def loss_fn(model: nn.Module, batch: Batch) -> torch.Tensor:
    return nn.functional.mse_loss(model(batch.x), batch.y)


def evaluate(model: nn.Module, batches: list) -> dict[str, float]:
    err = torch.cat([(unwrap(model)(b.x) - b.y).abs() for b in batches])
    return {"mae": float(err.mean())}


def train(
    out: str,
    epochs: int = 4,
    batch_size: int = 8,
    resume: bool = False,
    sleep: float = 0.0,
    max_time: float | None = None,
    patience: int = 0,
    n_train: int = 50,
):
    torch.set_num_threads(1)
    torch.manual_seed(123)
    model = ToyModel()
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=0.02,
        seed=7,
        device="cpu",
        max_time=max_time,
        patience=patience,
        schedule="cosine",
        l1=1e-4,
    )
    trainer = Trainer(
        model,
        cfg,
        make_data(n_train, 1),
        collate,
        loss_fn,
        valid_set=make_data(20, 2),
        evaluate=evaluate,
        out_dir=out,
        resume=resume,
        quiet=True,
    )
    if sleep:
        trainer.add_callback("on_batch_end", lambda t: time.sleep(sleep))
    return model, trainer.fit()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--max-time", type=float, default=None)
    a = p.parse_args()
    model, result = train(a.out, a.epochs, a.batch_size, a.resume, a.sleep, a.max_time)
    rank = int(os.environ.get("RANK", "0"))
    (Path(a.out) / f"best_rank{rank}.json").write_text(json.dumps(result.best_metrics))
    if is_main_process():
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(Path(a.out) / "weights.safetensors"))
        (Path(a.out) / "result.json").write_text(
            json.dumps({"best": result.best_metrics, "stopped": result.stopped, "history": result.history})
        )


if __name__ == "__main__":
    main()
