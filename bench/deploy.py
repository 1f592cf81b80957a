"""Deployment speed, side by side in one run (run by hand; writes bench/results/deploy.md).

1. Whole sequences: lstmkit's plain LSTM (I = H = 256, T = 100, one layer) exported to ONNX and run on
   ONNX Runtime, as ONNX's LSTM operator ("op") and as one MatMul for the input projection plus a Scan
   over time ("scan"), against torch.nn.LSTM on the same weights; batches 1, 8, 32, 64.
2. The streaming step (B1, I = H = 256): the exported step graph on ONNX Runtime, called through its
   Python API with NumPy arrays (what ``lstmkit.runtime`` does) and with OrtValues bound once
   (``run_with_ort_values``), against lstmkit's own ``LSTM.step`` and ``torch.nn.LSTMCell``.
3. Per task, ``predict`` of the torch predictor against the export folder's runtime predictor on 1 and
   64 inputs, for a network of the task's default sizes (random weights: speed does not depend on them)
   built around the test fixtures' vocabularies and scalers.

All candidates of one row run interleaved (the order rotates every repetition) on ``--threads``
threads; a ratio is the median over repetitions of (torch time / ORT time) within one repetition, so
> 1 means ONNX Runtime is faster.

    .venv/bin/python bench/deploy.py                # about 5 minutes on 2 cores
    .venv/bin/python bench/deploy.py --quick        # a smoke test of the script
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from lstmkit.export.trace import to_onnx
from lstmkit.io import atomic_write_text
from lstmkit.nn import LSTM

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "models"


def interleaved(fns: dict[str, Callable[[], object]], reps: int, inner: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each fn, ``reps`` repetitions, order rotating; one untimed warm-up each."""
    names = list(fns)
    for f in fns.values():
        f()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(reps):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            for _ in range(inner):
                fns[n]()
            times[n].append((time.perf_counter() - t0) / inner)
    return times


def ratio(times: dict[str, list[float]], base: str, other: str) -> float:
    return statistics.median(b / o for b, o in zip(times[base], times[other]))


