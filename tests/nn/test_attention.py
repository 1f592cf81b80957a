"""Attention: scores, masking (padding never attended), shapes, and batch independence."""

import pytest
import torch

from lstmkit.nn.attention import Attention, lengths_to_mask, masked_softmax, select_memory

KINDS = ["bahdanau", "general", "dot"]


def _memory(b=3, s=6, k=8, lengths=(6, 4, 1), seed=0):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(b, s, k, generator=g, dtype=torch.float64)
    mask = lengths_to_mask(torch.tensor(lengths), s)
    return values, mask


def test_lengths_to_mask():
    mask = lengths_to_mask(torch.tensor([3, 1, 0]), 4)
    assert mask.tolist() == [[True, True, True, False], [True, False, False, False], [False] * 4]


def test_masked_softmax_zero_on_padding_and_sums_to_one():
    scores = torch.tensor([[1.0, 2.0, 3.0], [5.0, -1.0, 100.0], [1.0, 1.0, 1.0]])
    mask = torch.tensor([[True, True, True], [True, True, False], [False, False, False]])
    w = masked_softmax(scores, mask)
    assert w[1, 2].item() == 0.0  # a huge score on padding still gets nothing
    assert torch.allclose(w[:2].sum(-1), torch.ones(2))
    assert torch.equal(w[2], torch.zeros(3))  # empty row: zeros, not NaN
    assert torch.allclose(w[0], torch.softmax(scores[0], -1))


@pytest.mark.parametrize("kind", KINDS)
def test_padding_never_attended(kind):
    torch.manual_seed(0)
    values, mask = _memory()
    att = Attention(kind, query_size=8, memory_size=8).double()
    query = torch.randn(3, 8, dtype=torch.float64)
    ctx, w = att(query, att.prepare(values, mask))
    assert ctx.shape == (3, 8) and w.shape == (3, 6)
    assert torch.all(w[~mask] == 0)
    assert torch.allclose(w.sum(-1), torch.ones(3, dtype=torch.float64))
    garbage = values.clone()
    garbage[~mask] = 1e4  # whatever sits in padded positions changes nothing
    ctx2, w2 = att(query, att.prepare(garbage, mask))
    assert torch.equal(w, w2) and torch.allclose(ctx, ctx2)


@pytest.mark.parametrize("kind", KINDS)
def test_rows_are_independent_of_the_batch(kind):
    torch.manual_seed(1)
    values, mask = _memory()
    att = Attention(kind, query_size=8, memory_size=8).double()
    query = torch.randn(3, 8, dtype=torch.float64)
    ctx, w = att(query, att.prepare(values, mask))
    n = int(mask[1].sum())
    ctx1, w1 = att(query[1:2], att.prepare(values[1:2, :n], mask[1:2, :n]))
    assert torch.allclose(ctx[1:2], ctx1) and torch.allclose(w[1:2, :n], w1)


def test_scores_match_the_equations():
    torch.manual_seed(2)
    values, mask = _memory(b=1, lengths=(6,))
    q = torch.randn(1, 8, dtype=torch.float64)
    dot = Attention("dot", 8, 8).double()
    assert torch.allclose(dot.scores(q, dot.prepare(values, mask)), values[0] @ q[0])
    gen = Attention("general", 8, 8).double()
    w = gen.key_proj.weight  # (Q, K)
    assert torch.allclose(gen.scores(q, gen.prepare(values, mask)), q[0] @ w @ values[0].T)
    add = Attention("bahdanau", 8, 8, attn_size=5).double()
    e = torch.tanh(values[0] @ add.key_proj.weight.T + add.query_proj(q)) @ add.v.weight[0]
    assert torch.allclose(add.scores(q, add.prepare(values, mask))[0], e)


def test_gradients_and_select_memory():
    values, mask = _memory()
    values = values.float().requires_grad_()
    att = Attention("bahdanau", 8, 8)
    mem = att.prepare(values, mask)
    ctx, _ = att(torch.randn(3, 8), mem)
    ctx.sum().backward()
    assert torch.all(values.grad[~mask] == 0) and values.grad[mask].abs().sum() > 0
    picked = select_memory(mem, torch.tensor([2, 2, 0]))
    assert torch.equal(picked.mask[0], mask[2]) and picked.values.shape == (3, 6, 8)


def test_bad_configuration():
    with pytest.raises(ValueError, match="dot attention"):
        Attention("dot", 8, 6)
    with pytest.raises(ValueError, match="not one of"):
        Attention("cosine", 8, 8)
