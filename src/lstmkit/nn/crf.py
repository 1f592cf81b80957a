"""A linear-chain conditional random field (CRF), batched over padded batches.

Dims: B batch, T time steps (tokens), K tags, N number of best paths.

A tag sequence ``y = (y_1..y_L)`` of a sentence of length ``L`` with emission scores ``e_t(k)``
(from the BiLSTM) scores

    s(y) = start[y_1] + sum_t e_t(y_t) + sum_{t>1} A[y_{t-1}, y_t] + end[y_L]

and ``p(y | x) = exp(s(y)) / Z`` with ``log Z = logsumexp_y s(y)`` computed by the forward algorithm

    alpha_1(k) = start[k] + e_1(k)
    alpha_t(k) = logsumexp_j (alpha_{t-1}(j) + A[j, k]) + e_t(k)
    log Z      = logsumexp_k (alpha_L(k) + end[k])

Viterbi replaces logsumexp by max; n-best Viterbi keeps the N best partial paths per tag; the
backward recursion ``beta_t(j) = logsumexp_k (A[j, k] + e_{t+1}(k) + beta_{t+1}(k))``,
``beta_L = end`` gives the marginals ``p(y_t = k | x) = exp(alpha_t(k) + beta_t(k) - log Z)``.

Every recursion loops over time only: the batch and the tags are tensor dims. Padded positions
(``mask`` False; masks are prefixes, each sentence has at least one real token) carry the state
through unchanged, so results do not depend on how much padding a batch has.

Transition constraints (e.g. ``I-PER`` may not follow ``O`` in IOB2) are boolean ``allowed`` masks;
forbidden transitions get the fixed score :data:`IMPOSSIBLE`, which no training changes.
:func:`allowed_transitions` builds the masks from tag names for the IOB1, IOB2 and IOBES schemes.

This module imports nothing of lstmkit outside ``lstmkit.nn``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

IMPOSSIBLE = -1.0e4
"""Score of a forbidden transition: finite (no NaN gradients), yet exp(IMPOSSIBLE) == 0 in float32."""

Scheme = Literal["IOB1", "IOB2", "IOBES", "none"]


class Constraints(NamedTuple):
    """Which transitions a tag scheme allows: ``trans`` (K, K) [from, to], ``start`` (K,), ``end`` (K,)."""

    trans: Tensor
    start: Tensor
    end: Tensor


class NBest(NamedTuple):
    """The N best paths of each sentence, best first.

    paths (B, N, T) long, zero at padded positions; scores (B, N) path scores s(y);
    valid (B, N) bool: False where a sentence has fewer than N allowed paths.
    """

    paths: Tensor
    scores: Tensor
    valid: Tensor


def _split(tag: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` (or anything unprefixed) -> ``("O", "")``."""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BIES":
        return tag[0], tag[2:]
    return "O", ""


def _allowed(scheme: Scheme, prev: tuple[str, str] | None, cur: tuple[str, str] | None) -> bool:
    """Whether tag ``cur`` may follow tag ``prev`` (None = sentence start / end)."""
    if scheme == "none":
        return True
    if cur is None:  # end of sentence
        assert prev is not None
        return scheme != "IOBES" or prev[0] in "OES"
    p_pre, p_typ = prev if prev is not None else ("O", "")
    c_pre, c_typ = cur
    if scheme == "IOB1":  # B-X only right after a chunk of type X
        return c_pre != "B" or (p_pre in "BI" and p_typ == c_typ)
    if scheme == "IOB2":  # I-X only inside an X chunk
        return c_pre != "I" or (p_pre in "BI" and p_typ == c_typ)
    # IOBES: after B/I comes I/E of the same type; after O/E/S comes O/B/S
    if p_pre in "BI":
        return c_pre in "IE" and c_typ == p_typ
    return c_pre in "OBS"


def allowed_transitions(tags: Sequence[str], scheme: Scheme) -> Constraints:
    """Boolean masks of the transitions ``scheme`` allows between ``tags`` (tag names, index = id).

    Tags that are not ``O``/``B-``/``I-``/``E-``/``S-`` names (e.g. ``<pad>``) are treated like ``O``.
    ``scheme="none"`` (POS tags) allows everything.
    """
    parts = [_split(t) for t in tags]
    k = len(tags)
    trans = torch.tensor([[_allowed(scheme, parts[i], parts[j]) for j in range(k)] for i in range(k)])
    start = torch.tensor([_allowed(scheme, None, p) for p in parts])
    end = torch.tensor([_allowed(scheme, p, None) for p in parts])
    return Constraints(trans, start, end)


