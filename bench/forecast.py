"""Forecast benchmark (issue 4), run by hand: ``python bench/forecast.py [--rows ROW ...] [--max-time S]``.

ETTh1 / ETTm1 with the Informer / DLinear protocol: split 8640,2880,2880 (ETTm1 34560,11520,11520),
every column standardised with its train-split statistics, lookback 96, every test window with
stride 1, MSE and MAE on the standardised scale. Each row trains one lstmkit forecaster
(``lstmkit.train("forecast", ...)``, at most ``--max-time`` seconds of training) and evaluates it with
``lstmkit.load(folder).evaluate`` (the forecast predictor), which
computes the baselines (last value, seasonal naive with a one-day season, the ridge linear map
L -> H shared by the channels, fitted on the train split) on exactly the same windows in the same call.

Rows run one at a time; each row's model folder (with ``bench.json``: wall times, threads, load)
stays under ``--work`` (default ``bench/work/forecast``) and the table in ``bench/results/forecast.md``
is rebuilt from every finished row, so rows can be run in separate invocations. ``--quick`` only checks
that the script runs (one row, one epoch, a temporary folder; the table is left alone).

``--peers PYTHON`` also runs the peers (NeuralForecast ``LSTM``, Darts ``BlockRNNModel(LSTM)``) on ETTh1
univariate OT, H24 in the same invocation: lstmkit's etth1-S-24 row is retrained (into
``WORK/peers/lstmkit-etth1-S-24``, so the main table keeps its own run), then ``bench/forecast_peers.py``
runs under PYTHON (a separate environment with the peers installed, torch pinned to lstmkit's version;
see that file) on the same split and windows, and the side-by-side table with ratios is added to
``bench/results/forecast.md`` (record in ``WORK/peers/peers.json``)::

    python bench/forecast.py --threads 1 --max-time 240 --peers bench/work/peers-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ett"
RESULTS = ROOT / "bench" / "results" / "forecast.md"


@dataclass(frozen=True)
class Row:
    name: str
    file: str
    split: str
    features: str
    horizon: int


ROWS = [
    Row("etth1-S-24", "ETTh1.csv", "8640,2880,2880", "S", 24),
    Row("etth1-S-48", "ETTh1.csv", "8640,2880,2880", "S", 48),
    Row("etth1-S-168", "ETTh1.csv", "8640,2880,2880", "S", 168),
    Row("etth1-M-24", "ETTh1.csv", "8640,2880,2880", "M", 24),
    Row("etth1-M-96", "ETTh1.csv", "8640,2880,2880", "M", 96),
    Row("ettm1-S-24", "ETTm1.csv", "34560,11520,11520", "S", 24),
    Row("ettm1-M-96", "ETTm1.csv", "34560,11520,11520", "M", 96),
]
# Technique measurements (ETTh1, same protocol): the default row settings with one change each.
ABLATIONS = [
    ("S-24 default", "etth1-S-24", {}),
    ("S-24 norm none", "etth1-S-24", {"norm": "none"}),
    ("S-24 norm last", "etth1-S-24", {"norm": "last"}),
    ("S-24 patch 1 (one LSTM step per hour)", "etth1-S-24", {"patch": 1}),
    ("S-24 seq2seq decoder", "etth1-S-24", {"decoder": "seq2seq"}),
    ("S-24 lookback 336", "etth1-S-24", {"lookback": 336, "patch": 84}),
    ("S-24 highway", "etth1-S-24", {"highway": True}),
    ("M-24 no channel independence", "etth1-M-24", {"channel_independent": False}),
]
# Published / issue reference numbers (MSE), for the notes column.
REFERENCE = {
    "etth1-S-24": "issue: last 0.0343, linear 0.0276; LSTMa 0.114",
    "etth1-S-48": "issue: last 0.0501, linear 0.0421",
    "etth1-S-168": "issue: last 0.0872, linear 0.0783",
    "etth1-M-24": "issue: last 1.222, linear 0.309; LSTMa 0.650",
    "etth1-M-96": "issue: last 1.294, linear 0.382; PatchTST/64 0.370 (L 512)",
}


def run_row(row: Row, args: argparse.Namespace, out: Path | None = None, overrides: dict | None = None) -> dict:
    """Train and evaluate one row; returns the bench record (also saved as bench.json)."""
    import lstmkit

    out = out or Path(args.work) / row.name
    settings = {
        "lookback": 96,
        "patch": args.patch,
        "hidden_size": args.hidden_size,
        "norm": args.norm,
        "highway": args.highway,
        **(overrides or {}),
    }
    split = [float(p) for p in row.split.split(",")]
    train = dict(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        patience=args.patience,
        max_time=args.max_time,
        seed=args.seed,
        device="cpu",
    )
    load0 = os.getloadavg()[0]
    t0 = time.monotonic()
    lstmkit.train(
        "forecast",
        DATA / row.file,
        out=out,
        overwrite=True,
        quiet=True,
        target=["OT"],
        features=row.features,
        time_column="date",
        horizon=row.horizon,
        split=split,
        **settings,
        **train,
    )
    train_s = time.monotonic() - t0
    t1 = time.monotonic()
    metrics = lstmkit.load(out).evaluate(DATA / row.file, part="test")
    eval_s = time.monotonic() - t1
    hist = (out / "history.csv").read_text().strip().splitlines()
    record = {
        "row": row.name,
        "train_seconds": train_s,
        "eval_seconds": eval_s,
        "epochs_run": len(hist) - 1,
        "threads": torch.get_num_threads(),
        "load_start": load0,
        "load_end": os.getloadavg()[0],
        "config": {**settings, "lr": args.lr, "batch_size": args.batch_size, "max_time": args.max_time},
        "overrides": overrides or {},
        "metrics": metrics,
    }
    (out / "bench.json").write_text(json.dumps(record, indent=2))
    return record


def _fmt(m: dict) -> str:
    return f"{m['mse']:.4f} / {m['mae']:.4f}"


def write_table(work: Path) -> str:
    """Rebuild bench/results/forecast.md from every finished row under ``work``."""
    lines = [
        "# Forecast benchmark (ETTh1 / ETTm1, Informer protocol)",
        "",
        "Written by `bench/forecast.py` (run by hand). Lookback 96, every test window (stride 1), MSE / MAE",
        "on the standardised scale (train-split statistics). Baselines computed by the same",
        "`forecast evaluate` call on the same windows. `ratio` = model MSE / linear MSE (< 1: the LSTM wins).",
        "",
        "| row | windows | LSTM mse / mae | last value | seasonal naive (1 day) | linear (ridge) | ratio "
        "| train s (epochs) | threads, load | config |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for row in ROWS:
        f = work / row.name / "bench.json"
        if not f.is_file():
            continue
        r = json.loads(f.read_text())
        m, b = r["metrics"], r["metrics"]["baselines"]
        sn = _fmt(b["seasonal_naive"]) if "seasonal_naive" in b else "-"
        c = r["config"]
        lines.append(
            f"| {row.name} | {m['windows']} | **{_fmt(m)}** | {_fmt(b['last_value'])} | {sn} | "
            f"{_fmt(b['linear'])} | {m['mse'] / b['linear']['mse']:.3f} | {r['train_seconds']:.0f} "
            f"({r['epochs_run']}) | {r['threads']}, {r['load_start']:.1f}→{r['load_end']:.1f} | patch "
            f"{c['patch']}, hidden {c['hidden_size']}, {c['norm']}{', highway' if c['highway'] else ''}, "
            f"budget {c['max_time']:.0f} s |"
        )
        if row.name in REFERENCE:
            notes.append(f"- {row.name}: {REFERENCE[row.name]}")
    lines += _ablation_table(work)
    lines += _peers_table(work)
    lines += [
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores shared with "
        "other jobs while this ran (the load column is the 1-minute load average at start → end of the "
        "row; above 2 the row got less CPU than its budget).",
        "",
        "Reference numbers:",
        *notes,
    ]
    text = "\n".join(lines) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    return text


def _ablation_table(work: Path) -> list[str]:
    rows = []
    for i, (label, _row_name, _) in enumerate(ABLATIONS):
        f = work / "ablation" / f"a{i}" / "bench.json"
        if f.is_file():
            r = json.loads(f.read_text())
            m, lin = r["metrics"], r["metrics"]["baselines"]["linear"]
            rows.append(
                f"| {label} | {_fmt(m)} | {_fmt(lin)} | {m['mse'] / lin['mse']:.3f} | "
                f"{r['train_seconds']:.0f} ({r['epochs_run']}) / {r['config']['max_time']:.0f} | "
                f"{r['load_start']:.1f}→{r['load_end']:.1f} |"
            )
    if not rows:
        return []
    return [
        "",
        "## Technique measurements (ETTh1, one change from the row's settings; `--ablation`)",
        "",
        "| variant | LSTM mse / mae | linear | ratio | train s (epochs) / budget s | load |",
        "|---|---|---|---|---|---|",
        *rows,
    ]


def run_peers(args: argparse.Namespace) -> dict:
    """lstmkit's etth1-S-24 row and the peers, one after the other, in this invocation."""
    work = Path(args.work) / "peers"
    work.mkdir(parents=True, exist_ok=True)
    row = {r.name: r for r in ROWS}["etth1-S-24"]
    ours = run_row(row, args, work / "lstmkit-etth1-S-24")
    m = ours["metrics"]
    print(f"lstmkit {row.name}: mse {m['mse']:.4f} in {ours['train_seconds']:.0f} s", flush=True)
    cmd = [
        args.peers,
        str(ROOT / "bench" / "forecast_peers.py"),
        "--threads",
        str(torch.get_num_threads()),
        "--max-time",
        str(args.peers_max_time),
        "--seed",
        str(args.seed),
        "--work",
        str(work / "scratch"),
    ]
    load0 = os.getloadavg()[0]
    with open(work / "peers.log", "w") as log:  # the libraries' warnings and Lightning messages
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not results:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}); see {work / 'peers.log'}")
    for r in results:
        print(
            f"{r['name']}: " + (r["error"] if "error" in r else f"mse {r['mse']:.4f} in {r['train_seconds']:.0f} s"),
            flush=True,
        )
    record = {
        "lstmkit": ours,
        "peers": results,
        "command": "python " + " ".join(sys.argv),
        "peers_command": " ".join(cmd),
        "load_start": load0,
        "load_end": os.getloadavg()[0],
    }
    (work / "peers.json").write_text(json.dumps(record, indent=2))
    return record


