"""lstmkit.nn.SLSTM: the equations, its three paths against each other (outputs, every state, every
gradient), float64 gradcheck, lengths, streaming, gates and the API.

Tolerances: float32 atol = rtol = 1e-5 between paths; float64 atol = rtol = 1e-10; gradcheck eps 1e-6,
atol 1e-5 (torch's defaults for float64).
"""

import math

import pytest
import torch
from torch.func import functional_call

from lstmkit.nn import SLSTM, SGates, SLSTMState, compiled
from lstmkit.nn.slstm import merge_directions

TOL32 = dict(atol=1e-5, rtol=1e-5)
TOL64 = dict(atol=1e-10, rtol=1e-10)
I, H, T, B = 3, 8, 5, 3


def _needs_compiled(impl: str) -> None:
    if impl == "compiled" and not compiled.available():
        pytest.skip("the compiled kernel could not be built here (no C++ compiler?)")


def _state(m, batch, dtype, seed=1):
    """A random initial state (n > 0, as any state the layer itself produces)."""
    g = torch.Generator().manual_seed(seed)
    shape = (m.num_layers * m.num_directions, batch, m.hidden_size)
    h, c, m_ = (torch.randn(shape, generator=g, dtype=dtype) for _ in range(3))
    n = torch.rand(shape, generator=g, dtype=dtype) + 0.5
    return SLSTMState(h, c, n, m_)


def _run(kw, impl, dtype, lengths, given_state=True, seed=0):
    """Outputs, final state and the gradients of a random linear function of all of them with respect
    to the input, the initial state and every parameter."""
    torch.manual_seed(seed)
    m = SLSTM(I, H, impl=impl, **kw).to(dtype)
    bf = m.batch_first
    x = torch.randn((B, T, I) if bf else (T, B, I), dtype=dtype, generator=torch.Generator().manual_seed(2))
    x.requires_grad_()
    st = SLSTMState(*(s.requires_grad_() for s in _state(m, B, dtype))) if given_state else None
    out, fin = m(x, st, lengths=lengths)
    assert m.last_path == impl
    g = torch.Generator().manual_seed(3)
    ws = [torch.randn(t.shape, generator=g, dtype=dtype) for t in (out, *fin)]
    loss = sum((t * w).sum() for t, w in zip((out, *fin), ws))
    leaves = [x, *(st if st is not None else ()), *m.parameters()]
    return out, fin, torch.autograd.grad(loss, leaves)


CASES = [
    dict(heads=4),
    dict(heads=1),
    dict(heads=4, num_layers=2, batch_first=True),
    dict(heads=2, num_layers=2, bidirectional=True),
    dict(heads=4, bidirectional=True, batch_first=True, forget_gate="exp"),
    dict(heads=8, bias=False, forget_bias=None),
]


def _ids(kw):
    return "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("impl", ["fused", "compiled"])
@pytest.mark.parametrize("kw", CASES, ids=_ids)
def test_fast_paths_match_the_reference(kw, impl, with_lengths, dtype):
    """Outputs, h_n, c_n, n_n, m_n and the gradients w.r.t. input, initial state and every parameter."""
    _needs_compiled(impl)
    lengths = torch.tensor([5, 2, 4]) if with_lengths else None
    tol = TOL32 if dtype == torch.float32 else TOL64
    ref = _run(kw, "reference", dtype, lengths)
    fast = _run(kw, impl, dtype, lengths)
    torch.testing.assert_close(fast[0], ref[0], **tol)
    for name, a, b in zip("hcnm", fast[1], ref[1]):
        torch.testing.assert_close(a, b, **tol, msg=f"state {name}")
    assert len(fast[2]) == len(ref[2])
    for k, (a, b) in enumerate(zip(fast[2], ref[2])):
        torch.testing.assert_close(a, b, **tol, msg=f"gradient {k}")


