"""The forecaster on ONNX Runtime: :class:`~lstmkit.tasks.forecast.predict.ForecastPredictor` (tables,
windows, scaling, intervals, the forecast DataFrame, streaming) with its network call
(:meth:`network`) running the export's ``model`` graph."""

from __future__ import annotations

import numpy as np

from lstmkit.runtime.base import RuntimePredictor
from lstmkit.tasks.forecast.predict import ForecastPredictor


class ForecastRuntime(RuntimePredictor, ForecastPredictor):
    def network(self, past: np.ndarray, future: np.ndarray) -> np.ndarray:
        return self.graphs["model"](past=past, future=future)[0]  # (B, H, C, Q)