def _peers_table(work: Path) -> list[str]:
    f = work / "peers" / "peers.json"
    if not f.is_file():
        return []
    rec = json.loads(f.read_text())
    ours, m = rec["lstmkit"], rec["lstmkit"]["metrics"]
    t = ours["train_seconds"]
    lines = [
        "",
        "## Peers (ETTh1 univariate OT, H24, one run; `--peers PYTHON`)",
        "",
        "lstmkit's row retrained in the same invocation as the peers, which ran right after it in their own",
        "environment (`bench/forecast_peers.py`: same split, standardisation and 2857 test windows, stride 1;",
        "its last-value check matches lstmkit's). `mse ratio` = lstmkit MSE / peer MSE (< 1: lstmkit more",
        "accurate), `time ratio` = lstmkit train s / peer train s. Goal: mse ratio < 1 and time ratio <= 1/3.",
        "",
        "| model | mse / mae | train s | mse ratio | time ratio | threads | settings |",
        "|---|---|---|---|---|---|---|",
        f"| lstmkit (etth1-S-24) | **{_fmt(m)}** | {t:.0f} ({ours['epochs_run']} epochs) | 1 | 1 | "
        f"{ours['threads']} | patch {ours['config']['patch']}, hidden {ours['config']['hidden_size']}, "
        f"{ours['config']['norm']}, budget {ours['config']['max_time']:.0f} s |",
    ]
    for r in rec["peers"]:
        if "error" in r:
            lines.append(f"| {r['name']} | failed: {r['error']} | | | | | |")
        elif r["name"].startswith("last value"):
            lines.append(
                f"| last value (peers script check) | {_fmt(r)} | 0 | {m['mse'] / r['mse']:.3f} | - | - | "
                f"{r['windows']} windows |"
            )
        else:
            ran = f" ({r['steps']} steps)" if "steps" in r else (f" ({r['epochs']} epochs)" if "epochs" in r else "")
            lines.append(
                f"| {r['name']} | {_fmt(r)} | {r['train_seconds']:.0f}{ran} | {m['mse'] / r['mse']:.3f} | "
                f"{t / r['train_seconds']:.3f} | {r['threads']} | {r['settings']} |"
            )
    lines += [
        "",
        f"Load (1-minute average) {rec['load_start']:.1f} → {rec['load_end']:.1f} while the peers ran; "
        f"lstmkit's row {ours['load_start']:.1f} → {ours['load_end']:.1f}. Command: `{rec['command']}`.",
    ]
    return lines


