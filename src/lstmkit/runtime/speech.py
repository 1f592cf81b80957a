"""Speech on ONNX Runtime: :class:`~lstmkit.tasks.speech.predict.SpeechPredictor` with its network calls
running the export's graphs: :meth:`outputs` the ``model`` graph (whole utterances) and
:meth:`stream_step` the ``step`` graph (chunks of a unidirectional CTC model, for
:class:`~lstmkit.tasks.speech.stream.SpeechStream`). Audio reading, features (soundfile, librosa),
normalisation and CTC decoding are the predictor's own, torch-free."""

from __future__ import annotations

import numpy as np

from lstmkit.errors import ModelFolderError
from lstmkit.runtime.base import RuntimePredictor
from lstmkit.tasks.speech.predict import SpeechPredictor


class SpeechRuntime(RuntimePredictor, SpeechPredictor):
    def outputs(self, x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x (B, T, F), lengths (B,) → logits (B, C) and lengths, or log-probs (B, T', V) and lengths' (B,)."""
        out = self.graphs["model"](x=x, lengths=lengths)
        if self.mode == "classify":  # the graph gives the logits only; lengths' = ⌈len / k⌉ as the network's
            return out[0], -(-lengths // max(1, self.config.subsample))
        return out[0], out[1]

    def stream_step(self, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x (B, K, k·F), h, c (L, B, H) → log-probs (B, K, V), h', c' (the ``step`` graph)."""
        if "step" not in self.graphs:
            raise ModelFolderError(f"{self.path}: this export has no step graph (export a unidirectional CTC model)")
        lp, h1, c1 = self.graphs["step"](x=x, h=h, c=c)
        return lp, h1, c1
