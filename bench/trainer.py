"""Trainer overhead benchmark, run by hand: ``python bench/trainer.py [--epochs 3] [--repeats 2]``.

Trains the same small LSTM regressor (LSTM 16 -> 64 over T = 30 steps, linear head, N = 1024
sequences, batch 64, AdamW, clipping at 1.0, validation on 256 sequences each epoch) twice in the
same process:

- *plain*: a hand-written PyTorch loop (the reference), with the same seeded batch order;
- *lstmkit*: :class:`lstmkit.trainer.Trainer` (checkpoint every epoch, history.csv, loss.png).

Both do the same arithmetic, so the final weights must agree; the table reports the wall time of
each (best of ``--repeats``), their ratio (the trainer's overhead) and the largest weight
difference. Writes ``bench/results/trainer.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from lstmkit.data.batching import shuffled_batches
from lstmkit.trainer import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "trainer.md"
N, N_VALID, T, FEATURES, HIDDEN, BATCH, SEED = 1024, 256, 30, 16, 64, 64, 0


class Net(nn.Module):
    """(B, T, 16) -> LSTM -> last state (B, 64) -> linear -> (B,)."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, HIDDEN, batch_first=True)
        self.head = nn.Linear(HIDDEN, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0][:, -1]).squeeze(-1)


def make_data() -> tuple[list, list]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N + N_VALID, T, FEATURES, generator=g)  # (N, T, F)
    y = x[:, -10:, :4].sum((1, 2)) / 6  # (N,)
    data = [(x[i], y[i]) for i in range(N + N_VALID)]
    return data[:N], data[N:]


def collate(examples: list) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([e[0] for e in examples]), torch.stack([e[1] for e in examples])


def loss_fn(model: nn.Module, batch: tuple) -> torch.Tensor:
    return nn.functional.mse_loss(model(batch[0]), batch[1])


def plain_loop(train: list, valid: list, epochs: int) -> nn.Module:
    """The reference: what the trainer does, written out by hand (same seeds, same batch order)."""
    torch.manual_seed(123)
    model = Net()
    torch.manual_seed(SEED)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    sampler = shuffled_batches(BATCH)
    valid_batches = [collate(valid[s : s + BATCH]) for s in range(0, len(valid), BATCH)]
    for epoch in range(1, epochs + 1):
        model.train()
        for idx in sampler(epoch, torch.Generator().manual_seed(SEED * 1_000_003 + epoch), len(train)):
            loss = loss_fn(model, collate([train[i] for i in idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        model.eval()
        with torch.no_grad():
            valid_loss = sum(float(loss_fn(model, b)) * len(b[1]) for b in valid_batches) / len(valid)
        print(f"plain   epoch {epoch}: valid_loss {valid_loss:.4f}", flush=True)
    return model


def lstmkit_loop(train: list, valid: list, epochs: int, out: str) -> nn.Module:
    torch.manual_seed(123)
    model = Net()
    cfg = TrainConfig(epochs=epochs, batch_size=BATCH, lr=1e-3, clip_grad=1.0, patience=0, seed=SEED, device="cpu")
    result = Trainer(model, cfg, train, collate, loss_fn, valid_set=valid, out_dir=out, quiet=True).fit()
    print(f"lstmkit final valid_loss {result.history[-1]['valid_loss']:.4f}", flush=True)
    return model


def timed(fn, *args) -> tuple[tuple[float, float], nn.Module]:
    """((wall seconds, CPU seconds of this process), model)."""
    w0, c0 = time.perf_counter(), time.process_time()
    model = fn(*args)
    return (time.perf_counter() - w0, time.process_time() - c0), model


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=2, help="epochs per run")
    p.add_argument("--repeats", type=int, default=3, help="runs of each loop; the best time counts")
    args = p.parse_args()
    train, valid = make_data()
    plain_s, lstmkit_s, diff = [], [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        lstmkit_loop(train, valid, 1, str(Path(tmp) / "warm"))  # imports + first-use costs, not timed
        for r in range(args.repeats):
            t_plain, m_plain = timed(plain_loop, train, valid, args.epochs)
            t_kit, m_kit = timed(lstmkit_loop, train, valid, args.epochs, str(Path(tmp) / f"run{r}"))
            plain_s.append(t_plain)
            lstmkit_s.append(t_kit)
            diff = max(
                float((a - b).abs().max()) for a, b in zip(m_plain.state_dict().values(), m_kit.state_dict().values())
            )
    write_table(args, plain_s, lstmkit_s, diff)


def write_table(args, plain_all: list, kit_all: list, diff: float) -> None:
    plain_wall, kit_wall = min(t[0] for t in plain_all), min(t[0] for t in kit_all)
    plain_cpu, kit_cpu = min(t[1] for t in plain_all), min(t[1] for t in kit_all)
    runs = lambda ts: ", ".join(f"{w:.2f} / {c:.2f}" for w, c in ts)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = f"""# Trainer overhead

Command: `.venv/bin/python bench/trainer.py --epochs {args.epochs} --repeats {args.repeats}`
Machine: {platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, torch {torch.__version__},
load average {load:.1f} at the end. The machine was shared, so wall times are noisy; the CPU time of this
process (time.process_time) is the steadier measure and the ratio is taken on it.

Task: LSTM {FEATURES}->{HIDDEN} over T={T}, N={N} train / {N_VALID} valid sequences, batch {BATCH}, AdamW,
clip 1.0, {args.epochs} epochs, validation every epoch. Both loops use the same seeds and batch order.

| loop | CPU s (best of {args.repeats}) | wall s (best) | all runs: wall / CPU s | CPU ratio to plain |
|---|---|---|---|---|
| plain PyTorch loop (reference) | {plain_cpu:.2f} | {plain_wall:.2f} | {runs(plain_all)} | 1.00 |
| lstmkit Trainer (checkpoint, history.csv, loss.png each run) | {kit_cpu:.2f} | {kit_wall:.2f} | {runs(kit_all)} | {kit_cpu / plain_cpu:.2f} |

Largest absolute difference between the two loops' final weights: {diff:.3g}.
"""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
