"""Gates, padding invariance, state dicts, LSTMCell, PackedSequence, step, config and errors."""

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_sequence

from lstmkit.nn import LSTM, LSTMCell, LSTMConfig, compiled
from lstmkit.nn.cell import LN_EPS

TOL = dict(atol=1e-5, rtol=1e-5)

GATE_CASES = {
    "plain": dict(),
    "peephole": dict(peephole=True),
    "layer_norm": dict(layer_norm=True),
    "proj_bi_2layers": dict(proj_size=2, bidirectional=True, num_layers=2),
}


@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("case", list(GATE_CASES))
def test_gates_reproduce_outputs(case, with_lengths):
    """c_t = f c_{t-1} + i g and h_t = o tanh(c_t) (LN_c, W_hr where configured) recomputed from
    the returned gates give the layer's outputs; asking for gates does not change them."""
    torch.manual_seed(0)
    m = LSTM(3, 4, batch_first=True, **GATE_CASES[case])
    x = torch.randn(3, 5, 3)
    lengths = torch.tensor([5, 2, 4]) if with_lengths else None
    out, (h_n, c_n), gates = m(x, lengths=lengths, return_gates=True)
    out2, _ = m(x, lengths=lengths)
    torch.testing.assert_close(out, out2, **TOL)
    D = m.num_directions
    assert len(gates) == m.num_layers * D
    last = gates[-D:]  # the top layer's directions
    for d, g in enumerate(last):
        assert all(z.shape == (3, 5, 4) for z in g)
        sfx = "_reverse" if d == 1 else ""
        k = m.num_layers - 1
        c_prev = torch.zeros(3, 5, 4)  # c_{t-1} in the direction of travel
        if d == 0:
            c_prev[:, 1:] = g.c[:, :-1]
        else:
            c_prev[:, :-1] = g.c[:, 1:]
        c = g.f * c_prev + g.i * g.g
        valid = (
            torch.ones(3, 5, 1, dtype=torch.bool)
            if lengths is None
            else (torch.arange(5)[None, :, None] < lengths[:, None, None])
        )
        torch.testing.assert_close(g.c, c * valid, **TOL)
        n = c
        if m.layer_norm:
            n = F.layer_norm(c, (4,), getattr(m, f"ln_c_weight_l{k}{sfx}"), getattr(m, f"ln_c_bias_l{k}{sfx}"), LN_EPS)
        h = g.o * torch.tanh(n)
        if m.proj_size:
            h = h @ getattr(m, f"weight_hr_l{k}{sfx}").t()
        h_out = m.out_size
        torch.testing.assert_close(out[..., d * h_out : (d + 1) * h_out], h * valid, **TOL)


@pytest.mark.parametrize("impl", ["torch", "reference", "fused", "compiled"])
@pytest.mark.parametrize(
    "kw",
    [
        dict(bidirectional=True, num_layers=2),
        dict(proj_size=2, bidirectional=True),
        dict(layer_norm=True, peephole=True, zoneout=0.2, bidirectional=True),
    ],
)
def test_padding_invariance(kw, impl):
    """A padded batch with lengths gives, for each sequence, what running it alone gives."""
    if impl == "torch" and len(kw) > 2:
        pytest.skip("variants do not run on the torch path")
    if impl == "compiled" and ("proj_size" in kw or not compiled.available()):
        pytest.skip("no projection on the compiled path (or no C++ compiler here)")
    torch.manual_seed(0)
    m = LSTM(3, 4, batch_first=True, impl=impl, **kw).eval()
    lengths = torch.tensor([2, 6, 4, 1])
    x = torch.randn(4, 6, 3)
    x = x * (torch.arange(6)[None, :, None] < lengths[:, None, None]) + 7.0 * (
        torch.arange(6)[None, :, None] >= lengths[:, None, None]
    )
    out, (h_n, c_n) = m(x, lengths=lengths)
    assert m.last_path == impl
    for b, n in enumerate(lengths.tolist()):
        o_b, (h_b, c_b) = m(x[b : b + 1, :n])
        torch.testing.assert_close(out[b, :n], o_b[0], **TOL)
        assert (out[b, n:] == 0).all()
        torch.testing.assert_close(h_n[:, b], h_b[:, 0], **TOL)
        torch.testing.assert_close(c_n[:, b], c_b[:, 0], **TOL)


