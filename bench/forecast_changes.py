"""Tables of one change against the default (imported by ``bench/forecast_report.py``): the learnt cycle
(``--cycle``, the default since it won), and the changes measured before it against the default then,
whose runs are under ``cycle-off`` (the main table's runs before ``--cycle``; each such kind trains with
``cycle=False`` so that it reruns as it ran)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from forecast_runs import CELL, CELLS, DATASETS

#: the default before --cycle: the main cells' runs then (``python bench/forecast.py --variant cycle-off``)
PREV = "cycle-off"


def load_run(work: Path, kind: str, name: str, file: str = "bench.json") -> Any:
    f = work / kind / name / file
    return json.loads(f.read_text()) if f.is_file() else None


def variant_table(
    work: Path, kind: str, label: str, base: str = "mse", base_label: str = "default"
) -> tuple[list[str], float, int]:
    """Rows comparing the ``kind`` runs with the ``base`` runs of the same cells (``mse``: the default
    with the MSE loss, when the variants ran): valid and test MSE, CPU seconds and epochs; plus the
    mean valid ratio over the selection cells and their count."""
    rows, sel = [], []
    for name in CELL:
        s, m = load_run(work, kind, name), load_run(work, base, name)
        if s is None or m is None:
            continue
        v, t = s["valid"]["mse"] / m["valid"]["mse"], s["test"]["mse"] / m["test"]["mse"]
        lin = m["test"]["baselines"]["linear"]["mse"]
        if DATASETS[CELL[name].data].role == "select":
            sel.append(v)
        rows.append(
            f"| {name} | {m['valid']['mse']:.4f} / {s['valid']['mse']:.4f} ({v:.3f}) | {m['test']['mse']:.4f} | "
            f"{s['test']['mse']:.4f} | {t:.3f} | {lin:.4f} | {s['test']['mse'] / lin:.3f} | "
            f"{m['cpu_seconds']:.0f} / {s['cpu_seconds']:.0f} ({m['epochs_run']} / {s['epochs_run']}) |"
        )
    d = base_label
    head = [
        f"| cell | valid MSE {d} / {label} (ratio) | test {d} | test {label} | {label} / {d} | linear "
        f"| {label} / linear | CPU s {d} / {label} (epochs) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    return (head + rows if rows else []), (sum(sel) / len(sel) if sel else float("nan")), len(sel)


def slstm_table(work: Path) -> list[str]:
    rows, mean, n = variant_table(work, "slstm", "sLSTM")
    if not rows:
        return []
    verdict = "becomes" if mean < 0.99 else "does not become"
    return [
        "## `--cell slstm` (xLSTM's sLSTM) in place of the LSTM (`--slstm`)",
        "",
        "The same defaults with the encoder's cell swapped (4 heads). The protocol's rule decides: sLSTM would",
        "replace the LSTM as the default only if its validation MSE were more than 1 % lower on average over",
        f"the selection cells (ETTm1, weather). Measured: {mean:.3f} on average over {n} selection cells,",
        f"so it {verdict} the default.",
        "",
        *rows,
    ]


def plateau_table(work: Path) -> list[str]:
    rows, mean, n = variant_table(work, "plateau", "plateau", base=PREV)
    if not rows:
        return []
    n_sel = len([c for c in CELLS if DATASETS[c.data].role == "select"])
    mean_all = (mean * n + (n_sel - n)) / n_sel  # the cells not run count as the same run (ratio 1)
    verdict = "passes" if mean_all < 0.99 else "does not pass"
    return [
        "## More of the budget: `--schedule plateau --patience 8` (`--plateau`)",
        "",
        "Measured before `--cycle`, against the default then. The default (`--loss mae`) stops after 4 epochs",
        "without a better validation loss at a constant",
        "learning rate. Here the rate halves after 4 stalled epochs and training stops after 8. Run on the",
        "selection cells but weather M, which reach the 600 s budget with fewer than 4 stalled epochs (best",
        "epoch 11 of 11 and 8 of 10: the same run either way; counted with ratio 1). Validation MSE / the",
        f"default's: {mean:.3f} on average over the {n} cells run, {mean_all:.3f} over all {n_sel}: it {verdict}",
        "the rule's 1 % (with the MSE loss, the default before, it was 0.992 over all 8).",
        "",
        *rows,
    ]


def _verdict(mean: float, cost: float, below: list[bool]) -> str:
    """The protocol's rule for one change measured on all 8 selection cells: at equal cost (CPU within
    5 %) the lower mean validation MSE; a cheaper one unless the default is more than 1 % better; a
    costlier one only if more than 1 % better; and below the linear map in every cell."""
    need = 1 / 0.99 if cost < 0.95 else 0.99 if cost > 1.05 else 1.0
    if not all(below):
        return "loses (not below the linear map everywhere)"
    if len(below) < 8:  # a screen: what the cells not run would need on average to reach `need`
        rest = (need * 8 - mean * len(below)) / (8 - len(below))
        return f"screen: loses unless the other {8 - len(below)} cells average < {rest:.3f}"
    return "**wins**" if mean < need else "loses"


def _pairs(work: Path, kind: str, base: str, role: str) -> list[tuple[Any, Any]]:
    """(``kind`` run, ``base`` run) of every cell of the data sets with ``role`` (select, confirm) that
    both have run."""
    runs = [
        (load_run(work, kind, c.name), load_run(work, base, c.name)) for c in CELLS if DATASETS[c.data].role == role
    ]
    return [(v, m) for v, m in runs if v and m]


def _below_and_cost(sel: list[tuple[Any, Any]]) -> tuple[list[bool], float]:
    """Of (run, base run) pairs: whether each run's validation MSE is below its linear map's, and the
    runs' CPU seconds over the base runs'."""
    below = [v["valid"]["mse"] < v["valid"]["baselines"]["linear"]["mse"] for v, _ in sel]
    return below, sum(v["cpu_seconds"] for v, _ in sel) / sum(m["cpu_seconds"] for _, m in sel)


def variants_table(work: Path, variants: list[str]) -> list[str]:
    """``--variant NAME`` runs (one change to the defaults) against the default: a summary line each
    (selection cells: mean validation ratio, CPU ratio, the rule's verdict), then their cells."""
    summary, details = [], []
    for kind in variants:
        rows, mean, n = variant_table(work, kind, kind, base=PREV)
        if not rows:
            continue
        below, cost = _below_and_cost(_pairs(work, kind, PREV, "select"))
        h = load_run(work, kind, "etth1-M-96")
        etth1 = f"{h['test']['mse']:.4f}" if h else "-"
        summary.append(
            f"| `{kind}` | {n} | **{mean:.3f}** | {sum(below)} of {len(below)} | {cost:.2f} | "
            f"{_verdict(mean, cost, below)} | {etth1} |"
        )
        details += [f"### `{kind}`", "", *rows, ""]
    if not summary:
        return []
    return [
        "## One change at a time (`--variant NAME`)",
        "",
        "Measured after the training loss was chosen and before `--cycle`, against the default then (runs",
        f"under `{PREV}`; each variant keeps `cycle=False` to rerun as it ran), on the",
        "selection cells by the same rule (the 6 cells but weather M first, as a screen: weather M runs",
        "to the 600 s budget; a change is run there only when the screen leaves it a chance). `ema-D` is",
        "the trainer's `--ema D`: validation, the best epoch and the saved model use an exponential moving",
        "average of the weights (warm-up `min(D, (1 + k) / (10 + k))` at step k). CPU: the variant's CPU",
        "seconds over the default's on the same cells. ETTh1 M 96 is a confirmation cell (information).",
        "",
        "| variant | selection cells | valid MSE / default | below linear | CPU | rule | etth1-M-96 test |",
        "|---|---|---|---|---|---|---|",
        *summary,
        "",
        *seed_noise_table(work),
        "",
        *details,
    ]


def _valid_runs(work: Path, kind: str, cell: str) -> list[float]:
    """Validation MSE of ``kind`` on ``cell`` at seed 0 (the tables above) and at every seed under
    ``selseeds/s<seed>``."""
    runs = [load_run(work, kind, cell)] + [
        load_run(d, kind, cell) for d in sorted((work / "selseeds").glob("s*"), key=lambda d: int(d.name[1:]))
    ]
    return [r["valid"]["mse"] for r in runs if r]


def seed_noise_table(work: Path, kind: str = "ema-0.999") -> list[str]:
    """How much the selection cells move with the seed: the default and ``kind`` at seeds 0, 1, 2 on the
    six screen cells (``--seed N --work bench/work/forecast/selseeds/sN``)."""
    rows, ratios, spreads, seeds = [], [], [], 0
    for c in CELLS:
        if DATASETS[c.data].role != "select" or c.features == "M" and c.data == "weather":
            continue
        d, v = _valid_runs(work, PREV, c.name), _valid_runs(work, kind, c.name)
        if len(d) < 2 or len(d) != len(v):
            continue
        spread, seeds = (max(d) - min(d)) / float(np.mean(d)), len(d)
        ratios.append(float(np.mean(v) / np.mean(d)))
        spreads.append(spread)
        rows.append(
            f"| {c.name} | {' / '.join(f'{x:.4f}' for x in d)} ({spread:.1%}) | "
            f"{' / '.join(f'{x:.4f}' for x in v)} | {ratios[-1]:.3f} | {v[0] / d[0]:.3f} |"
        )
    if not rows:
        return []
    return [
        f"### Seed noise of the selection cells (`{kind}` against the default, seeds 0..{seeds - 1})",
        "",
        "Measured after the decision above, to size the rule's resolution (the decision stands as measured",
        "with seed 0): the same six screen cells trained again with seeds 1 and 2, default and variant.",
        "",
        f"| cell | default valid MSE per seed (max - min) | `{kind}` per seed | ratio of seed means | seed 0 ratio |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"The default's validation MSE moves by {float(np.mean(spreads)):.1%} between seeds on average (max - min",
        f"over the mean); `{kind}` / default over the seed means: **{float(np.mean(ratios)):.3f}** on average over",
        f"these {len(rows)} cells (seed 0 alone: the table above).",
    ]


def loss_table(work: Path) -> list[str]:
    """``--loss mae`` (the default, the main table) against ``--loss mse`` (the default before: the runs
    under ``mse``), cell by cell; the rule on the selection cells' validation MSE."""
    rows, mean, n = variant_table(work, PREV, "MAE", base="mse", base_label="MSE")
    if not rows:
        return []
    sel = [c.name for c in CELLS if DATASETS[c.data].role == "select"]
    below = [
        r["valid"]["mse"] < r["valid"]["baselines"]["linear"]["mse"]
        for r in (load_run(work, PREV, c) for c in sel)
        if r
    ]
    return [
        "## Training loss: `--loss mae` (the default) against `--loss mse`",
        "",
        "Each LSTM trained to minimise the mean absolute error instead of the squared error (early stopping",
        "on the same loss of the combined forecast on the valid windows), everything else the default; the",
        "MSE runs are the default before (`python bench/forecast.py --mse --jobs 2`: the main",
        f"cells with `--loss mse`, under `bench/work/forecast/mse`; the MAE runs under `{PREV}`: both before",
        "`--cycle`). Both cost the same. Validation MSE of MAE",
        f"training / MSE training: **{mean:.3f}** on average over the {n} selection cells (both runs refit",
        "the linear maps on train + valid, the default, so both valid scores include windows the maps saw",
        "alike); with MAE the",
        f"forecast's validation MSE is below the linear map's in {sum(below)} of {len(below)} selection cells.",
        f"The rule picks the lower mean at equal cost: {'MAE' if mean < 1 and all(below) else 'MSE'}. Test",
        "(information, and the confirmation cells) in the same rows:",
        "",
        *rows,
    ]


#: the cycle's two steps, each against the one before: (runs, base, label); ``cycle-lstm`` holds the main
#: cells' runs of commit 2d46eca (the LSTMs' cycle alone, the linear map without its bias per phase)
CYCLE_STEPS = [
    ("cycle-lstm", PREV, "the LSTMs' cycle / no cycle"),
    ("main", "cycle-lstm", "+ the linear map's bias per phase / the LSTMs' cycle"),
    ("main", PREV, "both (the default) / no cycle"),
]


def _out_of_sample(work: Path, kind: str, base: str) -> str:
    """Mean ratio of ``kind`` to ``base`` of the selection cells' validation MSE with the linear maps fitted
    on train only (``--cycle-check``, cycle-check.json), and its range."""
    f = work / "cycle-check.json"
    rows = json.loads(f.read_text()) if f.is_file() else {}
    r = [v[kind] / v[base] for v in rows.values() if kind in v and base in v]
    return f"{np.mean(r):.3f} ({min(r):.3f}-{max(r):.3f}), {len(r)} cells" if r else "-"


def _step(work: Path, kind: str, base: str, label: str) -> str | None:
    """One summary row of :func:`cycle_table`: ``kind`` against ``base`` on the selection cells (mean
    validation ratio, below the linear map, CPU, CPU per epoch, the rule's verdict; the validation ratio
    with the maps on train only) and the confirmation cells' test ratio."""
    sel = _pairs(work, kind, base, "select")
    if not sel:
        return None
    mean = float(np.mean([v["valid"]["mse"] / m["valid"]["mse"] for v, m in sel]))
    below, cost = _below_and_cost(sel)
    per_epoch = np.mean([(v["cpu_seconds"] / v["epochs_run"]) / (m["cpu_seconds"] / m["epochs_run"]) for v, m in sel])
    conf = [v["test"]["mse"] / m["test"]["mse"] for v, m in _pairs(work, kind, base, "confirm")]
    confirm = f"{np.mean(conf):.3f} ({min(conf):.3f}-{max(conf):.3f})" if conf else "-"
    return (
        f"| {label} | {len(sel)} | **{mean:.3f}** | {sum(below)} of {len(below)} | {cost:.2f} / {per_epoch:.2f} | "
        f"{_verdict(mean, cost, below)} | {_out_of_sample(work, kind, base)} | {confirm} |"
    )


def cycle_table(work: Path) -> list[str]:
    """``--cycle`` (the default: the main table's runs) against the default before it (``cycle-off``), in
    its two steps (:data:`CYCLE_STEPS`): the rule on the selection cells' validation MSE; every cell's row."""
    rows, _, _ = variant_table(work, "main", "cycle", base=PREV, base_label="no cycle")
    steps = [r for r in (_step(work, *s) for s in CYCLE_STEPS) if r]
    if not rows or not steps:
        return []
    return [
        "## The learnt cycle: `--cycle` (the default) against no cycle",
        "",
        "CycleNet's residual cycle forecasting (Lin et al., NeurIPS 2024), in two parts, each measured by the",
        "rule against the default before it. (1) In front of each LSTM: a table Q of `--season` values per",
        "target channel, learnt with the network (zeros at the start), is taken out of each normalised",
        "lookback at its rows' phases (x_t - Q[phase_t]) and added back to the forecast at the forecast rows'",
        "phases. (2) In the linear map: a bias per phase of the first forecast row and horizon step, fitted",
        "with the map in closed form (ridge with one-hot phase columns) - the cycle's shape as a linear map",
        "sees it. The phase counts steps since 1970 when the time column steps regularly (ETT: the hour or",
        "quarter hour of the day), else rows (weather, which the bench reads without its time column;",
        "sp500's trading days). The season is each data set's one day (sp500: 5 rows). Runs: the main table",
        "(both); `cycle-lstm` (part 1 alone, commit 2d46eca; its GIFT and seed runs beside it); `cycle-off`",
        "(neither: the main table's runs before, `--variant cycle-off` reruns them). CPU: total / per epoch.",
        "The criterion is metrics.json's valid MSE, as for every decision here; after `--refit-linear` the",
        "maps have seen those windows, which favours the map with more columns, so the next column scores",
        "valid again with every run's maps fitted on train only, as they were when w was fitted",
        "(`python bench/forecast.py --cycle-check`; mean, range). Confirmation cells (ETTh1, sp500; not",
        "looked at for the decisions): test MSE ratio.",
        "",
        "| step | selection cells | valid MSE ratio | below linear | CPU | rule | valid, maps on train only "
        "| confirmation: test ratio |",
        "|---|---|---|---|---|---|---|---|",
        *steps,
        "",
        *rows,
    ]
