"""ONNX graphs of :class:`lstmkit.nn.LSTM`: whole sequences and single steps, every variant.

A layer's weights (torch's packing: ``weight_ih`` (4H, I) with gate blocks i|f|g|o, ``weight_hh``
(4H, H_out), biases (4H,), ``weight_hr`` (P, H), peepholes ``weight_ch`` (3, H) rows c_i, c_f, c_o,
layer norms over 4H, 4H and H) become one of two graphs:

* ``"op"``: ONNX's ``LSTM`` operator (plain cells and peepholes): W (D, 4H, I), R (D, 4H, H) and
  B (D, 8H) = [W_b; R_b] with the gate blocks reordered to ONNX's i|o|f|c, P (D, 3H) = [p_i; p_o; p_f];
  ``sequence_lens`` (B,) gives each sequence's length (outputs past it are 0, Y_h/Y_c its last state).
* ``"scan"``: the input projection of all T steps as one MatMul (T, B, I) @ (I, 4H), then a ``Scan``
  over time whose body is :func:`cell_nodes`, the gate equations of :mod:`lstmkit.nn.cell` written as
  ONNX nodes (layer norm, peephole, projection and inference-time zoneout included). With lengths the
  body freezes the state past each sequence's end (``Where``) and writes zeros there; the reverse
  direction runs on each sequence reversed within its length (``GatherElements`` with the same index
  as :func:`lstmkit.nn.sequence.reverse_index`, its own inverse).

Shapes: T steps, B batch, I input, H hidden, H_out = P or H, L layers, D directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmkit.export.graph import Builder

LN_EPS = 1e-5  # lstmkit.nn.cell.LN_EPS


@dataclass
class LayerWeights:
    """One layer-direction's parameters as float32 arrays (None where the variant is off)."""

    w_ih: np.ndarray  # (4H, I)
    w_hh: np.ndarray  # (4H, H_out)
    bias: np.ndarray | None  # (4H,) = b_ih + b_hh
    b_ih: np.ndarray | None
    b_hh: np.ndarray | None
    w_hr: np.ndarray | None = None  # (P, H)
    peephole: np.ndarray | None = None  # (3, H)
    ln: dict[str, tuple[np.ndarray, np.ndarray]] | None = None  # "ih" | "hh" | "c" -> (γ, β)
    zoneout: tuple[float, float] = (0.0, 0.0)  # (p_c, p_h): eval keeps p of the old state

    @property
    def hidden(self) -> int:
        return self.w_ih.shape[0] // 4

    @property
    def plain(self) -> bool:
        """What ONNX's LSTM operator computes (it has peepholes, not the other variants)."""
        return self.w_hr is None and self.ln is None and not any(self.zoneout)


def _ifgo_to_iofc(w: np.ndarray) -> np.ndarray:
    i, f, g, o = np.split(w, 4, axis=0)
    return np.concatenate([i, o, f, g], axis=0)


def op_layer(b: Builder, ws: list[LayerWeights], x: str, lens: str | None, h0: str, c0: str) -> tuple[str, str, str]:
    """ONNX ``LSTM`` for one layer (D = len(ws) directions): x (T, B, I) -> y (T, B, D*H), h_n, c_n (D, B, H)."""
    hid = ws[0].hidden
    W = b.const(np.stack([_ifgo_to_iofc(w.w_ih) for w in ws]), "W")  # (D, 4H, I)
    R = b.const(np.stack([_ifgo_to_iofc(w.w_hh) for w in ws]), "R")  # (D, 4H, H)
    zeros = np.zeros(4 * hid, np.float32)
    bias = lambda v: _ifgo_to_iofc(v if v is not None else zeros)  # noqa: E731
    B = b.const(np.stack([np.concatenate([bias(w.b_ih), bias(w.b_hh)]) for w in ws]), "B")  # (D, 8H)
    inputs = [x, W, R, B, "" if lens is None else b.op("Cast", lens, to=6), h0, c0]  # sequence_lens int32
    if ws[0].peephole is not None:
        p = [np.concatenate([w.peephole[0], w.peephole[2], w.peephole[1]]) for w in ws if w.peephole is not None]
        inputs.append(b.const(np.stack(p), "P"))  # (D, 3H): p_i | p_o | p_f
    direction = "bidirectional" if len(ws) == 2 else "forward"
    Y, h_n, c_n = b.op("LSTM", *inputs, outputs=3, hidden_size=hid, direction=direction)  # Y (T, D, B, H)
    y = b.op("Transpose", Y, perm=[0, 2, 1, 3])  # (T, B, D, H)
    y = b.op("Reshape", y, b.const([0, 0, -1], "shape"))  # (T, B, D*H)
    return y, h_n, c_n


