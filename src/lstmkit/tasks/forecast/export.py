"""What ``lstmkit export`` writes for a forecaster: one graph, ``model``: standardised windows past
(B, L, P) and future (B, L+H, F) -> the forecast (B, H, C, Q) of :class:`ForecastNet` (every member of
the ensemble, their mean, the sorted quantiles and the linear map's share). Windowing, scaling and
the conformal intervals stay in the predictor, shared with the runtime."""

from __future__ import annotations

from typing import Any

import torch

from lstmkit.export import GraphSpec


def graphs(predictor: Any) -> list[GraphSpec]:
    cfg, dims = predictor.config, predictor.dims
    L, H = cfg.lookback, cfg.horizon
    past = torch.randn(2, L, int(dims["n_past"]))  # (B, L, P)
    future = torch.randn(2, L + H, int(dims["n_future"]))  # (B, L+H, F)
    period = int(dims.get("cycle", 0))
    if period:  # the last future channel: each row's cycle phase
        future = torch.cat([future, torch.randint(0, period, (2, L + H, 1)).float()], dim=-1)  # (B, L+H, F+1)
    dynamic = {"past": {0: "B"}, "future": {0: "B"}, "forecast": {0: "B"}}
    return [GraphSpec("model", predictor.model, (past, future), ["past", "future"], ["forecast"], dynamic)]