def test_state_dicts_load_both_ways():
    torch.manual_seed(0)
    kw = dict(num_layers=2, bidirectional=True, proj_size=3)
    ref, ours = torch.nn.LSTM(4, 5, **kw), LSTM(4, 5, **kw)
    assert {k: v.shape for k, v in ref.state_dict().items()} == {k: v.shape for k, v in ours.state_dict().items()}
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(6, 2, 4)
    torch.testing.assert_close(ours(x)[0], ref(x)[0], **TOL)
    torch.manual_seed(1)
    ours2 = LSTM(4, 5, **kw)
    ref.load_state_dict(ours2.state_dict())
    torch.testing.assert_close(ours2(x)[0], ref(x)[0], **TOL)
    # a variant keeps torch's names and adds its own
    ln = LSTM(4, 5, layer_norm=True, peephole=True)
    missing = ln.load_state_dict(torch.nn.LSTM(4, 5).state_dict(), strict=False).missing_keys
    assert set(missing) == {"weight_ch_l0"} | {f"ln_{p}_{w}_l0" for p in ("ih", "hh", "c") for w in ("weight", "bias")}


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_matches_torch(bias):
    torch.manual_seed(0)
    ref, ours = torch.nn.LSTMCell(3, 4, bias=bias), LSTMCell(3, 4, bias=bias)
    ours.load_state_dict(ref.state_dict())
    ref.load_state_dict(ours.state_dict())
    x, h, c = torch.randn(2, 3, requires_grad=True), torch.randn(2, 4), torch.randn(2, 4)
    for hx in (None, (h, c)):
        a, b = ours(x, hx), ref(x, hx)
        torch.testing.assert_close(a, b, **TOL)
        ga = torch.autograd.grad(a[0].sum() + 2 * a[1].sum(), [x, *ours.parameters()])
        gb = torch.autograd.grad(b[0].sum() + 2 * b[1].sum(), [x, *ref.parameters()])
        for u, v in zip(ga, gb):
            torch.testing.assert_close(u, v, **TOL)
    torch.testing.assert_close(ours(x[0], (h[0], c[0])), ref(x[0], (h[0], c[0])), **TOL)  # unbatched
    assert LSTMCell(3, 4, layer_norm=True, peephole=True)(x)[0].shape == (2, 4)


@pytest.mark.parametrize("impl", ["torch", "reference", "fused", "compiled"])
def test_packed_sequence_input(impl):
    if impl == "compiled" and not compiled.available():
        pytest.skip("no C++ compiler here")
    torch.manual_seed(0)
    ref = torch.nn.LSTM(3, 4, bidirectional=True)
    ours = LSTM(3, 4, bidirectional=True, impl=impl)
    ours.load_state_dict(ref.state_dict())
    seqs = [torch.randn(n, 3) for n in (2, 5, 3)]
    packed = pack_sequence(seqs, enforce_sorted=False)
    hx = (torch.randn(2, 3, 4), torch.randn(2, 3, 4))
    out_o, (h_o, c_o) = ours(packed, hx)
    out_r, (h_r, c_r) = ref(packed, hx)
    torch.testing.assert_close(out_o.data, out_r.data, **TOL)
    torch.testing.assert_close(out_o.batch_sizes, out_r.batch_sizes)
    torch.testing.assert_close(h_o, h_r, **TOL)
    torch.testing.assert_close(c_o, c_r, **TOL)


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(num_layers=2),
        dict(proj_size=2, num_layers=2),
        dict(bias=False),
        dict(layer_norm=True, peephole=True),
        dict(zoneout=0.3, variational_dropout=0.2),
    ],
)
def test_step_matches_sequence(kw):
    """Feeding a sequence one step at a time gives the whole-sequence outputs and final state."""
    torch.manual_seed(0)
    m = LSTM(3, 4, **kw).eval()
    x = torch.randn(5, 2, 3)
    out, (h_n, c_n) = m(x)
    state, ys = None, []
    with torch.no_grad():
        for x_t in x.unbind(0):
            y, state = m.step(x_t, state)
            ys.append(y)
    torch.testing.assert_close(torch.stack(ys), out, **TOL)
    torch.testing.assert_close(state[0], h_n, **TOL)
    torch.testing.assert_close(state[1], c_n, **TOL)


