"""Plots, all written as PNG with matplotlib's Agg backend (no display needed).

The base (spine room): a shared style (:func:`new_figure`, :func:`save_figure`), loss curves
(:func:`plot_loss`) and LSTM gate heatmaps (:func:`plot_gates`). Task rooms append their own plot
functions at the end of this file, using :func:`new_figure` / :func:`save_figure`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

STYLE: Any = {  # matplotlib rcParams (typed Any: its stubs want literal keys)
    "figure.dpi": 100,
    "savefig.dpi": 120,
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.4, height: float = 4.0, **kwargs: Any):
    """``(fig, axes)`` in the shared style (``axes`` as from ``plt.subplots``)."""
    with plt.rc_context(STYLE):
        return plt.subplots(nrows, ncols, figsize=(width, height), **kwargs)


def save_figure(fig, path: str | os.PathLike[str]) -> Path:
    """Save ``fig`` as PNG atomically and close it."""
    from lstmkit.io import atomic_write_bytes

    buf = io.BytesIO()
    with plt.rc_context(STYLE):
        fig.tight_layout()
        fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def plot_loss(history: Sequence[Mapping[str, float]], path: str | os.PathLike[str], title: str = "loss") -> Path:
    """Train and validation loss per epoch (from the trainer's history rows)."""
    fig, ax = new_figure()
    epochs = [row["epoch"] for row in history]
    for key, label in (("train_loss", "train"), ("valid_loss", "valid")):
        values = [row.get(key) for row in history]
        if any(v is not None for v in values):
            ax.plot(epochs, [float("nan") if v is None else v for v in values], marker="o", markersize=3, label=label)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    return save_figure(fig, path)


def plot_gates(
    gates: Any,
    path: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
    title: str = "LSTM gates",
    max_units: int = 64,
    batch_index: int = 0,
) -> Path:
    """Heatmaps (units x time) of the input, forget and output gates and the cell state.

    Args:
        gates: one layer/direction's ``Gates`` NamedTuple ``(i, f, g, o, c)``, each (B, T, H).
        labels: T labels for the time axis (tokens); shown when T <= 60.
        max_units: show at most this many hidden units (the first ones).
        batch_index: which sequence of the batch to draw.
    """
    panels = [
        ("input gate i", gates.i, "viridis", (0.0, 1.0)),
        ("forget gate f", gates.f, "viridis", (0.0, 1.0)),
        ("output gate o", gates.o, "viridis", (0.0, 1.0)),
        ("cell state c", gates.c, "RdBu_r", None),
    ]
    T = panels[0][1].shape[1]
    fig, axes = new_figure(4, 1, width=max(6.0, min(16.0, 0.18 * T + 3)), height=9.0, sharex=True)
    for ax, (name, tensor, cmap, limits) in zip(axes, panels):
        m = tensor[batch_index, :, :max_units].detach().float().cpu().numpy().T  # (H', T)
        if limits is None:
            bound = float(abs(m).max()) or 1.0
            limits = (-bound, bound)
        im = ax.imshow(m, aspect="auto", cmap=cmap, vmin=limits[0], vmax=limits[1], interpolation="nearest")
        ax.set_ylabel(f"{name}\nunit")
        ax.grid(False)
        fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01)
    if labels is not None and len(labels) == T and T <= 60:
        axes[-1].set_xticks(range(T))
        axes[-1].set_xticklabels(list(labels), rotation=90)
    axes[-1].set_xlabel("time step")
    axes[0].set_title(title)
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# Task rooms: append your plot functions below this line (use new_figure / save_figure).


