"""Plots read at a glance, checked on the matplotlib objects: the loss curve (log scale, train and
validation, the monitored metric beside it), a legend wherever there is more than one line, and
attention / gate tick labels that show subword text readably without overlapping."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lstmkit import plots  # noqa: E402
from lstmkit.plots import attention_figure, loss_figure, readable_tokens  # noqa: E402

HISTORY = [
    {"epoch": e, "train_loss": 2.0 / e, "valid_loss": 2.5 / e, "accuracy": 0.5 + 0.1 * e, "lr": 1e-3} for e in (1, 2, 3)
]


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot_* functions would save (closed after the test)."""
    figures: list = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig) or Path(path))
    yield figures
    for fig in figures:
        plt.close(fig)


def legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None, ax.get_title()
    return [t.get_text() for t in legend.get_texts()]


def tick_texts(labels) -> list[str]:
    return [t.get_text() for t in labels]


def test_loss_curve_is_log_scale_with_both_losses_and_the_monitored_metric_beside_it():
    fig = loss_figure(HISTORY, monitor="accuracy", best_epoch=3)
    loss_ax, metric_ax = fig.axes
    assert loss_ax.get_yscale() == "log"
    assert legend_texts(loss_ax) == ["train", "validation", "best epoch (3)"]
    assert legend_texts(metric_ax) == ["accuracy", "best epoch (3)"]
    assert list(metric_ax.get_lines()[0].get_ydata()) == pytest.approx([0.6, 0.7, 0.8])
    plt.close(fig)


def test_loss_curve_alone_when_the_loss_is_monitored_and_linear_when_a_loss_is_not_positive(tmp_path):
    fig = loss_figure(HISTORY, monitor="valid_loss")
    assert len(fig.axes) == 1 and legend_texts(fig.axes[0]) == ["train", "validation"]
    plt.close(fig)
    fig = loss_figure([{"epoch": 1, "train_loss": -0.5}, {"epoch": 2, "train_loss": -0.7}], monitor="train_loss")
    assert fig.axes[0].get_yscale() == "linear" and legend_texts(fig.axes[0]) == ["train"]
    plt.close(fig)
    assert plots.plot_loss(HISTORY, tmp_path / "loss.png", monitor="accuracy").stat().st_size > 1000


@pytest.mark.parametrize(
    ("tokens", "readable"),
    [
        (["▁Ein", "▁Hund", "▁renn", "t", ".", "</s>"], ["Ein", "Hund", "renn", "-t", ".", "</s>"]),
        (["▁", "(", "▁ja", ")"], ["␣", "(", "ja", ")"]),
        (["Hun@@", "d", "renn@@", "t", "<unk>"], ["Hun", "-d", "renn", "-t", "<unk>"]),
        (["Hun", "d</w>", "rennt</w>"], ["Hun", "-d", "rennt"]),
        (["play", "##ing", "well"], ["play", "-ing", "well"]),
        (["ĠThe", "Ġdog", "s"], ["The", "dog", "-s"]),
        (["t-8..t-5", "t-4..t-1"], ["t-8..t-5", "t-4..t-1"]),  # no subword markers: untouched
    ],
)
def test_readable_tokens(tokens, readable):
    assert readable_tokens(tokens) == readable


def test_attention_ticks_show_readable_pieces_rotated():
    src, tgt = ["▁Ein", "▁Hund", "▁renn", "t", ".", "</s>"], ["▁A", "▁dog", "▁run", "s", "."]
    fig = attention_figure(np.full((6, 6), 1 / 6), src, tgt)
    ax = fig.axes[0]
    assert tick_texts(ax.get_xticklabels()) == ["Ein", "Hund", "renn", "-t", ".", "</s>"]
    assert tick_texts(ax.get_yticklabels()) == ["A", "dog", "run", "-s", ".", "</s>"]
    assert {t.get_rotation() for t in ax.get_xticklabels()} == {60.0}
    plt.close(fig)


def test_long_attention_is_thinned_smaller_and_its_labels_do_not_overlap():
    S, T = 200, 90
    src = [f"▁word{i}" for i in range(S)]
    fig = attention_figure(np.full((T, S), 1 / S), src, src[: T - 1])
    ax = fig.axes[0]
    xs, ys = ax.get_xticklabels(), ax.get_yticklabels()
    assert len(xs) <= plots.MAX_TOKEN_LABELS and len(ys) <= plots.MAX_TOKEN_LABELS
    assert xs[1].get_text() == f"word{int(ax.get_xticks()[1])}"  # every k-th token, still the right one
    short = attention_figure(np.full((3, 3), 1 / 3), src[:3], src[:2]).axes[0]
    assert xs[0].get_fontsize() < short.get_xticklabels()[0].get_fontsize()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for labels in (xs, ys):
        boxes = [t.get_window_extent(renderer) for t in labels]
        assert not any(a.overlaps(b) for a, b in zip(boxes, boxes[1:]))
    plt.close("all")


def test_gate_labels_are_readable_and_thinned(drawn, tmp_path):
    from lstmkit.nn import Gates

    T = 150
    g = np.random.default_rng(0).random((1, T, 4)).astype("float32")
    import torch

    t = torch.from_numpy(g)
    labels = ["▁a" if i % 2 == 0 else "b" for i in range(T)]
    plots.plot_gates(Gates(t, t, t, t, t), tmp_path / "g.png", labels=labels)
    ticks = tick_texts(drawn[0].axes[3].get_xticklabels())
    assert 0 < len(ticks) <= plots.MAX_TOKEN_LABELS and set(ticks) <= {"a", "-b"}


def test_backtest_has_one_legend_entry_per_kind_of_line(drawn, tmp_path):
    t = pd.date_range("2024-01-01", periods=60, freq="h")
    rows = [
        {"date": t[o + k], "origin": o, "y": float(k), "y_pred": k + 0.5, "lo": k - 1.0, "hi": k + 1.0}
        for o in (0, 12, 24)
        for k in range(12)
    ]
    plots.plot_backtest(tmp_path / "b.png", pd.DataFrame(rows), "y", "date", bands=[("80% interval", "lo", "hi")])
    ax = drawn[0].axes[0]
    assert legend_texts(ax) == ["truth", "forecast from each origin", "80% interval"]
    assert len(ax.get_lines()) == 4  # truth + one segment per origin, all under the two entries


def test_forecast_panels_each_have_a_legend(drawn, tmp_path):
    hist_t, fc_t = np.arange(10), np.arange(10, 14)
    series = {"a": np.zeros(10), "b": np.ones(10)}
    forecast = {"a": np.zeros(4), "b": np.ones(4)}
    bands = {"a": (np.zeros(4) - 1, np.zeros(4) + 1)}
    plots.plot_forecast(tmp_path / "f.png", hist_t, series, fc_t, forecast, bands)
    a, b = drawn[0].axes
    assert legend_texts(a) == ["history", "forecast", "interval"] and legend_texts(b) == ["history", "forecast"]
