"""Batching helpers shared by the tasks: padding with lengths, and length-bucketed batch samplers.

A *batch sampler* is what :class:`lstmkit.trainer.Trainer` calls at the start of every epoch:
``sampler(epoch, generator, n) -> list[list[int]]`` (the global batches of example indices).
The generator is seeded from ``(seed, epoch)``, so the batch order is reproducible and an
interrupted run resumes with exactly the same batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

BatchSampler = Callable[[int, torch.Generator, int], list[list[int]]]


def pad_sequences(seqs: Sequence[torch.Tensor], padding_value: float = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length sequences batch-first.

    Args:
        seqs: B tensors of shape (T_b, *F) with the same trailing dims F and dtype.
        padding_value: value of the padded positions.

    Returns:
        padded (B, T, *F) with T = max T_b, and lengths (B,) int64.
    """
    if len(seqs) == 0:
        raise ValueError("pad_sequences: no sequences")
    lengths = torch.tensor([s.shape[0] for s in seqs], dtype=torch.int64)  # (B,)
    trailing = seqs[0].shape[1:]
    for b, s in enumerate(seqs):
        if s.shape[1:] != trailing:
            raise ValueError(
                f"pad_sequences: sequence {b} has trailing shape {tuple(s.shape[1:])}, expected {tuple(trailing)}"
            )
    T = int(lengths.max())
    padded = seqs[0].new_full((len(seqs), T, *trailing), padding_value)  # (B, T, *F)
    for b, s in enumerate(seqs):
        padded[b, : s.shape[0]] = s
    return padded, lengths


def _chunks(indices: Sequence[int], size: int) -> list[list[int]]:
    return [list(indices[i : i + size]) for i in range(0, len(indices), size)]


def shuffled_batches(batch_size: int, shuffle: bool = True) -> BatchSampler:
    """The trainer's default sampler: a seeded permutation (or 0..n-1) cut into chunks of batch_size."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")

    def sample(epoch: int, generator: torch.Generator, n: int) -> list[list[int]]:
        order = torch.randperm(n, generator=generator).tolist() if shuffle else list(range(n))
        return _chunks(order, batch_size)

    return sample


def bucket_sampler(
    lengths: Sequence[int], batch_size: int, shuffle: bool = True, bucket_batches: int = 50
) -> BatchSampler:
    """Batches of similar lengths (less padding), in a random order.

    With ``shuffle``: a seeded permutation is cut into pools of ``bucket_batches * batch_size``
    examples; each pool is sorted by length (longest first, ties by position in the permutation)
    and cut into batches; then the order of all batches is shuffled. Without ``shuffle``: all
    examples sorted by length (longest first), batches in that order.
    """
    lengths = [int(x) for x in lengths]
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")

    def sample(epoch: int, generator: torch.Generator, n: int) -> list[list[int]]:
        if n != len(lengths):
            raise ValueError(f"bucket_sampler: built for {len(lengths)} examples, asked for {n}")
        if not shuffle:
            order = sorted(range(n), key=lambda i: -lengths[i])
            return _chunks(order, batch_size)
        perm = torch.randperm(n, generator=generator).tolist()
        batches: list[list[int]] = []
        for pool in _chunks(perm, bucket_batches * batch_size):
            pool = sorted(pool, key=lambda i: -lengths[i])  # stable: ties keep permutation order
            batches.extend(_chunks(pool, batch_size))
        order = torch.randperm(len(batches), generator=generator).tolist()
        return [batches[i] for i in order]

    return sample
