"""Seeded splits of a data set into training and held-out parts (one splitter for every task)."""

from __future__ import annotations

import torch


def holdout(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices ``(train, held_out)`` of ``range(n)``, both sorted; ``held_out`` is a seeded random
    ``round(n * fraction)`` of them (at least 1 when ``fraction > 0`` and ``n > 1``, none otherwise)."""
    if not 0 < fraction < 1 or n < 2:
        return list(range(n)), []
    k = min(n - 1, max(1, int(round(n * fraction))))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(perm[k:]), sorted(perm[:k])
