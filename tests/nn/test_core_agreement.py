"""lstmkit.nn.LSTM against torch.nn.LSTM after loading its state dict, on every path.

Outputs, h_n, c_n and the gradients with respect to the input, the initial state and every
parameter, float32, atol 1e-5 (plus rtol 1e-5 for large values).
"""

import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmkit.nn import LSTM, compiled

I, H, T, B = 3, 5, 4, 3
TOL = dict(atol=1e-5, rtol=1e-5)

# A covering design over the grid: every (num_layers, bidirectional, proj) combination, with
# batch_first, bias, unbatched input and given initial states cycling through their values.
_CORE = list(itertools.product([1, 2, 3], [False, True], [0, 2]))
CONFIGS = [
    dict(
        num_layers=n,
        bidirectional=bi,
        proj_size=p,
        batch_first=k % 2 == 0,
        bias=k % 3 != 1,
        unbatched=k % 4 == 3,
        given_hx=k % 2 == 1,
    )
    for k, (n, bi, p) in enumerate(_CORE)
]


def _ids(cfg):
    return "-".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in cfg.items())


def _make(cfg, impl, seed=0):
    kw = {k: cfg[k] for k in ("num_layers", "bidirectional", "proj_size", "batch_first", "bias")}
    torch.manual_seed(seed)
    ref = torch.nn.LSTM(I, H, **kw)
    ours = LSTM(I, H, **kw, impl=impl)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def _inputs(cfg, ref, lengths):
    torch.manual_seed(1)
    D = 2 if cfg["bidirectional"] else 1
    h_out = cfg["proj_size"] or H
    if cfg["unbatched"]:
        x = torch.randn(T, I)
        hx = (torch.randn(cfg["num_layers"] * D, h_out), torch.randn(cfg["num_layers"] * D, H))
    else:
        x = torch.randn(B, T, I) if cfg["batch_first"] else torch.randn(T, B, I)
        hx = (torch.randn(cfg["num_layers"] * D, B, h_out), torch.randn(cfg["num_layers"] * D, B, H))
    if lengths is not None and cfg["batch_first"]:
        x = x * (torch.arange(T)[None, :, None] < lengths[:, None, None])  # padding zeros
    return x, (hx if cfg["given_hx"] else None)


def _torch_run(ref, x, hx, lengths, batch_first):
    if lengths is None:
        return ref(x, hx)
    packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    out, (h, c) = ref(packed, hx)
    out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    return out, (h, c)


def _all_grads(module, x, hx, out, h, c):
    torch.manual_seed(2)
    w = [torch.randn(t.shape) for t in (out, h, c)]  # by shape, whatever the strides
    loss = (out * w[0]).sum() + (h * w[1]).sum() + (c * w[2]).sum()
    leaves = [x] + (list(hx) if hx is not None else []) + list(module.parameters())
    return torch.autograd.grad(loss, leaves)


@pytest.mark.parametrize("impl", ["torch", "reference", "fused"])
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("cfg", CONFIGS, ids=_ids)
def test_matches_torch(cfg, impl, with_lengths):
    if with_lengths and cfg["unbatched"]:
        pytest.skip("lengths need a batch")
    ref, ours = _make(cfg, impl)
    lengths = torch.tensor([4, 2, 3]) if with_lengths else None
    x, hx = _inputs(cfg, ref, lengths)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    hx1 = tuple(t.clone().requires_grad_() for t in hx) if hx else None
    hx2 = tuple(t.clone().requires_grad_() for t in hx) if hx else None
    out_r, (h_r, c_r) = _torch_run(ref, x1, hx1, lengths, cfg["batch_first"])
    out_o, (h_o, c_o) = ours(x2, hx2, lengths=lengths)
    assert ours.last_path == impl
    torch.testing.assert_close(out_o, out_r, **TOL)
    torch.testing.assert_close(h_o, h_r, **TOL)
    torch.testing.assert_close(c_o, c_r, **TOL)
    grads_r = _all_grads(ref, x1, hx1, out_r, h_r, c_r)
    grads_o = _all_grads(ours, x2, hx2, out_o, h_o, c_o)
    assert len(grads_r) == len(grads_o)
    for g_o, g_r in zip(grads_o, grads_r):
        torch.testing.assert_close(g_o, g_r, **TOL)


