"""The variants: gradcheck, the fused and compiled paths against the reference, the stochastic variants."""

import pytest
import torch
from torch.func import functional_call

from lstmkit.nn import LSTM, compiled
from lstmkit.nn.cell import cell_step, input_projection

VARIANTS = {
    "layer_norm": dict(layer_norm=True),
    "peephole": dict(peephole=True),
    "variational": dict(variational_dropout=0.4),
    "weight_drop": dict(weight_drop=0.4),
    "zoneout": dict(zoneout=(0.3, 0.2)),
    "forget_bias": dict(forget_bias=1.0),
    "proj": dict(proj_size=2),
    "all": dict(
        layer_norm=True,
        peephole=True,
        variational_dropout=0.3,
        weight_drop=0.3,
        zoneout=(0.2, 0.3),
        proj_size=3,
        forget_bias=1.0,
    ),
}


def _seeded_call(m, names, lengths):
    """The module as a pure function of (x, h0, c0, *params), same random masks at every call."""

    def f(x, h0, c0, *params):
        torch.manual_seed(123)
        out, (h, c) = functional_call(m, dict(zip(names, params)), (x, (h0, c0)), {"lengths": lengths})
        return out, h, c

    return f


GRADCHECK_CASES = (
    [(v, lengths, "fused") for v in VARIANTS for lengths in (False, True)]
    + [(v, True, "reference") for v in VARIANTS]
    + [(v, lengths, "compiled") for v in VARIANTS if v != "proj" for lengths in (False, True)]
)


def _needs_compiled(impl: str) -> None:
    """The compiled kernel is built on first use; without a C++ toolchain its tests cannot run."""
    if impl == "compiled" and not compiled.available():
        pytest.skip("the compiled kernel could not be built here (no C++ compiler?)")