@pytest.mark.parametrize("size", [(3, 4), (100, 100)])
@pytest.mark.parametrize(
    "batch,dtype", [(1, torch.float32), (3, torch.float32), (9, torch.float32), (1, torch.float64), (9, torch.float64)]
)
def test_compiled_step_matches_torch_cell_and_follows_weight_updates(batch, dtype, size):
    """Under no_grad a plain step runs the compiled kernel on its cached unit-blocked weights: same
    result as torch's cell (the grad-enabled path), one layer and two, and a new result after an
    in-place weight update (the cache follows the parameters' version counters). H = 100 is six full
    blocks of 16 units and a partial one, large enough for the batch-1 step to split its blocks
    over two threads. Batch 9 takes the batched-GEMM branch, 1 and 3 the kernel's own products."""
    if not compiled.available():
        pytest.skip("the compiled kernel could not be built here (no C++ compiler?)")
    torch.manual_seed(0)
    inp, hidden = size
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for layers in (1, 2):
            m = LSTM(inp, hidden, num_layers=layers).to(dtype).eval()
            x = torch.randn(batch, inp, dtype=dtype)
            state = tuple(torch.randn(layers, batch, hidden, dtype=dtype) for _ in range(2))
            for _ in range(2):
                with torch.no_grad():
                    y_fast, (h_fast, c_fast) = m.step(x, state)
                y_ref, (h_ref, c_ref) = m.step(x, state)  # grad enabled: torch's _VF.lstm_cell
                for a, b in ((y_fast, y_ref), (h_fast, h_ref), (c_fast, c_ref)):
                    assert a.shape == b.shape
                    torch.testing.assert_close(a, b, **TOL)
                with torch.no_grad():
                    m.weight_hh_l0.mul_(-1.5)  # the second round must see this
                    m.bias_ih_l0.add_(0.5)
    finally:
        torch.set_num_threads(threads)


def test_step_rejects_bidirectional_and_keeps_grad():
    with pytest.raises(ValueError):
        LSTM(3, 4, bidirectional=True).step(torch.randn(2, 3))
    m = LSTM(3, 4)
    y, _ = m.step(torch.randn(2, 3))
    y.sum().backward()
    assert m.weight_ih_l0.grad is not None and m.weight_ih_l0.grad.abs().sum() > 0


def test_config_round_trip_and_errors():
    m = LSTM(3, 4, num_layers=2, dropout=0.1, layer_norm=True, zoneout=(0.1, 0.2), forget_bias=1.0)
    cfg = m.config
    assert isinstance(cfg, LSTMConfig) and cfg.zoneout == (0.1, 0.2)
    m2 = LSTM.from_config(cfg)
    assert m2.config == cfg and set(m2.state_dict()) == set(m.state_dict())
    x = torch.randn(4, 2, 3)
    with pytest.raises(ValueError):
        m(x, lengths=torch.tensor([5, 1]))  # longer than T
    with pytest.raises(ValueError):
        m(x, lengths=torch.tensor([4]))  # wrong batch size
    with pytest.raises(ValueError):
        LSTM(3, 4, variational_dropout=1.0)
    with pytest.raises(ValueError):
        LSTM(3, 4, zoneout=(0.1, 0.2, 0.3))
