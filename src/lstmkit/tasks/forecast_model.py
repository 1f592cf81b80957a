"""The forecasting network: optional per-window normalisation, channel independence, patching,
an LSTM encoder (:class:`lstmkit.nn.LSTM`) and a multi-step head (direct or seq2seq).

Shapes: B batch, L lookback, H horizon, P past channels (targets first), C target channels,
F known-future channels, Q quantiles (1 for a point forecast), D = num_directions, Hd hidden size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from lstmkit.nn import LSTM

Norm = Literal["none", "last", "revin"]
Decoder = Literal["direct", "seq2seq"]


@dataclass
class NetConfig:
    """Everything that fixes the network's shape (saved in config.json under "net")."""

    n_past: int
    n_target: int
    n_future: int
    lookback: int
    horizon: int
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    bidirectional: bool = False
    decoder: Decoder = "direct"
    n_quantiles: int = 1
    point_index: int = 0  # which quantile is the point forecast (fed back by the seq2seq decoder)
    norm: Norm = "revin"
    channel_independent: bool = True
    patch: int = 1
    highway: bool = False


class ForecastNet(nn.Module):
    """``forward(past (B, L, P), future (B, L+H, F), y (B, H, C) | None) -> (B, H, C, Q)``.

    Per-window normalisation (``norm``): ``last`` subtracts the last lookback value of each channel,
    ``revin`` subtracts the window mean and divides by the window std; outputs are mapped back.
    With ``channel_independent`` every target channel is its own univariate sequence
    (``[target_c, covariates, future]``) through one shared network. ``highway`` adds LSTNet's linear
    "autoregressive highway" (lookback -> horizon of each target channel) to the LSTM's output.
    """

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        c_out = 1 if cfg.channel_independent else cfg.n_target
        n_cov = cfg.n_past - cfg.n_target
        d_in = (1 + n_cov if cfg.channel_independent else cfg.n_past) + cfg.n_future
        self.c_out = c_out
        d_step = d_in * cfg.patch
        self.embed = nn.Sequential(nn.Linear(d_step, cfg.hidden_size), nn.ReLU()) if cfg.patch > 1 else nn.Identity()
        enc_in = cfg.hidden_size if cfg.patch > 1 else d_step
        n_dir = 2 if cfg.bidirectional else 1
        self.encoder = LSTM(
            enc_in,
            cfg.hidden_size,
            num_layers=cfg.num_layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
            bidirectional=cfg.bidirectional,
        )
        self.drop = nn.Dropout(cfg.dropout)
        q = cfg.n_quantiles
        if cfg.decoder == "direct":
            self.head = nn.Linear(cfg.hidden_size * n_dir + cfg.horizon * cfg.n_future, cfg.horizon * c_out * q)
        else:
            self.decoder = LSTM(
                c_out + cfg.n_future,
                cfg.hidden_size,
                num_layers=cfg.num_layers,
                batch_first=True,
                dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
            )
            self.head = nn.Linear(cfg.hidden_size, c_out * q)
        # LSTNet's "highway": a linear map (L -> H) of each target channel's lookback added to the output
        self.highway = nn.Linear(cfg.lookback, cfg.horizon) if cfg.highway else None

    # ------------------------------------------------------------------ normalisation per window
    def _norm_stats(self, past: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Location and scale (B, 1, P) of each window's lookback."""
        if self.cfg.norm == "last":
            return past[:, -1:, :], torch.ones_like(past[:, -1:, :])
        if self.cfg.norm == "revin":
            loc = past.mean(dim=1, keepdim=True)
            return loc, past.std(dim=1, keepdim=True, unbiased=False).clamp_min(1e-5)
        return torch.zeros_like(past[:, -1:, :]), torch.ones_like(past[:, -1:, :])

    def forward(self, past: torch.Tensor, future: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.cfg
        B, C = past.shape[0], cfg.n_target
        loc, scale = self._norm_stats(past)  # (B, 1, P)
        past = (past - loc) / scale  # (B, L, P)
        y = None if y is None else (y - loc[..., :C]) / scale[..., :C]  # (B, H, C)
        if cfg.channel_independent:
            past, future, y = self._split_channels(past, future, y)
        out = self._core(past, future, y)  # (B', H, c_out, Q)
        if self.highway is not None:
            lin = self.highway(past[..., : self.c_out].transpose(1, 2)).transpose(1, 2)  # (B', H, c_out)
            out = out + lin.unsqueeze(-1)
        if cfg.channel_independent:
            out = out.reshape(B, C, cfg.horizon, cfg.n_quantiles).permute(0, 2, 1, 3)  # (B, H, C, Q)
        return out * scale[..., :C, None] + loc[..., :C, None]  # (B, H, C, Q)

    def _split_channels(self, past, future, y):
        """(B, L, P) -> (B*C, L, 1 + P - C): each target channel with the shared covariates."""
        B, L, _ = past.shape
        C = self.cfg.n_target
        tgt = past[..., :C].permute(0, 2, 1).reshape(B * C, L, 1)  # (B*C, L, 1)
        cov = past[..., C:].repeat_interleave(C, dim=0)  # (B*C, L, P-C)
        fut = future.repeat_interleave(C, dim=0)  # (B*C, L+H, F)
        y = None if y is None else y.permute(0, 2, 1).reshape(B * C, -1, 1)  # (B*C, H, 1)
        return torch.cat([tgt, cov], dim=-1), fut, y

    # ------------------------------------------------------------------------------- the network
    def encode(self, past: torch.Tensor, future: torch.Tensor, return_gates: bool = False):
        """Run the encoder over the lookback; returns (outputs, (h_n, c_n)[, gates])."""
        cfg = self.cfg
        x = torch.cat([past, future[:, : cfg.lookback]], dim=-1)  # (B, L, d_in)
        if cfg.patch > 1:
            pad = (-x.shape[1]) % cfg.patch
            x = nn.functional.pad(x, (0, 0, pad, 0))  # (B, L', d_in), zeros in front
            x = x.reshape(x.shape[0], x.shape[1] // cfg.patch, cfg.patch * x.shape[2])  # (B, L'/p, p*d_in)
        x = self.embed(x)  # (B, T, enc_in)
        if return_gates:
            return self.encoder(x, return_gates=True)
        return self.encoder(x)

    def _core(self, past, future, y):
        cfg = self.cfg
        _, (h_n, c_n) = self.encode(past, future)  # h_n (layers*D, B, Hd)
        Bp = past.shape[0]
        fut_h = future[:, cfg.lookback :]  # (B, H, F)
        if cfg.decoder == "direct":
            n_dir = 2 if cfg.bidirectional else 1
            last = h_n[-n_dir:].permute(1, 0, 2).reshape(Bp, -1)  # (B, D*Hd)
            z = torch.cat([self.drop(last), fut_h.reshape(Bp, -1)], dim=-1)  # (B, D*Hd + H*F)
            return self.head(z).reshape(Bp, cfg.horizon, self.c_out, cfg.n_quantiles)
        return self._seq2seq(past, fut_h, h_n, c_n, y)

    def _seq2seq(self, past, fut_h, h_n, c_n, y):
        """Autoregressive decoder: input (previous value, future covariates); teacher forcing if y given."""
        cfg = self.cfg
        if cfg.bidirectional:  # (layers*2, B, Hd) -> sum of the two directions per layer
            h_n = h_n.reshape(cfg.num_layers, 2, *h_n.shape[1:]).sum(1)
            c_n = c_n.reshape(cfg.num_layers, 2, *c_n.shape[1:]).sum(1)
        Bp, q = past.shape[0], cfg.n_quantiles
        prev0 = past[:, -1:, : self.c_out]  # (B, 1, c_out)
        if y is not None:
            prev = torch.cat([prev0, y[:, :-1]], dim=1)  # (B, H, c_out), teacher forcing
            out, _ = self.decoder(torch.cat([prev, fut_h], dim=-1), (h_n, c_n))  # (B, H, Hd)
            return self.head(self.drop(out)).reshape(Bp, cfg.horizon, self.c_out, q)
        state, prev, outs = (h_n, c_n), prev0, []
        for k in range(cfg.horizon):
            o, state = self.decoder(torch.cat([prev, fut_h[:, k : k + 1]], dim=-1), state)  # (B, 1, Hd)
            step = self.head(o).reshape(Bp, 1, self.c_out, q)  # (B, 1, c_out, Q)
            outs.append(step)
            prev = step[..., cfg.point_index]  # (B, 1, c_out): the point forecast feeds the next step
        return torch.cat(outs, dim=1)  # (B, H, c_out, Q)