@pytest.mark.parametrize("impl", ["reference", "fused", "compiled"])
def test_zero_initial_state_and_threads(impl):
    """No state given (zeros, m_0 = 0), 2 threads splitting a batch of 20 over the kernel's rows."""
    _needs_compiled(impl)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(0)
        m = SLSTM(I, 16, num_layers=2, heads=4, impl=impl)
        ref = SLSTM(I, 16, num_layers=2, heads=4, impl="reference")
        ref.load_state_dict(m.state_dict())
        x = torch.randn(7, 20, I, requires_grad=True)
        lengths = torch.randint(1, 8, (20,))
        results = []
        for mod in (m, ref):
            out, fin = mod(x, lengths=lengths)
            (out.sum() + fin.c.sum() + fin.n.sum()).backward()
            results.append((out, *fin, x.grad.clone(), *(p.grad for p in mod.parameters())))
            x.grad = None
        for a, b in zip(*results):
            torch.testing.assert_close(a, b, **TOL32)
    finally:
        torch.set_num_threads(threads)


def _pure(m, names):
    def f(x, h0, c0, n0, m0, *params):
        out, fin = functional_call(m, dict(zip(names, params)), (x, (h0, c0, n0, m0)), {"lengths": m._lengths})
        return (out, *fin)

    return f


@pytest.mark.parametrize(
    "impl,kw,with_lengths",
    [
        (impl, kw, lengths)
        for impl in ("reference", "fused", "compiled")
        for kw, lengths in (
            (dict(heads=2), True),
            (dict(heads=1, forget_gate="exp"), False),
            (dict(heads=2, bidirectional=True, num_layers=2), True),
        )
    ],
)
def test_gradcheck(impl, kw, with_lengths):
    """float64 gradcheck (hidden 4, length 3) w.r.t. input, every initial state and every parameter."""
    _needs_compiled(impl)
    torch.manual_seed(0)
    m = SLSTM(2, 4, impl=impl, **kw).double()
    m._lengths = torch.tensor([3, 1]) if with_lengths else None
    names, params = zip(*[(n, p.detach().clone().requires_grad_()) for n, p in m.named_parameters()])
    x = torch.randn(3, 2, 2, dtype=torch.double, requires_grad=True)
    st = [s.requires_grad_() for s in _state(m, 2, torch.double)]
    fast = m.num_layers > 1  # the 2-layer BiSLSTM: a random projection of the Jacobian (seconds, not tens)
    assert torch.autograd.gradcheck(_pure(m, names), (x, *st, *params), eps=1e-6, atol=1e-5, fast_mode=fast)
    assert m.last_path == impl


def test_equations_unstabilised_and_block_diagonal():
    """The reference step against the equations written without the stabiliser (C, N summed
    unscaled, h = o C / N) and with R as a dense block-diagonal matrix: the stabiliser only rescales."""
    torch.manual_seed(0)
    heads, dh = 4, 3
    hid = heads * dh
    m = SLSTM(I, hid, heads=heads, impl="reference").double()
    x = torch.randn(6, 2, I, dtype=torch.double)
    out, fin = m(x)
    w_ih, w_hh, b = m.weight_ih_l0, m.weight_hh_l0, m.bias_l0
    # head-major rows -> gate-major (i|f|z|o over all H units), R as one (4H, H) matrix
    perm = torch.tensor([k * 4 * dh + g * dh + j for g in range(4) for k in range(heads) for j in range(dh)])
    dense = torch.zeros(4 * hid, hid, dtype=torch.double)
    for k in range(heads):
        for g in range(4):
            dense[g * hid + k * dh : g * hid + (k + 1) * dh, k * dh : (k + 1) * dh] = w_hh[k, g * dh : (g + 1) * dh]
    h = C = N = torch.zeros(2, hid, dtype=torch.double)
    hs = []
    for x_t in x:
        zi, zf, zz, zo = (x_t @ w_ih[perm].t() + b[perm] + h @ dense.t()).split(hid, dim=-1)
        C = torch.sigmoid(zf) * C + torch.exp(zi) * torch.tanh(zz)
        N = torch.sigmoid(zf) * N + torch.exp(zi)
        h = torch.sigmoid(zo) * C / N
        hs.append(h)
    torch.testing.assert_close(out, torch.stack(hs), **TOL64)
    # the stabilised states are the unstabilised ones times exp(-m)
    torch.testing.assert_close(fin.c[0] * torch.exp(fin.m[0]), C, **TOL64)
    torch.testing.assert_close(fin.n[0] * torch.exp(fin.m[0]), N, **TOL64)


