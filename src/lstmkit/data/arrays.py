"""NumPy batching for the torch-free paths (the runtime, the predictors' encoders): padding only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pad_arrays(seqs: Sequence[np.ndarray], padding_value: float = 0) -> tuple[np.ndarray, np.ndarray]:
    """[(T_i, ...)] -> x (B, T, ...) padded with ``padding_value`` (dtype of the first) and lengths (B,) int64:
    the NumPy twin of :func:`lstmkit.data.batching.pad_sequences`."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)  # (B,)
    first = np.asarray(seqs[0]) if len(seqs) else np.zeros(0, np.int64)
    x = np.full((len(seqs), int(lengths.max(initial=1)), *first.shape[1:]), padding_value, dtype=first.dtype)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
    return x, lengths
