"""ForecastStream without a server: readiness, the bounded buffer, step numbers without a time column."""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pytest
from live_server import hourly_rows

from lstmkit.errors import DataError
from lstmkit.io import to_jsonable
from lstmkit.tasks.forecast.stream import ForecastStream


def test_the_stream_module_imports_no_torch() -> None:
    import subprocess

    code = "import sys, lstmkit.tasks.forecast.stream; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_rows_one_by_one_equal_the_whole_table(forecast_predictor: Any) -> None:
    rows = hourly_rows(50, "x") + hourly_rows(50, "y")
    rows = [r for pair in zip(rows[:50], rows[50:]) for r in pair]  # two series, interleaved
    stream = forecast_predictor.stream(keep=15)
    for r in rows:
        out = stream.step(r)
    assert out == to_jsonable(forecast_predictor.predict(pd.DataFrame(rows)))
    assert {sid: len(buf) for sid, buf in stream.rows.items()} == {"x": 15, "y": 15}


def test_step_numbers_count_dropped_rows_without_a_time_column(forecast_predictor: Any) -> None:
    timeless = copy.copy(forecast_predictor)
    timeless.config = dataclasses.replace(forecast_predictor.config, time_column=None)
    rows = [{k: v for k, v in r.items() if k != "date"} for r in hourly_rows(40)]
    stream = ForecastStream(timeless)
    out = stream.step(rows)  # a list of rows in one step
    want = to_jsonable(timeless.predict(pd.DataFrame(rows)))
    assert out == want and [r["step"] for r in out] == [40, 41, 42]


def test_bad_options_and_rows(forecast_predictor: Any) -> None:
    with pytest.raises(DataError, match="options.keep"):
        ForecastStream(forecast_predictor, keep=3)
    with pytest.raises(DataError, match="options.horizon"):
        ForecastStream(forecast_predictor, horizon=3)
    stream = ForecastStream(forecast_predictor)
    with pytest.raises(DataError, match="inputs: expected a row"):
        stream.step("x")
    assert stream.step([]) == {"ready": False, "need": 12}


def test_a_failed_step_leaves_the_stream_as_it_was(forecast_predictor: Any) -> None:
    rows = hourly_rows(13)
    stream = ForecastStream(forecast_predictor)
    stream.step(rows[:12])
    with pytest.raises(DataError, match="non-numeric value 'abc'"):
        stream.step({**rows[12], "load": "abc"})
    with pytest.raises(DataError, match="series column"):
        stream.step([rows[12], {"load": 1.0}])
    assert stream.step(rows[12]) == to_jsonable(forecast_predictor.predict(pd.DataFrame(rows)))


@dataclasses.dataclass
class Config:  # what ForecastStream reads of a ForecastConfig
    lookback: int = 3
    horizon: int = 2
    series_column: str | None = None
    time_column: str | None = None
    target: list[str] = dataclasses.field(default_factory=lambda: ["load"])
    future_covariates: list[str] = dataclasses.field(default_factory=lambda: ["temp"])


class Tables:
    """A stand-in predictor that answers with the table it was given."""

    config = Config()

    def forecast(self, df: pd.DataFrame, first_rows: Mapping[str, int]) -> pd.DataFrame:
        return pd.DataFrame({"step": [len(df)], "table": [df.to_dict(orient="records")]})


def test_future_covariates_come_as_rows_without_targets() -> None:
    stream = ForecastStream(Tables())
    obs = [{"load": float(i), "temp": 10.0 + i} for i in range(4)]
    future = [{"load": None, "temp": 20.0}, {"temp": 21.0}]
    assert stream.step(obs[:3]) == {"ready": False, "need": 0, "future": 2}
    out = stream.step(future)
    assert out[0]["table"] == [*obs[:3], {"load": None, "temp": 20.0}, {"load": None, "temp": 21.0}]
    assert stream.step(obs[3]) == {"ready": False, "need": 0, "future": 2}  # a new origin: new future rows
    assert stream.step([*future, future[0]])[0]["table"][-2:] == [{"load": None, "temp": 21.0}, future[0]]
