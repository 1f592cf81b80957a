"""CTC decoding: greedy best path and prefix beam search.

Both take per-frame log-probabilities ``log_probs`` of shape (T, C) (one utterance, C symbols,
``blank`` the CTC blank id) and return a label sequence (list of ids without blanks).

Greedy (best path): π_t = argmax_c log p_t(c); collapse repeats, drop blanks.

Prefix beam search (Hannun et al. 2014, "First-pass large vocabulary continuous speech
recognition using bi-directional recurrent DNNs", without a language model): for every prefix ℓ
keep p_b(ℓ) (paths ending in blank) and p_nb(ℓ) (paths ending in a label); at each frame

    p_b'(ℓ)     += (p_b(ℓ) + p_nb(ℓ)) · p_t(blank)
    p_nb'(ℓ)    += p_nb(ℓ) · p_t(last(ℓ))                      (repeat collapses)
    p_nb'(ℓ+c)  += (p_b(ℓ) + p_nb(ℓ)) · p_t(c)       c ≠ last(ℓ)
    p_nb'(ℓ+c)  += p_b(ℓ) · p_t(c)                    c = last(ℓ) (needs a blank between)

and keep the ``beam_width`` prefixes with the largest p_b + p_nb. Everything is in log space.

:func:`decode_arrays` turns a batch of network outputs into texts (argmax class, or CTC decoding);
:func:`decode_outputs` is the same on torch tensors. NumPy only: the torch-free runtime decodes here too.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from lstmkit.data.vocab import Vocab

NEG_INF = -math.inf


def normalize_text(text: str) -> str:
    """Transcripts compare with single spaces and no outer whitespace."""
    return " ".join(text.split())


def greedy_decode(log_probs: np.ndarray, blank: int = 0) -> list[int]:
    """Best-path decoding of (T, C) scores: argmax per frame, collapse repeats, drop blanks."""
    best = np.asarray(log_probs).argmax(axis=-1)  # (T,)
    out: list[int] = []
    prev = blank
    for s in best.tolist():
        if s != blank and s != prev:
            out.append(s)
        prev = s
    return out


def _logadd(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def beam_decode(
    log_probs: np.ndarray,
    beam_width: int = 8,
    blank: int = 0,
    prune: float = -12.0,
) -> list[int]:
    """CTC prefix beam search over (T, C) log-probabilities; returns the most probable labelling.

    Symbols with log p_t(c) < ``prune`` at a frame are not extended (blank always is), which
    keeps the search fast without changing results in practice; ``beam_width=1`` is close to,
    but not the same as, greedy (it sums over paths of the surviving prefix).
    """
    lp = np.asarray(log_probs, dtype=np.float64)  # (T, C)
    T, C = lp.shape
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}  # prefix -> (p_b, p_nb)
    for t in range(T):
        frame = lp[t]  # (C,)
        cands = [c for c in np.flatnonzero(frame >= prune).tolist() if c != blank]
        nxt: dict[tuple[int, ...], list[float]] = {}

        def add(prefix: tuple[int, ...], b: float, nb: float, nxt: dict = nxt) -> None:
            cur = nxt.setdefault(prefix, [NEG_INF, NEG_INF])
            cur[0], cur[1] = _logadd(cur[0], b), _logadd(cur[1], nb)

        for prefix, (p_b, p_nb) in beams.items():
            total = _logadd(p_b, p_nb)
            add(prefix, total + frame[blank], NEG_INF)  # stay, emit blank
            last = prefix[-1] if prefix else None
            if last is not None:
                add(prefix, NEG_INF, p_nb + frame[last])  # repeat of last label collapses
            for c in cands:
                if c == last:
                    add(prefix + (c,), NEG_INF, p_b + frame[c])  # needs a blank in between
                else:
                    add(prefix + (c,), NEG_INF, total + frame[c])
        ranked = sorted(nxt.items(), key=lambda kv: (-_logadd(kv[1][0], kv[1][1]), kv[0]))
        beams = {k: (v[0], v[1]) for k, v in ranked[:beam_width]}
    best = max(beams.items(), key=lambda kv: (_logadd(*kv[1]), tuple(-x for x in kv[0])))
    return list(best[0])


def sequence_log_prob(log_probs: np.ndarray, labels: list[int], blank: int = 0) -> float:
    """log p(labels | x) summed over all CTC alignments (forward algorithm); for tests/inspection."""
    lp = np.asarray(log_probs, dtype=np.float64)  # (T, C)
    ext = [blank]
    for s in labels:
        ext += [s, blank]  # (2L+1,) blank-interleaved labels
    S = len(ext)
    alpha = np.full(S, NEG_INF)
    alpha[0] = lp[0, blank]
    if S > 1:
        alpha[1] = lp[0, ext[1]]
    for t in range(1, lp.shape[0]):
        new = np.full(S, NEG_INF)
        for s in range(S):
            a = alpha[s]
            if s >= 1:
                a = _logadd(a, alpha[s - 1])
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                a = _logadd(a, alpha[s - 2])
            new[s] = a + lp[t, ext[s]] if a != NEG_INF else NEG_INF
        alpha = new
    return _logadd(alpha[-1], alpha[-2]) if S > 1 else float(alpha[-1])


def decode_arrays(
    mode: str, out: np.ndarray, lengths: np.ndarray, labels: Vocab, decoder: str = "greedy", beam_width: int = 8
) -> list[str]:
    """Network outputs → one text per utterance: argmax class of logits ``out`` (B, C), or CTC greedy /
    prefix-beam decoding of log-probs ``out`` (B, T', V) over each utterance's ``lengths`` (B,) steps."""
    if mode == "classify":
        return labels.decode(np.asarray(out).argmax(-1).tolist())
    lp = np.asarray(out, dtype=np.float32)  # (B, T', V)
    texts = []
    for b, n in enumerate(np.asarray(lengths).tolist()):
        ids = greedy_decode(lp[b, :n]) if decoder == "greedy" else beam_decode(lp[b, :n], beam_width)
        texts.append(ctc_text(ids, labels))
    return texts


def ctc_text(ids: list[int], labels: Vocab) -> str:
    """CTC label ids (no blanks) → the transcript."""
    return normalize_text("".join(labels.decode(ids)))


def decode_outputs(
    mode: str, out: torch.Tensor, lengths: torch.Tensor, labels: Vocab, decoder: str = "greedy", beam_width: int = 8
) -> list[str]:
    """:func:`decode_arrays` of torch tensors: logits (B, C) or log-probs (B, T', V), lengths (B,)."""
    return decode_arrays(mode, out.detach().float().cpu().numpy(), lengths.cpu().numpy(), labels, decoder, beam_width)