def session(model, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


class Seq(torch.nn.Module):
    def __init__(self, lstm: LSTM) -> None:
        super().__init__()
        self.lstm = lstm

    def forward(self, x):
        return self.lstm(x)[0]


class Step(torch.nn.Module):
    def __init__(self, lstm: LSTM) -> None:
        super().__init__()
        self.lstm = lstm

    def forward(self, x, h, c):
        y, (h, c) = self.lstm.step(x, (h, c))
        return y, h, c


def core_rows(threads: int, reps: int, batches: list[int], size: int = 256, steps: int = 100) -> list[str]:
    torch.manual_seed(0)
    ours = LSTM(size, size, batch_first=True).eval()
    ref = torch.nn.LSTM(size, size, batch_first=True).eval()
    ref.load_state_dict(ours.state_dict())
    dyn = {"x": {0: "B", 1: "T"}}
    sess = {
        g: session(to_onnx(Seq(ours), (torch.randn(2, 5, size),), ["x"], ["y"], dyn, mode=g), threads)
        for g in ("op", "scan")
    }
    rows = [
        "| batch | torch.nn.LSTM ms | ORT op ms | ORT scan ms | op ratio | scan ratio |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for b in batches:
        x = torch.randn(b, steps, size)
        xn = x.numpy()
        with torch.no_grad():
            want = ref(x)[0].numpy()
        for s in sess.values():
            assert np.abs(s.run(None, {"x": xn})[0] - want).max() < 1e-4
        fns = {
            "torch": lambda x=x: ref(x),
            "op": lambda xn=xn: sess["op"].run(None, {"x": xn}),
            "scan": lambda xn=xn: sess["scan"].run(None, {"x": xn}),
        }
        with torch.no_grad():
            t = interleaved(fns, reps)
        ms = {k: 1e3 * statistics.median(v) for k, v in t.items()}
        rows.append(
            f"| {b} | {ms['torch']:.2f} | {ms['op']:.2f} | {ms['scan']:.2f} | {ratio(t, 'torch', 'op'):.2f} | {ratio(t, 'torch', 'scan'):.2f} |"
        )
        print(rows[-1], flush=True)
    return rows


def step_rows(threads: int, reps: int, size: int = 256) -> list[str]:
    torch.manual_seed(0)
    ours = LSTM(size, size).eval()
    cell = torch.nn.LSTMCell(size, size).eval()
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in ours.state_dict().items()})
    dyn = {"x": {0: "B"}, "h": {1: "B"}, "c": {1: "B"}}
    onx = to_onnx(
        Step(ours),
        (torch.randn(1, size), torch.zeros(1, 1, size), torch.zeros(1, 1, size)),
        ["x", "h", "c"],
        ["y", "h1", "c1"],
        dyn,
    )
    sess = session(onx, threads)
    x, h, c = (
        np.random.randn(1, size).astype(np.float32),
        np.zeros((1, 1, size), np.float32),
        np.zeros((1, 1, size), np.float32),
    )
    xv, hv, cv = (ort.OrtValue.ortvalue_from_numpy(a) for a in (x, h, c))
    names = ["y", "h1", "c1"]
    xt, st = torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c))
    fns = {
        "ORT step graph, NumPy in/out": lambda: sess.run(None, {"x": x, "h": h, "c": c}),
        "ORT step graph, OrtValues": lambda: sess.run_with_ort_values(names, {"x": xv, "h": hv, "c": cv}),
        "lstmkit LSTM.step (torch)": lambda: ours.step(xt, st),
        "torch.nn.LSTMCell": lambda: cell(xt, (st[0][0], st[1][0])),
    }
    with torch.no_grad():
        t = interleaved(fns, reps, inner=200)
    rows = ["| step (B1, I = H = 256) | µs per step |", "|---|---:|"]
    rows += [f"| {k} | {1e6 * statistics.median(v):.1f} |" for k, v in t.items()]
    print("\n".join(rows), flush=True)
    return rows


def task_rows(threads: int, reps: int) -> list[str]:
    from bench_deploy_tasks import task_cases  # beside this file

    rows = ["| task | inputs | torch predict ms | ORT predict ms | ratio |", "|---|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        for task, torch_p, ort_p, inputs in task_cases(Path(tmp)):
            for n in (1, 64):
                batch = inputs(n)
                fns = {"torch": lambda b=batch, p=torch_p: p.predict(b), "ort": lambda b=batch, p=ort_p: p.predict(b)}
                t = interleaved(fns, reps)
                ms = {k: 1e3 * statistics.median(v) for k, v in t.items()}
                rows.append(f"| {task} | {n} | {ms['torch']:.2f} | {ms['ort']:.2f} | {ratio(t, 'torch', 'ort'):.2f} |")
                print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "deploy.md"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sys.path.insert(0, str(Path(__file__).parent))
    reps = 3 if a.quick else a.reps
    core = core_rows(a.threads, reps, [1, 8] if a.quick else [1, 8, 32, 64])
    step = step_rows(a.threads, reps)
    tasks = task_rows(a.threads, max(3, reps // 3))
    head = [
        "# Deployment: ONNX Runtime against torch",
        "",
        f"`.venv/bin/python bench/deploy.py{' --quick' if a.quick else ''}` — {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, {a.threads} thread(s), torch {torch.__version__}, onnxruntime {ort.__version__}. "
        "Ratios are torch time / ORT time (median over interleaved repetitions): > 1 means ORT is faster.",
        "",
        "## The plain LSTM, whole sequences (I = H = 256, T = 100, inference)",
        "",
    ]
    text = (
        "\n".join(head + core + ["", "## The streaming step", ""] + step + ["", "## Per task: predict()", ""] + tasks)
        + "\n"
    )
    atomic_write_text(a.out, text)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
