"""Speech benchmark on the Free Spoken Digit Dataset (run by hand, not in CI).

    .venv/bin/python bench/speech.py                 # full run (writes bench/results/speech.md)
    .venv/bin/python bench/speech.py --quick         # a 2-3 minute smoke run on a subset (not the benchmark)

Three tasks, the standard FSDD split (index 0-4 of each digit and speaker = test, 5-49 = train):

1. ``classify``: one label per clip; test accuracy. Reference: a CNN on MFCCs reports 97%
   (required >= 97%, goal >= 99%). Baseline measured in the same run: logistic regression on the
   per-clip mean and std of the same MFCCs (scikit-learn).
2. ``ctc-word``: CTC transcription of the digit as letters ("seven"); test WER (required <= 5%).
3. ``ctc-seq``: CTC on sequences of 2-5 digits made by concatenating one speaker's recordings with
   short silences (built deterministically: train sequences from train recordings, test sequences
   from test recordings); test WER (required <= 10%).

Every task reports its training time and the real-time factor of prediction (rtf = seconds spent
reading + featurising + running + decoding / seconds of audio, batch 32, on the device used for
prediction: the CPU).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import lstmkit  # noqa: E402
from lstmkit.data.audio import FeatureConfig, FeatureExtractor, featurize_files  # noqa: E402
from lstmkit.data.manifest import build_manifest, read_manifest  # noqa: E402
from lstmkit.io import atomic_write_text  # noqa: E402

FSDD = ROOT / ".." / "shared" / "data" / "fsdd" / "recordings"
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SR = 8000  # FSDD is recorded at 8 kHz


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--quick",
        action="store_true",
        help="subset, small net, 2 epochs: checks the script, not the model (default: off)",
    )
    p.add_argument("--tasks", default="classify,ctc-word,ctc-seq", help="comma-separated tasks (default: all three)")
    p.add_argument(
        "--work", default=str(ROOT / "runs" / "bench_speech"), help="scratch folder (default: runs/bench_speech)"
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="training device (default: auto)")
    p.add_argument("--epochs", type=int, default=None, help="override every task's epoch count (default: per task)")
    p.add_argument(
        "--max-time",
        type=float,
        default=None,
        help="training time budget per task, s (default: 1200 classify, 1800 ctc-word, 3600 ctc-seq)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "speech.md"), help="results markdown")
    return p.parse_args()


# ------------------------------------------------------------------------------------ data
def fsdd_manifests(work: Path, quick: bool) -> tuple[Path, Path]:
    """train.csv / test.csv of FSDD (standard split); --quick keeps every 15th train / 10th test row."""
    man = work / "fsdd"
    build_manifest(FSDD, man, "{text}_{speaker}_{index}.wav", "0-4")
    if quick:
        for name, step in (("train.csv", 15), ("test.csv", 10)):
            lines = (man / name).read_text().splitlines()
            atomic_write_text(man / name, "\n".join([lines[0], *lines[1::step]]) + "\n")
    return man / "train.csv", man / "test.csv"


def as_words(src: Path, dst: Path) -> Path:
    """A copy of manifest ``src`` whose text is the digit spelled out ("7" -> "seven")."""
    rows = [[str(e.path.resolve()), WORDS[int(e.text)]] for e in read_manifest(src)]
    return write_manifest(dst, rows)


def write_manifest(path: Path, rows: list[list[str]]) -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([["path", "text"], *rows])
    atomic_write_text(path, buf.getvalue())
    return path


def digit_sequences(src: Path, out_dir: Path, n: int, seed: int) -> Path:
    """Write ``n`` WAVs of 2-5 digits of one speaker (from manifest ``src``) joined by 0.1-0.3 s
    silences (0.1 s of silence at both ends); returns their manifest. Deterministic in ``seed``."""
    import soundfile as sf

    from lstmkit.data.audio import read_wav

    entries = read_manifest(src)
    by_speaker: dict[str, list] = {}
    for e in entries:  # manifest rows are sorted by file name, so this is deterministic
        by_speaker.setdefault(e.path.name.split("_")[1], []).append(e)
    speakers = sorted(by_speaker)
    rng = np.random.default_rng(seed)
    cache: dict[Path, np.ndarray] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        pool = by_speaker[speakers[rng.integers(len(speakers))]]
        picks = [pool[j] for j in rng.integers(len(pool), size=int(rng.integers(2, 6)))]
        parts = [np.zeros(int(0.1 * SR), np.float32)]
        for k, e in enumerate(picks):
            if e.path not in cache:
                cache[e.path] = read_wav(e.path, SR)
            parts.append(cache[e.path])
            gap = 0.1 if k == len(picks) - 1 else rng.uniform(0.1, 0.3)
            parts.append(np.zeros(int(gap * SR), np.float32))
        path = out_dir / f"seq_{i:05d}.wav"
        sf.write(path, np.concatenate(parts), SR, subtype="PCM_16")
        rows.append([path.name, " ".join(WORDS[int(e.text)] for e in picks)])
    return write_manifest(out_dir / "manifest.csv", rows)


# ------------------------------------------------------------------------------------ runs
def task_settings(task: str, quick: bool, epochs: int | None) -> dict:
    """Model and trainer settings per task (flat, as ``lstmkit.train`` takes them); ``max_time`` is
    the default training budget (s)."""
    feats = dict(features="mfcc", sample_rate=SR, n_mfcc=13, n_mels=40, deltas=2)
    if task == "classify":
        cfg = dict(
            mode="classify",
            **feats,
            hidden_size=96,
            num_layers=2,
            dropout=0.2,
            subsample=3,
            pooling="meanmax",
            specaugment=True,
            epochs=30,
            lr=3e-3,
            schedule="cosine",
            patience=8,
            monitor="accuracy",
            monitor_mode="max",
            max_time=1200,
        )
    else:
        big = task == "ctc-seq"
        cfg = dict(
            mode="ctc",
            **feats,
            hidden_size=160 if big else 128,
            num_layers=3 if big else 2,
            dropout=0.2,
            subsample=3,
            specaugment=True,
            epochs=30 if big else 60,
            lr=3e-3,
            schedule="cosine",
            patience=10,
            monitor="cer",
            monitor_mode="min",
            max_time=3600 if big else 1800,
        )
    if quick:  # checks the pipeline only: a small network, 2 epochs
        cfg.update(epochs=2, hidden_size=32, num_layers=1)
    if epochs is not None:
        cfg["epochs"] = epochs
    return cfg


def run_task(task: str, train_csv: Path, test_csv: Path, work: Path, args: argparse.Namespace) -> dict:
    cfg = task_settings(task, args.quick, args.epochs)
    if args.max_time is not None:
        cfg["max_time"] = args.max_time
    t0 = time.perf_counter()
    result = lstmkit.train(
        "speech",
        train_csv,
        out=work / f"model_{task}",
        overwrite=True,
        batch_size=32,
        seed=args.seed,
        device=args.device,
        **cfg,
    )
    train_s = time.perf_counter() - t0
    predictor, metrics = result.predictor, result.metrics
    row = {
        "task": task,
        "train_s": train_s,
        "epochs": metrics["training"]["epochs_run"],
        "best_epoch": int(metrics["training"]["best_epoch"]),
        "n_train": metrics["n_train"],
        "params": sum(p.numel() for p in predictor.model.parameters()),
    }
    ev = predictor.evaluate(test_csv)
    row.update({f"test_{k}": v for k, v in ev.items()})
    if task != "classify":
        beam = predictor.evaluate(test_csv, decoder="beam", beam_width=8)
        row.update({"test_wer_beam": beam["wer"], "test_cer_beam": beam["cer"], "rtf_beam": beam["rtf"]})
    print(json.dumps(row), file=sys.stderr)
    return row


def mfcc_logreg_baseline(train_csv: Path, test_csv: Path) -> dict:
    """Logistic regression on the per-clip mean and std of the same MFCC(+delta) features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    ext = FeatureExtractor(FeatureConfig(kind="mfcc", sample_rate=SR, n_mfcc=13, n_mels=40, deltas=2))

    def xy(csv_path: Path):
        entries = read_manifest(csv_path)
        feats, _, _ = featurize_files([e.path for e in entries], ext)
        x = np.stack([np.concatenate([f.mean(0), f.std(0)]) for f in feats])  # (N, 2F)
        return x, np.array([e.text for e in entries])

    t0 = time.perf_counter()
    xtr, ytr = xy(train_csv)
    xte, yte = xy(test_csv)
    scaler = StandardScaler().fit(xtr)
    clf = LogisticRegression(max_iter=2000).fit(scaler.transform(xtr), ytr)
    acc = float((clf.predict(scaler.transform(xte)) == yte).mean())
    return {"test_accuracy": acc, "seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------------------------ report
def ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b > 0 else "n/a (the baseline makes no error)"


def report(rows: dict, baseline: dict | None, args: argparse.Namespace, total_s: float) -> str:
    lines = ["# Speech benchmark (FSDD)", ""]
    if args.quick:
        lines += [
            "**QUICK RUN (`--quick`): a subset and 2 epochs to check that the script runs end to end. "
            "These are NOT benchmark results; the full run is pending.**",
            "",
        ]
    dev = "cuda: " + torch.cuda.get_device_name(0) if args.device != "cpu" and torch.cuda.is_available() else "cpu"
    lines += [
        f"Command: `.venv/bin/python bench/speech.py {' '.join(sys.argv[1:])}`",
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"training device {dev}, prediction on CPU; torch {torch.__version__}; total {total_s:.0f} s.",
        "",
        "| task | metric | lstmkit | required | ratio to requirement | train s | epochs | rtf |",
        "|---|---|---|---|---|---|---|---|",
    ]
    if "classify" in rows:
        r = rows["classify"]
        acc = r["test_accuracy"]
        lines.append(
            f"| classify | test accuracy (n={r['test_n']}) | {acc:.2%} | >= 97% (goal 99%) | "
            f"{acc / 0.97:.3f} | {r['train_s']:.0f} | {r['epochs']} | {r['test_rtf']:.4f} |"
        )
    for task, need in (("ctc-word", 0.05), ("ctc-seq", 0.10)):
        if task in rows:
            r = rows[task]
            lines.append(
                f"| {task} | test WER greedy (n={r['test_n']}) | {r['test_wer']:.2%} | <= {need:.0%} | "
                f"{r['test_wer'] / need:.3f} | {r['train_s']:.0f} | {r['epochs']} | {r['test_rtf']:.4f} |"
            )
            lines.append(
                f"| {task} | test WER beam 8 | {r['test_wer_beam']:.2%} | <= {need:.0%} | "
                f"{r['test_wer_beam'] / need:.3f} | | | {r['rtf_beam']:.4f} |"
            )
            lines.append(
                f"| {task} | test CER greedy / beam | {r['test_cer']:.2%} / {r['test_cer_beam']:.2%} | | | | | |"
            )
    lines.append("")
    if baseline is not None and "classify" in rows:
        acc, base = rows["classify"]["test_accuracy"], baseline["test_accuracy"]
        lines += [
            "Baselines for classify (same run, same test set): reference CNN on MFCC (published) 97.00%; "
            f"logistic regression on per-clip MFCC mean/std (measured) {base:.2%}. "
            f"Error-rate ratio lstmkit / logreg = {ratio(1 - acc, 1 - base)}; "
            f"lstmkit / CNN reference = {(1 - acc) / 0.03:.3f}.",
            "",
        ]
    lines += [
        "rtf = (read + features + network + decoding seconds) / audio seconds, batches of 32, CPU. "
        "ctc-seq data: 2-5 digits of one speaker joined by 0.1-0.3 s silences (seeded).",
        "",
        "Raw rows:",
        "",
        "```",
        *[json.dumps(r) for r in rows.values()],
        "```",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    if not FSDD.is_dir():
        print(f"error: {FSDD} not found", file=sys.stderr)
        return 2
    torch.manual_seed(args.seed)
    work = Path(args.work) / ("quick" if args.quick else "full")
    t0 = time.perf_counter()
    train_csv, test_csv = fsdd_manifests(work, args.quick)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    rows, baseline = {}, None
    if "classify" in tasks:
        baseline = mfcc_logreg_baseline(train_csv, test_csv)
        rows["classify"] = run_task("classify", train_csv, test_csv, work, args)
    if "ctc-word" in tasks:
        rows["ctc-word"] = run_task(
            "ctc-word",
            as_words(train_csv, work / "words_train.csv"),
            as_words(test_csv, work / "words_test.csv"),
            work,
            args,
        )
    if "ctc-seq" in tasks:
        n_train, n_test = (100, 20) if args.quick else (4000, 600)
        seq_train = digit_sequences(train_csv, work / "seq_train", n_train, seed=1)
        seq_test = digit_sequences(test_csv, work / "seq_test", n_test, seed=2)
        rows["ctc-seq"] = run_task("ctc-seq", seq_train, seq_test, work, args)
    text = report(rows, baseline, args, time.perf_counter() - t0)
    atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