# ----------------------------------------------------------------------------- translate room
def plot_attention(
    weights: Any,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    path: str | os.PathLike[str],
    title: str = "attention",
) -> Path:
    """Attention heatmap of one translation: rows are target tokens, columns source tokens.

    ``weights`` is (T', S) (tensor or array); rows beyond ``target_tokens`` (e.g. the </s> step) are
    labelled ``</s>``.
    """
    import numpy as np

    w = np.asarray(weights.detach().cpu() if hasattr(weights, "detach") else weights, dtype=float)  # (T', S)
    rows = list(target_tokens) + ["</s>"] * max(0, w.shape[0] - len(target_tokens))
    fig, ax = new_figure(width=max(4.0, 0.35 * w.shape[1] + 2), height=max(3.0, 0.3 * w.shape[0] + 1.5))
    im = ax.imshow(w, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.grid(False)
    ax.set_xticks(range(w.shape[1]))
    ax.set_xticklabels(list(source_tokens)[: w.shape[1]], rotation=90)
    ax.set_yticks(range(w.shape[0]))
    ax.set_yticklabels(rows[: w.shape[0]])
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.04)
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- text room (classify)
def plot_confusion_matrix(
    matrix: Any, labels: Sequence[str], path: str | os.PathLike[str], title: str = "confusion matrix"
) -> Path:
    """Confusion matrix heatmap: rows true class, columns predicted class; colour is the row-normalised
    rate (recall per class), each cell annotated with its count."""
    import numpy as np

    m = np.asarray(matrix, dtype=float)  # (C, C)
    rates = m / np.maximum(m.sum(1, keepdims=True), 1)
    size = max(3.5, 0.5 * len(labels) + 2.5)
    fig, ax = new_figure(width=size + 1, height=size)
    im = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.grid(False)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=45 if max(map(len, labels), default=0) > 3 else 0, ha="right")
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels)
    if len(labels) <= 30:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(
                    j,
                    i,
                    f"{int(m[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if rates[i, j] > 0.5 else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="row rate")
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- forecast room
def plot_forecast(
    path: str | os.PathLike[str],
    history_time: Any,
    history: Mapping[str, Any],
    forecast_time: Any,
    forecast: Mapping[str, Any],
    bands: Mapping[str, Any] | None = None,
    title: str = "forecast",
) -> Path:
    """History and forecast of each target column (one panel per column, at most 4), with the
    prediction interval ``bands[name] = (low, high)`` shaded when given, or several labelled ones
    ``bands[name] = [(label, low, high), ...]`` (widest first)."""
    names = list(forecast)[:4]
    fig, axes = new_figure(len(names), 1, width=8.0, height=2.6 * len(names), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        ax.plot(history_time, history[name], color="0.3", lw=1.0, label="history")
        ax.plot(forecast_time, forecast[name], color="C1", lw=1.4, label="forecast")
        if bands and name in bands:
            _fill_bands(ax, forecast_time, bands[name])
        ax.set_ylabel(name)
        ax.legend(loc="upper left")
    axes[0, 0].set_title(title)
    fig.autofmt_xdate()
    return save_figure(fig, path)


def _fill_bands(ax: Any, x: Any, bands: Any, color: str = "C1") -> None:
    """Shade ``(low, high)`` (label "interval") or each ``(label, low, high[, colour])`` of a list,
    lighter for the wider ones."""
    if isinstance(bands, tuple) and len(bands) == 2:
        bands = [("interval", *bands)]
    for k, (label, lo, hi, *c) in enumerate(bands):
        ax.fill_between(x, lo, hi, color=c[0] if c else color, alpha=0.15 + 0.12 * k, lw=0, label=label)


def plot_backtest(
    path: str | os.PathLike[str],
    frame: Any,
    target: str,
    time_column: str,
    title: str = "backtest: rolling-origin forecasts",
    bands: Sequence[tuple[str, ...]] = (),
) -> Path:
    """Truth against every rolling-origin forecast of a backtest frame (columns ``time_column``,
    ``origin``, ``target``, ``target_pred``): one coloured segment per origin; ``bands``:
    ``(label, low column, high column[, colour])`` shaded around each segment (widest first)."""
    fig, ax = new_figure(width=9.0, height=3.6)
    truth = frame.drop_duplicates(time_column).sort_values(time_column)
    ax.plot(truth[time_column], truth[target], color="0.3", lw=1.0, label="truth")
    for k, (_, seg) in enumerate(frame.groupby("origin", sort=True)):
        ax.plot(
            seg[time_column],
            seg[f"{target}_pred"],
            color=f"C{1 + k % 2}",
            lw=1.1,
            label="forecasts" if k == 0 else None,
        )
        for b, (label, lo, hi, *c) in enumerate(bands):
            ax.fill_between(
                seg[time_column],
                seg[lo],
                seg[hi],
                color=c[0] if c else "C1",
                alpha=0.15 + 0.12 * b,
                lw=0,
                label=label if k == 0 else None,
            )
    ax.set_ylabel(target)
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    return save_figure(fig, path)


def plot_predictions(path: str | os.PathLike[str], true: Any, pred: Any, title: str = "true vs predicted") -> Path:
    """True and predicted values of consecutive held-out windows (one-step-ahead forecasts)."""
    fig, ax = new_figure(width=8.0, height=3.4)
    ax.plot(range(len(true)), true, color="0.3", lw=2.0, label="true")
    ax.plot(range(len(pred)), pred, color="C1", lw=1.2, ls="--", label="predicted")
    ax.set_xlabel("held-out window")
    ax.set_title(title)
    ax.legend(loc="upper right")
    return save_figure(fig, path)
