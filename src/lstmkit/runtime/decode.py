"""NumPy twins of lstmkit's decoders, so that the torch-free runtime decodes exactly as the predictors.

Each function mirrors a torch implementation step by step, in the same dtypes and with the same
tie-breaking (the first index, as torch's ``max``/``argmax``):

- CRF (:mod:`lstmkit.nn.crf`, :mod:`lstmkit.tasks.tag.decode`): :func:`viterbi`, :func:`nbest`,
  :func:`forward_backward`, :func:`marginals`; :class:`CrfScores` / :class:`SoftmaxScores` (token
  marginals and entity confidences, in float64 as ``tasks/tag/decode.py``; its ``continuations``,
  plain Python on tag names, serves both predictors).
- Translation (:mod:`lstmkit.tasks.translate.decode`): :func:`greedy_decode`, :func:`beam_decode`,
  :func:`decode` over an abstract ``step`` function instead of the model.
- LM sampling (:mod:`lstmkit.tasks.lm.sampling`): :func:`filter_probs`, :func:`sample_next`.

Dims: B batch, T time steps, K tags, N best paths, V vocabulary, S source length.

CRF scores are the *effective* ones of ``CRF._scores()``: ``transitions`` A (K_from, K_to), ``start``
(K,), ``end`` (K,), the learnt parameters with every forbidden move at ``IMPOSSIBLE`` (:func:`effective_scores`).
``mask`` (B, T) bool is a prefix of each row with at least one True; padded steps carry the state.

CTC: ``lstmkit.tasks.speech.decode`` is NumPy already (``decode_arrays``), shared by both predictors.

This module imports only numpy and the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import numpy as np

IMPOSSIBLE = -1.0e4
"""Score of a forbidden CRF transition (as :data:`lstmkit.nn.crf.IMPOSSIBLE`)."""


# ============================================================================================ CRF
class NBest(NamedTuple):
    """paths (B, N, T) int64, 0 at padding; scores (B, N); valid (B, N): False past the allowed paths."""

    paths: np.ndarray
    scores: np.ndarray
    valid: np.ndarray


def effective_scores(
    transitions: np.ndarray, start: np.ndarray, end: np.ndarray, allowed: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``CRF._scores()``: (A, start, end) with moves not in ``allowed`` (trans, start, end) at IMPOSSIBLE."""
    a, s, e = (np.where(ok, x, x.dtype.type(IMPOSSIBLE)) for x, ok in zip((transitions, start, end), allowed))
    return a, s, e


def logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    """``torch.logsumexp``: ``log sum_i exp(x_i - m) + m`` with m the max (0 where it is infinite)."""
    m = x.max(axis=axis, keepdims=True)
    m = np.where(np.isinf(m), np.zeros_like(m), m)
    with np.errstate(divide="ignore"):
        return (np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m).squeeze(axis)


def _topk(x: np.ndarray, n: int) -> np.ndarray:
    """Indices (..., n) of the ``n`` largest entries along the last axis, largest first (ties: lower index)."""
    idx = (
        np.argpartition(-x, n - 1, axis=-1)[..., :n]
        if n < x.shape[-1]
        else np.broadcast_to(np.arange(x.shape[-1]), x.shape)
    )
    idx = np.sort(idx, axis=-1)  # index order: the stable sort below breaks ties by index
    return np.take_along_axis(idx, np.argsort(-np.take_along_axis(x, idx, -1), axis=-1, kind="stable"), -1)


def viterbi(
    emissions: np.ndarray, mask: np.ndarray, start: np.ndarray, end: np.ndarray, transitions: np.ndarray
) -> tuple[list[list[int]], np.ndarray]:
    """``CRF.decode``: the best path of each sentence (its own length, no padding) and its score (B,).

    d_1(k) = start[k] + e_1(k),   d_t(k) = max_j (d_{t-1}(j) + A[j, k]) + e_t(k)
    best   = max_k (d_L(k) + end[k]),  then back through the argmax pointers.
    """
    batch, n_steps, k = emissions.shape  # (B, T, K)
    score = start[None] + emissions[:, 0]  # (B, K)
    keep = np.broadcast_to(np.arange(k), (batch, k))  # padding points to itself
    pointers = []
    for t in range(1, n_steps):
        cand = score[:, :, None] + transitions[None]  # (B, K_from, K_to)
        on = mask[:, t, None]  # (B, 1)
        score = np.where(on, cand.max(axis=1) + emissions[:, t], score)
        pointers.append(np.where(on, cand.argmax(axis=1), keep))
    final = score + end[None]  # (B, K)
    last = final.argmax(axis=1)  # (B,)
    rows = np.arange(batch)
    best_score = final[rows, last]
    path = [last]
    for ptr in reversed(pointers):
        last = ptr[rows, last]
        path.append(last)
    paths = np.stack(path[::-1], axis=1)  # (B, T)
    return [paths[b, :n].tolist() for b, n in enumerate(mask.sum(1).tolist())], best_score


