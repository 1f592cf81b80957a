"""Choosing the next token: greedy, or sampled with temperature, top-k and nucleus (top-p) filtering.

The torch predictor samples here; the runtime draws from the same distribution with NumPy
(:func:`lstmkit.runtime.decode.sample_next`), so sampled texts differ between them for one seed.
"""

from __future__ import annotations

import secrets

import torch


def generator(seed: int | None) -> torch.Generator:
    """A private random generator: seeded (reproducible), or from fresh OS entropy when ``seed`` is None
    (torch's global generator is left alone)."""
    return torch.Generator().manual_seed(secrets.randbits(63) if seed is None else seed)


def sample_next(logp: torch.Tensor, temperature: float, top_k: int, top_p: float, gen: torch.Generator) -> int:
    """One id from log-probabilities (V,) with temperature, top-k and nucleus (top-p) filtering.

    ``temperature`` 0 is greedy (argmax, no randomness); else ``p ∝ exp(logp / temperature)`` over the
    ``top_k`` most likely ids (0: all) and, for ``top_p`` < 1, the smallest set of ids whose probability
    reaches ``top_p``.
    """
    if temperature == 0:
        return int(logp.argmax())
    logp = logp.double()
    logits = (logp - logp.max()) / temperature  # the best token stays at 0: a tiny temperature gives -inf, never NaN
    if 0 < top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= top_p  # tokens after the set reaching p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    probs = logits.softmax(-1)
    return int(torch.multinomial(probs, 1, generator=gen))
