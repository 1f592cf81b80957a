"""Streaming recognition: feature frames in, CTC posteriors and the transcript so far out.

``SpeechPredictor.stream()`` returns a :class:`SpeechStream`; ``lstmkit serve`` opens one per session
(``POST /v1/sessions``) and calls :meth:`SpeechStream.step` on each ``.../step``. The stream works with
any speech predictor that has ``.config``, ``.norm``, ``.labels`` and the network step
``.stream_step(x (B, K, k·F), h, c (L, B, H)) -> (log-probs (B, K, V), h, c)``: the torch predictor
and the exported runtime (its ``step`` graph) alike. No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lstmkit.errors import DataError, LstmkitError
from lstmkit.tasks.speech.decode import ctc_text

BLANK_ID = 0  # the CTC blank's id (lstmkit.tasks.speech.data.BLANK is the first label)


class SpeechStream:
    """One utterance of a unidirectional CTC model, fed a chunk of feature frames at a time.

    The streaming state is the LSTM's (h, c) after the frames so far, the frames that do not yet
    fill a stacking group of k = ``--subsample`` (they wait for the next chunk), and the greedy
    decoder's last symbol. Each step normalises the new frames (with the model's norm.json, unless
    ``normalized=True``: frames already normalised), stacks them k at a time, runs the network over
    the new stacked frames with the state carried, and returns::

        {"posteriors": [[...V log-probs...], ...],   # one row per new output frame (T'_new, V)
         "text": "..."}                              # the greedy transcript of every frame so far

    The concatenated posteriors are the whole utterance's (``predict_features`` over the same frames,
    whose last group the network pads with zero frames): pass ``{"frames": [...], "end": true}`` to
    pad and flush the waiting frames the same way. ``text`` is greedy CTC decoding (the model's
    beam search needs the whole utterance). Models with per-utterance normalisation stream only
    normalised frames (the normalisation needs the whole utterance).
    """

    def __init__(self, predictor: Any, normalized: bool = False, **unknown: Any):
        if unknown:
            raise DataError(f"options.{next(iter(unknown))}: not a speech stream option (known: normalized)")
        cfg = predictor.config
        if cfg.mode != "ctc" or cfg.lstm.bidirectional:
            kind = "a classifier" if cfg.mode != "ctc" else "a bidirectional LSTM"
            raise LstmkitError(f"only unidirectional CTC speech models stream (this one is {kind})")
        if not isinstance(normalized, bool):
            raise DataError(f"options.normalized: expected true or false, got {normalized!r}")
        if cfg.audio.norm == "utterance" and not normalized:
            raise DataError(
                "options.normalized: this model normalises each utterance as a whole: "
                "stream frames normalised yourself (normalized=true)"
            )
        self.predictor = predictor
        self.normalized = normalized
        self.k: int = max(1, cfg.subsample)
        self.dim: int = cfg.audio.dim
        L, H = cfg.lstm.num_layers, cfg.lstm.hidden_size
        self.h = np.zeros((L, 1, H), np.float32)  # (L, 1, H)
        self.c = np.zeros((L, 1, H), np.float32)  # (L, 1, H)
        self.pending = np.zeros((0, self.dim), np.float32)  # (n < k, F) normalised frames waiting
        self.ids: list[int] = []  # greedy labels so far
        self.prev = BLANK_ID  # the last frame's argmax (repeats collapse across chunks)

    def step(self, inputs: Any) -> dict[str, Any]:
        """Feed frames (a list of F-vectors, one F-vector, or ``{"frames": [...], "end": bool}``); the
        posteriors of the new output frames and the transcript so far."""
        frames, end = self._frames(inputs)
        x = np.concatenate([self.pending, frames])  # (n, F)
        n = len(x) - len(x) % self.k
        if end and n < len(x):  # the network pads the last group with zero frames
            x = np.concatenate([x, np.zeros((self.k - len(x) % self.k, self.dim), np.float32)])
            n = len(x)
        ready, self.pending = x[:n], x[n:]
        lp = self._run(ready.reshape(1, n // self.k, self.k * self.dim))  # (K, V)
        for s in lp.argmax(-1).tolist():  # greedy_decode, continued
            if s != BLANK_ID and s != self.prev:
                self.ids.append(s)
            self.prev = s
        return {"posteriors": lp.tolist(), "text": ctc_text(self.ids, self.predictor.labels)}

    def close(self) -> None:
        """Forget the state and the transcript."""
        self.h[...] = 0
        self.c[...] = 0
        self.pending = self.pending[:0]
        self.ids.clear()
        self.prev = BLANK_ID

    def _run(self, x: np.ndarray) -> np.ndarray:
        """Stacked frames (1, K, k·F) → log-probs (K, V), the state carried."""
        if x.shape[1] == 0:
            return np.zeros((0, len(self.predictor.labels)), np.float32)
        lp, self.h, self.c = self.predictor.stream_step(np.ascontiguousarray(x), self.h, self.c)
        return np.asarray(lp[0], dtype=np.float32)  # (K, V)

    def _frames(self, inputs: Any) -> tuple[np.ndarray, bool]:
        """The new frames, normalised (n, F) float32, and whether the utterance ends here."""
        end = False
        if isinstance(inputs, Mapping):
            if set(inputs) - {"frames", "end"}:
                raise DataError(f"inputs: unknown key(s) {sorted(set(inputs) - {'frames', 'end'})} (frames, end)")
            end = inputs.get("end", False)
            if not isinstance(end, bool):
                raise DataError(f"inputs.end: expected true or false, got {end!r}")
            inputs = inputs.get("frames", [])
        try:
            x = np.asarray(inputs, dtype=np.float32)
        except (TypeError, ValueError):
            x = None
        if x is not None and x.ndim == 1 and x.size == self.dim:
            x = x[None]  # one frame
        if x is not None and x.size == 0:
            x = x.reshape(0, self.dim)
        if x is None or x.ndim != 2 or x.shape[1] != self.dim:
            shape = f"shape {x.shape}" if x is not None else type(inputs).__name__
            raise DataError(f"inputs: expected feature frames (a list of {self.dim}-number lists), got {shape}")
        if not np.all(np.isfinite(x)):
            raise DataError("inputs: features must be finite numbers")
        return (x if self.normalized else self.predictor.norm(x)).astype(np.float32, copy=False), end
