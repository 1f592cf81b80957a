"""What `lstmkit <task> tune` gains over the defaults, within a stated budget (run by hand; writes
bench/results/tune.md).

* forecast, ETTh1 (target OT, univariate, lookback 96, horizon 24, Informer split 8640/2880/2880):
  `forecast tune --trials 8 --max-time 600`; trials are ranked on the validation split; the report gives
  the test MSE of trial 0 (the default settings, trained in the same run with the same budget per trial)
  and of the best trial.
* classify, SST-2: `classify tune --data train.tsv --trials 8 --max-time 600` ranks trials on a held-out
  part of train.tsv (not on dev: dev would then choose the model and score it); the report gives the dev
  accuracy of trial 0 and of the best trial.

    .venv/bin/python bench/tune.py                       # about 20 minutes on 2 cores
    .venv/bin/python bench/tune.py --budget 60 --trials 3  # a smoke test of the script
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import lstmkit
from lstmkit.cli.main import main as cli
from lstmkit.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def tune(task: str, args: list[str], out: Path, trials: int, budget: int, seed: int) -> float:
    """Run the tune (in-process, as the CLI does); returns its wall seconds."""
    started = time.monotonic()
    rc = cli(
        [task, "tune", *args, "--trials", str(trials), "--max-time", str(budget), "--out", str(out)]
        + ["--seed", str(seed), "--overwrite", "--quiet"]
    )
    if rc != 0:
        raise SystemExit(f"{task} tune exited {rc}")
    return time.monotonic() - started


def trials_table(out: Path) -> list[str]:
    rows = (out / "trials.csv").read_text(encoding="utf-8").splitlines()
    header = rows[0].split(",")
    keep = list(range(len(header)))
    lines = ["| " + " | ".join(header[i] for i in keep) + " |", "|" + "---|" * len(keep)]
    import csv

    for r in csv.reader(rows[1:]):
        lines.append("| " + " | ".join(r[i] for i in keep) + " |")
    return lines


def metrics(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "metrics.json").read_text(encoding="utf-8"))


def forecast(work: Path, trials: int, budget: int, seed: int) -> list[str]:
    out = work / "etth1"
    flags = ["--data", str(DATA / "ett" / "ETTh1.csv"), "--time-column", "date", "--split", "8640,2880,2880"]
    wall = tune("forecast", flags, out, trials, budget, seed)
    default, best = metrics(out / "trials" / "0")["test"]["mse"], metrics(out / "best")["test"]["mse"]
    return [
        "## forecast: ETTh1, OT, lookback 96, horizon 24 (S)",
        "",
        f"`lstmkit forecast tune {' '.join(flags)} --trials {trials} --max-time {budget} --seed {seed}`: "
        f"{wall:.0f} s wall for a {budget} s budget ({wall / budget:.2f}).",
        "",
        "| model | test MSE |",
        "|---|---:|",
        f"| trial 0: the default settings | {default:.5f} |",
        f"| best trial (by validation MSE) | {best:.5f} |",
        f"| best / default | {best / default:.3f} |",
        "",
        *trials_table(out),
        "",
    ]


def classify(work: Path, trials: int, budget: int, seed: int) -> list[str]:
    out = work / "sst2"
    flags = ["--data", str(DATA / "sst2" / "train.tsv")]
    wall = tune("classify", flags, out, trials, budget, seed)
    dev = str(DATA / "sst2" / "dev.tsv")
    default = lstmkit.load(out / "trials" / "0").evaluate(dev)["accuracy"]
    best = lstmkit.load(out / "best").evaluate(dev)["accuracy"]
    return [
        "## classify: SST-2 (GLUE train.tsv; trials ranked on a held-out 10 % of it; scored on dev.tsv)",
        "",
        f"`lstmkit classify tune {' '.join(flags)} --trials {trials} --max-time {budget} --seed {seed}`: "
        f"{wall:.0f} s wall for a {budget} s budget ({wall / budget:.2f}).",
        "",
        "| model | dev accuracy |",
        "|---|---:|",
        f"| trial 0: the default settings | {default:.4f} |",
        f"| best trial (by held-out accuracy) | {best:.4f} |",
        f"| best − default | {best - default:+.4f} |",
        "",
        *trials_table(out),
        "",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=int, default=600, help="--max-time of each tune, seconds")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=["forecast", "classify"], default=None)
    ap.add_argument("--work", default=str(ROOT / "bench" / "work" / "tune"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "tune.md"))
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    head = [
        "# lstmkit tune: the gain over the defaults",
        "",
        f"`.venv/bin/python bench/tune.py --budget {a.budget} --trials {a.trials}` — {platform.machine()}, "
        f"{os.cpu_count()} cores, one tune at a time on an idle machine. Trial 0 of each tune trains the default "
        "settings with the same per-trial budget as the others, so the comparison is inside one run.",
        "",
    ]
    parts: list[str] = []
    if a.only in (None, "forecast"):
        parts += forecast(work, a.trials, a.budget, a.seed)
    if a.only in (None, "classify"):
        parts += classify(work, a.trials, a.budget, a.seed)
    atomic_write_text(a.out, "\n".join(head + parts))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