def test_default_dispatch_and_large_values():
    """Plain configuration -> torch path; a variant -> compiled (fused where it cannot build or with
    a projection); gates -> reference. Large inputs agree (relative tolerance)."""
    ref, ours = _make(CONFIGS[2], "auto")
    x = 100 * torch.randn(B, T, I)
    out_o, _ = ours(x)
    assert ours.last_path == "torch"
    torch.testing.assert_close(out_o, ref(x)[0], **TOL)
    ours.impl = "reference"
    torch.testing.assert_close(ours(x)[0], ref(x)[0], **TOL)
    m = LSTM(I, H, peephole=True)
    m(torch.randn(T, B, I))
    assert m.last_path == ("compiled" if compiled.available() else "fused")
    m_proj = LSTM(I, H, peephole=True, proj_size=3)
    m_proj(torch.randn(T, B, I))
    assert m_proj.last_path == "fused"
    m(torch.randn(T, B, I), return_gates=True)
    assert m.last_path == "reference"
    with pytest.raises(ValueError):
        LSTM(I, H, peephole=True, impl="torch")(torch.randn(T, B, I))


def test_torch_path_uses_live_parameters():
    """The torch path reads the module's own parameters: an in-place update is seen at once."""
    ref, ours = _make(CONFIGS[0], "torch")
    with torch.no_grad():
        ours.weight_hh_l0.mul_(1.5)
        ref.weight_hh_l0.mul_(1.5)
    x = torch.randn(B, T, I) if ours.batch_first else torch.randn(T, B, I)
    torch.testing.assert_close(ours(x)[0], ref(x)[0], **TOL)


@pytest.mark.parametrize("dtype,proj", [(torch.float32, 0), (torch.float32, 2), (torch.float64, 0)])
def test_torch_path_lengths_unpacked_match_packed(dtype, proj):
    """The torch path runs lengths without packing (pad indicator freezing the state): outputs,
    h_n, c_n and all gradients equal torch's packed run, with long padding (length 1 of 12),
    garbage in the padding, 2 layers, both directions, oneDNN (no projection) and not; padding gets zero gradient."""
    torch.manual_seed(3)
    kw = dict(num_layers=2, bidirectional=True, proj_size=proj, batch_first=True)
    ref = torch.nn.LSTM(I, H, **kw).to(dtype)
    ours = LSTM(I, H, **kw).to(dtype)
    ours.load_state_dict(ref.state_dict())
    lengths = torch.tensor([12, 1, 7, 3])
    x = torch.randn(4, 12, I, dtype=dtype)
    x = torch.where(torch.arange(12)[None, :, None] < lengths[:, None, None], x, 1e3)  # garbage padding
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_r, (h_r, c_r) = ref(pack_padded_sequence(x1, lengths, batch_first=True, enforce_sorted=False))
    out_r, _ = pad_packed_sequence(out_r, batch_first=True, total_length=12)
    out_o, (h_o, c_o) = ours(x2, lengths=lengths)
    assert ours.last_path == "torch"
    tol = TOL if dtype == torch.float32 else dict(atol=1e-12, rtol=1e-12)
    for a, b in ((out_o, out_r), (h_o, h_r), (c_o, c_r)):
        torch.testing.assert_close(a, b, **tol)
    w = [torch.randn_like(t) for t in (out_r, h_r, c_r)]
    sum((a * b).sum() for a, b in zip((out_r, h_r, c_r), w)).backward()
    sum((a * b).sum() for a, b in zip((out_o, h_o, c_o), w)).backward()
    torch.testing.assert_close(x2.grad, x1.grad, **tol)
    assert (x2.grad[1, 1:] == 0).all()
    for (n, p_r), p_o in zip(ref.named_parameters(), ours.parameters()):
        torch.testing.assert_close(p_o.grad, p_r.grad, **tol, msg=n)
