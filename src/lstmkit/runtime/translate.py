"""The translator on ONNX Runtime: :class:`~lstmkit.tasks.translate.predict.TranslatePredictor` with its
network and search (:meth:`decode_batch`) running the export's ``encoder`` graph once per batch and
its ``decoder_step`` graph once per step, inside the NumPy greedy / beam search of
:mod:`lstmkit.runtime.decode` (the twins of the torch decoders)."""

from __future__ import annotations

import numpy as np

from lstmkit.errors import LstmkitError
from lstmkit.runtime.base import RuntimePredictor
from lstmkit.runtime.decode import DecodeOptions, Hypothesis, State, decode, select_axes
from lstmkit.tasks.translate.predict import TranslatePredictor

#: the search state (h, c, feed, values, keys, mask): the batch axis of each array, so that beam search
#: expands and reorders the attention memory with the decoder state
STATE_AXES = (1, 1, 0, 0, 0, 0)


class TranslateRuntime(RuntimePredictor, TranslatePredictor):
    def _to_device(self, device: str) -> None:  # type: ignore[override]
        if device != "cpu":
            raise LstmkitError(
                f"device {device} (--device {device}): an export folder decodes on the CPU (ONNX Runtime)"
            )

    def decode_batch(
        self, src: np.ndarray, src_len: np.ndarray, dopts: DecodeOptions, device: str = "cpu"
    ) -> list[list[Hypothesis]]:
        """src (B, S) int64, src_len (B,) int64 -> up to ``dopts.nbest`` hypotheses per sentence, best first."""
        self._to_device(device)
        values, keys, mask, h, c, feed = self.graphs["encoder"](src=src, src_len=src_len)
        step_graph = self.graphs["decoder_step"]

        def step(y: np.ndarray, state: State) -> tuple[np.ndarray, State, np.ndarray]:
            """y (N,) int64 -> logits (N, V), the next state, attention (N, S)."""
            h, c, feed, values, keys, mask = state
            logits, h, c, feed, attn = step_graph(y_prev=y, h=h, c=c, feed=feed, values=values, keys=keys, mask=mask)
            return logits, (h, c, feed, values, keys, mask), attn

        return decode(step, (h, c, feed, values, keys, mask), src_len, dopts, select_axes(*STATE_AXES))