class CRF(nn.Module):
    """Linear-chain CRF over K tags with learnable transition, start and end scores.

    Args:
        num_tags: K.
        constraints: optional :class:`Constraints`; forbidden moves score :data:`IMPOSSIBLE`.

    All methods take ``emissions`` (B, T, K) float and ``mask`` (B, T) bool (True at real tokens;
    a prefix of each row, at least one True); ``tags`` are (B, T) long.
    """

    allowed_trans: Tensor  # (K, K) bool buffers: which moves the scheme allows
    allowed_start: Tensor  # (K,)
    allowed_end: Tensor  # (K,)

    def __init__(self, num_tags: int, constraints: Constraints | None = None) -> None:
        super().__init__()
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))  # (K_from, K_to)
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        if constraints is None:
            ones = torch.ones(num_tags, dtype=torch.bool)
            constraints = Constraints(torch.ones(num_tags, num_tags, dtype=torch.bool), ones, ones.clone())
        self.register_buffer("allowed_trans", constraints.trans.clone().bool())
        self.register_buffer("allowed_start", constraints.start.clone().bool())
        self.register_buffer("allowed_end", constraints.end.clone().bool())
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in (self.transitions, self.start_transitions, self.end_transitions):
            nn.init.uniform_(p, -0.1, 0.1)

    # -- scores with constraints applied ------------------------------------------------------
    def _scores(self) -> tuple[Tensor, Tensor, Tensor]:
        """(A (K, K), start (K,), end (K,)) with forbidden moves set to IMPOSSIBLE."""
        trans = self.transitions.masked_fill(~self.allowed_trans, IMPOSSIBLE)
        start = self.start_transitions.masked_fill(~self.allowed_start, IMPOSSIBLE)
        end = self.end_transitions.masked_fill(~self.allowed_end, IMPOSSIBLE)
        return trans, start, end

    # -- likelihood ---------------------------------------------------------------------------
    def forward(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Log-likelihood ``log p(tags | x) = s(tags) - log Z`` of each sentence: (B,)."""
        return self.score(emissions, tags, mask) - self.log_partition(emissions, mask)

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Path score s(tags) of each sentence: (B,)."""
        trans, start, end = self._scores()
        maskf = mask.to(emissions.dtype)  # (B, T)
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (B, T)
        total = start[tags[:, 0]] + (emit * maskf).sum(1)  # (B,)
        step = trans[tags[:, :-1], tags[:, 1:]]  # (B, T-1): A[y_{t-1}, y_t]
        total = total + (step * maskf[:, 1:]).sum(1)
        last = mask.long().sum(1) - 1  # (B,) index of each sentence's last token
        last_tags = tags.gather(1, last.unsqueeze(1)).squeeze(1)  # (B,)
        return total + end[last_tags]

    def _alphas(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Forward variables alpha_t for every t: (B, T, K); padded steps repeat the last real one."""
        trans, start, _ = self._scores()
        alpha = start.unsqueeze(0) + emissions[:, 0]  # (B, K)
        out = [alpha]
        for t in range(1, emissions.size(1)):
            # (B, K_from, 1) + (1, K_from, K_to) -> logsumexp over K_from -> (B, K_to)
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)
            out.append(alpha)
        return torch.stack(out, dim=1)  # (B, T, K)

    def log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """log Z of each sentence by the forward algorithm: (B,)."""
        _, _, end = self._scores()
        alpha_last = self._alphas(emissions, mask)[:, -1]  # (B, K): padded steps carried the last one
        return torch.logsumexp(alpha_last + end.unsqueeze(0), dim=1)

    # -- marginals ----------------------------------------------------------------------------
    def marginals(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """p(y_t = k | x) by forward-backward: (B, T, K); rows sum to one, zero at padded steps."""
        trans, _, end = self._scores()
        alphas = self._alphas(emissions, mask)  # (B, T, K)
        log_z = torch.logsumexp(alphas[:, -1] + end.unsqueeze(0), dim=1)  # (B,)
        n_steps = emissions.size(1)
        beta = end.unsqueeze(0).expand_as(emissions[:, 0])  # (B, K) at the last step
        betas = [beta]
        for t in range(n_steps - 2, -1, -1):
            # (1, K_from, K_to) + (B, 1, K_to) -> logsumexp over K_to -> (B, K_from)
            nxt = torch.logsumexp(trans.unsqueeze(0) + (emissions[:, t + 1] + beta).unsqueeze(1), dim=2)
            # if t+1 is padding, t is the last real token (or padding): beta_t = end
            beta = torch.where(mask[:, t + 1].unsqueeze(1), nxt, end.unsqueeze(0).expand_as(nxt))
            betas.append(beta)
        betas_t = torch.stack(betas[::-1], dim=1)  # (B, T, K)
        probs = torch.exp(alphas + betas_t - log_z.view(-1, 1, 1))  # (B, T, K)
        return probs * mask.unsqueeze(2).to(probs.dtype)

    # -- decoding -----------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, emissions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Viterbi: the best path of each sentence (B, T) long (0 at padding) and its score (B,)."""
        trans, start, end = self._scores()
        batch, n_steps, k = emissions.shape
        score = start.unsqueeze(0) + emissions[:, 0]  # (B, K)
        keep = torch.arange(k, device=emissions.device).expand(batch, k)  # (B, K) identity pointers
        pointers = []
        for t in range(1, n_steps):
            best, arg = (score.unsqueeze(2) + trans.unsqueeze(0)).max(dim=1)  # (B, K_to) each
            on = mask[:, t].unsqueeze(1)
            score = torch.where(on, best + emissions[:, t], score)
            pointers.append(torch.where(on, arg, keep))  # padding points to itself
        best_score, last = (score + end.unsqueeze(0)).max(dim=1)  # (B,)
        path = [last]
        for ptr in reversed(pointers):
            last = ptr.gather(1, last.unsqueeze(1)).squeeze(1)  # (B,)
            path.append(last)
        paths = torch.stack(path[::-1], dim=1)  # (B, T)
        return paths * mask.long(), best_score

    @torch.no_grad()
    def nbest(self, emissions: Tensor, mask: Tensor, n: int) -> NBest:
        """The ``n`` best paths of each sentence by n-best Viterbi (see :class:`NBest`)."""
        trans, start, end = self._scores()
        batch, n_steps, k = emissions.shape
        dev = emissions.device
        # score[b, j, r]: score of the r-th best partial path ending in tag j. (B, K, N)
        score = torch.full((batch, k, n), float("-inf"), device=dev, dtype=emissions.dtype)
        score[:, :, 0] = start.unsqueeze(0) + emissions[:, 0]
        keep = (torch.arange(k, device=dev).view(k, 1) * n + torch.arange(n, device=dev)).expand(batch, k, n)
        pointers = []  # each (B, K, N): flat index j_prev * N + r_prev
        for t in range(1, n_steps):
            # (B, K_from, N, 1) + (1, K_from, 1, K_to) -> (B, K_from * N, K_to)
            cand = (score.unsqueeze(3) + trans.view(1, k, 1, k)).reshape(batch, k * n, k)
            best, arg = cand.topk(n, dim=1)  # (B, N, K_to)
            best, arg = best.transpose(1, 2), arg.transpose(1, 2)  # (B, K_to, N)
            on = mask[:, t].view(batch, 1, 1)
            score = torch.where(on, best + emissions[:, t].unsqueeze(2), score)
            pointers.append(torch.where(on, arg, keep))
        final = (score + end.view(1, k, 1)).reshape(batch, k * n)  # (B, K * N)
        top, flat = final.topk(n, dim=1)  # (B, N)
        path = [flat // n]
        for ptr in reversed(pointers):
            flat = ptr.reshape(batch, k * n).gather(1, flat)  # (B, N)
            path.append(flat // n)
        paths = torch.stack(path[::-1], dim=2)  # (B, N, T)
        valid = top > IMPOSSIBLE / 2
        return NBest(paths * mask.long().unsqueeze(1), top, valid)