def _layer_norm(b: Builder, x: str, norm: tuple[np.ndarray, np.ndarray], extra_bias: np.ndarray | None = None) -> str:
    """``γ ⊙ (x − mean) / sqrt(var + eps) + β (+ extra_bias)`` over the last axis, two-pass (mean, then the
    variance of the centred values) as torch computes it: ONNX's fused LayerNormalization drifts further
    from torch over hundreds of recurrent steps."""
    gamma, beta = norm
    beta = beta if extra_bias is None else beta + extra_bias
    centred = b.op("Sub", x, b.op("ReduceMean", x, axes=[-1]))
    var = b.op("ReduceMean", b.op("Mul", centred, centred), axes=[-1])
    std = b.op("Sqrt", b.op("Add", var, b.const(LN_EPS, "eps")))
    return b.op("Add", b.op("Mul", b.op("Div", centred, std), b.const(gamma, "ln_g")), b.const(beta, "ln_b"))


def input_nodes(b: Builder, w: LayerWeights, x: str) -> str:
    """x (..., I) -> (..., 4H): ``LN_ih(x W_ihᵀ) + b_ih + b_hh`` (cell.input_projection)."""
    xg = b.op("MatMul", x, b.const(w.w_ih.T, "w_ih_t"))  # (..., 4H)
    if w.ln is not None:
        return _layer_norm(b, xg, w.ln["ih"], w.bias)
    return xg if w.bias is None else b.op("Add", xg, b.const(w.bias, "bias"))


def cell_nodes(b: Builder, w: LayerWeights, xg: str, h: str, c: str) -> tuple[str, str]:
    """One step (cell.cell_step, then zoneout): xg (B, 4H), h (B, H_out), c (B, H) -> (h', c')."""
    hid = w.hidden
    rec = b.op("MatMul", h, b.const(w.w_hh.T, "w_hh_t"))  # (B, 4H)
    if w.ln is not None:
        rec = _layer_norm(b, rec, w.ln["hh"])
    z_i, z_f, z_g, z_o = b.op("Split", b.op("Add", xg, rec), b.const([hid] * 4, "split"), outputs=4, axis=-1)
    if w.peephole is not None:
        z_i = b.op("Add", z_i, b.op("Mul", b.const(w.peephole[0], "p_i"), c))
        z_f = b.op("Add", z_f, b.op("Mul", b.const(w.peephole[1], "p_f"), c))
    i, f, g = b.op("Sigmoid", z_i), b.op("Sigmoid", z_f), b.op("Tanh", z_g)
    c_new = b.op("Add", b.op("Mul", f, c), b.op("Mul", i, g))  # c' = f ⊙ c + i ⊙ g
    if w.peephole is not None:
        z_o = b.op("Add", z_o, b.op("Mul", b.const(w.peephole[2], "p_o"), c_new))
    c_out = _layer_norm(b, c_new, w.ln["c"]) if w.ln is not None else c_new
    h_new = b.op("Mul", b.op("Sigmoid", z_o), b.op("Tanh", c_out))  # h' = o ⊙ tanh(c')
    if w.w_hr is not None:
        h_new = b.op("MatMul", h_new, b.const(w.w_hr.T, "w_hr_t"))  # (B, P)
    p_c, p_h = w.zoneout
    if p_c:  # eval zoneout: lerp(new, old, p) = new + p (old - new)
        c_new = b.op("Add", c_new, b.op("Mul", b.const(p_c, "zc"), b.op("Sub", c, c_new)))
    if p_h:
        h_new = b.op("Add", h_new, b.op("Mul", b.const(p_h, "zh"), b.op("Sub", h, h_new)))
    return h_new, c_new


