"""The language model on ONNX Runtime: :class:`~lstmkit.tasks.lm.predict.LMPredictor` with its network
methods running the export's graphs (``model`` for a sequence, ``step`` for one token from a state) and
its sampling on a NumPy generator (:func:`lstmkit.runtime.decode.sample_next`).

Greedy continuations (the default), perplexity and streams equal the torch predictor's; a sampled
continuation is reproducible with a seed but drawn by NumPy, so it is not torch's text for that seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lstmkit.runtime import decode
from lstmkit.runtime.base import RuntimePredictor
from lstmkit.tasks.lm.data import State
from lstmkit.tasks.lm.predict import LMPredictor
from lstmkit.tasks.lm.stream import CHUNK


class LMRuntime(RuntimePredictor, LMPredictor):
    def setup(self) -> None:
        super().setup()
        self.stacked = bool(self.extras.get("stacked", True))
        self.sizes = [(int(h), int(c)) for h, c in self.extras.get("sizes", [])]

    # ------------------------------------------------------------------ the network
    def next_log_probs(self, ids: np.ndarray, state: State | None, every: bool = False) -> tuple[np.ndarray, State]:
        """As :meth:`LMPredictor.next_log_probs`: one token from a state runs the ``step`` graph; a
        sequence runs the ``model`` graph (in pieces of ``CHUNK`` tokens when only the last position's
        distribution is wanted, so a long prompt never holds (T, V) log-probabilities)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)  # (B, T)
        if ids.shape[1] == 1 and state is not None:
            logp, *flat = self.graphs["step"](token=ids[:, 0], **self._feeds(state))  # (B, V)
            return (logp[:, None] if every else logp), self._state(flat)
        state = self._zeros(ids.shape[0]) if state is None else state
        if every:
            return self._sequence(ids, state)
        for s in range(0, ids.shape[1], CHUNK):
            logp, state = self._sequence(ids[:, s : s + CHUNK], state)
        return logp[:, -1], state

    def window_nll(self, x: np.ndarray, y: np.ndarray, state: State | None) -> tuple[float, State]:
        """As :meth:`LMPredictor.window_nll`: ``-sum log p(y)`` from the ``model`` graph's log-probabilities."""
        logp, state = self._sequence(x, self._zeros(x.shape[0]) if state is None else state)  # (B, T, V)
        picked = np.take_along_axis(logp, y[..., None].astype(np.int64), axis=-1)  # (B, T, 1)
        return -float(picked.astype(np.float64).sum()), state

    def rng(self, seed: int | None) -> Any:
        """A NumPy generator (seeded; fresh entropy for None)."""
        return np.random.default_rng(seed)

    def draw(self, logp: np.ndarray, temperature: float, top_k: int, top_p: float, rng: Any) -> int:
        return decode.sample_next(logp, temperature, top_k, top_p, rng)

    # ------------------------------------------------------------------ state <-> graph
    def _sequence(self, ids: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """``model`` graph: ids (B, T) -> (log-probs (B, T, V), state after the last position)."""
        logp, *flat = self.graphs["model"](tokens=np.ascontiguousarray(ids, dtype=np.int64), **self._feeds(state))
        return logp, self._state(flat)

    def _zeros(self, batch: int) -> State:
        """The initial state: zeros, h (1, B, H_l), c (1, B, H_c) per layer."""
        return [(np.zeros((1, batch, h), np.float32), np.zeros((1, batch, c), np.float32)) for h, c in self.sizes]

    def _feeds(self, state: State) -> dict[str, np.ndarray]:
        if self.stacked:
            return {"h": np.concatenate([h for h, _ in state]), "c": np.concatenate([c for _, c in state])}  # (L, B, H)
        return {f"{k}_{l}": a for l, hc in enumerate(state) for k, a in zip("hc", hc)}

    def _state(self, flat: list[np.ndarray]) -> State:
        """Graph outputs after the log-probabilities -> per-layer (h, c) (1, B, H_l)."""
        if self.stacked:
            h, c = flat  # (L, B, H)
            return [(h[l : l + 1], c[l : l + 1]) for l in range(h.shape[0])]
        return [(flat[2 * l], flat[2 * l + 1]) for l in range(len(flat) // 2)]
