""":class:`LSTM`: a stacked, optionally bidirectional LSTM layer, drop-in compatible with torch.nn.LSTM.

Shapes (named dims): T steps, B batch, I input features, H hidden, P projection (H_out = P or H),
L layers, D directions (1 or 2). Input (T, B, I), or (B, T, I) with ``batch_first``, or (T, I)
unbatched; h_0 (L*D, B, H_out), c_0 (L*D, B, H); output (T, B, D*H_out); h_n, c_n like h_0, c_0.

Parameters carry torch's names and shapes (``weight_ih_l{k}`` (4H, I_k), ``weight_hh_l{k}``
(4H, H_out), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (4H,), ``weight_hr_l{k}`` (P, H), ``*_reverse``), gates
packed i|f|g|o, so state dicts load both ways. Variants add their own parameters:
``weight_ch_l{k}`` (3, H) peepholes, ``ln_{ih,hh,c}_{weight,bias}_l{k}`` layer norms.

Three paths compute the same function (``last_path`` names the one that ran):

* ``"torch"``: the configuration is one torch.nn.LSTM computes (no variant active but weight drop,
  no gates asked): torch's own kernel (``torch._VF.lstm``, oneDNN on CPU, cuDNN on GPU) on this module's parameters.
  ``lengths`` run unpacked, one kernel call per layer-direction, state frozen at padding
  (:func:`lstmkit.nn.torch_lengths.lstm_lengths`); a PackedSequence input goes to torch's packed kernel.
* ``"fused"``: any variant, the whole recurrence of a layer-direction as one autograd Function
  with a hand-written backward (:mod:`lstmkit.nn.fused`); checked against the reference.
* ``"compiled"``: the fused path with each step's elementwise work in C++ (:mod:`lstmkit.nn.compiled`),
  chosen over "fused" on CPU (float32/64, no projection) once the extension builds.
* ``"reference"``: the gate equations of :mod:`lstmkit.nn.cell`, one step at a time, autograd
  through all of it. Used for ``return_gates=True`` and whenever ``impl="reference"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import _VF, Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from . import compiled
from .cell import CellWeights, Gates, Norm, init_uniform_, input_projection, set_forget_bias_
from .dropout import ForwardNoise, check_probability, keep_tensor, parse_zoneout, sample_noise, weight_drop
from .fused import run_fused
from .sequence import check_lengths, reverse_index, reverse_padded, run_reference, valid_mask
from .streaming import PlainStep, variant_step
from .torch_lengths import lstm_lengths

Impl = Literal["auto", "torch", "reference", "fused", "compiled"]
Path = Literal["torch", "reference", "fused", "compiled"]
State = tuple[Tensor, Tensor]


@dataclass
class LSTMConfig:
    """Every constructor argument of :class:`LSTM` (JSON-serialisable; ``LSTM(**asdict(cfg))``)."""

    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False
    proj_size: int = 0
    layer_norm: bool = False
    peephole: bool = False
    variational_dropout: float = 0.0
    weight_drop: float = 0.0
    zoneout: tuple[float, float] = (0.0, 0.0)
    forget_bias: float | None = None
    impl: Impl = "auto"


class LSTM(nn.Module):
    """Multi-layer LSTM, a drop-in for :class:`torch.nn.LSTM` with variants, lengths and streaming.

    Each layer and direction runs the equations of :mod:`lstmkit.nn.cell` over time; layer k > 0
    reads the (concatenated, for D = 2) outputs of layer k-1, with ``dropout`` between layers.

    Args (besides torch's): ``layer_norm``, ``peephole``, ``variational_dropout`` p,
    ``weight_drop`` p, ``zoneout`` p or (p_c, p_h), ``forget_bias`` (initial b_if + b_hf), and
    ``impl``: "auto" (torch kernel when possible, else compiled, else fused), or force "torch",
    "compiled", "fused", "reference".

    Call: ``out, (h_n, c_n) = lstm(x, hx=None, lengths=None)``; with ``return_gates=True`` also a
    list of :class:`Gates` (each field (B, T, H)), index layer * D + d.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        *,
        layer_norm: bool = False,
        peephole: bool = False,
        variational_dropout: float = 0.0,
        weight_drop: float = 0.0,
        zoneout: float | tuple[float, float] = 0.0,
        forget_bias: float | None = None,
        impl: Impl = "auto",
    ) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0 or num_layers <= 0:
            raise ValueError("input_size, hidden_size and num_layers must be positive")
        if not 0 <= proj_size < hidden_size:
            raise ValueError("proj_size must be in [0, hidden_size)")
        if impl not in ("auto", "torch", "reference", "fused", "compiled"):
            raise ValueError(f"impl must be auto, torch, reference, fused or compiled, got {impl!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.dropout = check_probability("dropout", dropout) if dropout != 1 else 1.0
        self.proj_size = proj_size
        self.layer_norm, self.peephole = layer_norm, peephole
        self.variational_dropout = check_probability("variational_dropout", variational_dropout)
        self.weight_drop = check_probability("weight_drop", weight_drop)
        self.zoneout = parse_zoneout(zoneout)
        self.forget_bias = forget_bias
        self.impl: Impl = impl
        self.last_path: Path | None = None
        self._make_parameters({"device": device, "dtype": dtype})
        self.reset_parameters()
        self._step_plan = PlainStep.of(self)  # the configuration is fixed from here on

    # ----------------------------------------------------------------------------- parameters
    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def out_size(self) -> int:
        """H_out: the size of h (P with a projection, else H)."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def _make_parameters(self, kw: dict) -> None:
        H, G = self.hidden_size, 4 * self.hidden_size
        self._flat_weights_names: list[str] = []
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else self.out_size * self.num_directions
            for d in range(self.num_directions):
                sfx = f"l{layer}" + ("_reverse" if d == 1 else "")
                shapes: dict[str, tuple[int, ...]] = {
                    f"weight_ih_{sfx}": (G, in_size),
                    f"weight_hh_{sfx}": (G, self.out_size),
                }
                if self.bias:
                    shapes |= {f"bias_ih_{sfx}": (G,), f"bias_hh_{sfx}": (G,)}
                if self.proj_size > 0:
                    shapes[f"weight_hr_{sfx}"] = (self.proj_size, H)
                for name, shape in shapes.items():
                    setattr(self, name, nn.Parameter(torch.empty(shape, **kw)))
                self._flat_weights_names.extend(shapes)
                if self.peephole:
                    setattr(self, f"weight_ch_{sfx}", nn.Parameter(torch.empty(3, H, **kw)))
                if self.layer_norm:
                    for part, size in (("ih", G), ("hh", G), ("c", H)):
                        setattr(self, f"ln_{part}_weight_{sfx}", nn.Parameter(torch.ones(size, **kw)))
                        setattr(self, f"ln_{part}_bias_{sfx}", nn.Parameter(torch.zeros(size, **kw)))

    def reset_parameters(self) -> None:
        """torch's initialisation U(-1/√H, 1/√H) (peepholes too); LN γ=1, β=0; then forget_bias."""
        init_uniform_([p for n, p in self.named_parameters() if not n.startswith("ln_")], self.hidden_size)
        with torch.no_grad():
            for n, p in self.named_parameters():
                if n.startswith("ln_"):
                    p.fill_(1.0 if "_weight_" in n else 0.0)
        if self.forget_bias is not None:
            if not self.bias:
                raise ValueError("forget_bias needs bias=True")
            for layer in range(self.num_layers):
                for d in range(self.num_directions):
                    sfx = f"l{layer}" + ("_reverse" if d == 1 else "")
                    set_forget_bias_(getattr(self, f"bias_ih_{sfx}"), getattr(self, f"bias_hh_{sfx}"), self.forget_bias)

    @property
    def config(self) -> LSTMConfig:
        """The constructor arguments as an :class:`LSTMConfig`."""
        return LSTMConfig(
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.bias,
            self.batch_first,
            self.dropout,
            self.bidirectional,
            self.proj_size,
            self.layer_norm,
            self.peephole,
            self.variational_dropout,
            self.weight_drop,
            self.zoneout,
            self.forget_bias,
            self.impl,
        )

    @classmethod
    def from_config(cls, cfg: LSTMConfig | dict) -> LSTM:
        """Build from an :class:`LSTMConfig` or its dict (e.g. read from config.json)."""
        d = asdict(cfg) if isinstance(cfg, LSTMConfig) else dict(cfg)
        args = [d.pop(k) for k in ("input_size", "hidden_size")]
        return cls(*args, **d)

    def cell_weights(self, layer: int, direction: int, training: bool = False) -> CellWeights:
        """The parameters of one layer-direction (W_hh after weight drop when ``training``)."""
        sfx = f"l{layer}" + ("_reverse" if direction == 1 else "")
        get = lambda name: getattr(self, f"{name}_{sfx}")  # noqa: E731
        norm = (
            (lambda part: Norm(get(f"ln_{part}_weight"), get(f"ln_{part}_bias")))
            if self.layer_norm
            else (lambda part: None)
        )
        return CellWeights(
            w_ih=get("weight_ih"),
            w_hh=weight_drop(get("weight_hh"), self.weight_drop, training),
            b_ih=get("bias_ih") if self.bias else None,
            b_hh=get("bias_hh") if self.bias else None,
            w_hr=get("weight_hr") if self.proj_size > 0 else None,
            peephole=get("weight_ch") if self.peephole else None,
            ln_ih=norm("ih"),
            ln_hh=norm("hh"),
            ln_c=norm("c"),
        )

    def flat_weights(self) -> list[Tensor]:
        """torch's flat weight list (per layer-direction: w_ih, w_hh[, b_ih, b_hh][, w_hr])."""
        return [getattr(self, n) for n in self._flat_weights_names]

    def flatten_parameters(self) -> None:
        """On GPU with cuDNN, make the torch-path weights one contiguous buffer (as torch.nn.LSTM
        does) so cuDNN does not copy them on every call. A no-op on CPU."""
        ws = self.flat_weights()
        first = ws[0]
        if not (first.is_cuda and torch.backends.cudnn.is_acceptable(first)):
            return
        if any(w.dtype != first.dtype or not w.is_cuda for w in ws) or len({w.data_ptr() for w in ws}) != len(ws):
            return
        import torch.backends.cudnn.rnn as cudnn_rnn

        with torch.cuda.device_of(first), torch.no_grad():
            if torch._use_cudnn_rnn_flatten_weight():
                n = (4 if self.bias else 2) + (1 if self.proj_size > 0 else 0)
                torch._cudnn_rnn_flatten_weight(
                    ws,
                    n,
                    self.input_size,
                    cudnn_rnn.get_cudnn_mode("LSTM"),
                    self.hidden_size,
                    self.proj_size,
                    self.num_layers,
                    self.batch_first,
                    self.bidirectional,
                )

    def _apply(self, fn, recurse=True):
        out = super()._apply(fn, recurse)
        self.flatten_parameters()
        return out

    # ----------------------------------------------------------------------------- dispatch
    def torch_computable(self) -> bool:
        """True when torch.nn.LSTM computes exactly this configuration in the current mode
        (variational dropout and weight drop are identities in eval mode).
        Weight drop counts as computable: it runs on torch's kernel with the dropped W_hh (one mask
        per forward and layer-direction, as on the other paths)."""
        stochastic = self.training and self.variational_dropout > 0
        return not (self.layer_norm or self.peephole or stochastic or any(self.zoneout))

    def _choose_path(self, return_gates: bool, like: Tensor) -> Path:
        if self.impl == "torch":
            if return_gates or not self.torch_computable():
                raise ValueError("impl='torch' cannot run this configuration (variant active or gates asked)")
            return "torch"
        if self.impl == "reference" or return_gates:
            return "reference"
        if self.impl == "compiled":
            if not self._compiled_ok(like):
                raise ValueError("impl='compiled' needs a CPU float32/64 input, no projection and a built extension")
            return "compiled"
        if self.impl == "fused":
            return "fused"
        if self.torch_computable():
            return "torch"
        return "compiled" if self._compiled_ok(like) else "fused"

    def _compiled_ok(self, like: Tensor) -> bool:
        """The compiled kernel runs CPU float32/64 without projection (and needs the extension built)."""
        return (
            like.device.type == "cpu"
            and like.dtype in (torch.float32, torch.float64)
            and self.proj_size == 0
            and compiled.available()
        )

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: State | None = None,
        lengths: Tensor | None = None,
        return_gates: bool = False,
    ):
        """``out, (h_n, c_n) = lstm(input, hx, lengths)`` (module docstring for shapes)."""
        path = self._choose_path(return_gates, input.data if isinstance(input, PackedSequence) else input)
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError("lengths= cannot be combined with a PackedSequence input")
            if path == "torch":
                self.last_path = "torch"
                return self._torch_packed(input, hx)
            padded, lens = pad_packed_sequence(input, batch_first=self.batch_first)
            res = self.forward(padded, hx, lens, return_gates)
            packed = pack_padded_sequence(res[0], lens, self.batch_first, enforce_sorted=False)
            return (packed,) + tuple(res[1:])
        if input.dim() not in (2, 3):
            raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {input.dim()}D instead")
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1 if not self.batch_first else 0)
        if hx is not None and not batched:
            hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
        x_tm = x.transpose(0, 1) if self.batch_first else x  # (T, B, I)
        steps, batch = x_tm.shape[0], x_tm.shape[1]
        if x_tm.shape[2] != self.input_size:
            raise ValueError(f"LSTM: input has {x_tm.shape[2]} features, expected input_size={self.input_size}")
        lengths = check_lengths(lengths, steps, batch)
        hx = self._initial_state(hx, batch, x)
        self.last_path = path
        if path == "torch":
            out, h_n, c_n = self._torch_padded(x, hx, lengths)
            gates = None
        else:
            out_tm, h_n, c_n, gates = self._run_layers(x_tm, hx, lengths, path, return_gates)
            out = out_tm.transpose(0, 1).contiguous() if self.batch_first else out_tm  # (B, T, D*H_out)
        if not batched:
            out, h_n, c_n = out.squeeze(1 if not self.batch_first else 0), h_n.squeeze(1), c_n.squeeze(1)
        return (out, (h_n, c_n), gates) if return_gates else (out, (h_n, c_n))

    def _initial_state(self, hx: State | None, batch: int, like: Tensor) -> State:
        n = self.num_layers * self.num_directions
        if hx is None:
            h0 = like.new_zeros(n, batch, self.out_size)
            return h0, like.new_zeros(n, batch, self.hidden_size)
        h0, c0 = hx
        if h0.shape != (n, batch, self.out_size) or c0.shape != (n, batch, self.hidden_size):
            raise RuntimeError(
                f"Expected hidden sizes {(n, batch, self.out_size)} and {(n, batch, self.hidden_size)}, "
                f"got {tuple(h0.shape)} and {tuple(c0.shape)}"
            )
        return h0, c0

    # ----------------------------------------------------------------------------- torch path
    def _kernel_weights(self) -> list[Tensor]:
        """The flat weights the kernel reads: W_hh after weight drop in training."""
        ws = self.flat_weights()
        if self.training and self.weight_drop > 0:
            per = len(ws) // (self.num_layers * self.num_directions)
            for k in range(1, len(ws), per):
                ws[k] = weight_drop(ws[k], self.weight_drop, True)
        return ws

    def _vf_args(self) -> tuple:
        return (self._kernel_weights(), self.bias, self.num_layers, self.dropout, self.training, self.bidirectional)

    def _torch_padded(self, x: Tensor, hx: State, lengths: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """torch's kernel on a padded batch; with lengths, :func:`~lstmkit.nn.torch_lengths.lstm_lengths` (no packing)."""
        if lengths is None:
            out, h_n, c_n = _VF.lstm(x, hx, *self._vf_args(), self.batch_first)  # type: ignore[call-overload]
            return out, h_n, c_n
        out, h_n, c_n = lstm_lengths(
            x.transpose(0, 1) if self.batch_first else x,  # (T, B, I)
            hx,
            lengths,
            self._kernel_weights(),
            num_layers=self.num_layers,
            dirs=self.num_directions,
            bias=self.bias,
            dropout=self.dropout,
            training=self.training,
        )
        return (out.transpose(0, 1).contiguous() if self.batch_first else out), h_n, c_n

    def _torch_packed(self, packed: PackedSequence, hx: State | None):
        data, batch_sizes, sorted_idx, unsorted_idx = packed
        if hx is None:
            hx = self._initial_state(None, int(batch_sizes[0]), data)
        elif sorted_idx is not None:
            hx = (hx[0].index_select(1, sorted_idx), hx[1].index_select(1, sorted_idx))
        out, h_n, c_n = _VF.lstm(data, batch_sizes, hx, *self._vf_args())
        if unsorted_idx is not None:
            h_n, c_n = h_n.index_select(1, unsorted_idx), c_n.index_select(1, unsorted_idx)
        return PackedSequence(out, batch_sizes, sorted_idx, unsorted_idx), (h_n, c_n)

    # ----------------------------------------------------------------------------- reference / fused
    def _sample_noise(self, batch: int, like: Tensor) -> ForwardNoise:
        in_sizes = [self.input_size] + [self.out_size * self.num_directions] * (self.num_layers - 1)
        return sample_noise(
            variational=self.variational_dropout,
            zoneout_pc=self.zoneout[0],
            zoneout_ph=self.zoneout[1],
            training=self.training,
            batch=batch,
            input_sizes=in_sizes,
            directions=self.num_directions,
            out_size=self.out_size,
            like=like,
        )

    def _run_layers(self, x: Tensor, hx: State, lengths: Tensor | None, path: Path, record: bool):
        """All layers and directions on time-major x (T, B, I) -> (out (T, B, D*H_out), h_n, c_n, gates)."""
        lengths = lengths.to(x.device) if lengths is not None else None
        valid = valid_mask(lengths, x.shape[0]) if lengths is not None else None  # (T, B, 1)
        noise = self._sample_noise(x.shape[1], x)
        h_n: list[Tensor] = []
        c_n: list[Tensor] = []
        gates: list[Gates] = []
        layer_in = x
        for layer in range(self.num_layers):
            mask = noise.input_masks[layer]
            if mask is not None:
                layer_in = layer_in * mask  # (T, B, I_l) * (B, I_l)
            ks = range(layer * self.num_directions, (layer + 1) * self.num_directions)
            if path == "compiled":
                ws = [self.cell_weights(layer, d, self.training) for d in range(self.num_directions)]
                layer_in, h, c = compiled.run_compiled_layer(
                    layer_in,
                    ws,
                    [hx[0][k] for k in ks],
                    [hx[1][k] for k in ks],
                    valid=valid,
                    h_masks=[noise.h_masks[k] for k in ks],
                    keep_c=[noise.keep_c[k] for k in ks],
                    keep_h=[noise.keep_h[k] for k in ks],
                )  # (T, B, D*H), (D, B, H) twice
                h_n += h.unbind(0)
                c_n += c.unbind(0)
            else:
                layer_in = self._run_directions(
                    layer, layer_in, hx, lengths, valid, noise, path, record, (h_n, c_n, gates)
                )
            if layer < self.num_layers - 1 and self.dropout > 0 and self.training:
                layer_in = F.dropout(layer_in, self.dropout, training=True)
        return layer_in, torch.stack(h_n), torch.stack(c_n), (gates if record else None)

    def _run_directions(
        self,
        layer: int,
        layer_in: Tensor,
        hx: State,
        lengths: Tensor | None,
        valid,
        noise: ForwardNoise,
        path: Path,
        record: bool,
        into: tuple[list, list, list],
    ) -> Tensor:
        """One layer on the reference or fused path, a direction at a time; the reverse direction
        runs on each sequence reversed within its length. Appends h_n, c_n (and gates) to ``into``."""
        steps, batch = layer_in.shape[0], layer_in.shape[1]
        rev_idx = reverse_index(lengths, steps) if lengths is not None else None  # (T, B)
        outs = []
        for d in range(self.num_directions):
            k = layer * self.num_directions + d
            w = self.cell_weights(layer, d, self.training)
            flip = (lambda z: z) if d == 0 else (lambda z: reverse_padded(z, rev_idx))  # noqa: E731
            kc, kh = (
                keep_tensor(keep, steps, batch, n, layer_in)
                for keep, n in ((noise.keep_c[k], self.hidden_size), (noise.keep_h[k], self.out_size))
            )
            kc, kh = (flip(z) if isinstance(z, Tensor) else z for z in (kc, kh))  # masks in the input's time order
            xg = input_projection(flip(layer_in), w)  # (T, B, 4H)
            kwargs = dict(valid=valid, h_mask=noise.h_masks[k], keep_c=kc, keep_h=kh)
            res = (
                run_fused(xg, hx[0][k], hx[1][k], w, **kwargs)
                if path == "fused"
                else (run_reference(xg, hx[0][k], hx[1][k], w, record=record, **kwargs))
            )
            outs.append(flip(res.y))  # (T, B, H_out)
            into[0].append(res.h_n)
            into[1].append(res.c_n)
            if record and res.gates is not None:
                into[2].append(Gates(*(flip(z).transpose(0, 1) for z in res.gates)))  # each (B, T, H)
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)  # (T, B, D*H_out)

    # ----------------------------------------------------------------------------- streaming
    def step(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Advance a batch by one time step (unidirectional only).

        x_t (B, I); state (h, c) with h (L, B, H_out), c (L, B, H), zeros if None.
        Returns y_t (B, H_out) (the last layer's h) and the new state. Plain configurations (no
        projection, no variant active) run one cell kernel per layer (:mod:`lstmkit.nn.streaming`:
        lstmkit's step kernel under ``torch.no_grad()`` on CPU, else torch's cell kernel).
        Variants use :func:`cell_step` (in training mode stochastic masks are drawn afresh at every
        call). Differentiable with grad on.
        """
        plan = self._step_plan
        if plan is not None and not (self.training and plan.stochastic):  # plain: streaming.PlainStep
            return plan(x_t, state, self.dropout if self.training else 0.0)
        if self.bidirectional:
            raise ValueError("step() needs a unidirectional LSTM (a reverse direction cannot stream)")
        if state is None:
            z = x_t.new_zeros(self.num_layers, x_t.shape[0], self.out_size)
            state = (z, z if self.proj_size == 0 else x_t.new_zeros(self.num_layers, x_t.shape[0], self.hidden_size))
        h, c = state
        return variant_step(self, x_t, h, c)

    def extra_repr(self) -> str:
        cfg = self.config
        defaults = LSTMConfig(cfg.input_size, cfg.hidden_size)
        parts = [f"{cfg.input_size}, {cfg.hidden_size}"]
        parts += [
            f"{k}={v!r}"
            for k, v in asdict(cfg).items()
            if k not in ("input_size", "hidden_size") and v != getattr(defaults, k)
        ]
        return ", ".join(parts)
