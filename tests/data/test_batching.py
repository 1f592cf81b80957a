"""Padding and batch samplers."""

from __future__ import annotations

import pytest
import torch

from lstmkit.data.batching import bucket_sampler, pad_sequences, shuffled_batches


def test_pad_sequences_batch_first_with_lengths():
    seqs = [torch.ones(3, 2), torch.full((1, 2), 2.0), torch.zeros(0, 2)]
    padded, lengths = pad_sequences(seqs, padding_value=-1)
    assert padded.shape == (3, 3, 2) and lengths.tolist() == [3, 1, 0] and lengths.dtype == torch.int64
    assert torch.equal(padded[1], torch.tensor([[2.0, 2.0], [-1, -1], [-1, -1]]))
    ids, n = pad_sequences([torch.tensor([1, 2]), torch.tensor([3])])
    assert ids.tolist() == [[1, 2], [3, 0]] and ids.dtype == torch.int64 and n.tolist() == [2, 1]


def test_pad_sequences_rejects_bad_input():
    with pytest.raises(ValueError):
        pad_sequences([])
    with pytest.raises(ValueError, match="sequence 1"):
        pad_sequences([torch.ones(2, 3), torch.ones(2, 4)])


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_shuffled_batches_cover_everything_once():
    batches = shuffled_batches(4)(1, _gen(0), 10)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(i for b in batches for i in b) == list(range(10))
    assert shuffled_batches(4, shuffle=False)(1, _gen(0), 5) == [[0, 1, 2, 3], [4]]
    assert shuffled_batches(4)(1, _gen(3), 10) == shuffled_batches(4)(1, _gen(3), 10)


def test_bucket_sampler_groups_similar_lengths():
    lengths = torch.randint(1, 200, (1000,), generator=_gen(1)).tolist()
    sampler = bucket_sampler(lengths, batch_size=10, bucket_batches=20)
    batches = sampler(1, _gen(5), 1000)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 15  # random batches of 10 from 1..199 would spread ~160
    assert batches == sampler(1, _gen(5), 1000)
    assert batches != sampler(2, _gen(6), 1000)
    ordered = bucket_sampler(lengths, batch_size=10, shuffle=False)(1, _gen(0), 1000)
    flat = [lengths[i] for b in ordered for i in b]
    assert flat == sorted(lengths, reverse=True)
    with pytest.raises(ValueError, match="1000"):
        sampler(1, _gen(0), 999)
