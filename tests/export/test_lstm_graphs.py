"""The LSTM core as ONNX graphs: every variant, both graph forms, lengths, both directions, and the step
graph, against lstmkit.nn.LSTM's reference path (the gate equations step by step), max abs difference
<= 1e-4 on outputs and states.

The graphs are a transcription of the reference path. With layer norm, float32 rounding differences of
one ulp (torch's fused layer-norm kernel against the graph's mean/variance/sqrt) grow over hundreds of
steps: torch's own float32 result is then itself more than 1e-4 from the float64 one. There the bound is
twice torch's own float32 error (measured against the float64 reference in the same test): the export
may not be further from the exact function than torch is."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmkit.export.trace import run, to_onnx
from lstmkit.nn import LSTM

VARIANTS = {
    "plain": {},
    "bi-2-layers": {"bidirectional": True, "num_layers": 2},
    "peephole-bi": {"peephole": True, "bidirectional": True},
    "layer-norm-bi": {"layer_norm": True, "bidirectional": True},
    "projection-2-layers": {"proj_size": 5, "num_layers": 2},
    "zoneout-bi": {"zoneout": (0.2, 0.1), "bidirectional": True},
    "everything": {"layer_norm": True, "peephole": True, "zoneout": 0.1, "num_layers": 2},
}
TOL = 1e-4


class Sequence(torch.nn.Module):
    def __init__(self, lstm: LSTM, lengths: bool) -> None:
        super().__init__()
        self.lstm, self.lengths = lstm, lengths

    def forward(self, x, lengths, h0, c0):
        y, (h, c) = self.lstm(x, (h0, c0), lengths=lengths if self.lengths else None)
        return y, h, c


class Step(torch.nn.Module):
    def __init__(self, lstm: LSTM) -> None:
        super().__init__()
        self.lstm = lstm

    def forward(self, x, h, c):
        y, (h, c) = self.lstm.step(x, (h, c))
        return y, h, c


def _lstm(kw: dict) -> LSTM:
    torch.manual_seed(0)
    m = LSTM(6, 8, batch_first=True, impl="reference", **kw).eval()
    with torch.no_grad():  # layer norms and peepholes away from their initial 1 / 0
        for name, p in m.named_parameters():
            if name.startswith(("ln_", "weight_ch")):
                p.add_(0.1 * torch.randn_like(p))
    return m


def _float64(m: LSTM) -> LSTM:
    """The same module in float64 (the exact function, up to 1e-16)."""
    twin = LSTM.from_config(m.config).double().eval()
    twin.load_state_dict({k: v.double() for k, v in m.state_dict().items()})
    return twin


def _state(m: LSTM, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = m.num_layers * m.num_directions
    return 0.5 * torch.randn(n, batch, m.out_size), 0.5 * torch.randn(n, batch, m.hidden_size)


OPERATOR_OK = [n for n, kw in VARIANTS.items() if not ({"layer_norm", "proj_size", "zoneout"} & set(kw))]


@pytest.mark.parametrize(
    ("name", "graph"), [(n, "scan") for n in VARIANTS] + [(n, "op") for n in OPERATOR_OK]
)  # "op": ONNX's LSTM operator (what --graph auto picks for these); the other variants always scan
def test_whole_sequence_graph_matches_the_core(name, graph):
    m = _lstm(VARIANTS[name])
    for with_lengths in (True, False):
        h0, c0 = _state(m, 2)
        onx = to_onnx(
            Sequence(m, with_lengths),
            (torch.randn(2, 5, 6), torch.tensor([5, 3]), h0, c0),
            ["x", "lengths", "h0", "c0"],
            ["y", "h", "c"],
            {"x": {0: "B", 1: "T"}, "lengths": {0: "B"}, "h0": {1: "B"}, "c0": {1: "B"}},
            mode=graph,  # type: ignore[arg-type]
        )
        for batch, steps in [(1, 1), (5, 7), (5, 300)] if with_lengths else [(1, 1), (5, 7)]:
            x = torch.randn(batch, steps, 6)
            lengths = torch.randint(1, steps + 1, (batch,))
            lengths[0] = steps
            h0, c0 = _state(m, batch)
            lens = lengths if with_lengths else None
            with torch.no_grad():
                want = m(x, (h0, c0), lengths=lens)
                exact = _float64(m)(x.double(), (h0.double(), c0.double()), lengths=lens) if m.layer_norm else want
            feeds = {"x": x.numpy(), "lengths": lengths.numpy(), "h0": h0.numpy(), "c0": c0.numpy()}
            got = run(onx, {k: v for k, v in feeds.items() if with_lengths or k != "lengths"})
            for a, b, e in zip(got, (want[0], *want[1]), (exact[0], *exact[1])):
                assert a.shape == tuple(b.shape)
                bound = TOL if not m.layer_norm else max(TOL, 2 * float((b.double() - e).abs().max()))
                assert np.abs(a - b.numpy()).max() <= bound, (name, graph, with_lengths, batch, steps)


@pytest.mark.parametrize("name", [n for n, kw in VARIANTS.items() if not kw.get("bidirectional")])
def test_a_50_step_stream_through_the_step_graph_equals_the_sequence(name):
    m = _lstm(VARIANTS[name])
    L, B = m.num_layers, 3
    onx = to_onnx(
        Step(m),
        (torch.randn(2, 6), torch.zeros(L, 2, m.out_size), torch.zeros(L, 2, m.hidden_size)),
        ["x", "h", "c"],
        ["y", "h1", "c1"],
        {"x": {0: "B"}, "h": {1: "B"}, "c": {1: "B"}},
    )
    x = torch.randn(B, 50, 6)
    with torch.no_grad():
        want, (h_n, c_n) = m(x)
    h = np.zeros((L, B, m.out_size), np.float32)
    c = np.zeros((L, B, m.hidden_size), np.float32)
    ys = []
    for t in range(50):
        y, h, c = run(onx, {"x": x[:, t].numpy(), "h": h, "c": c})
        ys.append(y)
    assert np.abs(np.stack(ys, 1) - want.numpy()).max() <= TOL
    assert np.abs(h - h_n.numpy()).max() <= TOL and np.abs(c - c_n.numpy()).max() <= TOL


def test_the_operator_refuses_what_it_cannot_compute():
    m = _lstm({"layer_norm": True})
    with pytest.raises(ValueError, match="cannot compute"):
        to_onnx(
            Step(m) if False else Sequence(m, False),
            (torch.randn(1, 3, 6), torch.tensor([3]), *_state(m, 1)),
            ["x", "lengths", "h0", "c0"],
            ["y", "h", "c"],
            {},
            mode="op",
        )
