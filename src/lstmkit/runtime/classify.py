"""The classifier on ONNX Runtime: :class:`~lstmkit.tasks.classify.predict.ClassifyPredictor` with its
network call (:meth:`logits`) running the export's ``model`` graph."""

from __future__ import annotations

import numpy as np

from lstmkit.runtime.base import RuntimePredictor
from lstmkit.tasks.classify.predict import ClassifyPredictor


class ClassifyRuntime(RuntimePredictor, ClassifyPredictor):
    def logits(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return self.graphs["model"](x=x, lengths=lengths)[0]  # (B, C)
