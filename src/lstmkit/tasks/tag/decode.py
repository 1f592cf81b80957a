"""From emissions to predictions: best paths, n-best paths, token marginals and entity confidences.

Dims: B sentences, T tokens, K tags, N best paths. With a CRF (scores as in :mod:`lstmkit.nn.crf`:
transitions ``A``, ``start``, ``end``, emissions ``e_t``), forward-backward gives

    alpha_t(k) = logsumexp_j (alpha_{t-1}(j) + A[j, k]) + e_t(k),   alpha_1(k) = start[k] + e_1(k)
    beta_t(j)  = logsumexp_k (A[j, k] + e_{t+1}(k) + beta_{t+1}(k)),  beta_L(j) = end[j]

Token confidence is the marginal ``p(y_t = k | x) = exp(alpha_t(k) + beta_t(k) - log Z)``.

An entity's confidence is the probability that the model tags its tokens ``s..e`` exactly as
predicted AND that the next token does not continue it (it is neither ``I-X`` nor ``E-X`` of its type):

    log p = alpha_s(y_s) + sum_{t=s+1..e} (A[y_{t-1}, y_t] + e_t(y_t)) + tail - log Z
    tail  = end[y_e]                                                   if e is the last token
          = logsumexp_{j not continuing} (A[y_e, j] + e_{e+1}(j) + beta_{e+1}(j))   otherwise

i.e. the probability of the span being exactly this entity (its start is fixed by its ``B-``/``S-``
tag under the scheme's constraints). In IOBES the tail condition always holds after ``E-``/``S-``.
Without a CRF the tokens are independent: the product of the span's softmax probabilities times the
probability that the next token does not continue it.

Decoding is split so that the torch predictor and the ONNX runtime share it: each predictor runs the
network (emissions) and the CRF recursions (:class:`CrfDecode`: torch's CRF, or the NumPy twins of
:mod:`lstmkit.runtime.decode`); :func:`decode_outputs` turns them into :class:`Decoded` results in
NumPy. This module imports torch only inside the torch helpers (:func:`forward_backward`,
:class:`_CrfScores`, :class:`_SoftmaxScores`, :func:`torch_crf_decode`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np

from lstmkit.data.conll import Span, split_tag, tags_to_spans
from lstmkit.runtime.decode import CrfScores, NBest, SoftmaxScores

if TYPE_CHECKING:
    from torch import Tensor

    from lstmkit.nn.crf import CRF


@dataclass
class Decoded:
    """One sentence's results in model tag ids: ``path``; ``token_probs`` (marginal of each path tag,
    when asked); ``entities`` [(span, confidence)] (chunk tags); ``nbest`` [(path, p(path | x))]."""

    path: list[int]
    token_probs: list[float] | None
    entities: list[tuple[Span, float]]
    nbest: list[tuple[list[int], float]] | None


class SpanScores(Protocol):
    """Token marginals and span probabilities of one batch (CRF or softmax; see the module docstring)."""

    def marginals(self, b: int, n: int) -> np.ndarray: ...

    def span(self, b: int, n: int, path: list[int], s: int, e: int, cont: np.ndarray) -> float: ...


class CrfDecode(NamedTuple):
    """A batch's CRF results as NumPy (a predictor's ``crf_decode``): ``paths`` the best path of each
    sentence, cut to its length; ``scores`` marginals and span probabilities in float64 (None when
    neither confidences nor entities are wanted); ``best`` the n-best paths (B, N, T), scores (B, N),
    valid (B, N) and ``log_z`` (B,) float64 (both None unless n-best > 1)."""

    paths: list[list[int]]
    scores: SpanScores | None
    best: NBest | None
    log_z: np.ndarray | None


def forward_backward(crf: CRF, em: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``alphas`` (B, T, K), ``betas`` (B, T, K) and ``log_z`` (B,) of the constrained CRF; padded steps
    carry alpha forward and have beta = end."""
    import torch

    trans, _, end = crf._scores()  # the CRF's scores with forbidden moves at IMPOSSIBLE
    alphas = crf._alphas(em, mask)  # (B, T, K)
    log_z = torch.logsumexp(alphas[:, -1] + end.unsqueeze(0), dim=1)  # (B,)
    beta = end.unsqueeze(0).expand_as(em[:, 0])  # (B, K) at the last step
    betas = [beta]
    for t in range(em.size(1) - 2, -1, -1):
        # (1, K_from, K_to) + (B, 1, K_to) -> logsumexp over K_to -> (B, K_from)
        nxt = torch.logsumexp(trans.unsqueeze(0) + (em[:, t + 1] + beta).unsqueeze(1), dim=2)
        beta = torch.where(mask[:, t + 1].unsqueeze(1), nxt, end.unsqueeze(0).expand_as(nxt))
        betas.append(beta)
    return alphas, torch.stack(betas[::-1], dim=1), log_z


