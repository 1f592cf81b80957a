"""Plots, all written as PNG with matplotlib's Agg backend (no display needed).

The base (spine room): a shared style (:func:`new_figure`, :func:`save_figure`), loss curves
(:func:`plot_loss`) and LSTM gate heatmaps (:func:`plot_gates`). Task rooms append their own plot
functions at the end of this file, using :func:`new_figure` / :func:`save_figure`.
"""

from __future__ import annotations

import io
import math
import os
import re
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


LOSS_LINES = (("train_loss", "train"), ("valid_loss", "validation"))


def plot_loss(
    history: Sequence[Mapping[str, float]],
    path: str | os.PathLike[str],
    title: str = "loss",
    *,
    monitor: str | None = None,
    best_epoch: float | None = None,
) -> Path:
    """The trainer's history rows as :func:`loss_figure`, saved as PNG."""
    return save_figure(loss_figure(history, title, monitor=monitor, best_epoch=best_epoch), path)


def loss_figure(
    history: Sequence[Mapping[str, float]],
    title: str = "loss",
    *,
    monitor: str | None = None,
    best_epoch: float | None = None,
) -> Any:
    """Train and validation loss per epoch on a log scale (linear when a loss is <= 0), and beside it
    the ``monitor``-ed metric when that is not a loss; ``best_epoch`` is marked on both panels."""
    metric = monitor if monitor not in (None, *dict(LOSS_LINES)) and any(monitor in r for r in history) else None
    fig, axes = new_figure(1, 2 if metric else 1, width=11.0 if metric else 6.4, squeeze=False)
    ax = axes[0, 0]
    values: list[float] = []
    for key, label in LOSS_LINES:
        values += _epoch_line(ax, history, key, label)
    if values and min(values) > 0:
        ax.set_yscale("log")
    ax.set_ylabel("loss (log scale)" if ax.get_yscale() == "log" else "loss")
    ax.set_title(title)
    panels = [ax]
    if metric is not None:
        _epoch_line(axes[0, 1], history, metric, metric, color="C2")
        axes[0, 1].set_ylabel(metric)
        axes[0, 1].set_title(f"monitored: {metric}")
        panels.append(axes[0, 1])
    for panel in panels:
        if best_epoch:
            panel.axvline(best_epoch, color="0.5", ls=":", lw=1.0, label=f"best epoch ({best_epoch:g})")
        panel.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        panel.set_xlabel("epoch")
        panel.legend()
    return fig


def _epoch_line(ax: Any, history: Sequence[Mapping[str, float]], key: str, label: str, **style: Any) -> list[float]:
    """Draw ``key`` per epoch (when any row has it); returns its finite values."""
    rows = [r for r in history if r.get(key) is not None]
    if not rows:
        return []
    ax.plot([r["epoch"] for r in rows], [r[key] for r in rows], marker="o", markersize=3, label=label, **style)
    return [float(r[key]) for r in rows if math.isfinite(float(r[key]))]


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
    if labels is not None and len(labels) == T:
        token_ticks(axes[-1], "x", labels, T)
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
    """:func:`attention_figure` saved as PNG."""
    return save_figure(attention_figure(weights, source_tokens, target_tokens, title), path)


def attention_figure(
    weights: Any, source_tokens: Sequence[str], target_tokens: Sequence[str], title: str = "attention"
) -> Any:
    """Attention heatmap of one translation: rows are target tokens, columns source tokens, both
    labelled with :func:`readable_tokens` (see :func:`token_ticks`).

    ``weights`` is (T', S) (tensor or array); rows beyond ``target_tokens`` (e.g. the </s> step) are
    labelled ``</s>``.
    """
    import numpy as np

    w = np.asarray(weights.detach().cpu() if hasattr(weights, "detach") else weights, dtype=float)  # (T', S)
    T, S = w.shape
    rows = list(target_tokens) + ["</s>"] * max(0, T - len(target_tokens))
    fig, ax = new_figure(width=min(16.0, max(4.0, 0.3 * S + 2)), height=min(12.0, max(3.0, 0.3 * T + 1.5)))
    im = ax.imshow(w, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.grid(False)
    token_ticks(ax, "x", source_tokens, S)
    token_ticks(ax, "y", rows, T)
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.04)
    return fig


