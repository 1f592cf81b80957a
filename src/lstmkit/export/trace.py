"""torch -> ONNX for lstmkit networks: torch's exporter traces everything around the LSTMs, and each
:class:`lstmkit.nn.LSTM` call becomes a placeholder node that :mod:`lstmkit.export.recurrence` expands.

While :func:`to_onnx` traces, every LSTM of the network has its ``forward`` and ``step`` replaced by
a call of :class:`_Placeholder` (an autograd Function whose ``symbolic`` writes one node
``lstmkit::LSTM`` / ``lstmkit::LSTMStep`` and whose forward returns zeros of the right shapes, enough
for tracing). The exported model is then read back and each placeholder replaced by the layer graphs
built from that module's weights: ONNX's LSTM operator or MatMul + Scan for whole sequences
(``mode``), the cell's nodes for one step. The placeholder's inputs (absent ones are not passed)::

    lstmkit::LSTM      x (T, B, I) [lengths (B,) int32] [h_0 (L*D, B, H_out), c_0 (L*D, B, H)]
                       -> y (T, B, D*H_out), h_n (L*D, B, H_out), c_n (L*D, B, H)
    lstmkit::LSTMStep  x_t (B, I) [h (L, B, H_out), c (L, B, H)] -> y_t (B, H_out), h', c'
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any, Literal

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from lstmkit.export.graph import OPSET, Builder, finish, splice
from lstmkit.export.recurrence import LayerWeights, cell_nodes, input_nodes, op_layer, scan_layer
from lstmkit.nn import LSTM, SLSTM

Mode = Literal["auto", "op", "scan"]


_ACTIVE: dict[str, LSTM] = {}  # the modules being traced, by key


def _shapes(kind: str, m: LSTM, x: Tensor) -> list[tuple[int, ...]]:
    """The placeholder's output shapes for input x: (T, B, I) for "LSTM", (B, I) for "LSTMStep"."""
    if kind == "LSTMStep":
        B, L = x.shape[0], m.num_layers
        return [(B, m.out_size), (L, B, m.out_size), (L, B, m.hidden_size)]
    T, B, n = x.shape[0], x.shape[1], m.num_layers * m.num_directions
    return [(T, B, m.num_directions * m.out_size), (n, B, m.out_size), (n, B, m.hidden_size)]


class _Placeholder(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kind: str, key: str, flags: str, *tensors: Tensor):
        x = tensors[0]
        return tuple(x.new_zeros(s) for s in _shapes(kind, _ACTIVE[key], x))

    @staticmethod
    def symbolic(g, kind: str, key: str, flags: str, *tensors):
        outs = g.op(f"lstmkit::{kind}", *tensors, key_s=key, flags_s=flags, outputs=3)
        ranks = (2, 3, 3) if kind == "LSTMStep" else (3, 3, 3)
        for out, rank in zip(
            outs, ranks
        ):  # float outputs of known rank: torch's shape inference has no warning to give
            out.setType(tensors[0].type().with_sizes([None] * rank))
        return outs


def _lstm_forward(m: LSTM, key: str, input: Tensor, hx: Any = None, lengths: Any = None, return_gates: bool = False):
    if return_gates or input.dim() != 3:
        raise ValueError("export traces batched calls without gates only")
    x = input.transpose(0, 1) if m.batch_first else input  # (T, B, I)
    tensors, flags = [x], ""
    if lengths is not None:
        tensors.append(torch.as_tensor(lengths).to(torch.int32))
        flags += "l"
    if hx is not None:
        tensors += [hx[0], hx[1]]
        flags += "s"
    y, h, c = _Placeholder.apply("LSTM", key, flags, *tensors)
    return (y.transpose(0, 1) if m.batch_first else y), (h, c)


def _lstm_step(m: LSTM, key: str, x_t: Tensor, state: Any = None):
    tensors, flags = [x_t], ""
    if state is not None:
        tensors += [state[0], state[1]]
        flags += "s"
    y, h, c = _Placeholder.apply("LSTMStep", key, flags, *tensors)
    return y, (h, c)


@contextlib.contextmanager
def placeholders(model: nn.Module) -> Iterator[dict[str, LSTM]]:
    """Within: every LSTM of ``model`` traces as a placeholder; yields key -> module. An SLSTM (forecast's
    ``--cell slstm``) traces on its reference path, its time loop unrolled: exact for a fixed number of
    steps (the forecaster's lookback), not for a dynamic time axis."""
    registry = _ACTIVE
    registry.clear()
    slstms = [m for m in model.modules() if isinstance(m, SLSTM)]
    impls = [m.impl for m in slstms]
    for s in slstms:
        s.impl = "reference"
    for lstm in (m for m in model.modules() if isinstance(m, LSTM)):
        key = f"lstm{len(registry)}"
        registry[key] = lstm
        lstm.forward = partial(_lstm_forward, lstm, key)  # type: ignore[method-assign]
        lstm.step = partial(_lstm_step, lstm, key)  # type: ignore[method-assign]
    try:
        yield registry
    finally:
        for lstm in registry.values():
            del lstm.forward, lstm.step
        registry.clear()
        for s, impl in zip(slstms, impls):
            s.impl = impl