def run_quick(row: Row, args: argparse.Namespace) -> None:
    """One short row into a temporary folder (``--quick``): the API and the data still work together."""
    import tempfile

    args.epochs, args.max_time = 1, min(args.max_time, 30.0)
    with tempfile.TemporaryDirectory() as tmp:
        r = run_row(row, args, Path(tmp) / row.name)
    m = r["metrics"]
    print(
        f"quick {row.name}: {m['windows']} windows, mse {m['mse']:.4f} (linear {m['baselines']['linear']['mse']:.4f}, "
        f"last {m['baselines']['last_value']['mse']:.4f}) after {r['epochs_run']} epoch in {r['train_seconds']:.0f} s",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="*", default=[r.name for r in ROWS], help="rows to run (default: all)")
    ap.add_argument("--max-time", type=float, default=600.0, help="training budget per row, seconds (default 600)")
    ap.add_argument("--epochs", type=int, default=30, help="max epochs (default 30)")
    ap.add_argument("--patience", type=int, default=4, help="early-stopping patience (default 4)")
    ap.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")
    ap.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    ap.add_argument("--patch", type=int, default=24, help="patch length (default 24)")
    ap.add_argument("--hidden-size", type=int, default=128, help="LSTM hidden size (default 128)")
    ap.add_argument("--norm", default="revin", help="per-window normalisation (default revin)")
    ap.add_argument("--highway", action="store_true", help="add the linear highway (default off)")
    ap.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default 0: torch's choice)")
    ap.add_argument("--work", default=str(ROOT / "bench" / "work" / "forecast"), help="model folders")
    ap.add_argument("--table-only", action="store_true", help="only rebuild the table from finished rows")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a check that the script runs: row etth1-S-24, 1 epoch, at most 30 s, in a temporary folder; "
        "the results table is not rewritten",
    )
    ap.add_argument(
        "--ablation",
        nargs="*",
        type=int,
        default=None,
        help="run the technique measurements (indices into ABLATIONS; none given: all) instead of rows",
    )
    ap.add_argument(
        "--peers",
        metavar="PYTHON",
        default=None,
        help="also run lstmkit's etth1-S-24 row and the peers (bench/forecast_peers.py under PYTHON)",
    )
    ap.add_argument("--peers-max-time", type=float, default=300.0, help="training cap per peer, seconds (default 300)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} not found")
    known = {r.name: r for r in ROWS}
    if args.quick:
        run_quick(known["etth1-S-24"], args)
        return
    if args.ablation is not None:
        for i in args.ablation or range(len(ABLATIONS)):
            label, row_name, over = ABLATIONS[i]
            r = run_row(known[row_name], args, Path(args.work) / "ablation" / f"a{i}", over)
            print(f"{label}: mse {r['metrics']['mse']:.4f} in {r['train_seconds']:.0f} s", flush=True)
        args.table_only = True
    if args.peers:
        run_peers(args)
        args.table_only = True
    for name in [] if args.table_only else args.rows:
        if name not in known:
            raise SystemExit(f"unknown row {name} (rows: {', '.join(known)})")
        r = run_row(known[name], args)
        m = r["metrics"]
        print(
            f"{name}: mse {m['mse']:.4f} (linear {m['baselines']['linear']['mse']:.4f}, last "
            f"{m['baselines']['last_value']['mse']:.4f}) in {r['train_seconds']:.0f} s",
            flush=True,
        )
    print(write_table(Path(args.work)))


if __name__ == "__main__":
    main()