@pytest.mark.parametrize("variant,with_lengths,impl", GRADCHECK_CASES)
def test_gradcheck(variant, with_lengths, impl):
    """float64 gradcheck (hidden 4, length 3) w.r.t. input, initial state and every parameter."""
    _needs_compiled(impl)
    torch.manual_seed(0)
    kw = dict(VARIANTS[variant])
    if impl == "compiled":
        kw.pop("proj_size", None)  # the compiled kernel has no projection (the fused path does it)
    m = LSTM(2, 4, impl=impl, **kw).double().train()
    names, params = zip(*[(n, p.detach().clone().requires_grad_()) for n, p in m.named_parameters()])
    lengths = torch.tensor([3, 1]) if with_lengths else None
    x = torch.randn(3, 2, 2, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(1, 2, m.out_size, dtype=torch.double, requires_grad=True)
    c0 = torch.randn(1, 2, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(
        _seeded_call(m, names, lengths), (x, h0, c0, *params), eps=1e-6, atol=1e-5, fast_mode=True
    )
    assert m.last_path == impl


FUSED_CASES = [
    (dict(VARIANTS["all"], num_layers=2, bidirectional=True), True),
    (dict(VARIANTS["all"], num_layers=2, bidirectional=True), False),
    (dict(layer_norm=True, bidirectional=True), True),
    (dict(peephole=True, zoneout=0.2, num_layers=2), True),
    (dict(variational_dropout=0.3, proj_size=2, bidirectional=True), True),
    (dict(layer_norm=True, weight_drop=0.3, batch_first=True), False),
] + [  # every variant the compiled path runs, bidirectional (its reverse direction runs backwards in time)
    (dict(VARIANTS["all"], proj_size=0, num_layers=2, bidirectional=True, batch_first=True), lengths)
    for lengths in (True, False)
]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("kw,with_lengths", FUSED_CASES)
def test_fused_matches_reference(kw, with_lengths, training):
    """Outputs, final states and all gradients of the fused and compiled paths equal the reference path."""
    torch.manual_seed(0)
    m = LSTM(3, 5, **kw).double().train(training)
    shape = (4, 5, 3) if m.batch_first else (5, 4, 3)
    x = torch.randn(shape, dtype=torch.double, requires_grad=True)
    n = m.num_layers * m.num_directions
    hx = (
        torch.randn(n, 4, m.out_size, dtype=torch.double, requires_grad=True),
        torch.randn(n, 4, 5, dtype=torch.double, requires_grad=True),
    )
    lengths = torch.tensor([5, 2, 1, 4]) if with_lengths else None
    results = {}
    impls = ["reference", "fused"] + (["compiled"] if m.proj_size == 0 and compiled.available() else [])
    for impl in impls:
        m.impl = impl
        torch.manual_seed(7)
        out, (h, c) = m(x, hx, lengths=lengths)
        assert m.last_path == impl
        torch.manual_seed(8)
        loss = (out * torch.randn(out.shape, dtype=out.dtype)).sum() + (h**2).sum() + (c * 3).sum()
        results[impl] = [out, h, c] + list(torch.autograd.grad(loss, [x, *hx, *m.parameters()]))
    for impl in impls[1:]:
        for a, b in zip(results[impl], results["reference"]):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


def test_compiled_batch_split_across_threads():
    """A batch of several 8-row chunks on two threads (each thread with its own gradient
    accumulators and scratch rows in the kernel) gives exactly the reference path's results."""
    _needs_compiled("compiled")
    torch.manual_seed(0)
    m = (
        LSTM(5, 16, bidirectional=True, layer_norm=True, peephole=True, zoneout=(0.2, 0.1), variational_dropout=0.2)
        .double()
        .train()
    )
    x = torch.randn(7, 40, 5, dtype=torch.double, requires_grad=True)
    lengths = torch.randint(1, 8, (40,))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        results = {}
        for impl in ("reference", "compiled"):
            m.impl = impl
            torch.manual_seed(3)
            out, (h, c) = m(x, lengths=lengths)
            grads = torch.autograd.grad((out**2).sum() + h.sum() + c.sum(), [x, *m.parameters()])
            results[impl] = [out, h, c, *grads]
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(results["compiled"], results["reference"]):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("impl", ["reference", "fused", "compiled"])
@pytest.mark.parametrize("variant", ["variational", "weight_drop", "zoneout"])
def test_identity_at_p0(variant, impl):
    """A stochastic variant with p = 0 computes exactly torch.nn.LSTM (in training mode)."""
    _needs_compiled(impl)
    torch.manual_seed(0)
    kw = {k: (0.0 if not isinstance(v, tuple) else (0.0, 0.0)) for k, v in VARIANTS[variant].items()}
    ref = torch.nn.LSTM(3, 5, num_layers=2).train()
    m = LSTM(3, 5, num_layers=2, impl=impl, **kw).train()
    m.load_state_dict(ref.state_dict())
    x = torch.randn(4, 2, 3)
    out, (h, c) = m(x)
    out_r, (h_r, c_r) = ref(x)
    torch.testing.assert_close(out, out_r, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c, c_r, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", ["variational", "weight_drop", "zoneout", "all"])
def test_eval_deterministic_train_random(variant):
    """In eval mode every stochastic variant is deterministic; in training mode it draws masks."""
    torch.manual_seed(0)
    m = LSTM(3, 5, num_layers=2, dropout=0.3, **VARIANTS[variant])
    x = torch.randn(6, 4, 3)
    m.eval()
    with torch.no_grad():
        torch.manual_seed(1)
        a = m(x)[0]
        torch.manual_seed(2)
        b = m(x)[0]
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    m.train()
    with torch.no_grad():
        assert not torch.allclose(m(x)[0], m(x)[0])
        assert not torch.allclose(m(x)[0], a)


def test_zoneout_eval_is_expectation():
    """Eval zoneout: c_t = p_c c_{t-1} + (1 - p_c) c̃_t and h likewise, step by step."""
    torch.manual_seed(0)
    pc, ph = 0.3, 0.2
    m = LSTM(3, 4, zoneout=(pc, ph), impl="fused").eval()
    x = torch.randn(5, 2, 3)
    out, (h_n, c_n) = m(x)
    w = m.cell_weights(0, 0)
    h, c = torch.zeros(2, 4), torch.zeros(2, 4)
    for t in range(5):
        s = cell_step(input_projection(x[t], w), h, c, w)
        c = pc * c + (1 - pc) * s.c
        h = ph * h + (1 - ph) * s.h
        torch.testing.assert_close(out[t], h, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c_n[0], c, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("p", [0.03, 0.1, 0.5, 0.9])
def test_zoneout_masks_have_probability_p(p):
    """The counter-hash masks: {0, 1}, mean p overall and per step, unit and batch row, no
    correlation between neighbours, a new mask for a new seed."""
    from lstmkit.nn.dropout import zoneout_keep

    torch.manual_seed(0)
    draw = zoneout_keep(p, training=True)
    keep = draw.mask(200, 16, 101, torch.zeros(1, dtype=torch.float64))  # 323,200 draws
    assert keep.shape == (200, 16, 101) and keep.dtype == torch.float64 and keep.is_contiguous()
    assert set(keep.unique().tolist()) <= {0.0, 1.0}
    sd = (p * (1 - p) / keep.numel()) ** 0.5
    assert abs(keep.mean().item() - p) < 5 * sd
    for dim, n in ((0, 200), (1, 16), (2, 101)):  # marginal means along each axis
        means = keep.mean(dim=tuple(d for d in range(3) if d != dim))
        assert (means - p).abs().max() < 5 * sd * n**0.5
    flat = keep.view(-1) - p
    for lag in (1, 101, 16 * 101):  # neighbouring unit, batch row, step
        corr = (flat[:-lag] * flat[lag:]).mean() / (p * (1 - p))
        assert abs(corr.item()) < 5 / keep.numel() ** 0.5
    other = zoneout_keep(p, training=True).mask(200, 16, 101, keep)
    assert not torch.equal(other, keep)
    assert zoneout_keep(p, training=False) == p and zoneout_keep(0.0, training=True) is None


def test_mul32_is_multiplication_mod_2_32():
    from lstmkit.nn.dropout import _mul32

    torch.manual_seed(0)
    x = torch.randint(0, 2**32, (10_000,), dtype=torch.int64)
    for c in (0x9E3779B1, 0x85EBCA6B, 0xC2B2AE35, 2**32 - 1):
        assert _mul32(x, c).tolist() == [(v * c) % 2**32 for v in x.tolist()]


@pytest.mark.parametrize("impl", ["reference", "fused"])
def test_variational_mask_same_at_every_step(impl):
    """One mask per sequence: the masks drawn have no time dimension, and a hand-written loop that
    applies that one mask at every step reproduces the layer's output exactly."""
    torch.manual_seed(0)
    m = LSTM(3, 4, variational_dropout=0.5, impl=impl).train()
    x = torch.randn(6, 2, 3)
    drawn = []
    sample = m._sample_noise

    def recording(*args, **kwargs):
        noise = sample(*args, **kwargs)
        drawn.append(noise)
        return noise

    m._sample_noise = recording
    with torch.no_grad():
        out, _ = m(x)
    (noise,) = drawn
    m_in, m_h = noise.input_masks[0], noise.h_masks[0]
    assert m_in.shape == (2, 3) and m_h.shape == (2, 4)
    assert set(m_in.unique().tolist()) <= {0.0, 2.0} and (m_in == 0).any() and (m_h == 0).any()
    w = m.cell_weights(0, 0)
    h, c = torch.zeros(2, 4), torch.zeros(2, 4)
    with torch.no_grad():
        for t in range(6):
            s = cell_step(input_projection(x[t] * m_in, w), h * m_h, c, w)
            h, c = s.h, s.c
            torch.testing.assert_close(out[t], h, atol=1e-6, rtol=1e-5)


def test_weight_drop_one_mask_per_forward():
    """Weight drop zeroes the same W_hh entries at every step: with x = 0 and h0 = e_j the
    recurrent gradient sees a single dropped matrix; two forwards draw different masks."""
    torch.manual_seed(0)
    m = LSTM(2, 3, weight_drop=0.5, bias=False, impl="fused").train()
    x = torch.zeros(4, 1, 2)
    torch.manual_seed(5)
    a = m(x, (torch.ones(1, 1, 3), torch.ones(1, 1, 3)))[0]
    torch.manual_seed(5)
    b = m(x, (torch.ones(1, 1, 3), torch.ones(1, 1, 3)))[0]
    torch.testing.assert_close(a, b, atol=0, rtol=0)  # same seed, same mask
    torch.manual_seed(5)
    dropped = torch.nn.functional.dropout(m.weight_hh_l0, 0.5, training=True)
    ref = LSTM(2, 3, bias=False)
    ref.load_state_dict({"weight_ih_l0": m.weight_ih_l0, "weight_hh_l0": dropped})
    torch.testing.assert_close(a, ref(x, (torch.ones(1, 1, 3), torch.ones(1, 1, 3)))[0], atol=1e-6, rtol=1e-5)


def test_forget_bias_initialisation():
    m = LSTM(3, 4, num_layers=2, bidirectional=True, forget_bias=2.0)
    for name in ("l0", "l1_reverse"):
        total = getattr(m, f"bias_ih_{name}") + getattr(m, f"bias_hh_{name}")
        torch.testing.assert_close(total[4:8], torch.full((4,), 2.0))
    assert m.last_path is None and m.torch_computable()  # an initialisation, not a variant
    with pytest.raises(ValueError):
        LSTM(3, 4, bias=False, forget_bias=1.0)


@pytest.mark.parametrize("with_lengths", [False, True])
def test_weight_drop_runs_on_torch_kernel(with_lengths):
    """Weight drop in training runs torch's kernel on the dropped W_hh and computes what the fused
    path computes with the same masks (same seed): outputs, states and gradients."""
    m = LSTM(3, 5, num_layers=2, bidirectional=True, weight_drop=0.4).train()
    x = torch.randn(6, 4, 3, requires_grad=True)
    lengths = torch.tensor([6, 2, 5, 1]) if with_lengths else None
    results = {}
    for impl in ("auto", "fused"):
        m.impl = impl
        torch.manual_seed(11)
        out, (h, c) = m(x, lengths=lengths)
        results[impl] = [out, h, c] + list(
            torch.autograd.grad(out.sum() + h.sum() + (c**2).sum(), [x, *m.parameters()])
        )
        assert m.last_path == ("torch" if impl == "auto" else "fused")
    for a, b in zip(results["auto"], results["fused"]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_auto_falls_back_to_fused_without_the_kernel(monkeypatch):
    """Where the C++ kernel cannot be built (or LSTMKIT_COMPILED=0), "auto" runs the Python fused
    path, which computes the same function; forcing impl="compiled" is then an error."""
    monkeypatch.setenv("LSTMKIT_COMPILED", "0")
    assert compiled._load() is False
    monkeypatch.setitem(compiled._state, "ok", False)
    x = torch.randn(5, 2, 3)
    m = LSTM(3, 4, layer_norm=True)
    m(x)
    assert m.last_path == "fused"
    with pytest.raises(ValueError, match="compiled"):
        LSTM(3, 4, layer_norm=True, impl="compiled")(x)


def test_plain_step_never_builds_the_kernel(monkeypatch, tmp_path):
    """A plain LSTM's streaming step uses the compiled kernel only where a build is cached: with
    none, it runs torch's cell at once instead of starting a compiler."""
    monkeypatch.setattr(compiled, "_state", {})
    monkeypatch.setattr(compiled, "_built_path", lambda: tmp_path / "absent.so")
    monkeypatch.setattr(compiled, "_load", lambda: pytest.fail("step() must not build the kernel"))
    m = LSTM(3, 4).eval()
    torch.manual_seed(0)
    x = torch.randn(2, 3)
    with torch.no_grad():
        y, (h, c) = m.step(x)
    y_ref, _ = m.step(x)  # grad enabled: torch's cell either way
    torch.testing.assert_close(y, y_ref)
    assert compiled.available(build=False) is False and "ok" not in compiled._state