def layer_weights(m: LSTM, layer: int, direction: int) -> LayerWeights:
    """One layer-direction of ``m`` as float32 arrays (eval mode: no weight drop)."""
    cw = m.cell_weights(layer, direction, training=False)
    arr = lambda t: t.detach().cpu().float().numpy()  # noqa: E731
    opt = lambda t: None if t is None else arr(t)  # noqa: E731
    ln = None
    if cw.ln_ih is not None and cw.ln_hh is not None and cw.ln_c is not None:
        ln = {k: (arr(v.weight), arr(v.bias)) for k, v in (("ih", cw.ln_ih), ("hh", cw.ln_hh), ("c", cw.ln_c))}
    b_ih, b_hh = opt(cw.b_ih), opt(cw.b_hh)
    return LayerWeights(
        w_ih=arr(cw.w_ih),
        w_hh=arr(cw.w_hh),
        bias=None if b_ih is None or b_hh is None else b_ih + b_hh,
        b_ih=b_ih,
        b_hh=b_hh,
        w_hr=opt(cw.w_hr),
        peephole=opt(cw.peephole),
        ln=ln,
        zoneout=(float(m.zoneout[0]), float(m.zoneout[1])),
    )


def _zero_state(b: Builder, like: str, n: int, size: int) -> str:
    """zeros (n, B, size), B = like's dim 1."""
    batch = b.op("Slice", b.op("Shape", like), b.const([1], "s"), b.const([2], "e"))  # (1,)
    shape = b.op("Concat", b.const([n], "n"), batch, b.const([size], "h"), axis=0)
    return b.op("ConstantOfShape", shape, value=onnx.helper.make_tensor("v", onnx.TensorProto.FLOAT, [1], [0.0]))


def _rows(b: Builder, s: str, lo: int, hi: int) -> str:
    return b.op("Slice", s, b.const([lo], "s"), b.const([hi], "e"), b.const([0], "ax"))


def expand_sequence(b: Builder, m: LSTM, node: onnx.NodeProto, mode: Mode) -> None:
    flags = onnx.helper.get_attribute_value(next(a for a in node.attribute if a.name == "flags")).decode()
    ins = list(node.input)
    x, lens = ins[0], (ins[1] if "l" in flags else None)
    D, n = m.num_directions, m.num_layers * m.num_directions
    if "s" in flags:
        h0, c0 = ins[-2], ins[-1]
    else:
        h0, c0 = _zero_state(b, x, n, m.out_size), _zero_state(b, x, n, m.hidden_size)
    ys, hs, cs = x, [], []
    for layer in range(m.num_layers):
        ws = [layer_weights(m, layer, d) for d in range(D)]
        use_op = mode == "op" or (mode == "auto" and all(w.plain for w in ws))
        if use_op and not all(w.plain for w in ws):
            raise ValueError("mode 'op': ONNX's LSTM operator cannot compute this variant")
        run = op_layer if use_op else scan_layer
        ys, h, c = run(
            b, ws, ys, lens, _rows(b, h0, layer * D, (layer + 1) * D), _rows(b, c0, layer * D, (layer + 1) * D)
        )
        hs.append(h)
        cs.append(c)
    out = list(node.output)
    b.op("Identity", ys, out=[out[0]])
    b.op("Concat", *hs, axis=0, out=[out[1]])
    b.op("Concat", *cs, axis=0, out=[out[2]])


def expand_step(b: Builder, m: LSTM, node: onnx.NodeProto) -> None:
    if m.bidirectional:
        raise ValueError("a step graph needs a unidirectional LSTM")
    flags = onnx.helper.get_attribute_value(next(a for a in node.attribute if a.name == "flags")).decode()
    ins = list(node.input)
    x = ins[0]
    L = m.num_layers
    if "s" in flags:
        h, c = ins[1], ins[2]
    else:
        like = b.op("Unsqueeze", x, b.const([0], "ax"))  # (1, B, I): dim 1 is B
        h, c = _zero_state(b, like, L, m.out_size), _zero_state(b, like, L, m.hidden_size)
    hs, cs = [], []
    for layer in range(L):
        w = layer_weights(m, layer, 0)
        pick = lambda s, k=layer: b.op("Gather", s, b.const(k, "k"), axis=0)  # noqa: E731  (B, N)
        h1, c1 = cell_nodes(b, w, input_nodes(b, w, x), pick(h), pick(c))
        hs.append(b.op("Unsqueeze", h1, b.const([0], "ax")))
        cs.append(b.op("Unsqueeze", c1, b.const([0], "ax")))
        x = h1
    out = list(node.output)
    b.op("Identity", x, out=[out[0]])
    b.op("Concat", *hs, axis=0, out=[out[1]])
    b.op("Concat", *cs, axis=0, out=[out[2]])


def expand(model: onnx.ModelProto, registry: dict[str, LSTM], mode: Mode = "auto") -> onnx.ModelProto:
    """Replace every placeholder node of ``model`` by its layers' graph."""
    i = 0
    while i < len(model.graph.node):
        node = model.graph.node[i]
        if node.domain != "lstmkit":
            i += 1
            continue
        key = onnx.helper.get_attribute_value(next(a for a in node.attribute if a.name == "key")).decode()
        b = Builder(f"{key}_{i}")
        if node.op_type == "LSTM":
            expand_sequence(b, registry[key], node, mode)
        else:
            expand_step(b, registry[key], node)
        splice(model, i, b)
        i += len(b.nodes)
    return finish(model)


def to_onnx(
    module: nn.Module,
    args: tuple[Tensor, ...],
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: dict[str, dict[int, str]],
    mode: Mode = "auto",
) -> onnx.ModelProto:
    """Trace ``module(*args)`` (eval mode, no grad) into an ONNX model with its LSTMs expanded."""
    module.eval()
    buf = io.BytesIO()
    with placeholders(module) as registry, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _export(
            module,
            args,
            buf,  # type: ignore[arg-type]
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            custom_opsets={"lstmkit": 1},
            dynamo=False,
            do_constant_folding=True,
        )
        model = onnx.load_from_string(buf.getvalue())
        return expand(model, dict(registry), mode)


_export = torch.onnx.export


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], threads: int = 1) -> list[np.ndarray]:
    """Run ``model`` once on ONNX Runtime's CPU provider (tests and checks)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)