def nbest(
    emissions: np.ndarray, mask: np.ndarray, start: np.ndarray, end: np.ndarray, transitions: np.ndarray, n: int
) -> NBest:
    """``CRF.nbest``: n-best Viterbi, keeping the ``n`` best partial paths d_t(k, r) per tag k."""
    batch, n_steps, k = emissions.shape  # (B, T, K)
    score = np.full((batch, k, n), -np.inf, dtype=emissions.dtype)  # (B, K, N)
    score[:, :, 0] = start[None] + emissions[:, 0]
    keep = np.broadcast_to(np.arange(k)[:, None] * n + np.arange(n), (batch, k, n))
    pointers = []  # each (B, K, N): flat index j_prev * N + r_prev
    for t in range(1, n_steps):
        cand = (score[:, :, :, None] + transitions.reshape(1, k, 1, k)).reshape(batch, k * n, k)
        cand = cand.transpose(0, 2, 1)  # (B, K_to, K_from * N)
        arg = _topk(cand, n)  # (B, K_to, N)
        on = mask[:, t, None, None]
        score = np.where(on, np.take_along_axis(cand, arg, -1) + emissions[:, t, :, None], score)
        pointers.append(np.where(on, arg, keep))
    final = (score + end.reshape(1, k, 1)).reshape(batch, k * n)  # (B, K * N)
    flat = _topk(final, n)  # (B, N)
    top = np.take_along_axis(final, flat, 1)
    path = [flat // n]
    for ptr in reversed(pointers):
        flat = np.take_along_axis(ptr.reshape(batch, k * n), flat, 1)
        path.append(flat // n)
    paths = np.stack(path[::-1], axis=2)  # (B, N, T)
    return NBest(paths * mask[:, None, :], top, top > IMPOSSIBLE / 2)


def forward_backward(
    emissions: np.ndarray, mask: np.ndarray, start: np.ndarray, end: np.ndarray, transitions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """alphas (B, T, K), betas (B, T, K), log Z (B,); padded steps carry alpha and have beta = end.

    alpha_1(k) = start[k] + e_1(k),   alpha_t(k) = logsumexp_j (alpha_{t-1}(j) + A[j, k]) + e_t(k)
    beta_L(j)  = end[j],              beta_t(j)  = logsumexp_k (A[j, k] + e_{t+1}(k) + beta_{t+1}(k))
    log Z      = logsumexp_k (alpha_L(k) + end[k])
    """
    alpha = start[None] + emissions[:, 0]  # (B, K)
    alphas = [alpha]
    for t in range(1, emissions.shape[1]):
        nxt = logsumexp(alpha[:, :, None] + transitions[None], axis=1) + emissions[:, t]  # over K_from
        alpha = np.where(mask[:, t, None], nxt, alpha)
        alphas.append(alpha)
    log_z = logsumexp(alpha + end[None], axis=1)  # (B,)
    ends = np.broadcast_to(end[None].astype(alpha.dtype), alpha.shape)  # (B, K)
    beta, betas = ends, [ends]
    for t in range(emissions.shape[1] - 2, -1, -1):
        nxt = logsumexp(transitions[None] + (emissions[:, t + 1] + beta)[:, None], axis=2)  # over K_to
        beta = np.where(mask[:, t + 1, None], nxt, ends)
        betas.append(beta)
    return np.stack(alphas, axis=1), np.stack(betas[::-1], axis=1), log_z


def marginals(
    emissions: np.ndarray, mask: np.ndarray, start: np.ndarray, end: np.ndarray, transitions: np.ndarray
) -> np.ndarray:
    """``CRF.marginals``: p(y_t = k | x) = exp(alpha_t(k) + beta_t(k) - log Z), (B, T, K), 0 at padding."""
    alphas, betas, log_z = forward_backward(emissions, mask, start, end, transitions)
    return np.exp(alphas + betas - log_z[:, None, None]) * mask[:, :, None]


class CrfScores:
    """One batch's CRF quantities in float64 (``_CrfScores`` of ``tasks/tag/decode.py``).

    An entity s..e with path tags y has   log p = alpha_s(y_s) + sum_{t=s+1..e} (A[y_{t-1}, y_t] + e_t(y_t))
    + tail - log Z,  tail = end[y_e] at the last token, else logsumexp_{j not in cont} (A[y_e, j] + e_{e+1}(j)
    + beta_{e+1}(j)).
    """

    def __init__(
        self, emissions: np.ndarray, mask: np.ndarray, start: np.ndarray, end: np.ndarray, transitions: np.ndarray
    ) -> None:
        self.em = emissions.astype(np.float64)  # (B, T, K)
        self.alphas, self.betas, self.log_z = forward_backward(self.em, mask, start, end, transitions)
        self.trans, self.end = transitions.astype(np.float64), end.astype(np.float64)

    def marginals(self, b: int, n: int) -> np.ndarray:
        """(n, K) p(y_t = k | x) of sentence ``b``."""
        return np.exp(self.alphas[b, :n] + self.betas[b, :n] - self.log_z[b])

    def span(self, b: int, n: int, path: list[int], s: int, e: int, cont: np.ndarray) -> float:
        """p(y_s..e = path_s..e, y_{e+1} not in ``cont`` | x) of sentence ``b`` (class docstring)."""
        lp = self.alphas[b, s, path[s]]
        for t in range(s + 1, e + 1):
            lp += self.trans[path[t - 1], path[t]] + self.em[b, t, path[t]]
        if e == n - 1:
            lp += self.end[path[e]]
        else:
            nxt = self.trans[path[e]] + self.em[b, e + 1] + self.betas[b, e + 1]  # (K,)
            lp += np.logaddexp.reduce(np.where(cont, -np.inf, nxt))
        return float(np.exp(lp - self.log_z[b]))


def _softmax(x: np.ndarray) -> np.ndarray:
    """``torch.softmax`` along the last axis: exp(x - max) / sum exp(x - max)."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class SoftmaxScores:
    """A tagger without CRF (``_SoftmaxScores``): independent per-token softmax probabilities in float64."""

    def __init__(self, emissions: np.ndarray) -> None:
        self.probs = _softmax(emissions.astype(np.float64))  # (B, T, K)

    def marginals(self, b: int, n: int) -> np.ndarray:
        return self.probs[b, :n]

    def span(self, b: int, n: int, path: list[int], s: int, e: int, cont: np.ndarray) -> float:
        """prod_{t=s..e} p_t(path_t) * (1 - p_{e+1}(cont))."""
        p = float(np.prod([self.probs[b, t, path[t]] for t in range(s, e + 1)]))
        return p * (1.0 - float(self.probs[b, e + 1, cont].sum())) if e + 1 < n else p


# ==================================================================================== translation
State = tuple[np.ndarray, ...]
Step = Callable[[np.ndarray, State], tuple[np.ndarray, State, np.ndarray]]
"""``step(tokens (N,) int64, state) -> (logits (N, V), new state, attention (N, S))``."""
Select = Callable[[State, np.ndarray], State]
"""``select(state, index (N',)) -> state``: the rows ``index`` of the batch (beam expansion/reordering)."""


class Hypothesis(NamedTuple):
    """One translation: ids (no <s>/</s>), normalised score, raw log-probability, attention (T', S) float32."""

    ids: list[int]
    score: float
    logprob: float
    attention: np.ndarray


@dataclass
class DecodeOptions:
    """As ``lstmkit.tasks.translate.decode.DecodeOptions``: beam K (1 = greedy), nbest (<= beam),
    alpha (length-normalisation power), max_ratio (output limit per source token), special ids."""

    beam: int = 5
    nbest: int = 1
    alpha: float = 1.0
    max_ratio: float = 2.0
    bos_id: int = 2
    eos_id: int = 3
    banned: tuple[int, ...] = field(default=(0, 2))  # <pad>, <s>


def select_rows(state: State, index: np.ndarray) -> State:
    """The default :data:`Select`: every state array has the batch on axis 0."""
    return tuple(a[index] for a in state)


def select_axes(*axes: int) -> Select:
    """A :data:`Select` for states whose i-th array has the batch on ``axes[i]`` (e.g. h, c (L, N, D): 1)."""
    return lambda state, index: tuple(np.take(a, index, axis=ax) for a, ax in zip(state, axes, strict=True))


def max_lengths(src_len: Sequence[int] | np.ndarray, max_ratio: float) -> list[int]:
    """Per-sentence output limits ``ceil(max_ratio * source_length) + 5`` (tokens including </s>)."""
    return [math.ceil(max_ratio * int(n)) + 5 for n in src_len]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``torch.log_softmax`` (float32 for half inputs): (x - m) - log sum exp(x - m), m the row max."""
    if logits.dtype not in (np.float32, np.float64):
        logits = logits.astype(np.float32)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _log_probs(
    step: Step, y: np.ndarray, state: State, banned: tuple[int, ...]
) -> tuple[np.ndarray, State, np.ndarray]:
    logits, state, attn = step(y, state)  # (N, V), ..., (N, S)
    logp = log_softmax(np.asarray(logits))
    logp[:, list(banned)] = -np.inf
    return logp, state, np.array(attn, dtype=np.float32)  # a copy: the step may reuse its buffers


def greedy_decode(
    step: Step, state: State, src_len: Sequence[int] | np.ndarray, opts: DecodeOptions
) -> list[list[Hypothesis]]:
    """Arg-max decoding of a batch (``state`` for B sentences); one hypothesis list (length 1) per sentence."""
    lens = [int(n) for n in src_len]
    b, limits = len(lens), max_lengths(lens, opts.max_ratio)
    y = np.full((b,), opts.bos_id, dtype=np.int64)
    ids: list[list[int]] = [[] for _ in range(b)]
    attns: list[list[np.ndarray]] = [[] for _ in range(b)]
    total, done = [0.0] * b, [False] * b
    for t in range(max(limits)):
        logp, state, attn = _log_probs(step, y, state, opts.banned)
        y = logp.argmax(axis=-1)  # (B,)
        for i, (tok, lp) in enumerate(zip(y.tolist(), logp[np.arange(b), y].tolist())):
            if done[i]:
                continue
            total[i] += lp
            attns[i].append(attn[i])
            done[i] = tok == opts.eos_id or t + 1 >= limits[i]
            if tok != opts.eos_id:
                ids[i].append(tok)
        if all(done):
            break
    return [
        [Hypothesis(ids[i], total[i] / (len(attns[i]) ** opts.alpha), total[i], np.stack(attns[i])[:, : lens[i]])]
        for i in range(b)
    ]


class _Finished:
    """Finished hypotheses of one sentence."""

    def __init__(self) -> None:
        self.items: list[Hypothesis] = []

    def add(self, ids: list[int], logprob: float, attn: np.ndarray, alpha: float) -> None:
        self.items.append(Hypothesis(ids, logprob / (attn.shape[0] ** alpha), logprob, attn))

    def best(self, k: int) -> list[Hypothesis]:
        return sorted(self.items, key=lambda h: -h.score)[:k]


def beam_decode(
    step: Step, state: State, src_len: Sequence[int] | np.ndarray, opts: DecodeOptions, select: Select = select_rows
) -> list[list[Hypothesis]]:
    """Batched beam search (``state`` for B sentences); up to ``opts.nbest`` hypotheses per sentence, best first.

    Row b*K+j is beam j of sentence b; each step takes the 2K best continuations of each sentence by
    total log-probability (float64 running sums); hypotheses rank by ``log p(y | x) / |y| ** alpha``.
    """
    k, lens = opts.beam, [int(n) for n in src_len]
    b, limits = len(lens), max_lengths(lens, opts.max_ratio)
    state = select(state, np.repeat(np.arange(b), k))  # (B*K, ...)
    scores = np.full((b, k), -np.inf)  # (B, K): only beam 0 is live at the start
    scores[:, 0] = 0.0
    seqs = np.full((b * k, 1), opts.bos_id, dtype=np.int64)  # (B*K, t+1)
    attn_hist: np.ndarray | None = None  # (B*K, t, S)
    finished, done = [_Finished() for _ in range(b)], [False] * b
    for t in range(max(limits)):
        logp, state, attn = _log_probs(step, seqs[:, -1], state, opts.banned)  # (B*K, V)
        attn_hist = attn[:, None] if attn_hist is None else np.concatenate([attn_hist, attn[:, None]], axis=1)
        total = (scores.reshape(-1, 1) + logp).reshape(b, -1)  # (B, K*V) float64
        cand = _topk(total, 2 * k)  # (B, 2K)
        origin, token = cand // logp.shape[-1], cand % logp.shape[-1]
        rows, new_scores, new_tokens = select_candidates(
            np.take_along_axis(total, cand, 1),
            origin,
            token,
            t,
            limits,
            done,
            finished,
            seqs,
            partial(_history, attn_hist),
            lens,
            opts,
        )
        if all(done):
            break
        index = np.asarray(rows)  # (B*K,)
        seqs = np.concatenate([seqs[index], np.asarray(new_tokens, dtype=np.int64)[:, None]], axis=1)
        attn_hist, state = attn_hist[index], select(state, index)
        scores = np.asarray(new_scores, dtype=np.float64).reshape(b, k)
    return [f.best(opts.nbest) for f in finished]


def decode(
    step: Step, state: State, src_len: Sequence[int] | np.ndarray, opts: DecodeOptions, select: Select = select_rows
) -> list[list[Hypothesis]]:
    """Greedy when ``beam == 1`` (same result, less work), else beam search."""
    if opts.beam == 1:
        return greedy_decode(step, state, src_len, opts)
    return beam_decode(step, state, src_len, opts, select)


def _history(hist: np.ndarray, row: int, n: int) -> np.ndarray:
    """Row ``row``'s attention history (t, n) over the first n source positions, a copy."""
    return hist[row, :, :n].copy()


def select_candidates(
    cand_scores: Any,
    origin: Any,
    token: Any,
    t: int,
    limits: list[int],
    done: list[bool],
    finished: list[Any],
    seqs: Any,
    history: Callable[[int, int], Any],
    lens: list[int],
    opts: DecodeOptions,
) -> tuple[list[int], list[float], list[int]]:
    """Sort the 2K candidates (B, 2K) of every sentence into finished and live beams, per sentence; the
    beam search's bookkeeping, shared by this module and the torch decoder (``tasks/translate/decode.py``):
    the arrays may be NumPy or torch (read with ``.tolist()``), ``history(row, n)`` is row's attention
    history over the first n source positions, ``finished[i].add(ids, logprob, attention, alpha)``."""
    k = opts.beam
    cs, org, tok = cand_scores.tolist(), origin.tolist(), token.tolist()
    rows: list[int] = []
    new_scores: list[float] = []
    new_tokens: list[int] = []
    for i in range(len(lens)):
        live: list[tuple[int, float, int]] = []
        if not done[i]:
            for rank in range(2 * k):
                score, row, tk = cs[i][rank], i * k + org[i][rank], tok[i][rank]
                if score == -math.inf:
                    break
                if tk == opts.eos_id:
                    if rank < k:
                        finished[i].add(seqs[row, 1:].tolist(), score, history(row, lens[i]), opts.alpha)
                elif len(live) < k:
                    live.append((row, score, tk))
                    if t + 1 >= limits[i]:  # length limit: finish live hypotheses as they are
                        finished[i].add(seqs[row, 1:].tolist() + [tk], score, history(row, lens[i]), opts.alpha)
            done[i] = len(finished[i].items) >= k or t + 1 >= limits[i]
        if done[i]:
            live = []
        live += [(i * k, -math.inf, opts.eos_id)] * (k - len(live))  # dummy rows, never selected
        rows += [r for r, _, _ in live]
        new_scores += [s for _, s, _ in live]
        new_tokens += [tk for _, _, tk in live]
    return rows, new_scores, new_tokens


# ======================================================================================= sampling
def filter_probs(logp: np.ndarray, temperature: float, top_k: int, top_p: float) -> np.ndarray:
    """The distribution ``lstmkit.tasks.lm.sampling.sample_next`` draws from, (V,) float64; temperature > 0.

    p ∝ exp((logp - max logp) / temperature) over the ``top_k`` most likely ids (0: all; ties at the k-th
    value kept) and, for ``top_p`` < 1, the smallest prefix of the sorted ids whose probability reaches top_p.
    """
    logp = np.asarray(logp, dtype=np.float64)
    logits = (logp - logp.max()) / temperature
    if 0 < top_k < logits.size:
        kth = np.partition(logits, -top_k)[-top_k]  # the k-th largest value
        logits = np.where(logits < kth, -np.inf, logits)
    if top_p < 1.0:
        order = np.argsort(-logits, kind="stable")
        p = _softmax(logits[order])
        drop = np.zeros(logits.size, dtype=bool)
        drop[order] = np.cumsum(p) - p >= top_p  # ids after the set reaching top_p
        logits = np.where(drop, -np.inf, logits)
    return _softmax(logits)


def sample_next(logp: np.ndarray, temperature: float, top_k: int, top_p: float, rng: np.random.Generator) -> int:
    """One id from log-probabilities (V,): greedy (argmax) at temperature 0, else drawn from :func:`filter_probs`."""
    if temperature == 0:
        return int(np.argmax(logp))
    probs = filter_probs(logp, temperature, top_k, top_p)
    return int(rng.choice(probs.size, p=probs))
