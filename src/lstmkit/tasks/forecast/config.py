"""Every setting of ``lstmkit forecast`` and ``lstmkit quickstart``, declared once (torch-free: the
command line reads it for ``--help``).

"Automatic" values are resolved by ``prepare`` and saved resolved in config.json: an empty
``target`` becomes the last numeric column of the training table, ``patch 0`` becomes
``max(1, lookback // 4)`` and ``season 0`` one day of steps when the time column allows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lstmkit.config import Settings, section, setting
from lstmkit.tasks.settings import LSTMSettings, TaskSettings
from lstmkit.tasks.spec import Arg, Command, TaskSpec
from lstmkit.trainer.config import TrainConfig

FeatureMode = Literal["S", "M", "MS"]
FillMethod = Literal["none", "ffill", "interpolate", "drop"]
Decoder = Literal["direct", "seq2seq"]
Norm = Literal["none", "last", "revin"]
Part = Literal["train", "valid", "test"]
Cell = Literal["lstm", "slstm"]
Loss = Literal["mae", "mse"]
IntervalScale = Literal["window", "none"]

#: the one line ``--valid`` gets: forecast cuts its validation rows from --data
VALID_MESSAGE = (
    "--valid: forecast takes its validation rows from --split of --data (train,valid,test in time order); "
    "pass a single --data table"
)


@dataclass
class ForecastConfig(TaskSettings):
    """A multi-step forecaster: which columns of the table, the windows, and the network
    (per-window norm → patches → LSTM encoder → direct or seq2seq head, optional quantiles)."""

    title = "forecast"

    target: list[str] = setting(
        [], help="target column(s), comma-separated (default: the last numeric column of --data, e.g. ETTh1's OT)"
    )
    features: FeatureMode = setting(
        "S", help="S: the target alone; M: all numeric columns in and out; MS: all in, the target out"
    )
    covariates: list[str] = setting([], help="past-observed input columns, comma-separated, with S (default: none)")
    future_covariates: list[str] = setting(
        [],
        help="known-future input columns, comma-separated; predict: the table's last H rows give their values "
        "(default: none)",
    )
    time_column: str | None = setting(
        None, help="time column (none: rows are in time order; unsorted rows and gaps are reported)"
    )
    series_column: str | None = setting(None, help="series id column: several series train one global model")
    calendar: bool = setting(
        False, help="add calendar features (minute, hour, weekday, day of year) of --time-column as known-future inputs"
    )
    fill: FillMethod = setting("none", help="missing values: none (an error), ffill, interpolate or drop the rows")
    max_rows: int = setting(
        1_000_000,
        ge=2,
        help="the longest series read, in rows: a longer series keeps its LAST this many rows (one warning "
        "with the count); train, evaluate, predict and backtest alike",
    )
    lookback: int = setting(96, ge=1, help="input window length L (time steps)")
    horizon: int = setting(24, ge=1, help="forecast length H (time steps)")
    split: list[float] = setting(
        [0.7, 0.1, 0.2],
        ge=0,
        help="train,valid,test in time order, as fractions or row counts per series (ETTh1: 8640,2880,2880)",
    )
    season: int = setting(
        0,
        ge=0,
        help="period in steps of the seasonal-naive baseline and of --cycle (0: one day when the time column "
        "allows, else none)",
    )
    decoder: Decoder = setting(
        "direct", help="direct: one map from the final state to all H steps; seq2seq: autoregressive LSTM decoder"
    )
    cell: Cell = setting(
        "lstm",
        help="the encoder's (and seq2seq decoder's) recurrent cell: lstm, or slstm (xLSTM's sLSTM: exponential "
        "gating with normaliser and stabiliser states, lstmkit.nn.SLSTM)",
    )
    heads: int = setting(
        4, ge=1, help="--cell slstm: heads of its block-diagonal recurrent matrix (--hidden-size a multiple of it)"
    )
    loss: Loss = setting(
        "mae",
        help="what training minimises for a point forecast, and early stopping judges on the valid windows: mae "
        "(mean absolute error; on the data sets that chose the defaults it lowered the validation MSE too: "
        "bench/results/forecast.md) or mse (mean squared error); --quantiles: the pinball loss instead",
    )
    quantiles: list[float] = setting(
        [],
        gt=0,
        lt=1,
        help="e.g. 0.1,0.5,0.9: pinball loss and prediction intervals (default: none, a point forecast trained with --loss)",
    )
    intervals: list[float] = setting(
        [],
        gt=0,
        lt=1,
        help="e.g. 0.8,0.95: split-conformal prediction intervals at these levels, calibrated on the valid part's "
        "residuals per horizon step (predict/backtest add <target>_lo<level> / _hi<level>; default: none)",
    )
    interval_scale: IntervalScale = setting(
        "window",
        help="--intervals: window (residuals relative to each window's seasonal-naive error over its lookback: "
        "intervals follow the recent volatility) or none (plain absolute residuals)",
    )
    norm: Norm = setting(
        "revin", help="per-window normalisation: revin (window mean/std), last (subtract the last value), none"
    )
    cycle: bool = setting(
        True,
        help="learn the cycle of --season steps (CycleNet's residual cycle forecasting): per target channel, a "
        "value per phase taken out of the LSTMs' normalised lookback and added back to their forecast, and a "
        "bias per phase and step in the linear map; the phase counts steps since 1970 with a time column at "
        "one fixed step, else rows (off without a season)",
    )
    channel_independent: bool = setting(
        True, help="with several targets, run each target channel through the shared network as its own series"
    )
    patch: int = setting(
        0, ge=0, help="one LSTM step per this many time steps (1: one per step; 0: lookback // 4, 24 at lookback 96)"
    )
    highway: bool = setting(
        False, help="add LSTNet's linear highway (lookback -> horizon per target channel) to the LSTM's output"
    )
    ensemble: int = setting(
        1,
        ge=1,
        le=64,
        help="LSTM forecasters trained side by side from different initial weights; the forecast averages them "
        "(3 lowered the validation MSE by 0.2 percent on average on the data sets that chose the defaults, for 2.1x "
        "the CPU time: bench/results/forecast.md)",
    )
    linear_weight: float | None = setting(
        None,
        ge=0,
        le=1,
        help="weight w of the linear map in the forecast (1 - w) · mean of the LSTMs + w · ridge regression of "
        "the horizon on the lookback, both relative to the window's last value, fitted in closed form on the "
        "training windows (0: the LSTMs alone; 1: the linear map alone; none: the least-squares w on the "
        "valid windows after training, 0.5 without them)",
    )
    refit_linear: bool = setting(
        True,
        help="after training (the LSTM's weights, w and the intervals chosen on the valid windows), fit the "
        "linear maps again on train + valid, so that the most recent data informs the forecast; the valid "
        "scores in metrics.json then include windows the maps saw",
    )
    lstm: LSTMSettings = section(LSTMSettings, hidden_size=128)
    train: TrainConfig = section(TrainConfig, epochs=30, batch_size=128, lr=1e-3, patience=4)

    def check(self) -> None:
        super().check()
        if len(self.split) != 3:
            raise self.error("split", "must be three numbers train,valid,test", self.split)
        if not self.split_fractions and any(not float(p).is_integer() for p in self.split):
            raise self.error(
                "split", "row counts must be whole numbers (fractions must add up to at most 1)", self.split
            )
        if self.split[0] <= 0:
            raise self.error("split", "needs a training part", self.split)
        if len(set(self.quantiles)) != len(self.quantiles):
            raise self.error("quantiles", "must be different values", self.quantiles)
        self.quantiles = sorted(self.quantiles)  # given in any order, kept ascending
        if len(set(self.intervals)) != len(self.intervals):
            raise self.error("intervals", "must be different values", self.intervals)
        self.intervals = sorted(self.intervals)
        if self.calendar and not self.time_column:
            raise self.error("calendar", "needs --time-column")
        self._check_roles()
        self._check_cell()
        if self.lookback + self.horizon > self.max_rows:
            raise self.error(
                "max_rows", f"leaves no window of lookback {self.lookback} + horizon {self.horizon}", self.max_rows
            )
        both = sorted(set(self.target) & set(self.future_covariates))
        if both:
            raise self.error("future_covariates", f"cannot hold a target column ({', '.join(both)})")

    def _check_cell(self) -> None:
        """--cell slstm: heads divide the hidden size; the LSTM's own variants do not apply."""
        if self.cell != "slstm":
            return
        if self.lstm.hidden_size % self.heads:
            raise self.error("heads", f"must divide --hidden-size {self.lstm.hidden_size}", self.heads)
        for name in ("layer_norm", "peephole", "variational_dropout", "weight_drop", "zoneout"):
            if getattr(self.lstm, name):
                flag = "--" + name.replace("_", "-")
                raise self.error("cell", f"slstm has no {flag} (an LSTM variant); use --cell lstm", self.cell)

    def _check_roles(self) -> None:
        """A column plays one role: the time and series-id columns are never a target or an input."""
        if self.time_column is not None and self.time_column == self.series_column:
            raise self.error("series_column", "must differ from --time-column", self.series_column)
        for name in ("target", "covariates", "future_covariates"):
            values: list[str] = getattr(self, name)
            for special in (self.time_column, self.series_column):
                if special is not None and special in values:
                    raise self.error(name, f"cannot hold the time or series-id column '{special}'", values)
            if any(not str(v).strip() for v in values):
                raise self.error(name, "holds an empty column name", values)

    @property
    def split_fractions(self) -> bool:
        """Whether ``split`` holds fractions (all <= 1, adding up to at most 1) rather than row counts."""
        return all(p <= 1.0 for p in self.split) and sum(self.split) <= 1.0 + 1e-9

    @property
    def patch_length(self) -> int:
        """Time steps per LSTM step: ``patch``, or ``max(1, lookback // 4)`` for ``patch 0``."""
        return self.patch or max(1, self.lookback // 4)

    @property
    def n_quantiles(self) -> int:
        """Outputs per step and channel: the quantiles, or 1 for a point forecast."""
        return max(1, len(self.quantiles))

    @property
    def point_index(self) -> int:
        """Which output is the point forecast: the quantile nearest 0.5 (0 without quantiles)."""
        if not self.quantiles:
            return 0
        gaps = [abs(q - 0.5) for q in self.quantiles]
        return gaps.index(min(gaps))


@dataclass
class ForecastEvaluate(Settings):
    """Options of ``forecast evaluate`` / ``Predictor.evaluate``: every window of one split, stride 1
    (the Informer protocol), the model and the baselines on the same windows."""

    title = "evaluate"

    part: Part = setting("test", help="which part of the table (cut by the model's --split) to evaluate")
    season: int | None = setting(
        None, ge=0, help="seasonal-naive period in steps (none: the model's; 0: one day when the time column allows)"
    )


@dataclass
class ForecastPredict(Settings):
    """Options of ``forecast predict`` / ``Predictor.predict``."""

    title = "predict"

    plot: str | None = setting(
        None, metavar="PNG", help="also plot history and forecast of the first series (none: no plot)"
    )


@dataclass
class BacktestOptions(Settings):
    """Options of ``forecast backtest`` / ``ForecastPredictor.backtest``."""

    title = "backtest"

    part: Part = setting("test", help="which part of the table (cut by the model's --split) to forecast")
    stride: int | None = setting(None, ge=1, help="steps between forecast origins (none: the horizon)")
    plot: str | None = setting("backtest.png", metavar="PNG", help="PNG of forecasts against truth; none: no plot")


@dataclass
class QuickstartOptions(Settings):
    """``lstmkit quickstart``: sine windows of ``lookback`` samples predict the next value, with
    every ``forecast`` setting at the demo's default (one global model, no normalisation)."""

    title = "quickstart"

    n_series: int = setting(16, ge=1, help="number of generated sine sequences")
    length: int = setting(200, ge=2, help="samples per sequence")
    progress: bool = setting(True, help="training progress on stderr (--no-progress: quiet)")
    forecast: ForecastConfig = section(
        ForecastConfig,
        help="the forecaster: lstmkit forecast's settings with the demo's defaults",
        fixed={"target": ["value"], "series_column": "series", "time_column": None},
        lookback=50,
        horizon=1,
        split=[0.7, 0.15, 0.15],
        norm="none",
        patch=1,
        loss="mse",  # the demo reports MSE; its drops come at uncertain steps, where the mean beats the median
        lstm={"hidden_size": 64},
        train={
            "epochs": 10,
            "batch_size": 64,
            "lr": 3e-3,
            "schedule": "cosine",
            "patience": 0,
            "max_time": 40.0,
            "device": "cpu",
        },
    )

    def check(self) -> None:
        lookback = self.forecast.lookback
        if round(0.7 * self.length) <= lookback or round(0.15 * self.length) < 1:
            raise self.error(
                "length",
                f"leaves no training or test window (70% of it must exceed --lookback {lookback})",
                self.length,
            )


BACKTEST = Command(
    name="backtest",
    help="rolling-origin forecasts over a split: a CSV of every forecast (and a plot)",
    run="lstmkit.tasks.forecast.backtest:run",
    options=BacktestOptions,
    args=(
        Arg("data", "CSV or Parquet table with the training columns", required=True),
        Arg("output", "CSV of every forecast (default: backtest.csv)", default="backtest.csv"),
    ),
)

QUICKSTART = Command(
    name="quickstart",
    help="train the classic sine-wave LSTM in under a minute: sine windows of 50 samples predict the next "
    "value; writes a model folder with loss.png and predictions.png and prints the test MSE",
    run="lstmkit.tasks.forecast.quickstart:run",
    options=QuickstartOptions,
    args=(Arg("out", "the model folder to write (default: runs/quickstart)", default="runs/quickstart"),),
    model=False,
)

SPEC = TaskSpec(
    name="forecast",
    summary="time-series forecasting (train, evaluate, predict, backtest)",
    config=ForecastConfig,
    evaluate=ForecastEvaluate,
    predict=ForecastPredict,
    data_help="a CSV or Parquet table (numeric columns, optional time and series-id columns), cut in time into "
    "train, valid and test by --split",
    predict_help="a CSV or Parquet table with the training columns; the forecast continues each series",
    valid_help="not used: validation rows come from --split of --data",
    commands=(BACKTEST,),
    renamed={"--split": "--part"},  # evaluate / backtest: the part of the table; train's --split cuts it
    description="Multi-step forecasting with an LSTM encoder. Validation and test rows come from --split of "
    "--data; --test FILE evaluates FILE's test split. Metrics are on the standardised scale "
    "(train-split statistics) and in original units (_raw), next to naive and linear baselines.",
)
