"""Classification metrics from a confusion matrix (numpy only).

With ``M[i, j]`` = number of examples of true class i predicted as j:
precision_j = M[j, j] / sum_i M[i, j], recall_i = M[i, i] / sum_j M[i, j],
F1 = 2 P R / (P + R) (0 where undefined), accuracy = trace(M) / sum(M), macro-F1 = mean_c F1_c.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) int64 counts, rows = true class, columns = predicted class."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return m


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str] | None = None, n_classes: int | None = None
) -> dict[str, Any]:
    """accuracy, macro_f1, per_class {label: precision, recall, f1, support}, confusion_matrix (lists)."""
    c = len(labels) if labels is not None else int(n_classes or 0)
    names = list(labels) if labels is not None else [str(i) for i in range(c)]
    m = confusion_matrix(y_true, y_pred, c)
    tp = np.diag(m).astype(np.float64)
    precision = _safe_div(tp, m.sum(0).astype(np.float64))
    recall = _safe_div(tp, m.sum(1).astype(np.float64))
    f1 = _safe_div(2 * precision * recall, precision + recall)
    present = m.sum(1) + m.sum(0) > 0  # classes absent from both truth and predictions don't count
    return {
        "accuracy": float(tp.sum() / max(1, m.sum())),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "n": int(m.sum()),
        "per_class": {
            n: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for n, p, r, f, s in zip(names, precision, recall, f1, m.sum(1))
        },
        "labels": names,
        "confusion_matrix": m.tolist(),
    }