def _time_index(b: Builder, x: str, lens: str) -> tuple[str, str]:
    """t (T, 1) = 0..T-1 and n (1, B) = lens, both int64."""
    steps = b.op("Gather", b.op("Shape", x), b.const(0, "zero"), axis=0)  # ()
    t = b.op("Unsqueeze", b.op("Range", b.const(0, "zero"), steps, b.const(1, "one")), b.const([1], "ax"))  # (T, 1)
    return t, b.op("Unsqueeze", b.op("Cast", lens, to=7), b.const([0], "ax"))  # (1, B)


def _reverse_index(b: Builder, t: str, n: str) -> str:
    """(T, B) int64: t -> n[b] - 1 - t for t < n[b], else t (sequence.reverse_index)."""
    back = b.op("Sub", b.op("Sub", n, b.const(1, "one")), t)  # (T, B)
    return b.op("Where", b.op("Less", t, n), back, t)


def _gather_time(b: Builder, x: str, idx: str) -> str:
    """x (T, B, N) gathered along time with idx (T, B)."""
    full = b.op("Expand", b.op("Unsqueeze", idx, b.const([2], "ax")), b.op("Shape", x))  # (T, B, N)
    return b.op("GatherElements", x, full, axis=0)


def _scan_direction(
    b: Builder, w: LayerWeights, xg: str, mask: str | None, h0: str, c0: str, reverse: bool
) -> tuple[str, str, str]:
    """Scan over xg (T, B, 4H) from (h0, c0): -> y (T, B, H_out), h_n, c_n. ``mask`` (T, B, 1) bool or None."""
    body = Builder(b.name("body"))
    h, c, x_t = body.name("h"), body.name("c"), body.name("xg")
    inputs = [h, c, x_t]
    h_new, c_new = cell_nodes(body, w, x_t, h, c)
    if mask is not None:  # freeze the state past the end; zero output there
        m = body.name("m")
        inputs.append(m)
        y = body.op("Where", m, h_new, body.const(0.0, "zero"))
        h_new, c_new = body.op("Where", m, h_new, h), body.op("Where", m, c_new, c)
    else:
        y = body.op("Identity", h_new)
    h_new, c_new = body.op("Identity", h_new), body.op("Identity", c_new)
    b.initializers += body.initializers  # outer-scope constants, visible to the body
    graph = body.subgraph(body.nodes, inputs, [h_new, c_new, y], body.prefix)
    scan_in = [xg] + ([mask] if mask is not None else [])
    direction = [1 if reverse and mask is None else 0] * len(scan_in)
    return b.op(
        "Scan",
        h0,
        c0,
        *scan_in,
        outputs=3,
        body=graph,
        num_scan_inputs=len(scan_in),
        scan_input_directions=direction,
        scan_output_directions=[direction[0]],
    )  # h_n (B, H_out), c_n (B, H), y (T, B, H_out)


def scan_layer(b: Builder, ws: list[LayerWeights], x: str, lens: str | None, h0: str, c0: str) -> tuple[str, str, str]:
    """MatMul + Scan for one layer: x (T, B, I) -> y (T, B, D*H_out), h_n (D, B, H_out), c_n (D, B, H)."""
    mask = rev = None
    if lens is not None:
        t, n = _time_index(b, x, lens)
        mask = b.op("Unsqueeze", b.op("Less", t, n), b.const([2], "ax"))  # (T, B, 1) bool
        rev = _reverse_index(b, t, n) if len(ws) == 2 else None
    ys, hs, cs = [], [], []
    for d, w in enumerate(ws):
        xg = input_nodes(b, w, x)  # (T, B, 4H)
        pick = lambda s, d=d: b.op("Gather", s, b.const(d, "d"), axis=0)  # noqa: E731  (B, N) of direction d
        if d == 1 and rev is not None:
            xg = _gather_time(b, xg, rev)
        h_n, c_n, y = _scan_direction(b, w, xg, mask, pick(h0), pick(c0), reverse=d == 1)
        if d == 1 and rev is not None:
            y = _gather_time(b, y, rev)
        ys.append(y)
        hs.append(b.op("Unsqueeze", h_n, b.const([0], "ax")))
        cs.append(b.op("Unsqueeze", c_n, b.const([0], "ax")))
    cat = lambda xs, axis: xs[0] if len(xs) == 1 else b.op("Concat", *xs, axis=axis)  # noqa: E731
    return cat(ys, -1), cat(hs, 0), cat(cs, 0)
