"""Streaming sessions of a language model: text in token by token, how likely it was and what comes next out.

``LMPredictor.stream()`` returns an :class:`LMStream`; ``lstmkit serve`` opens one per session
(``POST /v1/sessions``) and calls :meth:`LMStream.step` on each ``.../step``. The stream only uses the
predictor's tokenizer, vocabulary and network method ``next_log_probs(ids, state, every)``, so the
torch predictor and the exported runtime stream alike. No torch here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lstmkit.errors import DataError
from lstmkit.tasks.lm.data import State

#: tokens read per network call within one step (bounds the (T, V) log-probabilities held at once)
CHUNK = 256


class LMStream:
    """The LSTM state after the text received so far, and the distribution of the next token.

    A session starts after a line end (the token an empty prompt reads: ``<eos>`` for words, ``\\n``
    for characters), so its first token is scored as the first of a line. Each :meth:`step` reads its
    tokens from the carried state, one after the other: feeding a text in one step or token by token
    gives the same numbers. Tokens the model does not know are read (and scored) as ``<unk>``.
    """

    def __init__(self, predictor: Any, top: int = 5, **unknown: Any) -> None:
        if unknown:
            raise DataError(f"options.{next(iter(unknown))}: not a language model stream option (known: top)")
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise DataError(f"options.top: expected a whole number >= 1, got {top!r}")
        self.predictor = predictor
        self.top = top
        start = np.array([predictor.line_start()], dtype=np.int64)  # (1, 1)
        logp, state = predictor.next_log_probs(start, None)
        self.logp: np.ndarray | None = logp[0]  # (V,) the next token's log-probabilities
        self.state: State | None = state

    def step(self, inputs: Any) -> dict[str, Any]:
        """Read ``inputs`` (text, split as the model's prompts are, or a list of token strings); return
        ``{"tokens": the tokens read, "logprob": sum of log p(token | everything before it) in nats,
        "next": [{"token", "p"}, ...] the ``top`` most likely next tokens, most likely first}``."""
        if self.logp is None or self.state is None:
            raise DataError("this stream is closed")
        tokens = self._tokens(inputs)
        ids = self.predictor.vocab.encode(tokens)
        total = 0.0
        for s in range(0, len(ids), CHUNK):
            part = ids[s : s + CHUNK]
            every, self.state = self.predictor.next_log_probs(np.array([part], dtype=np.int64), self.state, True)
            seen = np.concatenate([self.logp[None], every[0, :-1]])  # (n, V): the distribution before each token
            total += float(seen[np.arange(len(part)), part].astype(np.float64).sum())
            self.logp = every[0, -1]
        return {"tokens": tokens, "logprob": total, "next": self.next_tokens()}

    def next_tokens(self) -> list[dict[str, Any]]:
        """The ``top`` most likely next tokens and their probabilities (ties: the lower id first)."""
        assert self.logp is not None
        logp = self.logp.astype(np.float64)
        order = np.argsort(-logp, kind="stable")[: self.top]
        tokens = self.predictor.vocab.tokens
        return [{"token": tokens[i], "p": float(np.exp(logp[i]))} for i in order.tolist()]

    def close(self) -> None:
        """Forget the state."""
        self.logp, self.state = None, None

    def _tokens(self, inputs: Any) -> list[str]:
        if isinstance(inputs, str):
            return self.predictor.prompt_tokens(inputs, None, "inputs")[0]
        if isinstance(inputs, (list, tuple)) and all(isinstance(t, str) for t in inputs):
            return list(inputs)
        raise DataError(f"inputs: expected text (a string) or a list of tokens (strings), got {type(inputs).__name__}")