def continuations(tags: Sequence[str]) -> list[np.ndarray]:
    """For each tag id k, a (K,) bool mask of the tags that would continue a chunk ending in k
    (``I-X`` / ``E-X`` of k's type)."""
    parts = [split_tag(t) for t in tags]
    return [
        np.array([p in ("I", "E") and typ == parts[k][1] and typ != "" for p, typ in parts]) for k in range(len(tags))
    ]


class _CrfScores(CrfScores):
    """:class:`lstmkit.runtime.decode.CrfScores` with its forward-backward computed by the torch CRF."""

    def __init__(self, crf: CRF, em: Tensor, mask: Tensor) -> None:
        import torch

        with torch.no_grad():
            alphas, betas, log_z = forward_backward(crf, em, mask)
            trans, _, end = crf._scores()
        self.alphas, self.betas, self.log_z = alphas.double().numpy(), betas.double().numpy(), log_z.double().numpy()
        self.trans, self.end, self.em = trans.double().numpy(), end.double().numpy(), em.double().numpy()


class _SoftmaxScores(SoftmaxScores):
    """:class:`lstmkit.runtime.decode.SoftmaxScores` with the softmax computed by torch."""

    def __init__(self, em: Tensor) -> None:
        self.probs = em.double().softmax(-1).numpy()  # (B, T, K)


def torch_crf_decode(crf: CRF, em: np.ndarray, mask: np.ndarray, nbest: int, scores: bool) -> CrfDecode:
    """:class:`CrfDecode` of em (B, T, K) float32 and mask (B, T) bool by torch's CRF (Viterbi, n-best
    Viterbi, forward-backward in float64 for ``scores``)."""
    import torch

    em_t, mask_t = torch.from_numpy(em), torch.from_numpy(mask)
    with torch.no_grad():
        paths = crf.decode(em_t, mask_t)[0].tolist()  # (B, T)
        span_scores = _CrfScores(crf, em_t.double(), mask_t) if scores else None  # float64 sums
        best, log_z = None, None
        if nbest > 1:
            top = crf.nbest(em_t, mask_t, nbest)
            best = NBest(top.paths.numpy(), top.scores.numpy(), top.valid.numpy())
            log_z = crf.log_partition(em_t, mask_t).double().numpy()  # (B,)
    lengths = mask.sum(1).tolist()
    return CrfDecode([p[:n] for p, n in zip(paths, lengths)], span_scores, best, log_z)


def decode_outputs(
    em: np.ndarray,
    lengths: Sequence[int],
    tags: Sequence[str],
    crf: CrfDecode | None,
    nbest: int = 1,
    confidence: bool = False,
    chunks: bool = True,
) -> list[Decoded]:
    """Predictions of one batch (see the module docstring) from its emissions em (B, T, K) float32
    and, for a CRF model, its :class:`CrfDecode` (None: per-token softmax and argmax); ``chunks``: add
    entity spans."""
    cont = continuations(tags) if chunks else []
    scores: SpanScores | None
    if crf is not None:
        paths, scores, best, log_z = crf
    else:
        paths = [row[:n] for row, n in zip(em.argmax(-1).tolist(), lengths)]
        scores, best, log_z = SoftmaxScores(em), None, None
    out = []
    for b, n in enumerate(lengths):
        path = paths[b]
        token_probs = None
        if confidence and scores is not None:
            marg = scores.marginals(b, n)  # (n, K)
            token_probs = [float(marg[t, k]) for t, k in enumerate(path)]
        ents = []
        if chunks and scores is not None:
            for span in tags_to_spans([tags[k] for k in path]):
                ents.append((span, scores.span(b, n, path, span.start, span.end, cont[path[span.end]])))
        alts = None
        if best is not None and log_z is not None:
            alts = [
                (best.paths[b, r, :n].tolist(), float(np.exp(np.float64(best.scores[b, r]) - log_z[b])))
                for r in range(nbest)
                if bool(best.valid[b, r])
            ]
        out.append(Decoded(path, token_probs, ents, alts))
    return out


def join_pieces(parts: list[tuple[int, Decoded]], nbest: int = 1) -> Decoded:
    """One sentence's results from those of its consecutive pieces (``(offset, Decoded)`` in order; a
    sentence over ``--max-len`` is decoded in pieces): paths and marginals concatenated, entities shifted
    to sentence positions, and the ``nbest`` best whole paths, whose probability is the product of their
    pieces' (the pieces are decoded independently)."""
    if len(parts) == 1:
        return parts[0][1]
    path = [k for _, d in parts for k in d.path]
    probs = None if parts[0][1].token_probs is None else [p for _, d in parts for p in d.token_probs or []]
    ents = [(Span(s.type, s.start + a, s.end + a), c) for a, d in parts for s, c in d.entities]
    alts: list[tuple[list[int], float]] | None = None
    if parts[0][1].nbest is not None:
        alts = [([], 1.0)]
        for _, d in parts:
            combos = [(p + q, x * y) for p, x in alts for q, y in d.nbest or []]
            alts = sorted(combos, key=lambda c: -c[1])[:nbest]
    return Decoded(path, probs, ents, alts)