@pytest.mark.parametrize("impl", ["reference", "fused", "compiled"])
def test_large_pre_activations_stay_finite(impl):
    """Inputs that overflow exp(ĩ) unstabilised (ĩ ~ 1e3): finite, and the paths agree."""
    _needs_compiled(impl)
    torch.manual_seed(0)
    m = SLSTM(I, H, heads=2, impl=impl)
    ref = SLSTM(I, H, heads=2, impl="reference")
    ref.load_state_dict(m.state_dict())
    x = (300 * torch.randn(T, B, I)).requires_grad_()
    out, fin = m(x)
    out_r, fin_r = ref(x)
    assert torch.isfinite(out).all() and all(torch.isfinite(s).all() for s in fin)
    assert float(fin.m.detach().abs().max()) > 100  # really past exp's range
    torch.testing.assert_close(out, out_r, **TOL32)
    g = torch.autograd.grad(out.sum(), x)[0]
    g_r = torch.autograd.grad(out_r.sum(), x)[0]
    torch.testing.assert_close(g, g_r, **TOL32)


@pytest.mark.parametrize("impl", ["reference", "fused", "compiled"])
@pytest.mark.parametrize("kw", [dict(bidirectional=True, num_layers=2), dict(heads=1)])
def test_padding_invariance(kw, impl):
    """A padded batch with lengths gives, for each sequence, what running it alone gives; padded
    outputs are zero; the final state is each sequence's own."""
    _needs_compiled(impl)
    torch.manual_seed(0)
    kw = {"heads": 2, **kw}
    m = SLSTM(I, H, batch_first=True, impl=impl, **kw)
    lengths = torch.tensor([2, 6, 4, 1])
    x = torch.randn(4, 6, I)
    x = torch.where(torch.arange(6)[None, :, None] < lengths[:, None, None], x, 1e3)  # garbage padding
    out, fin = m(x, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        alone, fin_b = m(x[b : b + 1, :n])
        torch.testing.assert_close(out[b : b + 1, :n], alone, **TOL32)
        assert (out[b, n:] == 0).all()
        for s, s_b in zip(fin, fin_b):
            torch.testing.assert_close(s[:, b : b + 1], s_b, **TOL32)


@pytest.mark.parametrize("kw", [dict(heads=4), dict(heads=1, num_layers=2), dict(heads=2, forget_gate="exp")])
def test_step_matches_sequence(kw):
    """Feeding a sequence one step at a time gives the whole-sequence outputs and final state (every
    path), and the step is differentiable."""
    torch.manual_seed(0)
    m = SLSTM(I, H, **kw).eval()
    x = torch.randn(T, B, I)
    st0 = _state(m, B, torch.float32)
    for impl in ("reference", "fused", "compiled") if compiled.available() else ("reference", "fused"):
        m.impl = impl
        out, fin = m(x, st0)
        state, ys = st0, []
        with torch.no_grad():
            for x_t in x.unbind(0):
                y, state = m.step(x_t, state)
                ys.append(y)
        torch.testing.assert_close(torch.stack(ys), out, **TOL32)
        for a, b in zip(state, fin):
            torch.testing.assert_close(a, b, **TOL32)
    y, state = m.step(x[0])  # zeros
    assert isinstance(state, SLSTMState) and state.h.shape == (m.num_layers, B, H)
    y, state = m.step(x[1], state)
    y.sum().backward()
    assert m.weight_hh_l0.grad is not None and m.weight_hh_l0.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        SLSTM(I, H, bidirectional=True).step(x[0])


def _shift(z, d):
    """The state before each step in direction d: (B, T, H), zeros before the first step."""
    zero = torch.zeros_like(z[:, :1])
    return torch.cat([zero, z[:, :-1]], 1) if d == 0 else torch.cat([z[:, 1:], zero], 1)


@pytest.mark.parametrize("with_lengths", [False, True])
def test_gates_reproduce_outputs(with_lengths):
    """The gates (i', f', z, o, c, n, m; each (B, T, H)) satisfy c_t = f' c_{t-1} + i' z,
    n_t = f' n_{t-1} + i', h_t = o c_t / n_t, and asking for them does not change the outputs."""
    torch.manual_seed(0)
    m = SLSTM(I, H, heads=2, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(3, T, I)
    lengths = torch.tensor([T, 2, 4]) if with_lengths else None
    out, fin, gates = m(x, lengths=lengths, return_gates=True)
    assert m.last_path == "reference"
    out2, _ = m(x, lengths=lengths)
    torch.testing.assert_close(out, out2, **TOL32)
    assert len(gates) == 4 and all(isinstance(g, SGates) for g in gates)
    valid = (
        torch.ones(3, T, 1) if lengths is None else (torch.arange(T)[None, :, None] < lengths[:, None, None]).float()
    )
    for d, g in enumerate(gates[-2:]):  # the top layer's directions
        assert all(z.shape == (3, T, H) for z in g) and g.z is g.g
        assert all(0 <= float(z.detach().min()) and float(z.detach().max()) <= 1 for z in (g.i, g.f, g.o))
        if lengths is None:  # the previous state in the direction of travel (zeros before the first step)
            torch.testing.assert_close(g.c, g.f * _shift(g.c, d) + g.i * g.g, **TOL32)
            torch.testing.assert_close(g.n, g.f * _shift(g.n, d) + g.i, **TOL32)
        h = torch.where(valid.bool(), g.o * g.c / torch.where(valid.bool(), g.n, 1.0), 0.0)
        torch.testing.assert_close(out[..., d * H : (d + 1) * H], h, **TOL32)
        assert (g.i * (1 - valid) == 0).all()  # padding: zeros


def test_module_api_and_errors():
    torch.manual_seed(0)
    m = SLSTM(I, H, num_layers=2, heads=4, bidirectional=True)
    names = {n: tuple(p.shape) for n, p in m.named_parameters()}
    assert names["weight_ih_l0"] == (4 * H, I) and names["weight_hh_l0"] == (4, 4 * 2, 2)
    assert names["bias_l1_reverse"] == (4 * H,) and names["weight_ih_l1"] == (4 * H, 2 * H)
    b = m.bias_l0.view(4, 4, 2)  # head, gate, unit: forget biases spread over (3, 6) in every head
    torch.testing.assert_close(b[:, 1], torch.tensor([3.0, 6.0]).expand(4, 2))
    assert float(m.weight_hh_l0.detach().abs().max()) <= 1 / math.sqrt(H)
    m2 = SLSTM(I, H, num_layers=2, heads=4, bidirectional=True)
    m2.load_state_dict(m.state_dict())
    x = torch.randn(T, B, I)
    torch.testing.assert_close(m2(x)[0], m(x)[0])
    assert m(x)[0].shape == (T, B, 2 * H) and m.last_path == ("compiled" if compiled.available() else "fused")
    out, fin = m(x[:, 0])  # unbatched (T, I)
    assert out.shape == (T, 2 * H) and fin.h.shape == (4, H)
    torch.testing.assert_close(out, m(x[:, :1])[0][:, 0], **TOL32)
    assert "heads=4" in repr(m) and "bidirectional=True" in repr(m)
    for bad in (dict(hidden_size=6, heads=4), dict(hidden_size=8, heads=0), dict(hidden_size=8, forget_gate="tanh")):
        with pytest.raises(ValueError):
            SLSTM(I, **bad)
    with pytest.raises(ValueError):
        SLSTM(I, H, bias=False, forget_bias=1.0)
    with pytest.raises(ValueError):
        m(x, lengths=torch.tensor([6, 1, 1]))  # longer than T
    with pytest.raises(ValueError):
        m(torch.randn(T, B, I + 1))
    with pytest.raises(RuntimeError):
        m(x, (torch.zeros(4, B, H),) * 3 + (torch.zeros(2, B, H),))
    with pytest.raises(ValueError):
        SLSTM(I, H, impl="compiled")(x.half())  # the kernel runs float32/64 only


def test_merge_directions_sums_the_unstabilised_states():
    torch.manual_seed(0)
    st = SLSTMState(*(torch.randn(4, 3, H) for _ in range(4)))
    merged = merge_directions(st, num_layers=2)
    assert merged.h.shape == (2, 3, H)
    for layer in range(2):
        fwd, bwd = 2 * layer, 2 * layer + 1
        for name in ("c", "n"):
            s = getattr(st, name)
            unstab = s[fwd] * torch.exp(st.m[fwd]) + s[bwd] * torch.exp(st.m[bwd])
            torch.testing.assert_close(getattr(merged, name)[layer] * torch.exp(merged.m[layer]), unstab)


@pytest.mark.parametrize("impl", ["reference", "fused", "compiled"])
def test_a_tie_in_the_stabiliser_splits_its_gradient(impl):
    """log i = log f + m_{t-1} exactly (ĩ = 0, f̃ = 800: log σ(f̃) = 0 in float64, m_0 = 0): the max's
    gradient is split evenly, as torch.maximum does, on every path (κ = ½ in the kernels)."""
    _needs_compiled(impl)
    m = SLSTM(1, 1, heads=1, bias=False, forget_bias=None, impl=impl).double()
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.tensor([[0.0], [800.0], [0.3], [-0.2]]))  # ĩ, f̃, z̃, õ for x = 1
        m.weight_hh_l0.zero_()
    zero, one = torch.zeros(1, 1, 1, dtype=torch.double), torch.ones(1, 1, 1, dtype=torch.double)
    out, fin = m(one, (zero, zero, one, zero))  # n_0 = 1: not empty, so the max sees log f + m_0 = 0
    assert float(fin.m.detach()) == 0.0
    g = torch.autograd.grad(fin.m.sum(), m.weight_ih_l0)[0]  # = dL/d(ĩ, f̃, z̃, õ)
    torch.testing.assert_close(g[:, 0], torch.tensor([0.5, 0.0, 0.0, 0.0], dtype=torch.double))


@pytest.mark.parametrize("impl", ["fused", "compiled"])
def test_dropout_between_layers_only_in_training(impl):
    _needs_compiled(impl)
    torch.manual_seed(0)
    m = SLSTM(I, H, num_layers=2, dropout=0.5, impl=impl)
    x = torch.randn(T, B, I)
    m.eval()
    a, b = m(x)[0], m(x)[0]
    torch.testing.assert_close(a, b)
    m.train()
    assert not torch.allclose(m(x)[0], a)


def test_paths_choose_and_combinations_are_covered():
    """auto -> compiled (CPU float32/64 where it builds) else fused; gates -> reference."""
    m = SLSTM(I, H)
    x = torch.randn(T, B, I)
    m(x)
    assert m.last_path == ("compiled" if compiled.available() else "fused")
    m(x, return_gates=True)
    assert m.last_path == "reference"
    m.impl = "fused"
    m(x)
    assert m.last_path == "fused"
