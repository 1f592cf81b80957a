"""Streaming forecasts: one observation in, the forecast from the current window out.

``ForecastPredictor.stream()`` returns a :class:`ForecastStream`; ``lstmkit serve`` opens one per
session (``POST /v1/sessions``) and calls :meth:`ForecastStream.step` on each ``.../step``. The stream
works with any predictor that has ``.config`` (a ForecastConfig) and ``.predict(DataFrame) ->
DataFrame``: the torch predictor and the exported runtime's alike. No torch here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from lstmkit.errors import DataError

Row = dict[str, Any]  # one observation: column -> value, as in a row of the training table


class ForecastStream:
    """The rows received so far, per series, and the forecast from the latest window.

    The forecast model normalises each window on its own: ``--norm revin`` / ``last`` take a
    location and scale from the lookback window itself, the LSTM encoder reads the (patched) window
    from a zero state, and the linear map of ``--linear-weight`` reads the window relative to its
    last value. Nothing of an earlier window carries into the next one, so the streaming state is
    the window itself (the last ``lookback`` rows of each series), not an LSTM state: each step
    appends the new rows and forecasts from the buffer, and the result is the same records
    ``predictor.predict(DataFrame(buffer))`` gives.

    Each series keeps its last ``keep`` rows (default ``2 * lookback``, at least ``lookback``): the
    window, plus earlier rows for the median time step that dates the forecast. Without a time column
    the ``step`` column counts every row received, also those dropped from the buffer, so the
    numbers match a forecast of the whole history. With ``--future-covariates`` a row whose targets
    are all missing is a known-future row: a series needs ``horizon`` of them after its latest
    observation (a step with observations drops that series' earlier future rows).

    Rows must arrive in time order within a series; rows of several series may be mixed, and the
    forecast covers every series of the buffer, so a new series holds it back until it has
    ``lookback`` rows. A step that fails (a bad row, a series the model does not know) leaves the
    stream as it was.
    """

    def __init__(self, predictor: Any, keep: int | None = None, **unknown: Any):
        if unknown:
            raise DataError(f"options.{next(iter(unknown))}: not a forecast stream option (known: keep)")
        cfg = predictor.config
        self.predictor = predictor
        self.lookback: int = cfg.lookback
        self.horizon: int = cfg.horizon
        self.series_column: str | None = cfg.series_column
        self.time_column: str | None = cfg.time_column
        self.targets: list[str] = [str(t) for t in cfg.target]
        self.future_rows = cfg.horizon if cfg.future_covariates else 0
        keep = 2 * self.lookback if keep is None else keep
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < self.lookback:
            raise DataError(f"options.keep: expected a whole number >= lookback {self.lookback}, got {keep!r}")
        self.keep = keep
        self.rows: dict[str, deque[Row]] = {}  # series id -> its last `keep` observations
        self.dropped: dict[str, int] = {}  # series id -> observations that left the buffer
        self.future: dict[str, list[Row]] = {}  # series id -> its known-future rows

    def step(self, inputs: Any) -> Any:
        """Append one row (a dict column -> value) or a list of rows; return the forecast as JSON
        records, or ``{"ready": false, "need": k}`` while a series lacks ``k`` of its ``lookback``
        rows (``"future": n`` when it lacks ``n`` known-future rows)."""
        saved = (
            {k: v.copy() for k, v in self.rows.items()},
            dict(self.dropped),
            {k: list(v) for k, v in self.future.items()},
        )
        try:
            for row in self._rows(inputs):
                self._add(row)
            return self._answer()
        except BaseException:  # a step that fails leaves the stream as it was
            self.rows, self.dropped, self.future = saved
            raise

    def _answer(self) -> Any:
        need = max((self.lookback - len(r) for r in self.rows.values()), default=self.lookback)
        future = max((self.future_rows - len(self.future.get(s, [])) for s in self.rows), default=self.future_rows)
        if need > 0 or future > 0:
            waiting: dict[str, Any] = {"ready": False, "need": max(need, 0)}
            if future > 0:
                waiting["future"] = future
            return waiting
        return self.forecast()

    def forecast(self) -> list[Row]:
        """The predictor's forecast of the buffered rows, as JSON records."""
        import pandas as pd

        from lstmkit.io import to_jsonable

        table = [r for sid, rows in self.rows.items() for r in (*rows, *self.future.get(sid, []))]
        df = self.predictor.forecast(pd.DataFrame(table), first_rows=self.dropped)  # rows counted from the first seen
        if self.time_column is None and any(self.dropped.values()):  # count the rows no longer buffered
            ids = df[self.series_column].astype(str) if self.series_column else pd.Series("", index=df.index)
            df["step"] = df["step"] + ids.map(self.dropped).fillna(0).astype(df["step"].dtype)
        return to_jsonable(df)

    def close(self) -> None:
        """Forget the buffered rows."""
        self.rows.clear()
        self.future.clear()

    # ------------------------------------------------------------------ rows
    @staticmethod
    def _rows(inputs: Any) -> list[Row]:
        rows = [inputs] if isinstance(inputs, Mapping) else inputs
        if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
            raise DataError(
                f"inputs: expected a row (an object column -> value) or a list of rows, got {type(inputs).__name__}"
            )
        return [dict(r) for r in rows]

    def _add(self, row: Row) -> None:
        if self.series_column is not None and self.series_column not in row:
            raise DataError(f"inputs: row without the series column '{self.series_column}'")
        sid = str(row[self.series_column]) if self.series_column is not None else ""
        if self.future_rows and all(row.get(t) is None for t in self.targets):  # a known-future row
            self.future.setdefault(sid, []).append(row)
            del self.future[sid][: -self.future_rows]
            return
        buf = self.rows.setdefault(sid, deque(maxlen=self.keep))
        if len(buf) == self.keep:
            self.dropped[sid] = self.dropped.get(sid, 0) + 1
        buf.append(row)
        self.future.pop(sid, None)
