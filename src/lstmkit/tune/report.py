"""What ``lstmkit <task> tune`` leaves in its folder, and the summary it prints.

``DIR/best/``          the best trial's model folder, copied whole (``lstmkit.load`` takes it)
``trials.csv``         one row per trial: number, state, value, seconds, epochs, one column per
                       searched setting, and a note (why it was pruned, whether it ran the defaults)
``best_config.toml``   every setting of the best trial that differs from the task's default, in
                       the layout ``train --config`` reads (top-level keys, then ``[lstm]``, ...)
``history.png``        Optuna's optimisation history; ``importance.png`` its parameter importances
                       (from two finished trials whose settings differ)

Every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lstmkit.config import Settings
from lstmkit.io import atomic_write_bytes, commit_folder, staging_dir
from lstmkit.tune.space import Param

#: left out of best_config.toml: the per-trial budget the tune set
NOT_WRITTEN = {"max_time"}


def trials_csv(trials: list[Any], space: list[Param]) -> str:
    """trials.csv's text: one row per trial, in number order."""
    names = [p.name for p in space]
    extra = sorted({k for t in trials for k in t.params} - set(names))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["number", "state", "value", "seconds", "epochs", *names, *extra, "note"])
    for t in sorted(trials, key=lambda t: t.number):
        writer.writerow(
            [
                t.number,
                t.state.name,
                "" if t.value is None else f"{t.value:.10g}",
                t.user_attrs.get("seconds", ""),
                t.user_attrs.get("epochs", ""),
                *(_cell(t.params.get(n)) for n in (*names, *extra)),
                _note(t),
            ]
        )
    return buf.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _note(t: Any) -> str:
    parts = []
    if t.user_attrs.get("default"):
        parts.append("the starting settings")
    if "rerun_of" in t.user_attrs:
        parts.append(f"re-run of trial {t.user_attrs['rerun_of']}")
    if t.user_attrs.get("lost"):
        parts.append("lost: its process ended before the run did (re-run on --resume)")
    if t.user_attrs.get("note"):
        parts.append(str(t.user_attrs["note"]))
    return "; ".join(parts)


# ============================================================================ best_config.toml
def config_toml(cfg: Settings, defaults: Settings, header: str = "") -> str:
    """TOML of every setting of ``cfg`` that differs from ``defaults`` (grouped in the tables of
    their sections, as :func:`lstmkit.config.read_toml` reads them)."""
    want, base = cfg.flat(), defaults.flat()
    tables: dict[str, list[str]] = {}
    for leaf in cfg.leaves():
        value = want[leaf.name]
        if leaf.name in NOT_WRITTEN or value == base[leaf.name] or not leaf.spec.cli:
            continue
        table = ".".join(leaf.path[:-1])
        line = (
            f"# {leaf.name}: none (TOML has no null: pass --{leaf.name.replace('_', '-')} none)"
            if value is None
            else f"{leaf.name} = {toml_value(value)}"
        )
        tables.setdefault(table, []).append(line)
    lines = [f"# {row}" for row in header.splitlines()]
    lines += tables.pop("", [])
    for table, rows in tables.items():
        lines += ["", f"[{table}]", *rows]
    return "\n".join(lines).lstrip("\n") + "\n"


def toml_value(value: Any) -> str:
    """One TOML value: booleans, numbers (inf / nan too), strings, lists of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


# ============================================================================ best/, plots
def copy_best(out: Path, number: int) -> Path | None:
    """``OUT/best/``: a whole copy of ``OUT/trials/<number>/``, swapped in at once (None when that
    trial's folder is not here: it ran on another machine)."""
    source = out / "trials" / str(number)
    if not (source / "config.json").is_file():
        return None
    target = out / "best"
    stage = staging_dir(target)
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(source, stage)
    commit_folder(stage, target)
    return target


def plots(study: Any, out: Path, monitor: str) -> list[str]:
    """history.png and importance.png with Optuna's matplotlib visualisation; returns notes on
    what could not be drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vis

    notes = []
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    varied = any(len({repr(t.params.get(k)) for t in done}) > 1 for k in {k for t in done for k in t.params})
    drawers: list[tuple[str, Callable[..., Any]]] = [("history.png", vis.plot_optimization_history)]
    if len(done) >= 2 and varied:
        drawers.append(("importance.png", vis.plot_param_importances))
    else:
        notes.append("importance.png not drawn: it needs 2 finished trials whose settings differ")
    for name, draw in drawers:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ExperimentalWarning: Optuna's matplotlib plots
            try:
                ax = draw(study, target_name=monitor)
            except Exception as e:  # a plot that cannot be drawn (an old Optuna without sklearn, ...)
                notes.append(f"{name} not drawn: {str(e).splitlines()[0]}")
                continue
        fig: Any = ax.figure
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        atomic_write_bytes(out / name, buf.getvalue())
    return notes


# ============================================================================ summary
def summary(study: Any, monitor: str, out: Path, best_folder: Path | None, elapsed: float) -> dict[str, Any]:
    """The result as plain values: the best trial (number, value, settings, folder), the starting
    settings' trial, how many trials ended how, the files written."""
    trials = [
        t for t in study.get_trials(deepcopy=False) if not (t.user_attrs.get("lost") or t.user_attrs.get("surplus"))
    ]
    states = {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
    best = study.best_trial
    start = next((t for t in trials if t.user_attrs.get("default") and t.state.name == "COMPLETE"), None)
    return {
        "monitor": monitor,
        "direction": study.direction.name.lower(),
        "best": {
            "number": best.number,
            "value": best.value,
            "params": dict(best.params),
            "folder": str(best_folder) if best_folder else None,
        },
        "start": {"number": start.number, "value": start.value} if start else None,
        "trials": {k.lower(): v for k, v in states.items()},
        "files": {
            "trials": str(out / "trials.csv"),
            "config": str(out / "best_config.toml"),
            "history": str(out / "history.png"),
        },
        "seconds": round(elapsed, 1),
    }


def summary_text(s: dict[str, Any]) -> str:
    """The summary for people: the best value and settings, the folder and files."""
    b = s["best"]
    lines = [f"best trial {b['number']}: {s['monitor']} {b['value']:.6g}"]
    if s["start"] is not None:
        lines[0] += f" (starting settings, trial {s['start']['number']}: {s['start']['value']:.6g})"
    width = max((len(k) for k in b["params"]), default=0)
    lines += [f"  {k:<{width}}  {_cell(v)}" for k, v in b["params"].items()]
    counts = ", ".join(f"{v} {k}" for k, v in s["trials"].items() if v)
    lines += [
        f"best model:  {b['folder'] or '(its folder is on the machine that ran it)'}",
        f"best config: {s['files']['config']}",
        f"trials:      {s['files']['trials']} ({counts}; {s['seconds']:.0f}s)",
    ]
    return "\n".join(lines) + "\n"
