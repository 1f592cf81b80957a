"""The forecasting network: LSTM forecasters (per-window normalisation, a learnt cycle, channel
independence, patching, an LSTM encoder (:class:`lstmkit.nn.LSTM`) and a multi-step head, direct or
seq2seq), several of them from different initial weights, combined with a linear map of the lookback
(:class:`ForecastNet`).

Shapes: B batch, L lookback, H horizon, P past channels (targets first), C target channels,
F known-future channels (+1 with a cycle: each row's phase, last), Q quantiles (1 for a point
forecast), D = num_directions, Hd hidden size (per direction), p patch length, T = ceil(L / p)
encoder steps, W the cycle's period.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from lstmkit.nn import LSTM, SLSTM
from lstmkit.nn.slstm import SLSTMState, merge_directions
from lstmkit.tasks.forecast.config import ForecastConfig


def recurrent(cfg: ForecastConfig, input_size: int, **overrides: Any) -> nn.Module:
    """The recurrent stack of ``--cell``: :class:`lstmkit.nn.LSTM` with the ``lstm`` section's settings, or
    :class:`lstmkit.nn.SLSTM` with its size, layers, directions, dropout, ``--heads`` and ``--forget-bias``
    (none: the SLSTM's own (3, 6) spread). Batch-first."""
    kw = cfg.lstm.core_kwargs(**overrides)
    if cfg.cell == "lstm":
        return LSTM(input_size, batch_first=True, **kw)
    fb = kw["forget_bias"]
    return SLSTM(
        input_size,
        kw["hidden_size"],
        num_layers=kw["num_layers"],
        heads=cfg.heads,
        batch_first=True,
        dropout=kw["dropout"],
        bidirectional=kw["bidirectional"],
        **({} if fb is None else {"forget_bias": fb}),
    )


class LSTMForecaster(nn.Module):
    """One member of :class:`ForecastNet`. ``forward(past (B, L, P), future (B, L+H, F), y (B, H, C) | None) -> (B, H, C, Q)``.

    Per-window normalisation (``norm``): ``last`` subtracts the last lookback value of each channel,
    ``revin`` subtracts the window mean and divides by the window std; outputs are mapped back. With a
    cycle (``dims["cycle"]`` = W > 0, CycleNet's residual cycle forecasting) the learnt Q (W, C) at each
    row's phase is taken out of the normalised targets and put back into the forecast (:meth:`normalise`).
    With ``channel_independent`` (and several targets) every target channel is its own univariate
    sequence (``[target_c, covariates, future]``) through one shared network. ``highway`` adds
    LSTNet's linear "autoregressive highway" (lookback -> horizon of each target channel) to the
    LSTM's output. ``--dropout`` p acts on the encoder's input, between its layers and on the
    state the head reads.

    ``dims``: ``n_past`` (P), ``n_target`` (C), ``n_future`` (F), from the training table.
    """

    def __init__(self, cfg: ForecastConfig, dims: Mapping[str, Any]):
        super().__init__()
        self.n_past, self.n_target, self.n_future = int(dims["n_past"]), int(dims["n_target"]), int(dims["n_future"])
        if not 1 <= self.n_target <= self.n_past or self.n_future < 0:
            raise ValueError(f"n_past {self.n_past}, n_target {self.n_target}, n_future {self.n_future}")
        self.lookback, self.horizon, self.patch = cfg.lookback, cfg.horizon, cfg.patch_length
        self.norm, self.decoder_kind = cfg.norm, cfg.decoder
        self.n_quantiles, self.point_index = cfg.n_quantiles, cfg.point_index
        self.channel_independent = cfg.channel_independent and self.n_target > 1
        self.bidirectional, self.num_layers = cfg.lstm.bidirectional, cfg.lstm.num_layers
        c_out = 1 if self.channel_independent else self.n_target
        n_cov = self.n_past - self.n_target
        d_in = (1 + n_cov if self.channel_independent else self.n_past) + self.n_future
        self.c_out = c_out
        hidden = cfg.lstm.hidden_size
        d_step = d_in * self.patch
        self.embed = nn.Sequential(nn.Linear(d_step, hidden), nn.ReLU()) if self.patch > 1 else nn.Identity()
        enc_in = hidden if self.patch > 1 else d_step
        self.encoder = recurrent(cfg, enc_in)
        self.drop = nn.Dropout(cfg.lstm.dropout)
        q, h = self.n_quantiles, self.horizon
        if self.decoder_kind == "direct":
            self.head = nn.Linear(cfg.lstm.output_size + h * self.n_future, h * c_out * q)
        else:  # the decoder runs forward only; a bidirectional encoder's two states are summed per layer
            self.decoder = recurrent(cfg, c_out + self.n_future, bidirectional=False)
            self.head = nn.Linear(hidden, c_out * q)
        # LSTNet's "highway": a linear map (L -> H) of each target channel's lookback added to the output
        self.highway = nn.Linear(self.lookback, h) if cfg.highway else None
        # CycleNet's learnt cycle (dims "cycle": its period, 0 without): one value per phase and target channel
        self.period = int(dims.get("cycle", 0))
        self.cycle = nn.Parameter(torch.zeros(self.period, self.n_target)) if self.period else None  # (W, C)

    # ------------------------------------------------------------------ normalisation per window
    def _norm_stats(self, past: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Location and scale (B, 1, P) of each window's lookback."""
        if self.norm == "last":
            return past[:, -1:, :], torch.ones_like(past[:, -1:, :])
        if self.norm == "revin":
            loc = past.mean(dim=1, keepdim=True)
            return loc, past.std(dim=1, keepdim=True, unbiased=False).clamp_min(1e-5)
        return torch.zeros_like(past[:, -1:, :]), torch.ones_like(past[:, -1:, :])

    def forward(self, past: torch.Tensor, future: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        B, C = past.shape[0], self.n_target
        past, future, y, (loc, scale, ahead) = self.normalise(past, future, y)
        out = self._core(past, future, y)  # (B', H, c_out, Q)
        if self.highway is not None:
            lin = self.highway(past[..., : self.c_out].transpose(1, 2)).transpose(1, 2)  # (B', H, c_out)
            out = out + lin.unsqueeze(-1)
        if self.channel_independent:
            # (B*C, H, 1, Q) -> (B, C, H, Q) -> (B, H, C, Q)
            out = out.reshape(B, C, self.horizon, self.n_quantiles).permute(0, 2, 1, 3)
        if ahead is not None:
            out = out + ahead[..., None]  # (B, H, C, Q): the cycle put back
        return out * scale[..., :C, None] + loc[..., :C, None]  # (B, H, C, Q)

    def normalise(self, past: torch.Tensor, future: torch.Tensor, y: torch.Tensor | None = None):
        """A window as the network reads it: each channel normalised by its lookback (``norm``), the
        learnt cycle Q (W, C) taken out of the targets, x_t − Q[phase_t], and with independent channels
        one sequence per target channel. With a cycle the last future channel is each row's phase (as
        :func:`lstmkit.tasks.forecast.data.cycle_phase` gives it), dropped here.

        Returns ``past`` (B', L, ·), ``future`` (B', L+H, F), ``y`` (B', H, c_out) | None, and the
        inverse: ``loc``, ``scale`` (B, 1, P) and ``ahead`` (B, H, C), Q at the forecast rows (None
        without a cycle)."""
        C, L = self.n_target, self.lookback
        loc, scale = self._norm_stats(past)  # (B, 1, P)
        past = (past - loc) / scale  # (B, L, P)
        y = None if y is None else (y - loc[..., :C]) / scale[..., :C]  # (B, H, C)
        ahead = None
        if self.cycle is not None:
            q = self.cycle[future[..., -1].long()]  # (B, L+H, C): Q at each row's phase
            future, ahead = future[..., :-1], q[:, L:]  # (B, L+H, F), (B, H, C)
            past = torch.cat([past[..., :C] - q[:, :L], past[..., C:]], dim=-1)  # (B, L, P)
            y = None if y is None else y - ahead
        if self.channel_independent:
            past, future, y = self._split_channels(past, future, y)
        return past, future, y, (loc, scale, ahead)

    def _split_channels(self, past, future, y):
        """(B, L, P) -> (B*C, L, 1 + P - C): each target channel with the shared covariates."""
        B, L, _ = past.shape
        C = self.n_target
        tgt = past[..., :C].permute(0, 2, 1).reshape(B * C, L, 1)  # (B*C, L, 1)
        cov = past[..., C:].repeat_interleave(C, dim=0)  # (B*C, L, P-C)
        fut = future.repeat_interleave(C, dim=0)  # (B*C, L+H, F)
        y = None if y is None else y.permute(0, 2, 1).reshape(B * C, -1, 1)  # (B*C, H, 1)
        return torch.cat([tgt, cov], dim=-1), fut, y

    # ------------------------------------------------------------------------------- the network
    def encode(self, past: torch.Tensor, future: torch.Tensor, return_gates: bool = False):
        """Run the encoder over the lookback; returns (outputs, (h_n, c_n)[, gates])."""
        p = self.patch
        x = torch.cat([past, future[:, : self.lookback]], dim=-1)  # (B, L, d_in)
        if p > 1:
            pad = (-x.shape[1]) % p
            x = nn.functional.pad(x, (0, 0, pad, 0))  # (B, T*p, d_in), zeros in front
            x = x.reshape(x.shape[0], x.shape[1] // p, p * x.shape[2])  # (B, T, p*d_in)
        x = self.drop(self.embed(x))  # (B, T, enc_in): dropout on the LSTM stack's input
        if return_gates:
            return self.encoder(x, return_gates=True)
        return self.encoder(x)

    def _core(self, past, future, y):
        _, state = self.encode(past, future)  # (h_n, c_n) or the SLSTM's (h, c, n, m), each (layers*D, B, Hd)
        h_n = state[0]
        Bp = past.shape[0]
        fut_h = future[:, self.lookback :]  # (B, H, F)
        if self.decoder_kind == "direct":
            n_dir = 2 if self.bidirectional else 1
            last = h_n[-n_dir:].permute(1, 0, 2).reshape(Bp, -1)  # (D, B, Hd) -> (B, D*Hd)
            z = torch.cat([self.drop(last), fut_h.reshape(Bp, -1)], dim=-1)  # (B, D*Hd + H*F)
            return self.head(z).reshape(Bp, self.horizon, self.c_out, self.n_quantiles)
        return self._seq2seq(past, fut_h, state, y)

    def _seq2seq(self, past, fut_h, state, y):
        """Autoregressive decoder: input (previous value, future covariates); teacher forcing if y given."""
        if self.bidirectional:  # (layers*2, B, Hd) -> sum of the two directions per layer
            if isinstance(state, SLSTMState):  # the unstabilised states added (rescaled to one stabiliser)
                state = merge_directions(state, self.num_layers)
            else:
                state = tuple(s.reshape(self.num_layers, 2, *s.shape[1:]).sum(1) for s in state)
        Bp, q, H = past.shape[0], self.n_quantiles, self.horizon
        prev0 = past[:, -1:, : self.c_out]  # (B, 1, c_out)
        if y is not None:
            prev = torch.cat([prev0, y[:, :-1]], dim=1)  # (B, H, c_out), teacher forcing
            out, _ = self.decoder(torch.cat([prev, fut_h], dim=-1), state)  # (B, H, Hd)
            return self.head(self.drop(out)).reshape(Bp, H, self.c_out, q)
        prev, outs = prev0, []
        for k in range(H):
            o, state = self.decoder(torch.cat([prev, fut_h[:, k : k + 1]], dim=-1), state)  # (B, 1, Hd)
            step = self.head(o).reshape(Bp, 1, self.c_out, q)  # (B, 1, c_out, Q)
            outs.append(step)
            prev = step[..., self.point_index]  # (B, 1, c_out): the point forecast feeds the next step
        return torch.cat(outs, dim=1)  # (B, H, c_out, Q)


class ForecastNet(nn.Module):
    """``ensemble`` LSTM forecasters and a linear map, combined with the weight w (buffer ``mix``)::

        ŷ_c = (1 − w) · mean_k LSTM_k(x)_c + w · lin_c(x_c),
        lin_c(x_c) = x_c,L + (x_c − x_c,L) W_cᵀ + b_c [+ B_c[phase_t] with a cycle]

    ``lin_c`` is ridge regression of target channel c's next H values on its lookback, both taken
    relative to the window's last value x_c,L (NLinear's normalisation), one map per target channel
    (pooled over the series of a --series-column table), fitted in closed form on the training
    windows (:meth:`start_linear`) and not trained further: a forecaster that is robust to level shifts
    and that the combination falls back on. With a cycle of W phases (``dims["cycle"]``) the map also
    has a bias per phase of the first forecast row t and horizon step, B_c (W, H): the cycle's shape as
    a linear map sees it (CycleNet's cycle for its linear model, fitted in closed form here). The
    members train independently (each on its own loss) from different initial weights: their average
    and the combination with the linear map cancel part of each one's error. w is ``--linear-weight``,
    or (none) fitted on the valid windows after training (:meth:`fit_mix`). With quantiles, the whole
    fan is shifted by ``w · (lin − point forecast)``.

    ``forward(past (B, L, P), future (B, L+H, F), y | None) -> (B, H, C, Q)``; with ``members=True``
    the members' own forecasts (K, B, H, C, Q), for training.
    """

    mix: torch.Tensor  # () the weight w
    lin_weight: torch.Tensor  # (C, H, L)
    lin_bias: torch.Tensor  # (C, H)
    lin_phase: torch.Tensor | None  # (C, W, H) with a cycle of W phases

    def __init__(self, cfg: ForecastConfig, dims: Mapping[str, Any]):
        super().__init__()
        self.members = nn.ModuleList(LSTMForecaster(cfg, dims) for _ in range(cfg.ensemble))
        self.n_target, self.point_index = int(dims["n_target"]), cfg.point_index
        w = 0.5 if cfg.linear_weight is None else cfg.linear_weight  # none: 0.5 until fit_mix
        self.register_buffer("mix", torch.tensor(float(w)))  # ()
        self.register_buffer("lin_weight", torch.zeros(self.n_target, cfg.horizon, cfg.lookback))  # (C, H, L)
        self.register_buffer("lin_bias", torch.zeros(self.n_target, cfg.horizon))  # (C, H)
        self.lookback, self.period = cfg.lookback, int(dims.get("cycle", 0))
        if self.period:
            self.register_buffer("lin_phase", torch.zeros(self.n_target, self.period, cfg.horizon))  # (C, W, H)
        else:
            self.lin_phase = None

    def start_linear(self, weight: torch.Tensor, bias: torch.Tensor, phase: torch.Tensor | None = None) -> None:
        """The linear maps' closed-form fit: ``weight`` (C, H, L), ``bias`` (C, H) and, with a cycle, the bias
        per phase ``phase`` (C, W, H), on last-value-relative windows."""
        self.lin_weight.copy_(weight)
        self.lin_bias.copy_(bias)
        if self.lin_phase is not None:
            assert phase is not None, "a model with a cycle needs the linear maps' bias per phase"
            self.lin_phase.copy_(phase)

    def linear_forecast(self, past: torch.Tensor, future: torch.Tensor | None = None) -> torch.Tensor:
        """lin(x) of every target channel: past (B, L, P) (and with a cycle future (B, L+H, F+1), whose last
        channel at row L is the phase of the first forecast row) -> (B, H, C)."""
        x = past[..., : self.n_target].transpose(1, 2)  # (B, C, L)
        last = x[..., -1:]  # (B, C, 1)
        out = torch.einsum("bcl,chl->bch", x - last, self.lin_weight) + self.lin_bias + last  # (B, C, H)
        if self.lin_phase is not None:
            if future is None:
                raise ValueError("a forecaster with a cycle needs the future channels (the phase) for its linear map")
            phase = future[:, self.lookback, -1].long()  # (B,)
            out = out + self.lin_phase[:, phase].transpose(0, 1)  # (C, B, H) -> (B, C, H)
        return out.transpose(1, 2)  # (B, H, C)

    def forward(
        self, past: torch.Tensor, future: torch.Tensor, y: torch.Tensor | None = None, members: bool = False
    ) -> torch.Tensor:
        outs = torch.stack([m(past, future, y) for m in self.members])  # (K, B, H, C, Q)
        if members:
            return outs
        out = self.rearrange(outs.mean(0))  # (B, H, C, Q)
        shift = self.mix * (self.linear_forecast(past, future) - out[..., self.point_index])  # (B, H, C)
        return out + shift[..., None]

    def rearrange(self, out: torch.Tensor) -> torch.Tensor:
        """(B, H, C, Q) with crossing quantiles sorted into order outside training (the monotone
        rearrangement of Chernozhukov, Fernández-Val and Galichon 2010: the sorted curve is never farther
        from the true quantile curve); training keeps each head's own output for its loss."""
        return out if self.training or out.shape[-1] == 1 else out.sort(dim=-1).values

    @torch.no_grad()
    def fit_mix(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> float:
        """Set w to the least-squares weight on ``(past, future, y)`` batches (the valid windows)::

            w = clip(Σ (l − m)(y − m) / Σ (l − m)², 0, 1),   m = mean_k LSTM_k point forecast, l = lin(x)

        the weight that minimises the MSE of (1 − w) m + w l there. Returns w."""
        num = den = torch.zeros((), dtype=torch.float64)
        for past, future, y in batches:
            m = self.rearrange(torch.stack([k(past, future) for k in self.members]).mean(0))[..., self.point_index]
            d = self.linear_forecast(past, future) - m  # (B, H, C)
            num, den = num + (d * (y - m)).double().sum(), den + d.double().square().sum()
        if den > 0:
            self.mix.fill_(float((num / den).clamp(0.0, 1.0)))
        return float(self.mix)