SPECIAL_TOKEN = re.compile(r"^<[^<>\s]+>$")  # <s>, </s>, <unk>, <pad>, <eos>
MAX_TOKEN_LABELS = 60  # per axis: beyond it, every k-th token is labelled


def readable_tokens(tokens: Sequence[str]) -> list[str]:
    """Subword tokens as the text they stand for: the word-boundary markers of SentencePiece /
    Metaspace (``▁``), GPT-2 (``Ġ``), subword-nmt (``@@``), original BPE (``</w>``) and WordPiece
    (``##``) are removed, a piece that continues a word gets a leading ``-`` (``▁renn``, ``t`` ->
    ``renn``, ``-t``), a lone space piece is ``␣``; special tokens and unmarked tokens are kept."""
    toks = [str(t) for t in tokens]
    starts, texts = _word_starts(toks)
    out = []
    for tok, text, start in zip(toks, texts, starts):
        if SPECIAL_TOKEN.match(tok):
            out.append(tok)
        elif not text:
            out.append("␣")
        else:
            out.append(text if start or not any(c.isalnum() for c in text) else "-" + text)
    return out


def _word_starts(toks: list[str]) -> tuple[list[bool], list[str]]:
    """Per token: whether it starts a word, and its text without the marker (by the scheme its markers show)."""
    for mark in ("▁", "Ġ"):  # a word-initial prefix
        if any(mark in t for t in toks):
            return [i == 0 or t.startswith(mark) for i, t in enumerate(toks)], [
                t.replace(mark, " ").strip() for t in toks
            ]
    for mark, ends in (("</w>", True), ("@@", False)):  # a suffix: the word ends here / goes on
        if any(t.endswith(mark) for t in toks):
            starts = [i == 0 or toks[i - 1].endswith(mark) == ends for i in range(len(toks))]
            return starts, [t[: -len(mark)] if t.endswith(mark) else t for t in toks]
    if any(t.startswith("##") and len(t) > 2 for t in toks):
        return [not t.startswith("##") for t in toks], [t[2:] if t.startswith("##") else t for t in toks]
    return [True] * len(toks), toks


def token_ticks(ax: Any, axis: str, tokens: Sequence[str], n: int) -> None:
    """Label ``n`` heatmap cells along ``axis`` ("x" or "y") with :func:`readable_tokens`: x labels
    rotated (60°, upright beyond 20), the font smaller the more labels, and at most :data:`MAX_TOKEN_LABELS` of them (every
    k-th token on a longer axis), so that they never overlap."""
    labels = readable_tokens(tokens)[:n]
    labels += [""] * (n - len(labels))
    step = -(-n // MAX_TOKEN_LABELS)
    positions = list(range(0, n, step))
    size = max(6.0, min(10.0, 11.0 - len(positions) / 8))
    shown = [labels[i] for i in positions]
    if axis == "x":
        ax.set_xticks(positions)
        slant = 60 if len(positions) <= 20 else 90  # upright when dense: the narrowest footprint
        ax.set_xticklabels(shown, rotation=slant, ha="right", va="center", rotation_mode="anchor", fontsize=size)
    else:
        ax.set_yticks(positions)
        ax.set_yticklabels(shown, fontsize=size)


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
    from matplotlib.legend_handler import HandlerTuple

    fig, ax = new_figure(width=9.0, height=3.6)
    truth = frame.drop_duplicates(time_column).sort_values(time_column)
    ax.plot(truth[time_column], truth[target], color="0.3", lw=1.0, label="truth")
    segments: list[Any] = []
    for k, (_, seg) in enumerate(frame.groupby("origin", sort=True)):
        segments += ax.plot(seg[time_column], seg[f"{target}_pred"], color=f"C{1 + k % 2}", lw=1.1)
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
    handles, labels = ax.get_legend_handles_labels()  # truth, then the bands
    if segments:  # one entry for every origin's forecast, in both alternating colours
        handles.insert(1, tuple(segments[:2]))
        labels.insert(1, "forecast from each origin")
    ax.legend(handles, labels, loc="upper left", handler_map={tuple: HandlerTuple(ndivide=None)})
    ax.set_ylabel(target)
    ax.set_title(title)
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
