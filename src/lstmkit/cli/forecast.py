"""``lstmkit forecast train|evaluate|predict|backtest`` and ``lstmkit quickstart`` (argument parsing only)."""

from __future__ import annotations

import argparse
import json
import sys

from lstmkit.cli.common import add_train_options, train_config_from_args
from lstmkit.errors import LstmkitError


def _columns(text: str | None) -> list[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]


def _quantiles(text: str | None) -> list[float]:
    try:
        return [float(q) for q in _columns(text)]
    except ValueError:
        raise LstmkitError(f"--quantiles: expected numbers like 0.1,0.5,0.9, got {text!r}") from None


def _add_data_options(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--target", required=True, help="target column(s), comma-separated")
    a(
        "--features",
        choices=["S", "M", "MS"],
        default="S",
        help="S: the target alone; M: all numeric columns in and out; MS: all in, the target out",
    )
    a("--covariates", default=None, help="past-observed input columns, comma-separated (with S)")
    a(
        "--future-covariates",
        default=None,
        help="known-future input columns, comma-separated (predict: the file's last H rows give their future values)",
    )
    a(
        "--time-column",
        default=None,
        help="time column (parsed; unsorted rows and gaps are reported, duplicated timestamps are an error)",
    )
    a("--series-column", default=None, help="series id column: several series train one global model")
    a(
        "--calendar",
        action="store_true",
        default=False,
        help="add calendar features (minute, hour, weekday, day of year) from --time-column as known-future inputs",
    )
    a(
        "--fill",
        choices=["none", "ffill", "interpolate", "drop"],
        default="none",
        help="how to handle missing values (none: report them as an error)",
    )
    a("--lookback", type=int, default=96, help="input window length L")
    a("--horizon", type=int, default=24, help="forecast length H")
    a(
        "--split",
        default="0.7,0.1,0.2",
        help="train,valid,test in time order, as fractions or row counts (ETT: 8640,2880,2880)",
    )
    a("--season", type=int, default=0, help="seasonal-naive period in steps (0: one day when the time column allows)")


def _add_model_options(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a(
        "--decoder",
        choices=["direct", "seq2seq"],
        default="direct",
        help="direct: one map from the final state to all H steps; seq2seq: autoregressive LSTM decoder",
    )
    a("--quantiles", default=None, help="e.g. 0.1,0.5,0.9: pinball loss and prediction intervals")
    a(
        "--norm",
        choices=["none", "last", "revin"],
        default="revin",
        help="per-window normalisation: revin (window mean/std), last (subtract the last value), none",
    )
    a(
        "--channel-independent",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with several targets, run each target channel through the shared network as its own series",
    )
    a(
        "--patch",
        type=int,
        default=0,
        help="one LSTM step per this many time steps (1: one per step; 0: lookback // 4, i.e. 24 at lookback 96)",
    )
    a(
        "--highway",
        action="store_true",
        default=False,
        help="add LSTNet's linear highway (lookback -> horizon per target channel) to the LSTM's output",
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``lstmkit forecast ...`` and ``lstmkit quickstart``."""
    fc = sub.add_parser(
        "forecast",
        help="time-series forecasting (train, evaluate, predict, backtest)",
        description="Multi-step time-series forecasting with an LSTM encoder.",
    )
    fsub = fc.add_subparsers(dest="action", metavar="<action>")

    p = fsub.add_parser(
        "train",
        help="train a forecaster and write a model folder",
        description="Train on --data (split in time by --split); writes the model folder --out "
        "with metrics.json holding the test-split evaluation and baselines.",
    )
    add_train_options(p, out_default="runs/forecast", data_required=True)
    _add_data_options(p)
    _add_model_options(p)
    p.set_defaults(func=cmd_train, epochs=30, batch_size=128, lr=1e-3, patience=4)

    p = fsub.add_parser(
        "evaluate",
        help="MSE/MAE of the model and of naive and linear baselines",
        description="Every window of the split with stride 1 (the Informer protocol).",
    )
    _add_model_data(p)
    p.add_argument("--split", default="test", choices=["train", "valid", "test"], help="which split's windows")
    p.add_argument("--season", type=int, default=None, help="seasonal-naive period (default: the model's)")
    p.add_argument("--json", action="store_true", default=False, help="print one JSON object on stdout")
    p.set_defaults(func=cmd_evaluate)

    p = fsub.add_parser(
        "predict",
        help="forecast the H steps after the end of the data",
        description="Writes a CSV (with timestamps when there is a time column) and a PNG.",
    )
    _add_model_data(p)
    p.add_argument("--out", default=None, help="CSV file for the forecast (default: print it)")
    p.add_argument(
        "--plot",
        nargs="?",
        const="forecast.png",
        default=None,
        metavar="PNG",
        help="also plot history and forecast (default file when given alone: forecast.png)",
    )
    p.set_defaults(func=cmd_predict)

    p = fsub.add_parser("backtest", help="rolling-origin forecasts over a split, as CSV and plot")
    _add_model_data(p)
    p.add_argument("--split", default="test", choices=["train", "valid", "test"], help="which split")
    p.add_argument("--stride", type=int, default=None, help="steps between origins (default: the horizon)")
    p.add_argument("--out", default="backtest.csv", help="CSV of every forecast")
    p.add_argument("--plot", default="backtest.png", help="PNG of forecasts against truth ('' for none)")
    p.set_defaults(func=cmd_backtest)

    q = sub.add_parser(
        "quickstart",
        help="train the classic sine-wave LSTM in under a minute",
        description="Sine windows of 50 samples predict the next value (64 hidden units, MSE, "
        "Adam); writes a model folder with loss.png and predictions.png and prints "
        "the test MSE.",
    )
    q.add_argument("--out", default="runs/quickstart", help="output model folder")
    q.add_argument("--epochs", type=int, default=10, help="maximum number of epochs")
    q.add_argument("--n-series", type=int, default=16, help="number of generated sine sequences")
    q.add_argument("--length", type=int, default=200, help="samples per sequence")
    q.add_argument("--max-time", type=float, default=40.0, metavar="SECONDS", help="training time budget")
    q.add_argument("--seed", type=int, default=0, help="random seed")
    q.add_argument("--quiet", action="store_true", default=False, help="no progress output")
    q.set_defaults(func=cmd_quickstart)


def _add_model_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model folder written by `forecast train`")
    p.add_argument("--data", required=True, help="CSV or Parquet file with the training columns")


def cmd_train(args: argparse.Namespace) -> int:
    from lstmkit.tasks.forecast import ForecastConfig, train

    cfg = ForecastConfig(
        target=_columns(args.target),
        features=args.features,
        covariates=_columns(args.covariates),
        future_covariates=_columns(args.future_covariates),
        time_column=args.time_column,
        series_column=args.series_column,
        calendar=args.calendar,
        fill=args.fill,
        lookback=args.lookback,
        horizon=args.horizon,
        split=args.split,
        decoder=args.decoder,
        quantiles=_quantiles(args.quantiles),
        norm=args.norm,
        channel_independent=args.channel_independent,
        patch=args.patch,
        highway=args.highway,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        dropout=args.dropout,
        bidirectional=args.bidirectional,
        season=args.season,
    )
    metrics = train(args.data, cfg, train_config_from_args(args), args.out, valid=args.valid)
    test = metrics.get("test")
    if test:
        print(_summary(test), file=sys.stderr)
    print(f"model folder: {args.out}", file=sys.stderr)
    return 0


def _summary(m: dict) -> str:
    rows = [
        f"{'':16s}{'mse':>10s}{'mae':>10s}{'mse_raw':>12s}{'mae_raw':>10s}{'mape%':>9s}",
        f"{'model':16s}{m['mse']:10.4f}{m['mae']:10.4f}{m['mse_raw']:12.4g}{m['mae_raw']:10.4g}{m['mape']:9.2f}",
    ]
    for k, b in m["baselines"].items():
        rows.append(f"{k:16s}{b['mse']:10.4f}{b['mae']:10.4f}{b['mse_raw']:12.4g}{b['mae_raw']:10.4g}{b['mape']:9.2f}")
    return f"{m['split']} split, {m['windows']} windows (stride 1):\n" + "\n".join(rows)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from lstmkit.tasks.forecast import load_predictor

    metrics = load_predictor(args.model).evaluate(args.data, split=args.split, season=args.season)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(_summary(metrics))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from lstmkit.tasks.forecast import load_predictor

    df = load_predictor(args.model).predict(args.data, out=args.out, plot=args.plot)
    if not args.out:
        print(df.to_csv(index=False), end="")
    else:
        print(f"wrote {args.out}" + (f" and {args.plot}" if args.plot else ""), file=sys.stderr)
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from lstmkit.tasks.forecast import load_predictor

    _, m = load_predictor(args.model).backtest(
        args.data, split=args.split, stride=args.stride, out=args.out or None, plot=args.plot or None
    )
    print(
        f"{m['forecasts']} forecasts over the {m['split']} split: mse {m['mse']:.4f} mae {m['mae']:.4f} "
        f"mse_raw {m['mse_raw']:.4g} mae_raw {m['mae_raw']:.4g}; wrote {args.out}"
        + (f" and {args.plot}" if args.plot else ""),
        file=sys.stderr,
    )
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from lstmkit.tasks.quickstart import QuickstartConfig, run

    result = run(
        QuickstartConfig(
            out=args.out,
            epochs=args.epochs,
            n_series=args.n_series,
            length=args.length,
            max_time=args.max_time,
            seed=args.seed,
            quiet=args.quiet,
        )
    )
    print(f"test MSE: {result['test_mse']:.2e}")
    return 0
