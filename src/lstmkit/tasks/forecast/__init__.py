"""Time-series forecasting: ``lstmkit forecast train|evaluate|predict|backtest`` and ``lstmkit quickstart``.

::

    CSV/Parquet/DataFrame ──► SeriesSet (targets first, covariates, calendar) ──► standardised with the
        train split's statistics (scaler.json) ──► windows [t-L, t) → [t, t+H) cut by --split
        ──► per-window norm → patches → LSTM encoder → direct or seq2seq head (quantiles) ──► the trainer
        ──► model folder: config.json, model.safetensors, scaler.json, columns.json, sample.json

Modules: ``config`` (settings, torch-free), ``data`` (tables, scaler, windows), ``model`` (the
network), ``baselines`` (naive / linear baselines), ``metrics`` (MSE/MAE, MASE, sMAPE, CRPS, interval
coverage), ``evaluation`` (the model and the baselines on the same windows), ``conformal``
(split-conformal intervals, ``--intervals``), ``task`` (the contract), ``predict`` (the predictor),
``backtest`` (rolling-origin forecasts), ``quickstart`` (the one-minute demo).
"""

from lstmkit.tasks.forecast.config import (
    BacktestOptions,
    ForecastConfig,
    ForecastEvaluate,
    ForecastPredict,
    QuickstartOptions,
)

__all__ = ["BacktestOptions", "ForecastConfig", "ForecastEvaluate", "ForecastPredict", "QuickstartOptions"]
